// Build logs and the build history. A log is read with GET /build-runs/{id}/log?follow=true,
// a chunked stream the server keeps open while the build runs: each chunk's lines appear as
// they arrive, and the stream ends when the build does. ANSI colours (buildah and the tools
// a RUN step starts print some) are drawn as colours readable on the log's dark background;
// every other terminal control sequence is dropped.
import { useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import { api, get, imagePath, post } from "../lib/api.js";
import { html } from "../lib/html.js";
import { bytes, duration, when } from "../lib/format.js";
import { Button, ErrorNote, Spinner, StatusBadge, useAction, useLoad } from "../components/ui.js";

const SHOWN_LINES = 5000; // past this, the oldest lines are left out of the page (not the log)
const TAIL_BYTES = 512 * 1024; // of an ended build's long log, only the end is read
const CONTROL = /\x1b\[([0-9;?]*)([@-~])|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]|[\x00-\x08\x0b-\x1f\x7f]/g;

// One line of text with ANSI escapes -> [[className, text], ...].
export function ansi(line, state = { fg: null, bold: false }) {
  // A carriage return redraws the line (progress bars): only what was drawn last stays.
  const drawn = line.endsWith("\r") ? line.slice(0, -1) : line;
  const text = drawn.slice(drawn.lastIndexOf("\r") + 1);
  const out = [];
  let at = 0;
  const push = (piece) => {
    if (!piece) return;
    const cls = [state.fg !== null ? `ansi-${state.fg}` : "", state.bold ? "ansi-bold" : ""].filter(Boolean).join(" ");
    out.push([cls, piece]);
  };
  for (const found of text.matchAll(CONTROL)) {
    push(text.slice(at, found.index));
    at = found.index + found[0].length;
    if (found[2] !== "m") continue;
    const codes = (found[1] || "0").split(";").map((n) => Number.parseInt(n || "0", 10));
    for (let i = 0; i < codes.length; i += 1) {
      const code = codes[i];
      if (code === 0) Object.assign(state, { fg: null, bold: false });
      else if (code === 1) state.bold = true;
      else if (code === 22) state.bold = false;
      else if (code === 39) state.fg = null;
      else if (code >= 30 && code <= 37) state.fg = code - 30;
      else if (code >= 90 && code <= 97) state.fg = code - 90 + 8;
      else if (code === 38 || code === 48) i += codes[i + 1] === 5 ? 2 : 4; // 256/rgb colours: dropped
    }
  }
  push(text.slice(at));
  return out;
}

function classOf(text) {
  if (text.startsWith("[dockyard]")) return "log-line log-dockyard";
  if (/^STEP \d+\/\d+:/.test(text)) return "log-line log-step";
  return "log-line";
}

// Follow a run's log from byte `start`: {lines, dropped, reading, error}. `version` reads it
// again. Lines past SHOWN_LINES push the oldest out (`dropped` counts them).
function useRunLog(runId, version, onEnded, start) {
  const [state, setState] = useState({ lines: [], dropped: 0, from: 0, reading: true, error: null });
  useEffect(() => {
    const controller = new AbortController();
    let lines = [];
    let dropped = 0;
    let pending = "";
    let partial = start > 0; // reading from the middle of a line: that line is left out
    const colours = { fg: null, bold: false };
    const take = (text) => {
      const parts = (pending + text).split("\n");
      pending = parts.pop();
      if (partial && parts.length) {
        parts.shift();
        partial = false;
      }
      for (const part of parts) lines.push({ text: part, tokens: ansi(part, colours) });
      if (lines.length > SHOWN_LINES) {
        dropped += lines.length - SHOWN_LINES;
        lines = lines.slice(-SHOWN_LINES);
      }
      setState({ lines, dropped, from: start, reading: true, error: null });
    };
    setState({ lines, dropped, from: start, reading: true, error: null });
    (async () => {
      try {
        const response = await api("GET", `/build-runs/${runId}/log?follow=true&offset=${start}`, undefined, { signal: controller.signal, raw: true });
        const reader = response.body.getReader();
        const decoder = new TextDecoder();
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          take(decoder.decode(value, { stream: true }));
        }
        take(decoder.decode() + (pending ? "\n" : ""));
        setState({ lines, dropped, from: start, reading: false, error: null });
        onEnded?.();
      } catch (error) {
        if (error.name !== "AbortError") setState({ lines, dropped, from: start, reading: false, error });
      }
    })();
    return () => controller.abort();
  }, [runId, version]);
  return state;
}

// The log of one run, live while it runs. Keeps itself scrolled to the end unless the user
// scrolled up to read.
export function LogView({ run, version = 0, onEnded, label }) {
  const start = run.finished_at && run.log_bytes > TAIL_BYTES ? run.log_bytes - TAIL_BYTES : 0;
  const { lines, dropped, from, reading, error } = useRunLog(run.id, version, onEnded, start);
  const box = useRef(null);
  // Read before the new lines are drawn: was the end of the log in view?
  const el = box.current;
  const atEnd = !el || el.scrollHeight - el.scrollTop - el.clientHeight < 24;
  useLayoutEffect(() => {
    if (box.current && atEnd) box.current.scrollTop = box.current.scrollHeight;
  }, [lines.length, dropped]); // the array grows in place: its length says it changed
  return html`<div class="log-wrap">
    ${(dropped > 0 || from > 0) &&
    html`<p class="hint">${from > 0 ? `Only the last ${bytes(TAIL_BYTES)} of this ${bytes(run.log_bytes)} log are shown here.` : `The first ${dropped.toLocaleString()} lines are not shown here.`}${" "}
      <a href=${`/api/v1/build-runs/${run.id}/log`} download=${`build-${run.id}.log`}>Download the whole log</a></p>`}
    <pre class="log" ref=${box} tabindex="0" role="log" aria-label=${label || `Log of build #${run.id}`}>${lines.map(
      (line) => html`<span class=${classOf(line.text)}>${line.tokens.map(([cls, text]) => (cls ? html`<span class=${cls}>${text}</span>` : text))}</span>`,
    )}${lines.length === 0 && !reading ? html`<span class="log-line log-empty">The log is empty.</span>` : ""}</pre>
    ${reading && html`<p class="log-status" role="status"><span class="spinner" aria-hidden="true"></span>${run.finished_at ? "Reading the log…" : "Following the build live…"}</p>`}
    <${ErrorNote} error=${error} />
  </div>`;
}

const ACTIVE = new Set(["queued", "running"]);

// The latest build: its status, its log streaming while it runs, refresh and cancel.
export function CurrentBuild({ definition, run, onChanged }) {
  const [version, setVersion] = useState(0);
  const [shown, setShown] = useState(run);
  useEffect(() => setShown(run), [run]);
  const reload = async () => setShown(await get(`/build-runs/${run.id}`));
  useEffect(() => {
    // While the build is queued or runs, its status is read again now and then (the log
    // stream says when it ends, not when it starts or is being cancelled).
    if (!ACTIVE.has(shown.status)) return undefined;
    const timer = setTimeout(() => reload().catch(() => {}), 2000);
    return () => clearTimeout(timer);
  }, [shown]);
  const [cancel, cancelling, cancelError] = useAction(async () => {
    setShown(await post(`/build-runs/${run.id}/cancel`));
  });
  const ended = async () => {
    const latest = await get(`/build-runs/${run.id}`);
    setShown(latest);
    if (ACTIVE.has(run.status) || latest.status !== run.status) onChanged();
  };
  const refusal = definition.refused.build;
  const active = ACTIVE.has(shown.status);
  return html`<div class="card build-current">
    <div class="card-head">
      <h3>Build #${shown.id} <${StatusBadge} status=${shown.status} /></h3>
      <div class="row">
        <${Button} icon="refresh" onClick=${() => {
          reload();
          setVersion((n) => n + 1);
        }}>Refresh</${Button}>
        ${active &&
        html`<${Button} kind="danger" icon="stop" busy=${cancelling} disabled=${Boolean(refusal) || shown.cancel_requested}
          title=${refusal} onClick=${() => cancel()}>${shown.cancel_requested ? "Cancelling…" : "Cancel build"}</${Button}>`}
      </div>
    </div>
    <p class="muted">Version <code>${shown.version}</code>, started by ${shown.started_by}, ${when(shown.started_at || shown.queued_at)}${
      shown.duration !== null ? html`, took ${duration(shown.duration)}` : ""}${shown.reason ? html`. <span class="reason-inline">${shown.reason}</span>` : ""}</p>
    <${ErrorNote} error=${cancelError} />
    <${LogView} run=${shown} version=${version} onEnded=${ended} label=${`Build log of build #${shown.id}`} />
  </div>`;
}

// Every build, newest first: start time, status, duration; a row opens to show its log.
export function BuildHistory({ name, tick }) {
  const runs = useLoad((signal) => get(`/builds/${imagePath(name)}/runs?limit=50`, { signal }), [name, tick]);
  const [open, setOpen] = useState(null);
  if (runs.error) return html`<${ErrorNote} error=${runs.error} />`;
  if (!runs.data) return html`<${Spinner} label="Loading the build history…" />`;
  if (runs.data.length === 0) return html`<p class="muted">No builds yet.</p>`;
  return html`<div class="table-wrap">
    <table class="data runs">
      <caption class="visually-hidden">Build history</caption>
      <thead><tr>
        <th scope="col">Build</th><th scope="col">Started</th><th scope="col">Status</th>
        <th scope="col" class="num">Duration</th><th scope="col">Version</th><th scope="col">Started by</th><th scope="col"><span class="visually-hidden">Log</span></th>
      </tr></thead>
      <tbody>
        ${runs.data.map((run) => {
          const expanded = open === run.id;
          return html`<tr key=${run.id} class=${expanded ? "selected" : ""}>
              <td>#${run.id}</td>
              <td>${when(run.started_at || run.queued_at)}</td>
              <td><${StatusBadge} status=${run.status} /></td>
              <td class="num">${ACTIVE.has(run.status) ? "…" : duration(run.duration)}</td>
              <td><code>${run.version}</code></td>
              <td>${run.started_by}</td>
              <td><button type="button" class="btn btn-ghost" aria-expanded=${expanded} aria-controls=${expanded ? `run-log-${run.id}` : undefined}
                onClick=${() => setOpen(expanded ? null : run.id)}>${expanded ? "Hide log" : "Show log"}<span class="visually-hidden"> of build #${run.id}</span></button></td>
            </tr>
            ${expanded &&
            html`<tr class="run-log-row"><td colspan="7" id=${`run-log-${run.id}`}>
              ${run.reason && html`<p class="reason-inline">${run.reason}</p>`}
              <${LogView} run=${run} label=${`Log of build #${run.id}`} />
            </td></tr>`}`;
        })}
      </tbody>
    </table>
  </div>`;
}
