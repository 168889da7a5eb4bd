// app.js — the shell: client-side routing by path (links inside the app never reload
// the page), the active navigation entry, the token and theme buttons, and each page's teardown
// (closing its streams) when another page opens. Loaded last; pages register in
// `esteira.pages` from their own files.
"use strict";

(() => {
  const { h } = esteira;
  const main = document.getElementById("main");
  let teardown = null;
  let current = "";

  // [pattern, page name, section for the nav]
  const ROUTES = [
    [/^\/(?:pipelines)?\/?$/, "pipelines", "pipelines"],
    [/^\/pipelines\/(\d+)\/?$/, "pipeline", "pipelines"],
    [/^\/jobs\/(\d+)\/?$/, "job", "pipelines"],
    [/^\/agents\/?$/, "agents", "agents"],
    [/^\/environments\/?$/, "environments", "environments"],
    [/^\/projects\/?$/, "projects", "projects"],
    [/^\/projects\/([^/]+)\/?$/, "project", "projects"],
  ];

  function route() {
    const path = location.pathname;
    current = path + location.search;
    if (teardown) { try { teardown(); } catch (_) { /* the old page is gone anyway */ } }
    teardown = null;
    let found = null;
    for (const [pattern, name, section] of ROUTES) {
      const match = pattern.exec(path);
      if (match) { found = { name, section, params: match.slice(1).map(decodeURIComponent) }; break; }
    }
    for (const link of document.querySelectorAll("nav a[data-section]")) {
      if (found && link.dataset.section === found.section) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    main.replaceChildren();
    const page = found && esteira.pages[found.name];
    if (!page) {
      document.title = "Not found · esteira";
      main.append(h("section.empty-state", null, h("h1", null, "Page not found"),
        h("p", null, "Nothing lives at ", h("code", null, path), "."),
        h("p", null, h("a", { href: "/pipelines" }, "Go to the pipelines"))));
      return;
    }
    teardown = page(main, found.params, new URLSearchParams(location.search)) || null;
  }

  function navigate(url, replace) {
    const target = new URL(url, location.href);
    if (replace) history.replaceState(null, "", target);
    else history.pushState(null, "", target);
    if (target.pathname + target.search !== current) route();
    if (!target.hash) window.scrollTo(0, 0);
  }

  // Same-origin links without a target or download open inside the app.
  document.addEventListener("click", (event) => {
    if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    const link = event.target.closest("a[href]");
    if (!link || link.target || link.hasAttribute("download") || link.dataset.external !== undefined) return;
    const url = new URL(link.href, location.href);
    if (url.origin !== location.origin || url.pathname.startsWith("/api/") || url.pathname.startsWith("/badges/")) return;
    if (url.pathname === location.pathname && url.search === location.search && url.hash) return; // an anchor
    event.preventDefault();
    navigate(url.href);
    main.focus({ preventScroll: true });
  });

  window.addEventListener("popstate", () => {
    // A change of the #fragment alone (log line anchors) is not a new page.
    if (location.pathname + location.search !== current) route();
  });

  // ---- token button ---------------------------------------------------------------
  const button = document.getElementById("token-button");
  function showToken() {
    const has = Boolean(esteira.token());
    button.textContent = has ? "Sign out" : "Sign in";
    button.title = has ? "Forget the token kept in this browser" : "Enter the admin token to retry, cancel and play jobs";
  }
  button.addEventListener("click", async () => {
    if (esteira.token()) { esteira.setToken(""); esteira.toast("Token forgotten.", "info"); }
    else if (await esteira.askToken()) esteira.toast("Token saved in this browser.", "success");
  });
  window.addEventListener("esteira:token", () => {
    showToken();
    if (esteira.token() && esteira.failedStreams()) route();
  });
  showToken();

  // ---- theme button ---------------------------------------------------------------
  // Auto follows the system (prefers-color-scheme); Dark and Light are kept in this
  // browser. index.html applies the kept choice before the first paint.
  const THEME_KEY = "esteira.theme";
  const THEMES = { auto: "Theme: auto", dark: "Theme: dark", light: "Theme: light" };
  const themeButton = document.getElementById("theme-button");
  function showTheme() {
    const theme = document.documentElement.dataset.theme || "auto";
    themeButton.textContent = THEMES[theme];
    themeButton.dataset.theme = theme;
    themeButton.title = "Switch between the system's colours, dark and light";
  }
  themeButton.addEventListener("click", () => {
    const order = Object.keys(THEMES);
    const next = order[(order.indexOf(themeButton.dataset.theme) + 1) % order.length];
    if (next === "auto") delete document.documentElement.dataset.theme;
    else document.documentElement.dataset.theme = next;
    try {
      if (next === "auto") localStorage.removeItem(THEME_KEY); else localStorage.setItem(THEME_KEY, next);
    } catch (_) { /* storage disabled: the choice lasts for this page */ }
    showTheme();
  });
  showTheme();

  esteira.navigate = navigate;
  route();
})();
