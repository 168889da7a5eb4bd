// pages.js — the list pages: pipelines (across projects, or one project's, with filters
// and "older" pagination by id, refreshed live from /api/v1/events), agents (status,
// labels, load, pause/resume/remove, and the queue per required label set from
// /api/v1/queue) and environments (current deployment, history,
// rollback; an empty state while the coordinator has no environments API).
"use strict";

(() => {
  const { api, h, badge, icon, duration, elapsed, when, ago, act, toast, shortSha, percent } = esteira;
  const PAGE_SIZE = 50;
  const STATUSES = ["running", "pending", "success", "failed", "canceled", "manual", "skipped", "created"];

  function pageHeader(title, ...extra) {
    document.title = `${title} · esteira`;
    return h("div.page-header", null, h("h1", null, title), ...extra);
  }

  function errorBox(error) {
    return h("div.alert.alert-error", { role: "alert" }, h("strong", null, "Could not load this page. "), error.message);
  }

  // Calls `run` at most once per `ms`, trailing.
  function debounce(ms, run) {
    let timer = null;
    return () => { if (!timer) timer = setTimeout(() => { timer = null; run(); }, ms); };
  }

  // ---- pipelines ------------------------------------------------------------------
  function pipelines(main, params, query, fixedProject) {
    const project = fixedProject || query.get("project") || "";
    const status = query.get("status") || "";
    const ref = query.get("ref") || "";
    const before = query.get("before") || "";

    const title = fixedProject ? fixedProject : "Pipelines";
    const badgeUrl = (kind) => `/badges/${encodeURIComponent(fixedProject)}/${kind}.svg${ref ? `?ref=${encodeURIComponent(ref)}` : ""}`;
    main.append(pageHeader(title, fixedProject && h("span.project-badges", null,
      h("img.project-badge", { src: badgeUrl("pipeline"), alt: "pipeline status badge", height: 20 }),
      h("img.project-badge", { src: badgeUrl("coverage"), alt: "coverage badge", height: 20 }))));

    const projectSelect = h("select#f-project", { name: "project", disabled: fixedProject ? true : null },
      h("option", { value: "" }, "All projects"));
    const form = h("form.filters", { role: "search", "aria-label": "Filter pipelines" },
      h("div.field", null, h("label", { for: "f-status" }, "Status"),
        h("select#f-status", { name: "status" }, h("option", { value: "" }, "Any status"),
          STATUSES.map((s) => h("option", { value: s, selected: s === status }, esteira.LABELS[s])))),
      h("div.field", null, h("label", { for: "f-ref" }, "Branch or tag"),
        h("input#f-ref", { name: "ref", value: ref, placeholder: "e.g. main", spellcheck: "false" })),
      fixedProject ? null : h("div.field", null, h("label", { for: "f-project" }, "Project"), projectSelect),
      h("div.field.field-actions", null, h("button.btn.btn-primary", { type: "submit" }, "Filter"),
        (status || ref || (project && !fixedProject)) && h("a.btn", { href: fixedProject ? location.pathname : "/pipelines" }, "Clear")));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const next = new URLSearchParams();
      for (const [key, value] of new FormData(form)) if (value) next.set(key, value);
      esteira.navigate(`${location.pathname}${next.toString() ? "?" + next : ""}`);
    });
    main.append(form);
    if (!fixedProject) {
      api.get("/api/v1/projects").then((list) => {
        for (const p of list || []) projectSelect.append(h("option", { value: p.name, selected: p.name === project }, p.name));
      }).catch(() => {});
    }

    const region = h("div.list-region", { "aria-live": "polite" }, h("p.loading", null, "Loading pipelines…"));
    main.append(region);

    const search = new URLSearchParams();
    if (project) search.set("project", project);
    if (status) search.set("status", status);
    if (ref) search.set("ref", ref);
    if (before) search.set("before", before);
    search.set("limit", String(PAGE_SIZE));

    let shown = [];
    async function load() {
      let list;
      try { list = await api.get(`/api/v1/pipelines?${search}`); } catch (error) { region.replaceChildren(errorBox(error)); return; }
      shown = list;
      region.replaceChildren(render(list));
      main.dataset.loaded = "true";
    }

    function render(list) {
      if (!list.length) {
        return h("div.empty-state", null, h("h2", null, before ? "No older pipelines" : "No pipelines yet"),
          h("p", null, status || ref ? "Nothing matches these filters." : "Run one with ", !(status || ref) && h("code", null, "esteira pipeline run PROJECT --ref main"),
            !(status || ref) && ", a trigger, or a push webhook."));
      }
      const rows = list.map((p) => h("tr", { dataset: { pipeline: p.id } },
        h("td", { "data-label": "Status" }, h("a.badge-link", { href: `/pipelines/${p.id}` }, badge(p.status))),
        h("td", { "data-label": "Pipeline" }, h("a.strong", { href: `/pipelines/${p.id}` }, `#${p.id}`)),
        fixedProject ? null : h("td", { "data-label": "Project" }, h("a", { href: `/projects/${encodeURIComponent(p.project)}` }, p.project)),
        h("td", { "data-label": "Ref" }, h("span.ref", { title: p.ref_kind }, p.ref_kind === "tag" ? "tag " : "", p.git_ref)),
        h("td.commit-cell", { "data-label": "Commit" },
          h("div.commit-title", { title: p.commit_title || "" }, p.commit_title || h("span.muted", null, "—")),
          h("div.commit-meta", null, h("code.sha", { title: p.sha }, shortSha(p.sha)), p.commit_author && ` · ${p.commit_author}`)),
        h("td", { "data-label": "Source" }, p.source),
        h("td.num", { "data-label": "Duration" }, h("span", { dataset: { started: p.started_at || "", finished: p.finished_at || "" } }, duration(elapsed(p)))),
        h("td.num", { "data-label": "Coverage" }, percent(p.coverage) || h("span.muted", null, "—")),
        h("td", { "data-label": "Created" }, when(p.created_at))));
      const table = h("table.data-table.pipelines-table", null,
        h("caption.visually-hidden", null, "Pipelines, newest first"),
        h("thead", null, h("tr", null, h("th", { scope: "col" }, "Status"), h("th", { scope: "col" }, "Pipeline"),
          fixedProject ? null : h("th", { scope: "col" }, "Project"), h("th", { scope: "col" }, "Ref"),
          h("th", { scope: "col" }, "Commit"), h("th", { scope: "col" }, "Source"),
          h("th.num", { scope: "col" }, "Duration"), h("th.num", { scope: "col" }, "Coverage"), h("th", { scope: "col" }, "Created"))),
        h("tbody", null, rows));
      const pager = new URLSearchParams(search);
      pager.delete("limit");
      const older = new URLSearchParams(pager);
      older.set("before", String(list[list.length - 1].id));
      const newest = new URLSearchParams(pager);
      newest.delete("before");
      return h("div", null, h("div.table-wrap", null, table),
        h("nav.pager", { "aria-label": "Pages" },
          before ? h("a.btn", { href: `${location.pathname}${newest.toString() ? "?" + newest : ""}` }, "« Newest") : h("span"),
          list.length === PAGE_SIZE ? h("a.btn", { href: `${location.pathname}?${older}`, rel: "next", "data-older": "" }, "Older »") : h("span")));
    }

    load();
    // Live: changes to a shown pipeline, or a new one on the first page, re-read the list.
    const refresh = debounce(500, load);
    const source = esteira.live("/api/v1/events", {
      pipeline: (data) => {
        const id = JSON.parse(data).id;
        if (shown.some((p) => p.id === id) || (!before && (!shown.length || id > shown[0].id))) refresh();
      },
      lagged: refresh,
    });
    const ticker = setInterval(() => {
      for (const span of region.querySelectorAll("span[data-started]")) {
        if (span.dataset.started && !span.dataset.finished) span.textContent = duration(Date.now() - Number(span.dataset.started));
      }
    }, 1000);
    return () => { source.close(); clearInterval(ticker); };
  }

  // ---- agents ---------------------------------------------------------------------
  function agents(main) {
    main.append(pageHeader("Agents", h("p.page-lead", null, "Build hosts that dial in to this coordinator and run jobs in Docker.")));
    const summary = h("div.summary-cards");
    const queueRegion = h("div.queue-region");
    const region = h("div.list-region", null, h("p.loading", null, "Loading agents…"));
    main.append(summary, queueRegion, region);
    const AGENT_LOOK = { online: "success", idle: "success", busy: "running", paused: "manual", draining: "pending", offline: "canceled" };

    async function load() {
      let list;
      let queue;
      try {
        [list, queue] = await Promise.all([api.get("/api/v1/agents"), api.get("/api/v1/queue")]);
      } catch (error) { region.replaceChildren(errorBox(error)); return; }
      const count = (s) => list.filter((a) => a.status === s).length;
      const waiting = queue.reduce((n, g) => n + g.pending, 0);
      summary.replaceChildren(
        card("Agents", list.length), card("Busy", count("busy")), card("Idle", count("idle")),
        card("Paused", count("paused")), card("Offline", count("offline")),
        card("Running jobs", list.reduce((n, a) => n + (a.running_jobs || []).length, 0)),
        card("Queued jobs", waiting));
      queueRegion.replaceChildren(renderQueue(queue));
      if (!list.length) {
        region.replaceChildren(h("div.empty-state", null, h("h2", null, "No agents registered"),
          h("p", null, "Start one with ", h("code", null, "esteira-agent --coordinator URL --registration-token TOKEN"), ".")));
        main.dataset.loaded = "true";
        return;
      }
      const rows = list.map((a) => {
        const look = AGENT_LOOK[a.status] || "created";
        const running = a.running_jobs || [];
        return h("tr", { dataset: { agent: a.id, status: a.status } },
          h("td", { "data-label": "Agent" }, h("strong", null, a.name), h("div.muted", null, `#${a.id}`)),
          h("td", { "data-label": "Status" }, h(`span.badge.s-${look}`, { dataset: { status: a.status } }, icon(look), h("span.badge-text", null, a.status))),
          h("td", { "data-label": "Labels" }, (a.labels || []).length ? h("ul.chips", null, a.labels.map((l) => h("li.chip", null, l))) : h("span.muted", null, "none")),
          h("td", { "data-label": "Version" }, h("code", null, a.version || "—")),
          h("td.num", { "data-label": "Load" }, `${running.length} / ${a.concurrency}`),
          h("td", { "data-label": "Running jobs" }, running.length ? running.map((id, i) => [i ? ", " : "", h("a", { href: `/jobs/${id}` }, `#${id}`)]) : h("span.muted", null, "—")),
          h("td", { "data-label": "Last contact" }, when(a.last_contact_at)),
          h("td.actions", { "data-label": "Actions" },
            a.paused
              ? h("button.btn.btn-small", { type: "button", "data-action": "resume", onclick: () => action("Resume", "POST", `/api/v1/agents/${a.id}/resume`) }, "Resume")
              : h("button.btn.btn-small", { type: "button", "data-action": "pause", onclick: () => action("Pause", "POST", `/api/v1/agents/${a.id}/pause`) }, "Pause"),
            h("button.btn.btn-small.btn-danger", {
              type: "button", "data-action": "remove",
              onclick: () => { if (confirm(`Remove agent ${a.name}? Its running jobs are marked lost and its credential stops working.`)) action("Remove", "DELETE", `/api/v1/agents/${a.id}`); },
            }, "Remove")));
      });
      region.replaceChildren(h("div.table-wrap", null, h("table.data-table.agents-table", null,
        h("caption.visually-hidden", null, "Agents"),
        h("thead", null, h("tr", null, ["Agent", "Status", "Labels", "Version", "Load", "Running jobs", "Last contact", "Actions"]
          .map((t) => h(t === "Load" ? "th.num" : "th", { scope: "col" }, t)))),
        h("tbody", null, rows))));
      main.dataset.loaded = "true";
    }

    // Pending jobs per required label set: how many, the longest wait (ticking), and the
    // agents that could take them now; a set no agent can take is flagged.
    function renderQueue(queue) {
      const head = h("div.card-head", null, h("h2#queue-title", null, "Queue"),
        h("span.muted.small", null, "Pending jobs by the labels they require"));
      if (!queue.length) {
        return h("section.card.queue-card", { "aria-labelledby": "queue-title" }, head,
          h("p.queue-empty", null, icon("success"), " No job is waiting for an agent."));
      }
      const rows = queue.map((g) => h("tr", { dataset: { queueTags: g.tags.join(","), pending: g.pending } },
        h("td", { "data-label": "Labels" }, g.tags.length ? h("ul.chips", null, g.tags.map((t) => h("li.chip", null, t))) : h("span.muted", null, "any agent")),
        h("td.num", { "data-label": "Pending" }, h("strong", null, String(g.pending))),
        h("td.num", { "data-label": "Longest wait" }, h("span", { dataset: { waitingSince: g.oldest_queued_at || "" } }, duration(g.longest_wait_ms))),
        h("td", { "data-label": "Oldest job" }, h("a", { href: `/jobs/${g.oldest_job}` }, `#${g.oldest_job}`)),
        h("td", { "data-label": "Can run them" }, g.agents.length
          ? g.agents.map((a, i) => [i ? ", " : "", a.name])
          : h("span.badge.s-failed", { dataset: { status: "no-agent" } }, icon("failed"), h("span.badge-text", null, "no online agent")))));
      return h("section.card.queue-card", { "aria-labelledby": "queue-title" }, head,
        h("div.table-wrap", null, h("table.data-table.queue-table", null, h("caption.visually-hidden", null, "Queue by required labels"),
          h("thead", null, h("tr", null, ["Labels", "Pending", "Longest wait", "Oldest job", "Can run them"]
            .map((t) => h(["Pending", "Longest wait"].includes(t) ? "th.num" : "th", { scope: "col" }, t)))),
          h("tbody", null, rows))));
    }

    function card(label, value) {
      return h("div.summary-card", null, h("span.summary-value", null, String(value)), h("span.summary-label", null, label));
    }

    async function action(what, method, path) {
      const done = await act(`${what} agent`, () => (method === "DELETE" ? api.del(path) : api.post(path)));
      if (done !== null) { toast(`${what}: done.`, "success"); load(); }
    }

    load();
    const refresh = debounce(1000, load);
    const source = esteira.live("/api/v1/events", { pipeline: refresh, lagged: refresh });
    const timer = setInterval(load, 10000);
    const ticker = setInterval(() => {
      for (const span of queueRegion.querySelectorAll("span[data-waiting-since]")) {
        if (span.dataset.waitingSince) span.textContent = duration(Date.now() - Number(span.dataset.waitingSince));
      }
    }, 1000);
    return () => { source.close(); clearInterval(timer); clearInterval(ticker); };
  }

  // ---- environments ---------------------------------------------------------------
  function environments(main) {
    main.append(pageHeader("Environments", h("p.page-lead", null, "Where each project's deploy jobs put it, what runs there now, and what ran before.")));
    const region = h("div.list-region", null, h("p.loading", null, "Loading environments…"));
    main.append(region);
    let cancelled = false;

    async function load() {
      let projects;
      try { projects = await api.get("/api/v1/projects"); } catch (error) { region.replaceChildren(errorBox(error)); return; }
      const sections = [];
      let supported = false;
      for (const project of projects || []) {
        let list = [];
        try {
          list = await api.get(`/api/v1/projects/${encodeURIComponent(project.name)}/environments`);
          supported = true;
        } catch (error) {
          if (error.status !== 404) sections.push(h("section.env-project", null, h("h2", null, project.name), errorBox(error)));
          continue;
        }
        if (list && list.length) sections.push(projectEnvironments(project.name, list));
      }
      if (cancelled) return;
      if (!sections.length) {
        region.replaceChildren(h("div.empty-state", null, icon("created"),
          h("h2", null, "No environments yet"),
          h("p", null, supported ? "No deploy job has run yet." : "This coordinator does not record deployments yet."),
          h("p.muted", null, "Jobs with ", h("code", null, "environment: {name: production}"), " record a deployment here when they succeed: version, commit, pipeline and time, with history and rollback.")));
      } else {
        region.replaceChildren(...sections);
      }
      main.dataset.loaded = "true";
    }

    function projectEnvironments(projectName, list) {
      return h("section.env-project", null, h("h2", null, h("a", { href: `/projects/${encodeURIComponent(projectName)}` }, projectName)),
        h("div.env-grid", null, list.map((env) => {
          const current = env.current || env.last_deployment || null;
          const history = env.history || env.deployments || [];
          return h("article.env-card", { dataset: { environment: env.name } },
            h("header.env-head", null, h("h3", null, env.name), env.tier && h("span.chip", null, env.tier),
              env.url && h("a.env-url", { href: env.url, target: "_blank", rel: "noopener", "data-external": "" }, env.url)),
            current
              ? h("dl.meta", null,
                h("dt", null, "Version"), h("dd", null, h("code", null, current.version || shortSha(current.sha))),
                h("dt", null, "Commit"), h("dd", null, h("code", null, shortSha(current.sha))),
                h("dt", null, "Deployed"), h("dd", null, when(current.deployed_at || current.finished_at || current.created_at)),
                h("dt", null, "Pipeline"), h("dd", null, current.pipeline_id ? h("a", { href: `/pipelines/${current.pipeline_id}` }, `#${current.pipeline_id}`) : "—"),
                current.triggered_by && h("dt", null, "Triggered by"), current.triggered_by && h("dd", null, current.triggered_by))
              : h("p.muted", null, env.state === "stopped" ? "Stopped: nothing runs here." : "Nothing deployed yet."),
            history.length > 1 && h("details.env-history", null, h("summary", null, `History (${history.length})`),
              h("ol", null, history.map((d) => h("li", null, badge(d.status || "success"), " ",
                h("code", null, d.version || shortSha(d.sha)), " ", when(d.deployed_at || d.created_at), " ",
                d.pipeline_id && h("a", { href: `/pipelines/${d.pipeline_id}` }, `#${d.pipeline_id}`), " ",
                (!current || d.id !== current.id) && d.status === "success" && h("button.btn.btn-small", {
                  type: "button", "data-action": "rollback",
                  onclick: async () => {
                    const done = await act("Rollback", () => api.post(`/api/v1/projects/${encodeURIComponent(projectName)}/environments/${encodeURIComponent(env.name)}/rollback`, { deployment: d.id }));
                    if (done !== null) { toast(`Rolling ${env.name} back to ${d.version || shortSha(d.sha)}.`, "success"); load(); }
                  },
                }, "Roll back to this"))))));
        })));
    }

    load();
    return () => { cancelled = true; };
  }

  esteira.pages.pipelines = (main, params, query) => pipelines(main, params, query, null);
  esteira.pages.project = (main, params, query) => pipelines(main, params, query, params[0]);
  esteira.pages.agents = agents;
  esteira.pages.environments = environments;
  esteira.debounce = debounce;
  esteira.errorBox = errorBox;
  esteira.pageHeader = pageHeader;
  void ago;
})();
