// terminal.js — a job log as a terminal shows it: the model and the layout of one line.
//
// The model keeps the raw lines (bytes decoded as UTF-8 across chunk boundaries) and the
// SGR style in force at the start of each, so any line can be laid out on its own: colours
// and bold from ANSI SGR, `\r` moving back to column 0 and overwriting (progress bars),
// `ESC[K` erasing. It also keeps the log's sections, one tree for two kinds:
// - GitLab's explicit ones, `section_start:<unix time>:<name>[collapsed=true]\r\e[0K<header>`
//   up to `section_end:<unix time>:<name>\r\e[0K`, nested, with their duration;
// - implicit ones: each echoed command (`$ …`) and esteira's cyan headings, up to the
//   next of them or the end of the explicit section around them.
// The virtual view over it is in logview.js.
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
  // GitLab's markers, anywhere on a line (as GitLab's own parser reads them).
  const MARKER_RE = /section_(start|end):(\d+):([A-Za-z0-9_.-]+)(?:\[([^\]]*)\])?\r\x1b\[0K/g;

  // An echoed command (`$ …`, green) or one of esteira's headings (cyan).
  function isHeading(raw) {
    if (raw.charCodeAt(0) !== 27 && raw.charCodeAt(0) !== 36) return false;
    const plain = raw.slice(0, 80).replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "");
    return plain.startsWith("$ ") || /^(\x1b\[0K)?\x1b\[36;1m/.test(raw);
  }

  class Model {
    constructor() {
      this.decoder = new TextDecoder("utf-8");
      this.lines = [];
      this.starts = [];
      this.partial = "";
      this.partialStart = DEFAULT;
      // Sections in the order they start: {line, end (exclusive; null while open),
      // explicit, name, collapsed (asked by the log), started, finished (unix seconds)}.
      this.sections = [];
      this.byLine = new Map(); // header line -> section
      this.open = []; // sections not closed yet, outermost first
      this.hidden = []; // lines showing nothing but a section_end marker, ascending
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
      // At the end, a last line without its newline is a line like the others.
      this.partial = last ? "" : pieces.pop();
      if (last && pieces[pieces.length - 1] === "") pieces.pop();
      let style = this.partialStart;
      for (const piece of pieces) {
        const index = this.lines.length;
        this.lines.push(piece);
        this.starts.push(style);
        this.ingest(index, piece);
        if (piece.indexOf("\x1b") >= 0) style = endStyle(piece, style);
      }
      this.partialStart = style;
      return firstChanged;
    }

    // Opens and closes the sections a complete line marks.
    ingest(index, raw) {
      let opened = false;
      let ended = false;
      if (raw.indexOf("section_") >= 0) {
        MARKER_RE.lastIndex = 0;
        let match;
        while ((match = MARKER_RE.exec(raw)) !== null) {
          const [, kind, time, name, options] = match;
          if (kind === "end") ended = this.close(name, index, Number(time)) || ended;
          else if (!opened) {
            const collapsed = (options || "").split(",").some((o) => o.trim() === "collapsed=true");
            this.begin({ line: index, end: null, explicit: true, name, collapsed, started: Number(time), finished: null });
            opened = true;
          }
        }
      }
      if (!opened && !ended && isHeading(raw)) {
        this.begin({ line: index, end: null, explicit: false, name: null, collapsed: false, started: null, finished: null });
      }
      if (ended && !opened && !layout(raw, DEFAULT).text.trim()) this.hidden.push(index);
    }

    // A new section ends the implicit one it follows, and nests in the explicit ones open.
    begin(section) {
      while (this.open.length && !this.open[this.open.length - 1].explicit) this.open.pop().end = section.line;
      this.open.push(section);
      this.sections.push(section);
      this.byLine.set(section.line, section);
    }

    // `section_end` closes its section and whatever is still open inside it; an end
    // without its start is ignored, as GitLab does.
    close(name, index, time) {
      let k = this.open.length - 1;
      while (k >= 0 && !(this.open[k].explicit && this.open[k].name === name)) k--;
      if (k < 0) return false;
      for (let j = k; j < this.open.length; j++) this.open[j].end = index + 1;
      this.open[k].finished = time;
      this.open.length = k;
      return true;
    }

    isHeader(i) { return this.byLine.has(i); }

    // The end (exclusive) of the section headed by line `h`.
    sectionEnd(h) {
      const section = this.byLine.get(h);
      return section && section.end !== null ? section.end : this.count;
    }

    // How many lines a collapsed section hides (its header and marker lines aside).
    bodyLines(h) {
      const end = this.sectionEnd(h);
      return end - h - 1 - (lowerBound(this.hidden, end) - lowerBound(this.hidden, h + 1));
    }

    // An explicit section's duration in seconds, once it ended.
    duration(h) {
      const section = this.byLine.get(h);
      return section && section.explicit && section.finished !== null ? Math.max(0, section.finished - section.started) : null;
    }
  }

  // The first index of `sorted` whose value is at least `value`.
  function lowerBound(sorted, value) {
    let lo = 0, hi = sorted.length;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (sorted[mid] < value) lo = mid + 1; else hi = mid; }
    return lo;
  }

  function findAll(text, query) {
    const marks = [];
    const hay = text.toLowerCase();
    const needle = query.toLowerCase();
    let at = hay.indexOf(needle);
    while (at >= 0 && needle) { marks.push([at, at + needle.length]); at = hay.indexOf(needle, at + needle.length); }
    return marks;
  }

  return { Model, layout, runsHtml, findAll, ROW, MAX_HEIGHT };
})();
