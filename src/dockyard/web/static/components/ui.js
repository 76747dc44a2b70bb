// The small pieces every screen is made of, so that all screens look and behave alike.
import { useEffect, useRef, useState } from "preact/hooks";
import { html } from "../lib/html.js";
import { Icon } from "../lib/icons.js";

export function Spinner({ label = "Loading…" }) {
  return html`<p class="loading" role="status"><span class="spinner" aria-hidden="true"></span>${label}</p>`;
}

// An error, shown where it happened, in the server's words.
export function ErrorNote({ error, children }) {
  if (!error && !children) return null;
  return html`<p class="error-note" role="alert"><${Icon} name="warn" />${children || error.message}</p>`;
}

export function Empty({ title, children, icon = "box" }) {
  return html`<div class="empty"><${Icon} name=${icon} size=${40} /><h2>${title}</h2>${children}</div>`;
}

const STATUS = {
  available: ["ok", "Available"],
  reachable: ["ok", "Reachable"],
  succeeded: ["ok", "Succeeded"],
  built: ["ok", "Built"],
  pending: ["clock", "Pending"],
  queued: ["clock", "Queued"],
  running: ["refresh", "Running"],
  uploading: ["upload", "Uploading"],
  importing: ["refresh", "Importing"],
  unverified: ["clock", "Unverified"],
  failed: ["fail", "Failed"],
  unreachable: ["fail", "Unreachable"],
  cancelled: ["stop", "Cancelled"],
  "not built": ["fail", "Not built"],
  modified: ["warn", "Modified"],
  approved: ["ok", "Approved"],
  rejected: ["fail", "Rejected"],
};

export function StatusBadge({ status }) {
  const [icon, label] = STATUS[status] || ["clock", status];
  const tone = { ok: "ok", fail: "bad", warn: "warn", stop: "muted" }[icon] || "muted";
  return html`<span class=${`badge badge-${tone}`}><${Icon} name=${icon} size=${14} />${label}</span>`;
}

export function Button({ kind = "secondary", icon, children, busy, ...rest }) {
  return html`<button type="button" class=${`btn btn-${kind}`} disabled=${busy || rest.disabled} ...${rest}>
    ${busy ? html`<span class="spinner" aria-hidden="true"></span>` : icon && html`<${Icon} name=${icon} />`}
    ${children}
  </button>`;
}

// A labelled input with its own error line (aria-describedby ties them together).
export function Field({ id, label, error, hint, children }) {
  return html`<div class=${`field${error ? " field-invalid" : ""}`}>
    <label for=${id}>${label}</label>
    ${children}
    ${hint && !error && html`<p class="hint" id=${`${id}-hint`}>${hint}</p>`}
    ${error && html`<p class="field-error" id=${`${id}-error`} role="alert">${error}</p>`}
  </div>`;
}

// A modal dialog on the native <dialog> element: focus moves in, Escape closes it.
export function Dialog({ title, onClose, children, wide }) {
  const ref = useRef(null);
  useEffect(() => {
    const dialog = ref.current;
    if (!dialog.open) dialog.showModal();
    const cancel = (event) => {
      event.preventDefault();
      onClose();
    };
    dialog.addEventListener("cancel", cancel);
    return () => dialog.removeEventListener("cancel", cancel);
  }, []);
  return html`<dialog ref=${ref} class=${wide ? "dialog dialog-wide" : "dialog"} aria-labelledby="dialog-title">
    <header class="dialog-head">
      <h2 id="dialog-title">${title}</h2>
      <button type="button" class="icon-btn" aria-label="Close" onClick=${onClose}><${Icon} name="close" /></button>
    </header>
    ${children}
  </dialog>`;
}

export function CopyText({ text, label }) {
  const [copied, setCopied] = useState(false);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(text);
    } catch {
      const area = document.createElement("textarea");
      area.value = text;
      document.body.append(area);
      area.select();
      document.execCommand("copy");
      area.remove();
    }
    setCopied(true);
    setTimeout(() => setCopied(false), 2000);
  };
  return html`<div class="copy">
    <code>${text}</code>
    <button type="button" class="btn btn-ghost" onClick=${copy} aria-label=${`Copy ${label}`}>
      <${Icon} name=${copied ? "ok" : "copy"} />${copied ? "Copied" : "Copy"}
    </button>
  </div>`;
}

// A menu button: opens a list of actions; arrow keys move, Escape closes.
export function Menu({ label, icon = "chevron", items, kind = "secondary", disabled, id }) {
  const [open, setOpen] = useState(false);
  const root = useRef(null);
  useEffect(() => {
    if (!open) return undefined;
    const outside = (event) => root.current && !root.current.contains(event.target) && setOpen(false);
    document.addEventListener("mousedown", outside);
    root.current.querySelector("[role=menuitem]:not([disabled])")?.focus();
    return () => document.removeEventListener("mousedown", outside);
  }, [open]);
  const keys = (event) => {
    const entries = [...root.current.querySelectorAll("[role=menuitem]:not([disabled])")];
    const at = entries.indexOf(document.activeElement);
    if (event.key === "Escape") {
      setOpen(false);
      root.current.querySelector("button")?.focus();
    } else if (event.key === "ArrowDown" && entries.length) {
      event.preventDefault();
      entries[(at + 1) % entries.length].focus();
    } else if (event.key === "ArrowUp" && entries.length) {
      event.preventDefault();
      entries[(at - 1 + entries.length) % entries.length].focus();
    }
  };
  return html`<div class="menu" ref=${root} onKeyDown=${keys}>
    <button type="button" id=${id} class=${`btn btn-${kind}`} aria-haspopup="menu" aria-expanded=${open}
      disabled=${disabled} onClick=${() => setOpen(!open)}>${label}<${Icon} name=${icon} size=${16} /></button>
    ${open &&
    html`<ul class="menu-list" role="menu">
      ${items.map(
        (item) => html`<li role="none">
          <button type="button" role="menuitem" disabled=${item.disabled} title=${item.reason}
            onClick=${() => {
              setOpen(false);
              item.onSelect();
            }}>
            ${item.icon && html`<${Icon} name=${item.icon} />`}<span>${item.label}</span>
            ${item.reason && html`<small class="menu-reason">${item.reason}</small>`}
          </button>
        </li>`,
      )}
    </ul>`}
  </div>`;
}

// Run an async action, keeping its busy state and error for the caller to show.
export function useAction(action) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const run = async (...args) => {
    setBusy(true);
    setError(null);
    try {
      return await action(...args);
    } catch (caught) {
      setError(caught);
      return undefined;
    } finally {
      setBusy(false);
    }
  };
  return [run, busy, error, setError];
}

// Load data for a screen; reload() fetches again. Returns {data, error, loading, reload}.
export function useLoad(load, deps) {
  const [state, setState] = useState({ data: null, error: null, loading: true });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    const controller = new AbortController();
    setState((old) => ({ ...old, loading: true, error: null }));
    load(controller.signal).then(
      (data) => setState({ data, error: null, loading: false }),
      (error) => error.name !== "AbortError" && setState({ data: null, error, loading: false }),
    );
    return () => controller.abort();
  }, [...deps, tick]);
  return { ...state, reload: () => setTick((n) => n + 1) };
}
