// terminal.js — a job log rendered as a terminal shows it, for logs of any size.
//
// The model keeps the raw lines (bytes decoded as UTF-8 across chunk boundaries) and the
// SGR style in force at the start of each, so any line can be laid out on its own: colours
// and bold from ANSI SGR, `\r` moving back to column 0 and overwriting (progress bars),
// `ESC[K` erasing. Lines echoing a command (`$ …`) and esteira's cyan headings start
// collapsible sections. The view is virtual: only the rows in sight exist in the DOM, so a
// 20 MiB log costs a few dozen nodes. It offers line-number anchors (#L123), search with
// highlighting, and following the end while the job runs.
"use strict";

const Terminal = (() => {
  const ROW = 20; // px per row; must match .log-row in style.css
  const MAX_HEIGHT = 8e6; // px; past this the scrollbar maps proportionally to rows
  const DEFAULT = Object.freeze({ fg: null, bg: null, b: false, d: false, i: false, u: false, inv: false });

  // ---- SGR ------------------------------------------------------------------------
  function applySgr(style, params) {
    const s = { ...style };
    const codes = params === "" ? [0] : params.split(";").map((p) => (p === "" ? 0 : Number(p)));
    for (let k = 0; k < codes.length; k++) {
      const c = codes[k];
      if (c === 0) Object.assign(s, DEFAULT);
      else if (c === 1) s.b = true;
      else if (c === 2) s.d = true;
      else if (c === 3) s.i = true;
      else if (c === 4) s.u = true;
      else if (c === 7) s.inv = true;
      else if (c === 22) { s.b = false; s.d = false; }
      else if (c === 23) s.i = false;
      else if (c === 24) s.u = false;
      else if (c === 27) s.inv = false;
      else if (c >= 30 && c <= 37) s.fg = c - 30;
      else if (c >= 90 && c <= 97) s.fg = c - 90 + 8;
      else if (c === 39) s.fg = null;
      else if (c >= 40 && c <= 47) s.bg = c - 40;
      else if (c >= 100 && c <= 107) s.bg = c - 100 + 8;
      else if (c === 49) s.bg = null;
      else if (c === 38 || c === 48) {
        let colour = null;
        if (codes[k + 1] === 5) { colour = codes[k + 2]; k += 2; }
        else if (codes[k + 1] === 2) { colour = `rgb(${codes[k + 2] | 0},${codes[k + 3] | 0},${codes[k + 4] | 0})`; k += 4; }
        if (c === 38) s.fg = colour; else s.bg = colour;
      }
    }
    return s;
  }

  function styleKey(s) {
    return s === DEFAULT ? "" : `${s.fg}|${s.bg}|${s.b}${s.d}${s.i}${s.u}${s.inv}`;
  }

  // The style in force after `raw`, looking only at its SGR sequences (fast: ingest path).
  const SGR_RE = /\x1b\[([0-9;]*)m/g;
  function endStyle(raw, start) {
    let style = start;
    SGR_RE.lastIndex = 0;
    let match;
    while ((match = SGR_RE.exec(raw)) !== null) style = applySgr(style, match[1]);
    return style;
  }

  // ---- one line as a terminal lays it out ----------------------------------------
  // Returns { text, runs: [[text, style]] }.
  function layout(raw, start) {
    if (raw.indexOf("\x1b") < 0 && raw.indexOf("\r") < 0 && raw.indexOf("\t") < 0 && raw.indexOf("\b") < 0) {
      return { text: raw, runs: raw ? [[raw, start]] : [] };
    }
    const chars = [];
    const styles = [];
    let col = 0;
    let style = start;
    const put = (ch) => {
      while (chars.length < col) { chars.push(" "); styles.push(style); }
      chars[col] = ch;
      styles[col] = style;
      col++;
    };
    for (let i = 0; i < raw.length; i++) {
      const ch = raw[i];
      const code = raw.charCodeAt(i);
      if (code === 27) {
        const next = raw[i + 1];
        if (next === "[") {
          let j = i + 2;
          while (j < raw.length && (raw.charCodeAt(j) < 0x40 || raw.charCodeAt(j) > 0x7e)) j++;
          const params = raw.slice(i + 2, j);
          const final = raw[j];
          if (final === "m") style = applySgr(style, params);
          else if (final === "K") {
            const mode = params === "" ? 0 : Number(params);
            if (mode === 0) { chars.length = Math.min(chars.length, col); styles.length = chars.length; }
            else if (mode === 2) { chars.length = 0; styles.length = 0; }
          } else if (final === "G") col = Math.max(0, (Number(params) || 1) - 1);
          else if (final === "C") col += Number(params) || 1;
          else if (final === "D") col = Math.max(0, col - (Number(params) || 1));
          i = j;
        } else if (next === "]") {
          // OSC (e.g. window titles): skip to BEL or ESC \.
          let j = i + 2;
          while (j < raw.length && raw.charCodeAt(j) !== 7 && !(raw.charCodeAt(j) === 27 && raw[j + 1] === "\\")) j++;
          i = raw.charCodeAt(j) === 7 ? j : j + 1;
        } else {
          i += 1;
        }
      } else if (code === 13) col = 0;
      else if (code === 8) col = Math.max(0, col - 1);
      else if (code === 9) { const to = (Math.floor(col / 8) + 1) * 8; while (col < to) put(" "); }
      else if (code < 32 || code === 127) { /* other control characters show nothing */ }
      else put(ch);
    }
    const runs = [];
    let text = "";
    let runText = "";
    let runStyle = null;
    let runKey = null;
    for (let k = 0; k < chars.length; k++) {
      const key = styleKey(styles[k]);
      if (key !== runKey && runText) { runs.push([runText, runStyle]); runText = ""; }
      if (key !== runKey) { runKey = key; runStyle = styles[k]; }
      runText += chars[k];
      text += chars[k];
    }
    if (runText) runs.push([runText, runStyle]);
    return { text, runs };
  }

  function escapeHtml(text) {
    return text.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
  }

  function openSpan(s) {
    if (styleKey(s) === "") return "";
    let fg = s.fg;
    let bg = s.bg;
    if (s.inv) { [fg, bg] = [bg === null ? "inv-fg" : bg, fg === null ? "inv-bg" : fg]; }
    const classes = [];
    const css = [];
    if (typeof fg === "number" && fg < 16) classes.push(`t-fg${fg}`);
    else if (typeof fg === "number") css.push(`color:${xterm256(fg)}`);
    else if (fg === "inv-fg") classes.push("t-inv-fg");
    else if (fg) css.push(`color:${fg}`);
    if (typeof bg === "number" && bg < 16) classes.push(`t-bg${bg}`);
    else if (typeof bg === "number") css.push(`background:${xterm256(bg)}`);
    else if (bg === "inv-bg") classes.push("t-inv-bg");
    else if (bg) css.push(`background:${bg}`);
    if (s.b) classes.push("t-b");
    if (s.d) classes.push("t-d");
    if (s.i) classes.push("t-i");
    if (s.u) classes.push("t-u");
    return `<span class="${classes.join(" ")}"${css.length ? ` style="${css.join(";")}"` : ""}>`;
  }

  function xterm256(n) {
    if (n < 16) return `var(--t${n})`;
    if (n >= 232) { const v = 8 + (n - 232) * 10; return `rgb(${v},${v},${v})`; }
    const i = n - 16;
    const steps = [0, 95, 135, 175, 215, 255];
    return `rgb(${steps[Math.floor(i / 36)]},${steps[Math.floor(i / 6) % 6]},${steps[i % 6]})`;
  }

  // Runs as HTML, with [from, to) ranges of the line's text wrapped in <mark>.
  function runsHtml(runs, marks) {
    let html = "";
    let pos = 0;
    for (const [text, style] of runs) {
      const open = openSpan(style);
      let body = "";
      let at = 0;
      for (const [from, to] of marks) {
        const a = Math.max(from - pos, at);
        const b = Math.min(to - pos, text.length);
        if (b <= a) continue;
        body += escapeHtml(text.slice(at, a)) + "<mark>" + escapeHtml(text.slice(a, b)) + "</mark>";
        at = b;
      }
      body += escapeHtml(text.slice(at));
      html += open ? `${open}${body}</span>` : body;
      pos += text.length;
    }
    return html;
  }

  // ---- the model ------------------------------------------------------------------
  class Model {
    constructor() {
      this.decoder = new TextDecoder("utf-8");
      this.lines = [];
      this.starts = [];
      this.partial = "";
      this.partialStart = DEFAULT;
      this.headers = []; // indexes of section heading lines, ascending
      this.bytes = 0;
    }

    get count() { return this.lines.length + (this.partial ? 1 : 0); }

    raw(i) { return i < this.lines.length ? this.lines[i] : this.partial; }
    start(i) { return i < this.lines.length ? this.starts[i] : this.partialStart; }

    // Appends bytes; returns the index of the first line that changed.
    write(bytes, last) {
      this.bytes += bytes.length;
      const text = this.decoder.decode(bytes, { stream: !last });
      const firstChanged = this.lines.length;
      const pieces = (this.partial + text).split("\n");
      this.partial = pieces.pop();
      let style = this.partialStart;
      for (const piece of pieces) {
        const index = this.lines.length;
        this.lines.push(piece);
        this.starts.push(style);
        if (piece.charCodeAt(0) === 27 || piece.charCodeAt(0) === 36) this.detectHeader(index, piece);
        if (piece.indexOf("\x1b") >= 0) style = endStyle(piece, style);
      }
      this.partialStart = style;
      return firstChanged;
    }

    detectHeader(index, raw) {
      const plain = raw.slice(0, 80).replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "");
      if (plain.startsWith("$ ") || /^(\x1b\[0K)?\x1b\[36;1m/.test(raw)) this.headers.push(index);
    }

    isHeader(i) { return binarySearch(this.headers, i) >= 0; }

    // The end (exclusive) of the section headed by line `h`.
    sectionEnd(h) {
      const k = binarySearch(this.headers, h);
      return k >= 0 && k + 1 < this.headers.length ? this.headers[k + 1] : this.count;
    }
  }

  function binarySearch(sorted, value) {
    let lo = 0, hi = sorted.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (sorted[mid] === value) return mid;
      if (sorted[mid] < value) lo = mid + 1; else hi = mid - 1;
    }
    return -1;
  }

  // ---- the view -------------------------------------------------------------------
  class View {
    constructor(root, options) {
      this.model = new Model();
      this.options = options || {};
      this.collapsed = new Set();
      this.rowMap = null; // row -> line, when sections are collapsed
      this.follow = Boolean(this.options.follow);
      this.query = "";
      this.matches = [];
      this.current = -1;
      this.highlight = -1;
      this.pendingAnchor = null;
      this.scheduled = false;
      this.cache = new Map();
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
      this.toolbar = h("div.log-toolbar", { role: "toolbar", "aria-label": "Log tools" },
        h("div.log-find", null, this.searchInput, prev, next, this.countLabel),
        h("div.log-buttons", null, collapse, expand, top, bottom, this.followButton, this.options.extra || null));
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
      collapse.addEventListener("click", () => { this.collapsed = new Set(this.model.headers); this.remap(); });
      expand.addEventListener("click", () => { this.collapsed.clear(); this.remap(); });
      this.followButton.addEventListener("click", () => this.setFollow(!this.follow));
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
      const first = this.model.write(bytes, false);
      for (const key of this.cache.keys()) if (key >= first) this.cache.delete(key);
      if (this.collapsed.size) this.remap(true);
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
      if (!this.collapsed.size) { this.rowMap = null; } else {
        const count = this.model.count;
        const map = new Int32Array(count);
        let n = 0;
        let skipUntil = -1;
        for (let line = 0; line < count; line++) {
          if (line < skipUntil) continue;
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
      const classes = ["log-row"];
      if (header) classes.push("log-header");
      if (line === this.highlight) classes.push("log-target");
      if (this.current >= 0 && this.matches[this.current] === line) classes.push("log-current");
      const n = line + 1;
      const toggle = header
        ? `<button type="button" class="sec" data-line="${line}" aria-expanded="${!this.collapsed.has(line)}" aria-label="${this.collapsed.has(line) ? "Expand" : "Collapse"} section">${this.collapsed.has(line) ? "▸" : "▾"}</button>`
        : `<span class="sec-gap"></span>`;
      const hidden = header && this.collapsed.has(line) ? `<span class="log-hidden">${this.model.sectionEnd(line) - line - 1} lines</span>` : "";
      return `<div class="${classes.join(" ")}" data-line="${n}"><a class="ln" href="#L${n}" id="L${n}">${n}</a>${toggle}<span class="lc">${body}</span>${hidden}</div>`;
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

  function findAll(text, query) {
    const marks = [];
    const hay = text.toLowerCase();
    const needle = query.toLowerCase();
    let at = hay.indexOf(needle);
    while (at >= 0 && needle) { marks.push([at, at + needle.length]); at = hay.indexOf(needle, at + needle.length); }
    return marks;
  }

  return { View, Model, layout, ROW };
})();
