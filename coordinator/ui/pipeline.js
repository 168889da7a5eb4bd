// pipeline.js — the pipeline page: header (status, ref, commit, timing, cancel, retry
// failed jobs), the stage graph (stages as columns, each job a node with its status icon
// and word, `needs` edges drawn as curves), and the table of every job attempt. It stays
// live on /api/v1/pipelines/{id}/events. Also what other pages show or do with a
// pipeline: the job actions (retry/cancel/play), the stage mini-graph of the lists,
// "Retry failed jobs" and the "Run pipeline" dialog.
"use strict";

(() => {
  const { api, h, badge, icon, jobLook, duration, elapsed, ranFor, when, act, toast, shortSha, percent, LABELS } = esteira;

  const ACTION_ICONS = {
    retry: '<path d="M12.5 8a4.5 4.5 0 1 1-1.3-3.2" fill="none" stroke="currentColor" stroke-width="1.6" stroke-linecap="round"/><path d="M12.8 2.6v3h-3" fill="none" stroke="currentColor" stroke-width="1.6" stroke-linecap="round" stroke-linejoin="round"/>',
    cancel: '<path d="M5 5l6 6M11 5l-6 6" stroke="currentColor" stroke-width="1.6" stroke-linecap="round"/>',
    play: '<path d="M5.5 3.8v8.4L12 8z" fill="currentColor"/>',
  };
  const ACTION_WORDS = { retry: "Retry", cancel: "Cancel", play: "Run" };

  // Which action a job offers in its state.
  function jobAction(job) {
    if (job.retried) return null;
    if (job.status === "manual") return "play";
    if (["created", "pending", "running"].includes(job.status)) return "cancel";
    if (["success", "failed", "canceled", "lost"].includes(job.status)) return "retry";
    return null;
  }

  // Runs a job action; resolves to the answer (retry: the new attempt's id) or null.
  async function runJobAction(action, job) {
    const done = await act(`${ACTION_WORDS[action]} ${job.name}`, () => api.post(`/api/v1/jobs/${job.id}/${action}`));
    if (done !== null) {
      const words = { retry: `Retrying ${job.name} as job #${done.id}.`, cancel: `Canceling ${job.name}.`, play: `Started ${job.name}.` };
      toast(words[action], "success");
    }
    return done;
  }

  function actionButton(action, job, extraClass) {
    const button = h(`button.job-action${extraClass ? "." + extraClass : ""}`, {
      type: "button", "data-action": action, "aria-label": `${ACTION_WORDS[action]} ${job.name}`, title: `${ACTION_WORDS[action]} ${job.name}`,
      dataset: { focusKey: `${job.name}:${action}` },
    });
    button.innerHTML = `<svg viewBox="0 0 16 16" width="14" height="14" aria-hidden="true">${ACTION_ICONS[action]}</svg>`;
    button.addEventListener("click", async (event) => {
      event.preventDefault();
      button.disabled = true;
      await runJobAction(action, job);
      button.disabled = false;
    });
    return button;
  }

  function latest(jobs) { return jobs.filter((j) => !j.retried); }

  // ---- retry failed jobs ----------------------------------------------------------
  // The latest attempts a pipeline's "Retry failed jobs" runs again.
  function failedJobs(view) {
    return latest(view.jobs).filter((j) => j.status === "failed" || j.status === "lost");
  }

  // Retries the pipeline's failed latest attempts (POST /api/v1/pipelines/{id}/retry, the
  // path `esteira pipeline retry` takes too); resolves to how many were retried.
  async function retryFailed(view) {
    const done = await act("Retry failed jobs", () => api.post(`/api/v1/pipelines/${view.id}/retry`));
    const retried = done ? done.retried.length : 0;
    if (retried) toast(`Retrying ${retried} failed job${retried === 1 ? "" : "s"} of pipeline #${view.id}.`, "success");
    return retried;
  }

  function retryFailedButton(view, extraClass) {
    const count = failedJobs(view).length;
    if (!count) return null;
    return h(`button.btn${extraClass ? "." + extraClass : ""}`, {
      type: "button", "data-action": "retry-failed", title: `Retry the ${count} failed job${count === 1 ? "" : "s"} of pipeline #${view.id}`,
      onclick: async (event) => { event.currentTarget.disabled = true; await retryFailed(view); },
    }, "Retry failed jobs");
  }

  // ---- the mini-graph of the lists ------------------------------------------------
  // A stage's status from its latest jobs, the way GitLab sums them up.
  function stageStatus(jobs) {
    const looks = new Set(jobs.map(jobLook));
    const order = ["running", "pending", "failed", "lost", "created", "manual", "canceled", "warning", "success"];
    const found = order.find((look) => looks.has(look));
    return found === "lost" ? "failed" : found || "skipped";
  }

  // One icon per stage, linked to the pipeline; its title lists the stage's jobs.
  function miniGraph(view) {
    const jobs = latest(view.jobs);
    return h("ol.mini-graph", { "aria-label": "Stages" }, view.stages.map((stage, index) => {
      const inStage = jobs.filter((j) => j.stage_index === index);
      const status = stageStatus(inStage);
      const list = inStage.map((j) => `${j.name}: ${LABELS[jobLook(j)] || j.status}`).join("\n");
      return h("li", null, h(`a.mini-stage.s-${status}`, {
        href: `/pipelines/${view.id}`, dataset: { stage, status },
        title: `${stage}: ${LABELS[status]}${list ? "\n" + list : ""}`, "aria-label": `Stage ${stage}: ${LABELS[status]}`,
      }, icon(status)));
    }));
  }

  // ---- the graph ------------------------------------------------------------------
  function jobNode(job) {
    const look = jobLook(job);
    const action = jobAction(job);
    const needs = job.needs && job.needs.length ? job.needs : null;
    return h(`div.job-node.s-${look}`, {
      dataset: { job: job.name, jobId: job.id, status: job.status, attempt: job.attempt },
      title: needs ? `needs: ${needs.join(", ")}` : undefined,
    },
    h("a.job-link", { href: `/jobs/${job.id}`, dataset: { focusKey: `${job.name}:link` } },
      icon(look),
      h("span.job-name", null, job.name),
      h("span.visually-hidden", null, `: ${LABELS[look] || look}${needs ? `, needs ${needs.join(", ")}` : ""}`)),
    h("span.job-meta", { "aria-hidden": "true" },
      job.status === "running" || job.finished_at ? h("span", { dataset: { started: job.started_at || "", finished: job.finished_at || "" } }, duration(elapsed(job)))
        : (job.attempt > 1 ? `#${job.attempt}` : "")),
    action && actionButton(action, job));
  }

  function drawEdges(graph, svg, jobs) {
    const box = graph.getBoundingClientRect();
    svg.setAttribute("width", graph.scrollWidth);
    svg.setAttribute("height", graph.scrollHeight);
    const paths = [];
    const nodes = new Map();
    for (const node of graph.querySelectorAll(".job-node")) nodes.set(node.dataset.job, node);
    for (const job of jobs) {
      if (!job.needs || !job.needs.length) continue;
      const to = nodes.get(job.name);
      if (!to) continue;
      for (const need of job.needs) {
        const from = nodes.get(need);
        if (!from) continue;
        const a = from.getBoundingClientRect();
        const b = to.getBoundingClientRect();
        const x1 = a.right - box.left + graph.scrollLeft, y1 = a.top + a.height / 2 - box.top;
        const x2 = b.left - box.left + graph.scrollLeft, y2 = b.top + b.height / 2 - box.top;
        const bend = Math.max(24, Math.abs(x2 - x1) / 2);
        const d = x2 > x1
          ? `M${x1},${y1} C${x1 + bend},${y1} ${x2 - bend},${y2} ${x2},${y2}`
          : `M${x1},${y1} C${x1 + 40},${y1} ${x2 - 40},${y2} ${x2},${y2}`;
        paths.push(`<path d="${d}" data-from="${encodeURIComponent(need)}" data-to="${encodeURIComponent(job.name)}"/>`);
      }
    }
    svg.innerHTML = `<defs><marker id="arrow" viewBox="0 0 8 8" refX="7" refY="4" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="#8d8c95"/></marker></defs>${paths.join("")}`;
    graph.classList.toggle("has-needs", paths.length > 0);
  }

  function renderGraph(view) {
    const jobs = latest(view.jobs);
    const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.setAttribute("class", "needs-edges");
    svg.setAttribute("aria-hidden", "true");
    const columns = view.stages.map((stage, index) => {
      const inStage = jobs.filter((j) => j.stage_index === index || (j.stage_index === undefined && j.stage === stage));
      return h("section.stage", { "aria-label": `Stage ${stage}`, dataset: { stage } },
        h("h2.stage-name", null, stage),
        h("ul.stage-jobs", null, inStage.map((job) => h("li", null, jobNode(job)))));
    });
    const graph = h("div.graph", { role: "group", "aria-label": "Stages and jobs" }, svg, ...columns);
    return { graph, draw: () => drawEdges(graph, svg, jobs) };
  }

  // ---- the table of attempts ------------------------------------------------------
  function renderTable(view, agents) {
    const rows = view.jobs.slice().sort((a, b) => a.stage_index - b.stage_index || a.name.localeCompare(b.name) || a.attempt - b.attempt)
      .map((job) => h(`tr${job.retried ? ".retried" : ""}`, { dataset: { jobRow: job.id } },
        h("td", { "data-label": "Status" }, badge(jobLook(job))),
        h("td", { "data-label": "Job" }, h("a", { href: `/jobs/${job.id}` }, job.name), " ", h("span.muted", null, `#${job.id}`),
          job.retried ? h("span.chip.chip-muted", null, "retried") : null, job.allow_failure && job.status !== "manual" ? h("span.chip.chip-muted", null, "allowed to fail") : null),
        h("td", { "data-label": "Stage" }, job.stage),
        h("td.num", { "data-label": "Attempt" }, String(job.attempt)),
        h("td", { "data-label": "Agent" }, job.agent_id ? (agents.get(job.agent_id) || `#${job.agent_id}`) : h("span.muted", null, "—")),
        h("td.num", { "data-label": "Duration" }, h("span", { dataset: { started: job.started_at || "", finished: job.finished_at || "" } }, duration(elapsed(job)))),
        h("td", { "data-label": "Reason" }, job.failure_message ? h("span.reason", { title: job.failure_message }, job.failure_message) : h("span.muted", null, "—"))));
    return h("div.table-wrap", null, h("table.data-table.jobs-table", null, h("caption.visually-hidden", null, "Every job attempt"),
      h("thead", null, h("tr", null, ["Status", "Job", "Stage", "Attempt", "Agent", "Duration", "Reason"]
        .map((t) => h(["Attempt", "Duration"].includes(t) ? "th.num" : "th", { scope: "col" }, t)))),
      h("tbody", null, rows)));
  }

  // ---- the page -------------------------------------------------------------------
  esteira.pages.pipeline = (main, params) => {
    const id = Number(params[0]);
    document.title = `Pipeline #${id} · esteira`;
    const header = h("div.pipeline-header", null, h("h1", null, `Pipeline #${id}`));
    const liveState = h("span.live-state", { "aria-live": "polite" }, "Connecting…");
    const graphRegion = h("div.graph-region", null, h("p.loading", null, "Loading the pipeline…"));
    const tableRegion = h("div");
    main.append(header, h("section.card", { "aria-labelledby": "graph-title" },
      h("div.card-head", null, h("h2#graph-title", null, "Stages"), liveState), graphRegion),
    h("section.card", { "aria-labelledby": "jobs-title" }, h("div.card-head", null, h("h2#jobs-title", null, "Jobs")), tableRegion));

    const agents = new Map();
    api.get("/api/v1/agents").then((list) => { for (const a of list || []) agents.set(a.id, a.name); }).catch(() => {});

    let draw = null;
    let lastJson = "";
    let shown = null;
    function update(view) {
      const json = JSON.stringify(view);
      if (json === lastJson) return;
      lastJson = json;
      shown = view;
      const focusKey = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.focusKey : null;
      renderHeader(view);
      const { graph, draw: redraw } = renderGraph(view);
      graphRegion.replaceChildren(graph);
      draw = redraw;
      requestAnimationFrame(redraw);
      tableRegion.replaceChildren(renderTable(view, agents));
      if (focusKey) {
        const again = main.querySelector(`[data-focus-key="${CSS.escape(focusKey)}"]`);
        if (again) again.focus();
      }
      main.dataset.loaded = "true";
      main.dataset.pipelineStatus = view.status;
    }

    function renderHeader(p) {
      document.title = `Pipeline #${p.id} · ${p.project} · esteira`;
      const finished = ["success", "failed", "canceled", "skipped"].includes(p.status);
      header.replaceChildren(
        h("nav.breadcrumbs", { "aria-label": "Breadcrumb" }, h("a", { href: "/pipelines" }, "Pipelines"), " / ",
          h("a", { href: `/projects/${encodeURIComponent(p.project)}` }, p.project), " / ", h("span", { "aria-current": "page" }, `#${p.id}`)),
        h("div.title-row", null, badge(p.status, "badge-large"), h("h1", null, `Pipeline #${p.id}`),
          h("div.title-actions", null, retryFailedButton(p), !finished && h("button.btn.btn-danger", {
            type: "button", "data-action": "cancel-pipeline",
            onclick: async () => { if (await act("Cancel pipeline", () => api.post(`/api/v1/pipelines/${p.id}/cancel`)) !== null) toast("Canceling the pipeline.", "success"); },
          }, "Cancel pipeline"))),
        p.commit_title && h("p.commit-line", null, h("span.commit-title", null, p.commit_title),
          p.commit_author && h("span.muted", null, ` by ${p.commit_author}`)),
        h("dl.facts", null,
          h("div", null, h("dt", null, "Project"), h("dd", null, h("a", { href: `/projects/${encodeURIComponent(p.project)}` }, p.project))),
          h("div", null, h("dt", null, p.ref_kind === "tag" ? "Tag" : "Branch"), h("dd", null, h("span.ref", null, p.git_ref))),
          h("div", null, h("dt", null, "Commit"), h("dd", null, h("code.sha", { title: p.sha }, shortSha(p.sha)))),
          h("div", null, h("dt", null, "Source"), h("dd", null, p.source)),
          h("div", null, h("dt", null, "Created"), h("dd", null, when(p.created_at))),
          percent(p.coverage) && h("div", null, h("dt", null, "Coverage"), h("dd", { dataset: { coverage: p.coverage } }, percent(p.coverage))),
          h("div", null, h("dt", null, "Duration"), h("dd", null, h("span", { dataset: { pipelineDuration: "" }, title: "The time its jobs ran" }, duration(ranFor(p.jobs, Date.now())))))));
    }

    let closed = false;
    api.get(`/api/v1/pipelines/${id}`).then((view) => { if (!lastJson) update(view); }).catch((error) => {
      if (closed) return;
      graphRegion.replaceChildren(error.status === 404
        ? h("div.empty-state", null, h("h2", null, `Pipeline #${id} does not exist`), h("p", null, h("a", { href: "/pipelines" }, "Back to the pipelines")))
        : esteira.errorBox(error));
    });
    const source = esteira.live(`/api/v1/pipelines/${id}/events`, { pipeline: (data) => update(JSON.parse(data)) },
      (state) => {
        liveState.textContent = state === "live" ? "Live" : state === "reconnecting" ? "Reconnecting…" : "Disconnected";
        liveState.dataset.state = state;
      });
    const ticker = setInterval(() => {
      for (const span of main.querySelectorAll("span[data-started]")) {
        if (span.dataset.started && !span.dataset.finished) span.textContent = duration(Date.now() - Number(span.dataset.started));
      }
      const total = main.querySelector("span[data-pipeline-duration]");
      if (total && shown) total.textContent = duration(ranFor(shown.jobs, Date.now()));
    }, 1000);
    const onResize = () => draw && draw();
    window.addEventListener("resize", onResize);
    return () => { closed = true; source.close(); clearInterval(ticker); window.removeEventListener("resize", onResize); };
  };

  // ---- the "Run pipeline" dialog -------------------------------------------------
  // A ref and variables for POST /api/v1/projects/{name}/pipelines; opens the new
  // pipeline. `project`: the project, or null to pick one.
  async function runPipelineDialog(project) {
    let projects = [];
    try { projects = await api.get(project ? `/api/v1/projects/${encodeURIComponent(project)}` : "/api/v1/projects"); } catch (error) { toast(`Run pipeline: ${error.message}`, "error"); return; }
    projects = project ? [projects] : projects;
    if (!projects.length) { toast("Add a project first: esteira project add NAME --repo URL", "error"); return; }
    const branchOf = (name) => (projects.find((p) => p.name === name) || projects[0]).default_branch || "main";
    const select = h("select#run-project", { name: "project", disabled: project ? true : null },
      projects.map((p) => h("option", { value: p.name, selected: p.name === project }, p.name)));
    const ref = h("input#run-ref", { name: "ref", value: branchOf(select.value), required: true, spellcheck: "false" });
    select.addEventListener("change", () => { ref.value = branchOf(select.value); });
    const rows = h("div.run-variables");
    const addRow = () => rows.append(h("div.run-variable", null,
      h("input.run-key", { "aria-label": "Variable key", placeholder: "KEY", spellcheck: "false" }),
      h("input.run-value", { "aria-label": "Variable value", placeholder: "value", spellcheck: "false" }),
      h("button.btn.btn-small", { type: "button", "aria-label": "Remove this variable", onclick: (event) => event.currentTarget.parentElement.remove() }, "×")));
    addRow();
    const problem = h("p.run-error", { role: "alert" });
    const submit = h("button#run-submit.btn.btn-primary", { type: "submit" }, "Run pipeline");
    const form = h("form", null, h("h2#run-title", null, "Run pipeline"),
      h("label", { for: "run-project" }, "Project"), select,
      h("label", { for: "run-ref" }, "Branch or tag"), ref,
      h("fieldset", null, h("legend", null, "Variables"), rows,
        h("button.btn.btn-small", { type: "button", "data-action": "add-variable", onclick: addRow }, "Add variable")),
      problem,
      h("div.dialog-actions", null, h("button.btn", { type: "button", onclick: () => dialog.close() }, "Cancel"), submit));
    const dialog = h("dialog.run-dialog", { "aria-labelledby": "run-title" }, form);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const variables = [...rows.querySelectorAll(".run-variable")]
        .map((row) => [row.querySelector(".run-key").value.trim(), row.querySelector(".run-value").value])
        .filter(([key]) => key);
      submit.disabled = true;
      problem.textContent = "";
      try {
        const created = await api.post(`/api/v1/projects/${encodeURIComponent(select.value)}/pipelines`, { ref: ref.value.trim(), variables });
        dialog.close();
        toast(`Pipeline #${created.id} started on ${ref.value.trim()}.`, "success");
        esteira.navigate(`/pipelines/${created.id}`);
      } catch (error) {
        problem.textContent = error.message;
        submit.disabled = false;
      }
    });
    dialog.addEventListener("close", () => dialog.remove());
    document.body.append(dialog);
    dialog.showModal();
    ref.focus();
  }

  esteira.jobAction = jobAction;
  esteira.miniGraph = miniGraph;
  esteira.retryFailedButton = retryFailedButton;
  esteira.runPipelineDialog = runPipelineDialog;
  esteira.runJobAction = runJobAction;
  esteira.ACTION_WORDS = ACTION_WORDS;
})();
