// pages.js — the index pages: pipelines (across projects, or one project's, with filters,
// "older" pagination by id, each row's stage mini-graph, refreshed live from
// /api/v1/events), projects (the list, and a project's page: pipelines, settings,
// variables, badges), agents (status, labels, load, pause/resume/remove, the queue
// per required label set from /api/v1/queue, and the runner pools their autoscalers
// report at /api/v1/pools) and environments (current deployment,
// history, rollback).
"use strict";

(() => {
  const { api, h, badge, icon, duration, when, ago, act, toast, shortSha, percent } = esteira;
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
  // The list, across projects or for `fixedProject` (whose page draws the header). Each
  // row in sight reads its pipeline's jobs once (and again when it changes) for the
  // stage mini-graph, the duration the jobs ran and "Retry failed jobs".
  function pipelines(main, query, fixedProject) {
    const project = fixedProject || query.get("project") || "";
    const status = query.get("status") || "";
    const ref = query.get("ref") || "";
    const before = query.get("before") || "";

    if (!fixedProject) {
      main.append(pageHeader("Pipelines", h("button.btn.btn-primary.header-action", {
        type: "button", "data-action": "run-pipeline", onclick: () => esteira.runPipelineDialog(null),
      }, "Run pipeline")));
    }
    const projectSelect = h("select#f-project", { name: "project" }, h("option", { value: "" }, "All projects"));
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
    const views = new Map(); // pipeline id -> its view with jobs, for rows in sight
    const reading = new Map(); // pipeline id -> the read in flight
    const sight = new IntersectionObserver((entries) => {
      for (const entry of entries) if (entry.isIntersecting) readView(Number(entry.target.dataset.pipeline));
    });

    function readView(id) {
      if (views.has(id) || reading.has(id)) return;
      const read = api.get(`/api/v1/pipelines/${id}`);
      reading.set(id, read);
      read.then((view) => {
        if (reading.get(id) !== read) return; // changed meanwhile: a newer read follows
        reading.delete(id);
        views.set(id, view);
        const row = region.querySelector(`tr[data-pipeline="${id}"]`);
        if (row) sight.unobserve(row);
        if (row) row.replaceWith(pipelineRow(view)); // the freshest read of the pipeline
      }, () => reading.delete(id));
    }

    async function load() {
      let list;
      try { list = await api.get(`/api/v1/pipelines?${search}`); } catch (error) { region.replaceChildren(errorBox(error)); return; }
      shown = list;
      sight.disconnect();
      region.replaceChildren(render(list));
      main.dataset.loaded = "true";
    }

    function pipelineRow(p) {
      const view = views.get(p.id);
      const ran = view ? esteira.ranFor(view.jobs, Date.now()) : p.duration_ms;
      const row = h("tr", { dataset: { pipeline: p.id, status: p.status } },
        h("td.c-status", { "data-label": "Status" }, h("a.badge-link", { href: `/pipelines/${p.id}` }, badge(p.status))),
        h("td.c-id", { "data-label": "Pipeline" }, h("a.strong", { href: `/pipelines/${p.id}` }, `#${p.id}`), h("span.muted.small.source", null, ` ${p.source}`)),
        fixedProject ? null : h("td.c-project", { "data-label": "Project" }, h("a", { href: `/projects/${encodeURIComponent(p.project)}` }, p.project)),
        h("td.c-ref", { "data-label": "Ref" }, h("span.ref", { title: p.ref_kind }, p.ref_kind === "tag" ? "tag " : "", p.git_ref)),
        h("td.commit-cell.c-commit", { "data-label": "Commit" },
          h("div.commit-title", { title: p.commit_title || "" }, p.commit_title || h("span.muted", null, "—")),
          h("div.commit-meta", null, h("code.sha", { title: p.sha }, shortSha(p.sha)), p.commit_author && ` · ${p.commit_author}`)),
        h("td.c-stages", { "data-label": "Stages" }, view ? esteira.miniGraph(view) : h("span.mini-graph-placeholder")),
        h("td.num.c-duration", { "data-label": "Duration" }, h("span", { dataset: { ran: p.id } }, duration(ran))),
        h("td.num.c-coverage", { "data-label": "Coverage" }, percent(p.coverage) || h("span.muted", null, "—")),
        h("td.c-created", { "data-label": "Created" }, when(p.created_at)),
        h("td.actions.c-actions", { "data-label": "Actions" }, view && esteira.retryFailedButton(view, "btn-small")));
      sight.observe(row);
      return row;
    }

    function render(list) {
      if (!list.length) {
        return h("div.empty-state", null, h("h2", null, before ? "No older pipelines" : "No pipelines yet"),
          h("p", null, status || ref ? "Nothing matches these filters." : "Run one with ", !(status || ref) && h("code", null, "esteira pipeline run PROJECT --ref main"),
            !(status || ref) && ", a trigger, or a push webhook."));
      }
      const columns = ["Status", "Pipeline", fixedProject ? null : "Project", "Ref", "Commit", "Stages", "Duration", "Coverage", "Created", "Actions"].filter(Boolean);
      const table = h("table.data-table.pipelines-table", null,
        h("caption.visually-hidden", null, "Pipelines, newest first"),
        h("thead", null, h("tr", null, columns.map((c) => h(["Duration", "Coverage"].includes(c) ? "th.num" : "th", { scope: "col" },
          c === "Actions" ? h("span.visually-hidden", null, c) : c)))),
        h("tbody", null, list.map(pipelineRow)));
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
    // Live: changes to a shown pipeline, or a new one on the first page, re-read the list
    // (and the changed pipeline's jobs).
    const refresh = debounce(500, load);
    const source = esteira.live("/api/v1/events", {
      pipeline: (data) => {
        const id = JSON.parse(data).id;
        if (shown.some((p) => p.id === id) || (!before && (!shown.length || id > shown[0].id))) {
          views.delete(id);
          reading.delete(id);
          refresh();
        }
      },
      lagged: () => { views.clear(); reading.clear(); refresh(); },
    });
    const ticker = setInterval(() => {
      for (const p of shown) {
        if (p.finished_at || !p.started_at) continue;
        const span = region.querySelector(`span[data-ran="${p.id}"]`);
        const view = views.get(p.id);
        if (span) span.textContent = duration(view ? esteira.ranFor(view.jobs, Date.now()) : p.duration_ms);
      }
    }, 1000);
    return () => { source.close(); sight.disconnect(); clearInterval(ticker); };
  }

  // ---- agents ---------------------------------------------------------------------
  function agents(main) {
    main.append(pageHeader("Agents", h("p.page-lead", null, "Build hosts that dial in to this coordinator and run jobs in Docker.")));
    const summary = h("div.summary-cards");
    const queueRegion = h("div.queue-region");
    const poolsRegion = h("div.pools-region");
    const region = h("div.list-region", null, h("p.loading", null, "Loading agents…"));
    main.append(summary, queueRegion, poolsRegion, region);
    const AGENT_LOOK = { online: "success", idle: "success", busy: "running", paused: "manual", draining: "pending", offline: "canceled" };

    async function load() {
      let list;
      let queue;
      let pools;
      try {
        [list, queue, pools] = await Promise.all([api.get("/api/v1/agents"), api.get("/api/v1/queue"), api.get("/api/v1/pools")]);
      } catch (error) { region.replaceChildren(errorBox(error)); return; }
      const count = (s) => list.filter((a) => a.status === s).length;
      const waiting = queue.reduce((n, g) => n + g.pending, 0);
      summary.replaceChildren(
        card("Agents", list.length), card("Busy", count("busy")), card("Idle", count("idle")),
        card("Paused", count("paused")), card("Offline", count("offline")),
        card("Running jobs", list.reduce((n, a) => n + (a.running_jobs || []).length, 0)),
        card("Queued jobs", waiting));
      queueRegion.replaceChildren(renderQueue(queue));
      poolsRegion.replaceChildren(...(pools.length ? [renderPools(pools)] : []));
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

    // Each runner pool's desired, current, idle and draining agents and why, as its
    // autoscaler (esteira autoscale) last reported them.
    function renderPools(pools) {
      const head = h("div.card-head", null, h("h2#pools-title", null, "Runner pools"),
        h("span.muted.small", null, "As their autoscalers report them"));
      const columns = ["Pool", "Labels", "Min / max", "Desired", "Current", "Idle", "Draining", "Pending", "Why", "Reported"];
      const numeric = ["Min / max", "Desired", "Current", "Idle", "Draining", "Pending"];
      const rows = pools.map((p) => h("tr", { dataset: { pool: p.name, desired: p.desired, current: p.current } },
        h("td", { "data-label": "Pool" }, h("strong", null, p.name), h("div.muted", null, p.autoscaler)),
        h("td", { "data-label": "Labels" }, (p.labels || []).length ? h("ul.chips", null, p.labels.map((l) => h("li.chip", null, l))) : h("span.muted", null, "any")),
        h("td.num", { "data-label": "Min / max" }, `${p.min} / ${p.max}`),
        h("td.num", { "data-label": "Desired" }, h("strong", null, String(p.desired))),
        h("td.num", { "data-label": "Current" }, String(p.current)),
        h("td.num", { "data-label": "Idle" }, String(p.idle)),
        h("td.num", { "data-label": "Draining" }, String(p.draining)),
        h("td.num", { "data-label": "Pending" }, String(p.pending)),
        h("td", { "data-label": "Why" }, h("span.small", null, p.reason)),
        h("td", { "data-label": "Reported" }, `${duration(p.age_ms)} ago`)));
      return h("section.card.queue-card", { "aria-labelledby": "pools-title" }, head,
        h("div.table-wrap", null, h("table.data-table.pools-table", null, h("caption.visually-hidden", null, "Runner pools"),
          h("thead", null, h("tr", null, columns.map((t) => h(numeric.includes(t) ? "th.num" : "th", { scope: "col" }, t)))),
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

  // ---- projects -------------------------------------------------------------------
  function projects(main) {
    main.append(pageHeader("Projects", h("button.btn.btn-primary.header-action", {
      type: "button", "data-action": "run-pipeline", onclick: () => esteira.runPipelineDialog(null),
    }, "Run pipeline")));
    const region = h("div.list-region", null, h("p.loading", null, "Loading projects…"));
    main.append(region);
    let closed = false;
    (async () => {
      let list;
      try { list = await api.get("/api/v1/projects"); } catch (error) { region.replaceChildren(errorBox(error)); return; }
      if (closed) return;
      if (!list.length) {
        region.replaceChildren(h("div.empty-state", null, h("h2", null, "No projects yet"),
          h("p", null, "Add one with ", h("code", null, "esteira project add NAME --repo URL"), ".")));
        main.dataset.loaded = "true";
        return;
      }
      const rows = list.map((p) => {
        const cell = h("td", { "data-label": "Latest pipeline" }, h("span.muted", null, "—"));
        api.get(`/api/v1/pipelines?project=${encodeURIComponent(p.name)}&limit=1`).then(([last]) => {
          if (last) cell.replaceChildren(h("a.badge-link", { href: `/pipelines/${last.id}` }, badge(last.status)), " ",
            h("a", { href: `/pipelines/${last.id}` }, `#${last.id}`), h("span.muted", null, " on "), h("span.ref", null, last.git_ref));
        }).catch(() => {});
        return h("tr", { dataset: { project: p.name } },
          h("td", { "data-label": "Project" }, h("a.strong", { href: `/projects/${encodeURIComponent(p.name)}` }, p.name)),
          h("td", { "data-label": "Repository" }, h("code.repo-url", { title: p.repo_url }, p.repo_url)),
          h("td", { "data-label": "Default branch" }, h("span.ref", null, p.default_branch)),
          h("td", { "data-label": "Forge" }, p.forge),
          cell);
      });
      region.replaceChildren(h("div.table-wrap", null, h("table.data-table.projects-table", null,
        h("caption.visually-hidden", null, "Projects"),
        h("thead", null, h("tr", null, ["Project", "Repository", "Default branch", "Forge", "Latest pipeline"].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", null, rows))));
      main.dataset.loaded = "true";
    })();
    return () => { closed = true; };
  }

  const PROJECT_TABS = [["pipelines", "Pipelines"], ["settings", "Settings"], ["variables", "Variables"], ["badges", "Badges"]];

  // A project: its pipelines, settings, variables (names and flags; values never leave
  // the coordinator) and the badges' markdown, one tab each (`?tab=`).
  function project(main, params, query) {
    const name = params[0];
    const tab = PROJECT_TABS.some(([key]) => key === query.get("tab")) ? query.get("tab") : "pipelines";
    const path = `/projects/${encodeURIComponent(name)}`;
    const badgeUrl = (kind) => `/badges/${encodeURIComponent(name)}/${kind}.svg`;
    main.append(pageHeader(name, h("span.project-badges", null,
      h("img.project-badge", { src: badgeUrl("pipeline"), alt: "pipeline status badge", height: 20 }),
      h("img.project-badge", { src: badgeUrl("coverage"), alt: "coverage badge", height: 20 })),
    h("button.btn.btn-primary.header-action", { type: "button", "data-action": "run-pipeline", onclick: () => esteira.runPipelineDialog(name) }, "Run pipeline")),
    h("nav.tabs", { "aria-label": "Project" }, PROJECT_TABS.map(([key, label]) => h("a", {
      href: key === "pipelines" ? path : `${path}?tab=${key}`, "aria-current": key === tab ? "page" : null, dataset: { tab: key },
    }, label))));
    if (tab === "pipelines") return pipelines(main, query, name);
    const region = h("div.list-region", { dataset: { tab } }, h("p.loading", null, "Loading…"));
    main.append(region);
    const show = (...nodes) => { region.replaceChildren(...nodes); main.dataset.loaded = "true"; };
    const base = `/api/v1/projects/${encodeURIComponent(name)}`;
    if (tab === "variables") {
      const load = () => api.peek(`${base}/variables`).then((list) => show(variablesCard(list)), (error) => show(error.status === 401
        ? h("div.empty-state", null, h("h2", null, "The variables need the admin token"),
          h("p", null, h("button.btn.btn-primary", { type: "button", "data-action": "sign-in", onclick: async () => { if (await esteira.askToken()) load(); } }, "Sign in")))
        : errorBox(error)));
      load();
    } else {
      api.get(base).then((p) => show(tab === "settings" ? settingsCard(p) : badgesCard(p)), (error) => show(errorBox(error)));
    }
    return null;
  }

  function settingsCard(p) {
    const secret = (value) => value ? "set" : h("span.muted", null, "not set");
    const row = (label, value) => [h("dt", null, label), h("dd", null, value === null || value === undefined || value === "" ? h("span.muted", null, "—") : value)];
    return h("section.card.settings-card", null, h("div.card-head", null, h("h2", null, "Settings"),
      h("span.muted.small", null, "Change them with ", h("code", null, `esteira project edit ${p.name}`))),
    h("dl.meta.settings", null,
      row("Repository", h("code", null, p.repo_url)),
      row("Pipeline file", h("code", null, p.pipeline_file)),
      row("Default branch", h("span.ref", null, p.default_branch)),
      row("Protected branches", (p.protected_branches || []).length ? h("ul.chips", null, p.protected_branches.map((b) => h("li.chip", null, b))) : null),
      row("Forge", p.forge),
      row("Forge project", p.forge_project),
      row("Forge API", p.forge_api_url),
      row("Polling", p.poll_interval_secs ? `every ${p.poll_interval_secs} s` : "off"),
      row("Webhook URL", h("code", null, `${location.origin}${p.webhook_path}`)),
      row("Webhook secret", secret(p.webhook_secret)),
      row("Forge token", secret(p.forge_token)),
      row("Repository token", secret(p.repo_token)),
      row("SSH key", secret(p.ssh_key)),
      row("Created", when(p.created_at))));
  }

  function variablesCard(list) {
    const flag = (on) => on ? h("span.chip", null, "yes") : h("span.muted", null, "no");
    return h("section.card", null, h("div.card-head", null, h("h2", null, "Variables"),
      h("span.muted.small", null, "Values are never shown; set one with ", h("code", null, "esteira variable set PROJECT KEY"))),
    list.length ? h("div.table-wrap", null, h("table.data-table.variables-table", null, h("caption.visually-hidden", null, "Project variables"),
      h("thead", null, h("tr", null, ["Key", "Masked", "Protected", "File", "Updated"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", null, list.map((v) => h("tr", { dataset: { variable: v.key } },
        h("td", { "data-label": "Key" }, h("code", null, v.key)), h("td", { "data-label": "Masked" }, flag(v.masked)),
        h("td", { "data-label": "Protected" }, flag(v.protected)), h("td", { "data-label": "File" }, flag(v.file)),
        h("td", { "data-label": "Updated" }, when(v.updated_at)))))))
      : h("p.queue-empty", null, "This project has no variables."));
  }

  function badgesCard(p) {
    const ref = encodeURIComponent(p.default_branch);
    const markdown = ["pipeline", "coverage"].map((kind) => `![${kind}](${location.origin}/badges/${encodeURIComponent(p.name)}/${kind}.svg?ref=${ref})`).join("\n");
    const text = h("textarea.badge-markdown", { readonly: true, rows: 2, "aria-label": "Badges markdown", spellcheck: "false" });
    text.value = markdown;
    return h("section.card", null, h("div.card-head", null, h("h2", null, "Badges"),
      h("button.btn.btn-small", { type: "button", onclick: () => navigator.clipboard.writeText(markdown).then(() => toast("Copied.", "success"), () => { text.select(); }) }, "Copy")),
    h("div.badges-body", null, h("p.muted", null, `For a README: the status and coverage of ${p.default_branch}.`), text,
      h("p.project-badges", null, ["pipeline", "coverage"].map((kind) => h("img", { src: `/badges/${encodeURIComponent(p.name)}/${kind}.svg?ref=${ref}`, alt: `${kind} badge`, height: 20 })))));
  }

  esteira.pages.pipelines = (main, params, query) => pipelines(main, query, null);
  esteira.pages.projects = projects;
  esteira.pages.project = project;
  esteira.pages.agents = agents;
  esteira.pages.environments = environments;
  esteira.debounce = debounce;
  esteira.errorBox = errorBox;
  esteira.pageHeader = pageHeader;
  void ago;
})();
