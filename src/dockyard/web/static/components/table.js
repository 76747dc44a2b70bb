// A data table whose rows come from the server a page at a time: sortable headers (aria-sort),
// a column chooser remembered in this browser, optional row selection, and paging controls.
import { useState } from "preact/hooks";
import { html } from "../lib/html.js";
import { Icon } from "../lib/icons.js";

export function useColumns(storageKey, columns) {
  const defaults = columns.filter((c) => !c.hidden).map((c) => c.key);
  const [shown, setShown] = useState(() => {
    try {
      const saved = JSON.parse(localStorage.getItem(storageKey));
      if (Array.isArray(saved)) return saved.filter((key) => columns.some((c) => c.key === key));
    } catch {
      // a damaged saved choice falls back to the defaults
    }
    return defaults;
  });
  const toggle = (key) => {
    const next = shown.includes(key) ? shown.filter((k) => k !== key) : columns.map((c) => c.key).filter((k) => k === key || shown.includes(k));
    setShown(next);
    localStorage.setItem(storageKey, JSON.stringify(next));
  };
  return [columns.filter((c) => c.always || shown.includes(c.key)), shown, toggle];
}

export function ColumnChooser({ columns, shown, toggle }) {
  const [open, setOpen] = useState(false);
  return html`<div class="menu">
    <button type="button" class="btn btn-secondary" aria-expanded=${open} aria-controls="column-chooser"
      onClick=${() => setOpen(!open)}><${Icon} name="columns" />Columns</button>
    ${open &&
    html`<fieldset class="menu-list chooser" id="column-chooser">
      <legend>Show columns</legend>
      ${columns
        .filter((c) => !c.always)
        .map(
          (c) => html`<label><input type="checkbox" checked=${shown.includes(c.key)} onChange=${() => toggle(c.key)} />${c.label}</label>`,
        )}
      <button type="button" class="btn btn-ghost" onClick=${() => setOpen(false)}>Done</button>
    </fieldset>`}
  </div>`;
}

export function DataTable({ caption, columns, rows, rowKey, sort, order, onSort, selected, onSelect, busy }) {
  const allSelected = selected && rows.length > 0 && rows.every((row) => selected.has(rowKey(row)));
  const toggleAll = () => onSelect(allSelected ? new Set() : new Set(rows.map(rowKey)));
  const toggle = (key) => {
    const next = new Set(selected);
    if (next.has(key)) next.delete(key);
    else next.add(key);
    onSelect(next);
  };
  const header = (c) => {
    if (!c.sort) return html`<th scope="col">${c.label}</th>`;
    const active = sort === c.sort;
    const ariaSort = active ? (order === "desc" ? "descending" : "ascending") : "none";
    const next = active && order === "asc" ? "desc" : "asc";
    return html`<th scope="col" aria-sort=${ariaSort}>
      <button type="button" class="sort" onClick=${() => onSort(c.sort, next)}>
        ${c.label}<span class="sort-mark" aria-hidden="true">${active ? (order === "desc" ? "▼" : "▲") : "↕"}</span>
      </button>
    </th>`;
  };
  return html`<div class="table-wrap" aria-busy=${busy ? "true" : "false"}>
    <table class="data">
      <caption class="visually-hidden">${caption}</caption>
      <thead>
        <tr>
          ${selected &&
          html`<th scope="col" class="select"><input type="checkbox" aria-label="Select all rows on this page"
            checked=${allSelected} onChange=${toggleAll} /></th>`}
          ${columns.map(header)}
        </tr>
      </thead>
      <tbody>
        ${rows.map((row) => {
          const key = rowKey(row);
          return html`<tr key=${key} class=${selected?.has(key) ? "selected" : ""}>
            ${selected &&
            html`<td class="select"><input type="checkbox" aria-label=${`Select ${key}`} checked=${selected.has(key)}
              onChange=${() => toggle(key)} /></td>`}
            ${columns.map((c) => html`<td class=${c.className || ""}>${c.render ? c.render(row) : row[c.key]}</td>`)}
          </tr>`;
        })}
      </tbody>
    </table>
  </div>`;
}

// A list's total is exact up to the server's cap; beyond it (exact false) the pager says
// "1–50 of 1,000+" and Next stays enabled while pages come back full.
export function Pager({ total, exact = true, shown, limit, offset, onPage }) {
  if (!total && !shown) return null;
  const first = offset + 1;
  const last = exact ? Math.min(offset + limit, total) : offset + (shown ?? limit);
  const of = exact ? total.toLocaleString() : `${Math.max(total, last).toLocaleString()}+`;
  const more = exact ? last < total : (shown ?? limit) >= limit;
  return html`<nav class="pager" aria-label="Pages">
    <span>${first}–${last} of ${of}</span>
    <button type="button" class="btn btn-secondary" disabled=${offset === 0} onClick=${() => onPage(Math.max(0, offset - limit))}>Previous</button>
    <button type="button" class="btn btn-secondary" disabled=${!more} onClick=${() => onPage(offset + limit)}>Next</button>
  </nav>`;
}
