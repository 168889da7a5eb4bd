// logview.js — the job log's view over a Terminal model, for logs of any size. It is
// virtual: only the rows in sight exist in the DOM, so a 20 MiB log costs a few dozen
// nodes. It offers collapsible sections (GitLab's `collapsed=true` ones start collapsed;
// each explicit section's header shows its duration), line-number anchors (#L123),
// search with highlighting, following the end while the job runs, and with
// `options.stamps` (a function reading the stamps from a byte offset on) a "Show
// timestamps" toggle adding the time each line started. Defines `Terminal.View`.
"use strict";

(() => {
  const { Model, layout, runsHtml, findAll, ROW, MAX_HEIGHT } = Terminal;

  // A section's duration as GitLab shows it: 00:03, 01:05, 1:02:03.
  function clock(seconds) {
    const two = (n) => String(n).padStart(2, "0");
    const h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
    return h ? `${h}:${two(m)}:${two(s)}` : `${two(m)}:${two(s)}`;
  }

  // The time a line started, as the timestamp column shows it.
  function stampHtml(at) {
    if (at === undefined) return `<span class="lt"></span>`;
    const date = new Date(at);
    const time = date.toLocaleTimeString([], { hour12: false, hour: "2-digit", minute: "2-digit", second: "2-digit" });
    return `<span class="lt" title="${date.toISOString()}">${time}</span>`;
  }

  // ---- the view -------------------------------------------------------------------
  class View {
    constructor(root, options) {
      this.model = new Model();
      this.options = options || {};
      this.collapsed = new Set(); // header lines of the collapsed sections
      this.seenSections = 0; // sections whose `collapsed=true` was applied
      this.rowMap = null; // row -> line, when lines are collapsed or hidden
      this.follow = Boolean(this.options.follow);
      this.query = "";
      this.matches = [];
      this.current = -1;
      this.highlight = -1;
      this.pendingAnchor = null;
      this.scheduled = false;
      this.cache = new Map();
      this.lineOffsets = [0]; // line -> the byte offset where it starts
      this.bytesSeen = 0;
      this.showStamps = false;
      this.stamps = new Map(); // byte offset -> when the line starting there started (ms)
      this.stampsFrom = 0;
      this.stampsLoading = null;
      this.stampsAgain = false;
      this.build(root);
    }

    build(root) {
      const { h } = esteira;
      this.searchInput = h("input.log-search", { type: "search", placeholder: "Search the log", "aria-label": "Search the log", spellcheck: "false" });
      this.countLabel = h("span.log-count", { "aria-live": "polite" });
      this.followButton = h("button.btn.btn-small", { type: "button", "aria-pressed": String(this.follow), title: "Keep the end of the log in view" }, "Follow");
      const prev = h("button.btn.btn-small", { type: "button", "aria-label": "Previous match", title: "Previous match (Shift+Enter)" }, "↑");
      const next = h("button.btn.btn-small", { type: "button", "aria-label": "Next match", title: "Next match (Enter)" }, "↓");
      const top = h("button.btn.btn-small", { type: "button", title: "Scroll to the top" }, "Top");
      const bottom = h("button.btn.btn-small", { type: "button", title: "Scroll to the end" }, "End");
      const collapse = h("button.btn.btn-small", { type: "button", title: "Collapse every section" }, "Collapse all");
      const expand = h("button.btn.btn-small", { type: "button", title: "Expand every section" }, "Expand all");
      const stamps = this.options.stamps
        ? h("button.btn.btn-small", { type: "button", "aria-pressed": "false", "data-action": "timestamps", title: "Show when each line started" }, "Show timestamps")
        : null;
      this.toolbar = h("div.log-toolbar", { role: "toolbar", "aria-label": "Log tools" },
        h("div.log-find", null, this.searchInput, prev, next, this.countLabel),
        h("div.log-buttons", null, collapse, expand, stamps, top, bottom, this.followButton, this.options.extra || null));
      this.sizer = h("div.log-sizer");
      this.rows = h("div.log-rows");
      this.viewport = h("div.log-viewport", { tabindex: "0", role: "region", "aria-label": "Job log" }, this.sizer, this.rows);
      this.status = h("div.log-status", { "aria-live": "polite" });
      root.append(this.toolbar, this.viewport, this.status);
      this.root = root;

      let searchTimer = null;
      this.searchInput.addEventListener("input", () => { clearTimeout(searchTimer); searchTimer = setTimeout(() => this.search(this.searchInput.value), 200); });
      this.searchInput.addEventListener("keydown", (event) => {
        if (event.key === "Enter") { event.preventDefault(); if (this.query !== this.searchInput.value) this.search(this.searchInput.value); else this.step(event.shiftKey ? -1 : 1); }
      });
      prev.addEventListener("click", () => this.step(-1));
      next.addEventListener("click", () => this.step(1));
      top.addEventListener("click", () => { this.setFollow(false); this.viewport.scrollTop = 0; });
      bottom.addEventListener("click", () => this.setFollow(true));
      collapse.addEventListener("click", () => { this.collapsed = new Set(this.model.sections.map((s) => s.line)); this.remap(); });
      expand.addEventListener("click", () => { this.collapsed.clear(); this.remap(); });
      this.followButton.addEventListener("click", () => this.setFollow(!this.follow));
      if (stamps) {
        stamps.addEventListener("click", () => {
          this.showStamps = !this.showStamps;
          stamps.setAttribute("aria-pressed", String(this.showStamps));
          stamps.textContent = this.showStamps ? "Hide timestamps" : "Show timestamps";
          this.root.dataset.stamps = String(this.showStamps);
          if (this.showStamps) this.loadStamps();
          this.schedule();
        });
      }
      this.viewport.addEventListener("scroll", () => {
        const atEnd = this.viewport.scrollTop + this.viewport.clientHeight >= this.viewport.scrollHeight - ROW * 2;
        if (!atEnd && this.follow && !this.programmatic) this.setFollow(false);
        this.programmatic = false;
        this.schedule();
      });
      this.rows.addEventListener("click", (event) => {
        const toggle = event.target.closest("button.sec");
        if (toggle) {
          const line = Number(toggle.dataset.line);
          if (this.collapsed.has(line)) this.collapsed.delete(line); else this.collapsed.add(line);
          this.remap();
        }
      });
      this.onHash = () => this.anchor();
      window.addEventListener("hashchange", this.onHash);
      this.resizeObserver = new ResizeObserver(() => this.schedule());
      this.resizeObserver.observe(this.viewport);
      this.anchor();
    }

    destroy() {
      window.removeEventListener("hashchange", this.onHash);
      this.resizeObserver.disconnect();
    }

    setFollow(on) {
      this.follow = on;
      this.followButton.setAttribute("aria-pressed", String(on));
      if (on) this.scrollToRow(this.rowCount() - 1, "end");
    }

    // ---- data in ----
    write(bytes) {
      for (let i = 0; i < bytes.length; i++) if (bytes[i] === 10) this.lineOffsets.push(this.bytesSeen + i + 1);
      this.bytesSeen += bytes.length;
      if (this.showStamps) this.loadStamps();
      const first = this.model.write(bytes, false);
      for (const key of this.cache.keys()) if (key >= first) this.cache.delete(key);
      const sections = this.model.sections;
      for (; this.seenSections < sections.length; this.seenSections++) {
        if (sections[this.seenSections].collapsed) this.collapsed.add(sections[this.seenSections].line);
      }
      if (this.collapsed.size || this.model.hidden.length) this.remap(true);
      if (this.query) this.searchFrom(first);
      this.schedule();
    }

    finish(message) {
      const first = this.model.write(new Uint8Array(0), true);
      for (const key of this.cache.keys()) if (key >= first) this.cache.delete(key);
      this.done = true;
      this.root.dataset.complete = "true";
      this.status.textContent = message || "";
      this.schedule();
    }

    // Reads the stamps not read yet; a call while a read runs makes it read once more.
    async loadStamps() {
      if (this.stampsLoading) { this.stampsAgain = true; return; }
      this.stampsLoading = true;
      try {
        do {
          this.stampsAgain = false;
          for (;;) {
            const list = await this.options.stamps(this.stampsFrom);
            if (!list || !list.length) break;
            for (const stamp of list) this.stamps.set(stamp.offset, stamp.at_ms);
            this.stampsFrom = list[list.length - 1].offset + 1;
          }
        } while (this.stampsAgain);
      } catch (_) {
        // The column stays as it is; the next toggle or log write reads again.
      } finally {
        this.stampsLoading = null;
      }
      this.root.dataset.stampsLoaded = String(this.stamps.size);
      this.schedule();
    }

    // ---- rows and lines ----
    rowCount() { return this.rowMap ? this.rowMap.length : this.model.count; }
    lineOf(row) { return this.rowMap ? this.rowMap[row] : row; }
    rowOf(line) {
      if (!this.rowMap) return line;
      let lo = 0, hi = this.rowMap.length - 1;
      while (lo < hi) { const mid = (lo + hi) >> 1; if (this.rowMap[mid] < line) lo = mid + 1; else hi = mid; }
      return lo;
    }

    remap(quiet) {
      const hidden = this.model.hidden;
      if (!this.collapsed.size && !hidden.length) { this.rowMap = null; } else {
        const count = this.model.count;
        const map = new Int32Array(count);
        let n = 0;
        let skipUntil = -1;
        let k = 0;
        for (let line = 0; line < count; line++) {
          if (line < skipUntil) continue;
          while (k < hidden.length && hidden[k] < line) k++;
          if (hidden[k] === line) continue;
          map[n++] = line;
          if (this.collapsed.has(line)) skipUntil = this.model.sectionEnd(line);
        }
        this.rowMap = map.subarray(0, n);
      }
      if (!quiet) this.schedule();
    }

    expandTo(line) {
      let changed = false;
      for (const h of this.collapsed) if (h < line && this.model.sectionEnd(h) > line) { this.collapsed.delete(h); changed = true; }
      if (changed) this.remap(true);
    }

    // ---- scrolling ----
    geometry() {
      const rows = this.rowCount();
      const full = rows * ROW;
      const height = Math.min(full, MAX_HEIGHT);
      return { rows, full, height, scaled: full > MAX_HEIGHT };
    }

    firstRow() {
      const g = this.geometry();
      const top = this.viewport.scrollTop;
      if (!g.scaled) return Math.floor(top / ROW);
      const visible = Math.ceil(this.viewport.clientHeight / ROW);
      const room = Math.max(1, g.height - this.viewport.clientHeight);
      return Math.round((top / room) * Math.max(0, g.rows - visible));
    }

    scrollToRow(row, where) {
      const g = this.geometry();
      const view = this.viewport.clientHeight;
      const visible = Math.ceil(view / ROW);
      let target;
      if (!g.scaled) {
        target = where === "end" ? g.full : where === "center" ? row * ROW - view / 3 : row * ROW;
      } else {
        const room = Math.max(1, g.height - view);
        const first = where === "end" ? g.rows : where === "center" ? row - Math.floor(visible / 3) : row;
        target = (Math.max(0, first) / Math.max(1, g.rows - visible)) * room;
      }
      this.programmatic = true;
      this.sizer.style.height = `${g.height}px`;
      this.viewport.scrollTop = Math.max(0, target);
      this.schedule();
    }

    schedule() {
      if (this.scheduled) return;
      this.scheduled = true;
      requestAnimationFrame(() => { this.scheduled = false; this.render(); });
    }

    render() {
      const g = this.geometry();
      this.sizer.style.height = `${g.height}px`;
      if (this.follow && g.rows) {
        const target = g.height - this.viewport.clientHeight;
        if (Math.abs(this.viewport.scrollTop - target) > 1) { this.programmatic = true; this.viewport.scrollTop = target; }
      }
      const visible = Math.ceil(this.viewport.clientHeight / ROW) + 1;
      const first = Math.max(0, Math.min(this.firstRow(), g.rows - visible + 1));
      const last = Math.min(g.rows, first + visible + 1);
      const offset = g.scaled ? this.viewport.scrollTop - (this.viewport.scrollTop % 1) : first * ROW;
      this.rows.style.transform = `translateY(${offset}px)`;
      let html = "";
      for (let row = first; row < last; row++) html += this.rowHtml(this.lineOf(row));
      this.rows.innerHTML = html;
      this.root.dataset.lines = String(this.model.count);
      this.root.dataset.rendered = String(last - first);
    }

    rowHtml(line) {
      const partial = line >= this.model.lines.length;
      const key = line;
      let body = partial ? null : this.cache.get(key);
      if (body === undefined || body === null) {
        const { text, runs } = layout(this.model.raw(line), this.model.start(line));
        const marks = this.query ? findAll(text, this.query) : [];
        body = runsHtml(runs, marks);
        if (!partial) {
          if (this.cache.size > 4000) this.cache.clear();
          this.cache.set(key, body);
        }
      }
      const header = this.model.isHeader(line);
      const folds = header && this.model.bodyLines(line) > 0;
      const classes = ["log-row"];
      if (header) classes.push("log-header");
      if (line === this.highlight) classes.push("log-target");
      if (this.current >= 0 && this.matches[this.current] === line) classes.push("log-current");
      const n = line + 1;
      const toggle = folds
        ? `<button type="button" class="sec" data-line="${line}" aria-expanded="${!this.collapsed.has(line)}" aria-label="${this.collapsed.has(line) ? "Expand" : "Collapse"} section">${this.collapsed.has(line) ? "▸" : "▾"}</button>`
        : `<span class="sec-gap"></span>`;
      const collapsed = folds && this.collapsed.has(line);
      const hidden = collapsed ? `<span class="log-hidden">${this.model.bodyLines(line)} lines</span>` : "";
      const seconds = header ? this.model.duration(line) : null;
      const took = seconds === null ? "" : `<span class="sec-duration" title="Section duration">${clock(seconds)}</span>`;
      const stamp = this.showStamps ? stampHtml(this.stamps.get(this.lineOffsets[line])) : "";
      return `<div class="${classes.join(" ")}" data-line="${n}"${folds ? ` data-collapsed="${collapsed}"` : ""}><a class="ln" href="#L${n}" id="L${n}">${n}</a>${stamp}${toggle}<span class="lc">${body}</span>${hidden}${took}</div>`;
    }

    // ---- anchors ----
    anchor() {
      const match = /^#L(\d+)$/.exec(location.hash);
      if (!match) return;
      const line = Number(match[1]) - 1;
      if (line >= this.model.count) { this.pendingAnchor = line; return; }
      this.pendingAnchor = null;
      this.highlight = line;
      this.cache.clear();
      this.setFollow(false);
      this.expandTo(line);
      this.scrollToRow(this.rowOf(line), "center");
    }

    checkPendingAnchor() {
      if (this.pendingAnchor !== null && this.pendingAnchor < this.model.count) this.anchor();
    }

    // ---- search ----
    search(query) {
      this.query = query;
      this.matches = [];
      this.current = -1;
      this.cache.clear();
      if (query) this.searchFrom(0);
      if (this.matches.length) {
        const top = this.lineOf(this.firstRow());
        const k = this.matches.findIndex((line) => line >= top);
        this.go(k >= 0 ? k : 0);
      } else {
        this.updateCount();
        this.schedule();
      }
    }

    searchFrom(first) {
      const needle = this.query.toLowerCase();
      while (this.matches.length && this.matches[this.matches.length - 1] >= first) this.matches.pop();
      const count = this.model.count;
      for (let line = first; line < count; line++) {
        const raw = this.model.raw(line);
        const text = raw.indexOf("\x1b") < 0 && raw.indexOf("\r") < 0 ? raw : layout(raw, this.model.start(line)).text;
        if (text.toLowerCase().includes(needle)) this.matches.push(line);
      }
      this.updateCount();
    }

    step(delta) {
      if (!this.matches.length) return;
      this.go((this.current + delta + this.matches.length) % this.matches.length);
    }

    go(k) {
      this.current = k;
      this.setFollow(false);
      const line = this.matches[k];
      this.expandTo(line);
      this.cache.clear();
      this.scrollToRow(this.rowOf(line), "center");
      this.updateCount();
    }

    updateCount() {
      this.countLabel.textContent = !this.query ? "" : this.matches.length
        ? `${this.current + 1} of ${this.matches.length}` : "No matches";
    }
  }

  Terminal.View = View;
})();
