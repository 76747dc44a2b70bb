// Line icons drawn for Dockyard on a 24×24 grid (stroke, no fill): no icon font, no CDN.
import { html } from "./html.js";

const PATHS = {
  bell: "M6 16V11a6 6 0 0 1 12 0v5l2 2H4zM10 20a2 2 0 0 0 4 0",
  user: "M12 12a4 4 0 1 0 0-8 4 4 0 0 0 0 8zM4 21a8 8 0 0 1 16 0",
  chevron: "M6 9l6 6 6-6",
  search: "M11 18a7 7 0 1 0 0-14 7 7 0 0 0 0 14zM21 21l-5-5",
  plus: "M12 5v14M5 12h14",
  download: "M12 4v11M7 10l5 5 5-5M5 20h14",
  upload: "M12 20V9M7 14l5-5 5 5M5 4h14",
  trash: "M4 7h16M10 11v6M14 11v6M6 7l1 13h10l1-13M9 7V4h6v3",
  ok: "M12 21a9 9 0 1 0 0-18 9 9 0 0 0 0 18zM8 12l3 3 5-6",
  fail: "M12 21a9 9 0 1 0 0-18 9 9 0 0 0 0 18zM9 9l6 6M15 9l-6 6",
  warn: "M12 3l10 18H2zM12 10v5M12 18v.5",
  clock: "M12 21a9 9 0 1 0 0-18 9 9 0 0 0 0 18zM12 7v5l3 3",
  link: "M14 4h6v6M20 4l-9 9M18 14v6H4V6h6",
  box: "M12 3l8 4.5v9L12 21l-8-4.5v-9zM4 7.5l8 4.5 8-4.5M12 12v9",
  refresh: "M20 11a8 8 0 1 0-2.3 5.7M20 5v6h-6",
  copy: "M9 9h11v11H9zM5 15H4V4h11v1",
  columns: "M4 4h16v16H4zM10 4v16M15 4v16",
  signout: "M15 4h4v16h-4M10 8l-4 4 4 4M6 12h10",
  key: "M8 15a4 4 0 1 0 0-8 4 4 0 0 0 0 8zM11 11h10M17 11v3M20 11v2",
  settings: "M12 15a3 3 0 1 0 0-6 3 3 0 0 0 0 6zM12 2v3M12 19v3M2 12h3M19 12h3M4.9 4.9l2.1 2.1M17 17l2.1 2.1M4.9 19.1L7 17M17 7l2.1-2.1",
  lock: "M6 11h12v10H6zM8 11V7a4 4 0 0 1 8 0v4",
  play: "M7 4l13 8-13 8z",
  stop: "M6 6h12v12H6z",
  file: "M6 3h8l4 4v14H6zM14 3v4h4",
  layers: "M12 3l9 5-9 5-9-5zM3 13l9 5 9-5",
  close: "M6 6l12 12M18 6L6 18",
  menu: "M4 6h16M4 12h16M4 18h16",
  filter: "M4 5h16l-6 8v6l-4-2v-4z",
};

export function Icon({ name, label, size = 18 }) {
  const path = PATHS[name] || PATHS.box;
  return html`<svg class="icon" width=${size} height=${size} viewBox="0 0 24 24" fill="none" stroke="currentColor"
    stroke-width="1.8" stroke-linecap="round" stroke-linejoin="round" aria-hidden=${label ? undefined : "true"}
    role=${label ? "img" : undefined} aria-label=${label}><path d=${path} /></svg>`;
}
