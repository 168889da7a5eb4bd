// job.js — the job page: the header with the job's actions, the live log (a Terminal.View
// fed by /api/v1/jobs/{id}/log/events, which resumes from the last offset after a
// dropped connection), what a job that has not started waits for (the API's `waiting`,
// read again while it waits), and the sidebar of facts: timing, agent, image, failure
// reason, attempts, artifacts and test summary. The job's status follows its pipeline's
// stream.
"use strict";

(() => {
  const { api, h, badge, jobLook, duration, elapsed, when, shortSha, size } = esteira;

  function decodeBase64(text) {
    if (typeof Uint8Array.fromBase64 === "function") return Uint8Array.fromBase64(text);
    const binary = atob(text);
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes;
  }

  function fact(label, value) {
    return value === null || value === undefined || value === "" ? null : h("div", null, h("dt", null, label), h("dd", null, value));
  }

  // What the failure banner says: the reason, with the exit code unless it already
  // names it ("exit code 3" stays "exit code 3").
  function failureText(job) {
    const code = job.exit_code === null || job.exit_code === undefined ? null : job.exit_code;
    const message = ["failed", "lost", "canceled"].includes(job.status) ? job.failure_message : null;
    if (!message) return job.status === "failed" && code !== null ? `the script exited with code ${code}.` : null;
    return code === null || message.includes(`exit code ${code}`) ? message : `${message} (exit code ${code})`;
  }

  // What a job that has not started waits for, from the API's `waiting` object: text and
  // links to the jobs it names.
  function waitingText(waiting) {
    const jobs = (list) => list.map((j, i) => [i ? ", " : "", h("a", { href: `/jobs/${j.id}` }, j.name), ` (${j.status})`]);
    const names = (list) => list.map((a) => a.name).join(", ");
    const tagged = waiting.tags && waiting.tags.length ? ["agent with the tags ", h("code", null, waiting.tags.join(", "))] : ["agent"];
    switch (waiting.reason) {
      case "stage": return ["Waiting for the earlier stages' jobs: ", jobs(waiting.jobs), "."];
      case "needs": return ["Waiting for the jobs it needs: ", jobs(waiting.jobs), "."];
      case "manual": return ["This is a manual job: it runs when someone starts it."];
      case "resource_group": return waiting.holder
        ? ["Waiting for the resource group ", h("code", null, waiting.group), ", held by ", jobs([waiting.holder.job]), ` of pipeline #${waiting.holder.pipeline}.`]
        : ["Waiting for the next turn of the resource group ", h("code", null, waiting.group), "."];
      case "no_online_agent": return ["No online ", ...tagged, waiting.offline.length
        ? `. Offline agents that would take it: ${names(waiting.offline)}.`
        : ", and no registered agent would take it."];
      case "agents_paused": return ["Every online ", ...tagged, ` is paused: ${names(waiting.paused)}.`];
      case "agents_busy": return ["Every ", ...tagged, ` is busy (${names(waiting.agents)}): this job is ${waiting.position} of ${waiting.queued} in their queue.`];
      default: return [`Waiting: ${waiting.reason}.`];
    }
  }

  esteira.pages.job = (main, params) => {
    const id = Number(params[0]);
    document.title = `Job #${id} · esteira`;
    const header = h("div.job-header", null, h("h1", null, `Job #${id}`));
    const banner = h("div.banners");
    const logRoot = h("section.log-panel", { "aria-label": "Log" });
    const aside = h("aside.job-aside", { "aria-label": "Job details" }, h("p.loading", null, "Loading…"));
    main.append(header, banner, h("div.job-layout", null, logRoot, aside));

    let job = null;
    let spec = {};
    let details = null;
    let pipelineView = null;
    let agents = new Map();
    let sources = [];
    let view = null;
    let closed = false;
    // The archive's file list: null until read, an Error if it could not be.
    let listing = null;
    let listingAsked = false;

    api.get("/api/v1/agents").then((list) => { agents = new Map((list || []).map((a) => [a.id, a])); render(); }).catch(() => {});

    api.get(`/api/v1/jobs/${id}`).then((found) => {
      if (closed) return;
      job = found;
      spec = found.spec || {};
      details = found.details || null;
      render();
      startLog();
      sources.push(esteira.live(`/api/v1/pipelines/${job.pipeline_id}/events`, {
        pipeline: (data) => {
          pipelineView = JSON.parse(data);
          const fresh = pipelineView.jobs.find((j) => j.id === id);
          if (fresh) {
            const finishedNow = fresh.finished_at && !job.finished_at;
            job = { ...job, ...fresh };
            if (finishedNow) api.get(`/api/v1/jobs/${id}`).then((again) => { details = again.details || null; job = { ...job, ...again }; render(); }).catch(() => {});
          }
          if (waits()) rereadWaiting();
          render();
        },
      }));
    }).catch((error) => {
      if (closed) return;
      aside.replaceChildren();
      logRoot.replaceChildren(error.status === 404
        ? h("div.empty-state", null, h("h2", null, `Job #${id} does not exist`), h("p", null, h("a", { href: "/pipelines" }, "Back to the pipelines")))
        : esteira.errorBox(error));
    });

    const waits = () => job && ["created", "pending", "manual"].includes(job.status);

    // Agents coming and going change what a job waits for without a pipeline event, so
    // the reason is also read again every few seconds while the job waits.
    const rereadWaiting = esteira.debounce(500, () => {
      api.get(`/api/v1/jobs/${id}`).then((again) => { if (!closed) { job = { ...job, waiting: again.waiting }; render(); } }).catch(() => {});
    });
    const waitingTimer = setInterval(() => { if (waits()) rereadWaiting(); }, 5000);

    function startLog() {
      const finished = ["success", "failed", "canceled", "skipped", "lost"].includes(job.status);
      const raw = h("a.btn.btn-small", { href: `/api/v1/jobs/${id}/log`, download: `job-${id}.log`, title: "Download the raw log" }, "Raw log");
      const stamps = (from) => api.get(`/api/v1/jobs/${id}/log/stamps?from=${from}`);
      view = new Terminal.View(logRoot, { follow: !finished, extra: raw, stamps });
      if (job.status === "created" || job.status === "pending" || job.status === "manual") view.status.textContent = "Waiting for the job to start…";
      const started = performance.now();
      const source = esteira.live(`/api/v1/jobs/${id}/log/events?offset=0`, {
        log: (data) => {
          view.write(decodeBase64(data));
          view.checkPendingAnchor();
          if (view.status.textContent.startsWith("Waiting")) view.status.textContent = "";
        },
        end: (data) => {
          const info = JSON.parse(data);
          source.close();
          view.finish(view.model.count ? "" : "This job printed nothing.");
          main.dataset.logLoadedMs = String(Math.round(performance.now() - started));
          logRoot.dataset.endStatus = info.status;
        },
      }, (state) => {
        if (state === "reconnecting" && !view.done) view.status.textContent = "Connection lost; resuming where the log left off…";
        else if (state === "live" && view.status.textContent.startsWith("Connection lost")) view.status.textContent = "";
      });
      sources.push(source);
    }

    function render() {
      if (!job) return;
      const look = jobLook(job);
      document.title = `${job.name} (#${job.id}) · esteira`;
      const action = esteira.jobAction(job);
      header.replaceChildren(
        h("nav.breadcrumbs", { "aria-label": "Breadcrumb" }, h("a", { href: "/pipelines" }, "Pipelines"), " / ",
          pipelineView && h("a", { href: `/projects/${encodeURIComponent(pipelineView.project)}` }, pipelineView.project), pipelineView && " / ",
          h("a", { href: `/pipelines/${job.pipeline_id}` }, `Pipeline #${job.pipeline_id}`), " / ", h("span", { "aria-current": "page" }, job.name)),
        h("div.title-row", { dataset: { jobStatus: job.status } }, badge(look, "badge-large"), h("h1", null, job.name, " ", h("span.muted", null, `#${job.id}`)),
          h("div.title-actions", null, action && h(`button.btn${action === "cancel" ? ".btn-danger" : ".btn-primary"}`, {
            type: "button", "data-action": action,
            onclick: async (event) => {
              event.currentTarget.disabled = true;
              const done = await esteira.runJobAction(action, job);
              if (done && action === "retry") esteira.navigate(`/jobs/${done.id}`);
              else render();
            },
          }, esteira.ACTION_WORDS[action] === "Run" ? "Run job" : `${esteira.ACTION_WORDS[action]} job`))));

      const attempts = pipelineView ? pipelineView.jobs.filter((j) => j.name === job.name) : [];
      const newer = attempts.find((j) => j.attempt > job.attempt && !j.retried);
      const bannerItems = [];
      if (newer) bannerItems.push(h("div.alert.alert-info", null, "This job was retried. ", h("a", { href: `/jobs/${newer.id}` }, `See attempt ${newer.attempt} (#${newer.id})`), "."));
      const failure = failureText(job);
      if (failure) {
        bannerItems.push(h("div.alert.alert-error", { role: "alert", dataset: { banner: "failure" } },
          h("strong", null, job.status === "canceled" ? "Canceled: " : "Failure: "), failure));
      }
      if (job.waiting && waits()) {
        bannerItems.push(h("div.alert.alert-info", { dataset: { banner: "waiting", reason: job.waiting.reason } }, waitingText(job.waiting)));
      }
      if (job.log_truncated) bannerItems.push(h("div.alert.alert-warning", null, "The log exceeded the coordinator's size limit and was truncated."));
      banner.replaceChildren(...bannerItems);

      const agent = job.agent_id ? agents.get(job.agent_id) : null;
      const wait = job.queued_at && job.started_at ? job.started_at - job.queued_at : null;
      const image = spec.image && spec.image.name;
      const env = spec.environment && spec.environment.name;
      aside.replaceChildren(...[
        h("section.side-card", null, h("h2", null, "Details"), h("dl.facts-list", null,
          fact("Status", badge(look)),
          fact("Stage", job.stage),
          fact("Attempt", attempts.length > 1
            ? h("span", null, String(job.attempt), " of ", String(attempts.length), ": ",
              attempts.map((a, i) => [i ? ", " : "", a.id === job.id ? h("strong", null, `#${a.id}`) : h("a", { href: `/jobs/${a.id}` }, `#${a.id}`)]))
            : String(job.attempt)),
          fact("Agent", agent ? h("span", null, agent.name, " ", h("span.muted", null, `#${agent.id}`)) : (job.agent_id ? `#${job.agent_id}` : null)),
          fact("Image", image ? h("code", null, image) : null),
          fact("Tags", spec.tags && spec.tags.length ? h("ul.chips", null, spec.tags.map((t) => h("li.chip", null, t))) : null),
          fact("Environment", env),
          fact("Needs", spec.needs ? (spec.needs.length ? spec.needs.map((n) => n.job).join(", ") : "nothing (starts at once)") : null),
          fact("Allowed to fail", job.allow_failure || (spec.allow_failure && spec.allow_failure !== "no") ? "yes" : null),
          fact("Exit code", job.exit_code !== null && job.exit_code !== undefined ? String(job.exit_code) : null),
          fact("Commit", pipelineView ? h("span", null, h("code", { title: pipelineView.sha }, shortSha(pipelineView.sha)),
            pipelineView.commit_title && h("span.fact-sub", null, pipelineView.commit_title)) : null),
          fact("Ref", pipelineView ? pipelineView.git_ref : null))),
        testsCard(),
        artifactsCard(),
        h("section.side-card", null, h("h2", null, "Timing"), h("dl.facts-list", null,
          fact("Created", when(job.created_at)),
          fact("Queued for", wait !== null ? duration(wait) : null),
          fact("Started", job.started_at ? when(job.started_at) : null),
          fact("Finished", job.finished_at ? when(job.finished_at) : null),
          fact("Duration", h("span", { dataset: { started: job.started_at || "", finished: job.finished_at || "" } }, duration(elapsed(job)))),
          fact("Log", size(job.log_size || 0))))].filter(Boolean));
      main.dataset.loaded = "true";
    }

    // The junit summary the agent reported in the job's details.
    function testsCard() {
      const report = details && details.junit;
      if (!report) return null;
      const failed = (report.failures || 0) + (report.errors || 0);
      const skipped = report.skipped || 0;
      const passed = Math.max(0, (report.tests || 0) - failed - skipped);
      const count = (value, label, look) => h(`li.test-count${look ? ".s-" + look : ""}`, { dataset: { count: label } },
        h("span.test-count-value", null, String(value)), h("span.test-count-label", null, label));
      const list = report.failed || [];
      return h("section.side-card.tests-card", null, h("h2", null, "Tests"),
        h("ul.test-counts", null, count(report.tests || 0, "total"), count(passed, "passed", passed ? "success" : null),
          count(failed, "failed", failed ? "failed" : null), count(skipped, "skipped")),
        list.length ? h("details.failed-tests", { open: true }, h("summary", null, `Failed tests (${list.length}${list.length < failed ? ` of ${failed}` : ""})`),
          h("ul.plain-list", null, list.map((test) => h("li", null, h("strong", null, test.name),
            test.classname && h("div.muted.small", null, test.classname),
            test.message && h("div.test-message", null, test.message))))) : null);
    }

    // The stored archive: its download and its files, read from
    // /api/v1/jobs/{id}/artifacts/files once the job has one.
    function artifactsCard() {
      const declared = spec.artifacts && ((spec.artifacts.paths || []).length || spec.artifacts.untracked);
      if (job.artifacts_size === null || job.artifacts_size === undefined) {
        if (!declared) return null;
        const finished = Boolean(job.finished_at);
        return h("section.side-card", null, h("h2", null, "Artifacts"),
          h("p.muted", null, finished ? "This job kept no artifacts." : `Keeps ${(spec.artifacts.paths || []).join(", ") || "untracked files"} when it ends.`));
      }
      if (!listingAsked) {
        listingAsked = true;
        api.get(`/api/v1/jobs/${id}/artifacts/files`)
          .then((found) => { listing = found; }, (error) => { listing = error; })
          .then(() => { if (!closed) render(); });
      }
      let body;
      if (listing === null) body = h("p.muted", null, "Reading the archive…");
      else if (listing instanceof Error) body = h("p.muted", null, `The file list is unavailable: ${listing.message}`);
      else if (!listing.files.length) body = h("p.muted", null, "The archive holds no files.");
      else {
        body = [h("ul.file-list", null, listing.files.map((file) => h("li", { dataset: { path: file.path } },
          h("span.file-path", { title: file.path }, file.path), h("span.file-size", null, size(file.size))))),
        listing.truncated && h("p.muted.small", null, `…and ${listing.count - listing.files.length} more files in the archive.`)];
      }
      return h("section.side-card.artifacts-card", null,
        h("div.side-head", null, h("h2", null, "Artifacts"),
          h("a.btn.btn-small", { href: `/api/v1/jobs/${id}/artifacts`, download: `job-${id}-artifacts.tar.gz`, "data-download": "artifacts" },
            "Download", h("span.muted", null, ` ${size(job.artifacts_size)}`))),
        body);
    }

    const ticker = setInterval(() => {
      for (const span of main.querySelectorAll("span[data-started]")) {
        if (span.dataset.started && !span.dataset.finished) span.textContent = duration(Date.now() - Number(span.dataset.started));
      }
    }, 1000);

    return () => {
      closed = true;
      clearInterval(ticker);
      clearInterval(waitingTimer);
      for (const source of sources) source.close();
      if (view) view.destroy();
    };
  };
})();
