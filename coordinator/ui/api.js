// api.js — what every page shares: the REST client (token, 401 handling), live streams
// (EventSource with automatic resume), the DOM builder `h`, status icons and labels,
// time formatting and toasts. Loaded first; defines the global `esteira`.
"use strict";

// Script errors, kept for the browser test to assert there were none.
window.__errors = [];
window.addEventListener("error", (event) => window.__errors.push(String(event.message)));
window.addEventListener("unhandledrejection", (event) => window.__errors.push(String(event.reason)));

const esteira = (() => {
  const TOKEN_KEY = "esteira.token";

  // ---- token ------------------------------------------------------------------------
  function token() {
    try { return localStorage.getItem(TOKEN_KEY) || ""; } catch (_) { return ""; }
  }

  function setToken(value) {
    try {
      if (value) localStorage.setItem(TOKEN_KEY, value); else localStorage.removeItem(TOKEN_KEY);
    } catch (_) { /* storage disabled: the cookie still carries it */ }
    // The cookie lets plain links (raw log download) and event streams carry the token
    // when the coordinator requires it for reads.
    const secure = location.protocol === "https:" ? "; Secure" : "";
    document.cookie = value
      ? `esteira_token=${encodeURIComponent(value)}; Path=/; SameSite=Strict; Max-Age=31536000${secure}`
      : "esteira_token=; Path=/; Max-Age=0";
    window.dispatchEvent(new Event("esteira:token"));
  }

  // The token dialog: one prompt at a time, resolved with the token or null.
  let asking = null;
  function askToken(reason, title) {
    if (asking) return asking;
    const dialog = document.getElementById("token-dialog");
    const input = document.getElementById("token-input");
    document.getElementById("token-title").textContent = title || "Admin token";
    document.getElementById("token-reason").textContent = reason ||
      "Actions such as retry, cancel and play need the coordinator's admin token (or an API token). It is kept in this browser only.";
    input.value = "";
    asking = new Promise((resolve) => {
      dialog.addEventListener("close", function done() {
        dialog.removeEventListener("close", done);
        asking = null;
        if (dialog.returnValue === "save" && input.value.trim()) {
          setToken(input.value.trim());
          resolve(input.value.trim());
        } else {
          resolve(null);
        }
      });
    });
    dialog.returnValue = "";
    dialog.showModal();
    input.focus();
    return asking;
  }

  // ---- REST -------------------------------------------------------------------------
  class ApiError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  async function request(method, path, body, retried) {
    const headers = { Accept: "application/json" };
    const t = token();
    if (t) headers.Authorization = `Bearer ${t}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(path, {
        method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (error) {
      throw new ApiError(0, `The coordinator cannot be reached (${error.message}).`);
    }
    if (response.status === 401 && !retried) {
      const reason = method === "GET"
        ? "This coordinator requires a token to read. Enter an API token or the admin token."
        : (t ? "The saved token was refused. Enter the admin token or an API token."
             : "This action needs the admin token (or an API token).");
      if (await askToken(reason, method === "GET" ? "Token required" : null)) return request(method, path, body, true);
    }
    const text = await response.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (_) { data = text; }
    if (!response.ok) {
      const message = (data && data.error) || `${response.status} ${response.statusText}`;
      throw new ApiError(response.status, message);
    }
    return data;
  }

  const api = {
    get: (path) => request("GET", path),
    // A read that answers a refused token with its 401 instead of asking for the token.
    peek: (path) => request("GET", path, undefined, true),
    post: (path, body) => request("POST", path, body === undefined ? {} : body),
    del: (path) => request("DELETE", path),
  };

  // ---- live streams -----------------------------------------------------------------
  // An EventSource that reports its state; the browser reconnects by itself and sends
  // Last-Event-ID, which the log stream resumes from. `handlers` maps event names to
  // functions of the parsed data (`raw: true` passes the text).
  // A stream refused for good (e.g. 401 while reads need a token) is marked `failed`;
  // saving a token re-opens the page so its streams start again with the cookie.
  const streams = new Set();
  function live(url, handlers, onState) {
    const source = new EventSource(url, { withCredentials: true });
    streams.add(source);
    const close = source.close.bind(source);
    source.close = () => { streams.delete(source); close(); };
    for (const [name, handler] of Object.entries(handlers)) {
      source.addEventListener(name, (event) => handler(event.data, event));
    }
    source.onopen = () => onState && onState("live");
    source.onerror = () => {
      if (source.readyState === 2) source.failed = true;
      if (onState) onState(source.readyState === 2 ? "closed" : "reconnecting");
    };
    return source;
  }

  function failedStreams() { return [...streams].some((source) => source.failed); }

  // ---- DOM --------------------------------------------------------------------------
  // h("a.btn", {href: "/x", onclick: f}, "text", child, [children]) — text is never HTML.
  function h(tag, attrs, ...children) {
    const [head, ...classes] = tag.split(".");
    const [name, id] = head.split("#");
    const el = document.createElement(name || "div");
    if (id) el.id = id;
    if (classes.length) el.className = classes.join(" ");
    if (attrs) {
      for (const [key, value] of Object.entries(attrs)) {
        if (value === undefined || value === null || value === false) continue;
        if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
        else if (key === "dataset") Object.assign(el.dataset, value);
        else if (key === "class") el.className += (el.className ? " " : "") + value;
        else el.setAttribute(key, value === true ? "" : value);
      }
    }
    append(el, children);
    return el;
  }

  function append(el, children) {
    for (const child of children) {
      if (child === undefined || child === null || child === false) continue;
      if (Array.isArray(child)) append(el, child);
      else el.append(child instanceof Node ? child : String(child));
    }
  }

  // ---- statuses ---------------------------------------------------------------------
  const LABELS = {
    success: "passed", failed: "failed", running: "running", pending: "pending",
    created: "created", manual: "manual", canceled: "canceled", skipped: "skipped",
    lost: "lost", warning: "failed (allowed)",
  };
  const GLYPHS = {
    success: '<path d="M4.6 8.3l2.3 2.3 4.6-4.9" fill="none" stroke="#fff" stroke-width="1.8" stroke-linecap="round" stroke-linejoin="round"/>',
    failed: '<path d="M5.6 5.6l4.8 4.8M10.4 5.6l-4.8 4.8" stroke="#fff" stroke-width="1.8" stroke-linecap="round"/>',
    running: '<path d="M8 3.6a4.4 4.4 0 0 1 0 8.8z" fill="currentColor"/>',
    pending: '<path d="M6.4 5.4v5.2M9.6 5.4v5.2" stroke="currentColor" stroke-width="1.7" stroke-linecap="round"/>',
    created: '<circle cx="8" cy="8" r="1.6" fill="currentColor"/>',
    manual: '<path d="M6.5 5.2v5.6l4.6-2.8z" fill="currentColor"/>',
    canceled: '<path d="M5.2 10.8l5.6-5.6" stroke="currentColor" stroke-width="1.7" stroke-linecap="round"/>',
    skipped: '<path d="M4.8 5.6l2.4 2.4-2.4 2.4M8.6 5.6L11 8l-2.4 2.4" fill="none" stroke="currentColor" stroke-width="1.5" stroke-linecap="round" stroke-linejoin="round"/>',
    lost: '<path d="M8 4.6v4.2" stroke="#fff" stroke-width="1.8" stroke-linecap="round"/><circle cx="8" cy="11.2" r="1" fill="#fff"/>',
    warning: '<path d="M8 4.6v4.2" stroke="#fff" stroke-width="1.8" stroke-linecap="round"/><circle cx="8" cy="11.2" r="1" fill="#fff"/>',
  };
  const FILLED = new Set(["success", "failed", "lost", "warning"]);

  // The status a job shows: a tolerated failure is a warning, not a failure.
  function jobLook(job) {
    if (job.status === "failed" && job.allow_failure) return "warning";
    return job.status;
  }

  function icon(status) {
    const span = document.createElement("span");
    span.className = `status-icon s-${status}`;
    span.setAttribute("aria-hidden", "true");
    const body = FILLED.has(status)
      ? `<circle cx="8" cy="8" r="7" fill="currentColor"/>`
      : `<circle cx="8" cy="8" r="6.2" fill="none" stroke="currentColor" stroke-width="1.6"/>`;
    span.innerHTML = `<svg viewBox="0 0 16 16" width="16" height="16">${body}${GLYPHS[status] || ""}</svg>`;
    return span;
  }

  // A status badge: icon and word, so colour is never the only signal.
  function badge(status, extraClass) {
    return h(`span.badge.s-${status}${extraClass ? "." + extraClass : ""}`, { dataset: { status } },
      icon(status), h("span.badge-text", null, LABELS[status] || status));
  }

  // ---- time -------------------------------------------------------------------------
  function duration(ms) {
    if (ms === null || ms === undefined || ms < 0) return "—";
    const s = Math.round(ms / 1000);
    if (s < 60) return `${s}s`;
    const m = Math.floor(s / 60);
    if (m < 60) return `${m}m ${String(s % 60).padStart(2, "0")}s`;
    return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, "0")}m`;
  }

  // Running time of something with started/finished stamps (live while running).
  function elapsed(item) {
    if (!item.started_at) return null;
    return (item.finished_at || Date.now()) - item.started_at;
  }

  // How long a pipeline ran, as GitLab counts it: the time its latest job attempts were
  // running, overlaps counted once. A retry adds its own run, not the wait before it.
  function ranFor(jobs, now) {
    const runs = jobs.filter((j) => !j.retried && j.started_at)
      .map((j) => [j.started_at, j.finished_at || now]).sort((a, b) => a[0] - b[0]);
    if (!runs.length) return null;
    let total = 0;
    let [from, to] = runs[0];
    for (const [start, end] of runs) {
      if (start > to) { total += to - from; from = start; }
      to = Math.max(to, end);
    }
    return total + (to - from);
  }

  function ago(ms) {
    if (!ms) return "never";
    const s = Math.round((Date.now() - ms) / 1000);
    if (s < 5) return "just now";
    if (s < 60) return `${s}s ago`;
    if (s < 3600) return `${Math.floor(s / 60)}m ago`;
    if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
    return `${Math.floor(s / 86400)}d ago`;
  }

  function when(ms) {
    return ms ? h("time", { datetime: new Date(ms).toISOString(), title: new Date(ms).toLocaleString() }, ago(ms)) : "—";
  }

  // ---- toasts -----------------------------------------------------------------------
  function toast(message, kind) {
    const box = document.getElementById("toasts");
    const item = h(`div.toast.toast-${kind || "info"}`, null, message);
    box.append(item);
    setTimeout(() => item.remove(), 6000);
  }

  // Runs an action (POST/DELETE), reporting failure as a toast; returns the answer or null.
  async function act(what, run) {
    try {
      return await run();
    } catch (error) {
      const hint = error.status === 404 || error.status === 405
        ? " (this coordinator does not offer it yet)" : "";
      toast(`${what} failed: ${error.message}${hint}`, "error");
      return null;
    }
  }

  function shortSha(sha) { return (sha || "").slice(0, 8); }

  // A coverage figure as GitLab prints it ("87.35%"), or null without one.
  function percent(figure) {
    return figure === null || figure === undefined ? null : `${Number(figure).toFixed(2)}%`;
  }

  function size(bytes) {
    if (bytes < 1024) return `${bytes} B`;
    if (bytes < 1 << 20) return `${(bytes / 1024).toFixed(1)} KiB`;
    if (bytes < 1 << 30) return `${(bytes / (1 << 20)).toFixed(1)} MiB`;
    return `${(bytes / (1 << 30)).toFixed(1)} GiB`;
  }

  return {
    api, ApiError, token, setToken, askToken, live, failedStreams, h, icon, badge, jobLook, LABELS,
    duration, elapsed, ranFor, ago, when, toast, act, shortSha, percent, size, pages: {},
  };
})();
