// The Dockerfile editor: a plain <textarea> (so typing, selection, undo, spell-check off,
// screen readers and the browser's find all work as usual) laid over a <pre> that shows the
// same text highlighted, with a gutter of line numbers. Tab indents; Escape, then Tab,
// leaves the editor (so the keyboard is never trapped); Enter keeps the line's indentation.
import { useLayoutEffect, useRef, useState } from "preact/hooks";
import { html } from "../lib/html.js";

const INSTRUCTIONS = new Set(
  "FROM RUN CMD LABEL MAINTAINER EXPOSE ENV ADD COPY ENTRYPOINT VOLUME USER WORKDIR ARG ONBUILD STOPSIGNAL HEALTHCHECK SHELL".split(" "),
);
// One token at a time, in the order they are tried: strings, variables, flags, the line's
// trailing continuation, words and the rest.
const TOKEN = /("(?:[^"\\]|\\.)*"?|'[^']*'?)|(\$\{[^}]*\}?|\$[A-Za-z_][A-Za-z0-9_]*)|(--[a-z][a-z-]*(?:=\S*)?)|(\\\s*$)|([A-Za-z_][\w.-]*)|(\s+|.)/g;

// Highlight one Dockerfile; returns lines of [class, text] tokens.
export function highlight(text) {
  const lines = text.split("\n");
  let continued = false;
  return lines.map((line) => {
    const tokens = [];
    if (/^\s*#/.test(line)) {
      tokens.push(["tok-comment", line]);
      return tokens; // a comment inside a continued instruction does not end it
    }
    let first = !continued;
    let instruction = "";
    for (const found of line.matchAll(TOKEN)) {
      const [all, string, variable, flag, escape, word] = found;
      if (string) tokens.push(["tok-string", all]);
      else if (variable) tokens.push(["tok-variable", all]);
      else if (flag) tokens.push(["tok-flag", all]);
      else if (escape) tokens.push(["tok-escape", all]);
      else if (word && first && INSTRUCTIONS.has(word.toUpperCase())) {
        instruction = word.toUpperCase();
        tokens.push(["tok-keyword", all]);
      } else if (word && instruction === "FROM" && word.toUpperCase() === "AS") tokens.push(["tok-keyword", all]);
      else tokens.push(["", all]);
      if (!/^\s+$/.test(all)) first = false;
    }
    continued = /\\\s*$/.test(line);
    return tokens;
  });
}

function insert(area, text) {
  area.focus();
  // execCommand keeps the browser's undo history; setRangeText is the fallback.
  if (!document.execCommand("insertText", false, text)) {
    area.setRangeText(text, area.selectionStart, area.selectionEnd, "end");
    area.dispatchEvent(new Event("input", { bubbles: true }));
  }
}

export function CodeEditor({ id, value, onChange, readOnly, describedBy, minRows = 8, maxRows = 30 }) {
  const area = useRef(null);
  const shown = useRef(null);
  const gutter = useRef(null);
  const [leaving, setLeaving] = useState(false);
  const lines = highlight(value);
  const rows = Math.min(maxRows, Math.max(minRows, lines.length + 1)); // grows with the text, then scrolls
  const sync = () => {
    const { scrollTop, scrollLeft } = area.current;
    shown.current.scrollTop = scrollTop;
    shown.current.scrollLeft = scrollLeft;
    gutter.current.scrollTop = scrollTop;
  };
  useLayoutEffect(sync); // after each change too: the highlighted copy must follow the text
  const keys = (event) => {
    if (readOnly) return;
    if (event.key === "Escape") {
      setLeaving(true);
      return;
    }
    if (event.key === "Tab" && !event.shiftKey && !leaving && !event.ctrlKey && !event.altKey && !event.metaKey) {
      event.preventDefault();
      insert(event.target, "  ");
    } else if (event.key === "Enter" && !event.ctrlKey && !event.metaKey && !event.altKey) {
      const { value: text, selectionStart } = event.target;
      const start = text.lastIndexOf("\n", selectionStart - 1) + 1;
      const indent = /^[ \t]*/.exec(text.slice(start, selectionStart))[0];
      if (indent) {
        event.preventDefault();
        insert(event.target, `\n${indent}`);
      }
    }
    if (event.key !== "Escape") setLeaving(false);
  };
  return html`<div class=${`code-editor${readOnly ? " code-readonly" : ""}`}>
    <div class="code-gutter" ref=${gutter} aria-hidden="true">
      ${lines.map((_, i) => html`<span>${i + 1}</span>`)}
    </div>
    <div class="code-area">
      <pre class="code-shown" ref=${shown} aria-hidden="true"><code>${lines.map(
        (tokens, i) => html`${tokens.map(([cls, text]) => (cls ? html`<span class=${cls}>${text}</span>` : text))}${i < lines.length - 1 ? "\n" : " "}`,
      )}</code></pre>
      <textarea id=${id} ref=${area} class="code-input" rows=${rows} value=${value} readOnly=${readOnly} spellcheck="false"
        autocomplete="off" autocapitalize="off" wrap="off" aria-describedby=${describedBy}
        onInput=${(event) => onChange(event.target.value)} onScroll=${sync} onKeyDown=${keys} onBlur=${() => setLeaving(false)}></textarea>
    </div>
  </div>`;
}
