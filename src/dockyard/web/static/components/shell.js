// The frame around every signed-in page: the header with the navigation, the workspace
// switcher, notifications with their unread count, and the user's menu.
import { useEffect, useState } from "preact/hooks";
import { del, get, post } from "../lib/api.js";
import { html } from "../lib/html.js";
import { notificationsChanged, onNotificationsChanged } from "../lib/events.js";
import { Icon } from "../lib/icons.js";
import { Link, navigate, useLocation } from "../lib/router.js";
import { useSession } from "../lib/session.js";
import { ago } from "../lib/format.js";
import { Menu } from "./ui.js";
import { NAV } from "../routes.js";
import { SearchBox } from "../pages/search.js";

const NOTE_TEXT = {
  "access_request.approved": (p) => `Your access to ${p.repository} was approved`,
  "access_request.rejected": (p) => `Your request for ${p.repository} was rejected`,
  "access_request.created": (p) => `New access request for ${p.repository}`,
};
const noteText = (n) => (NOTE_TEXT[n.kind] || (() => n.kind.replace(/[._]/g, " ")))(n.payload);

function Notifications() {
  const [items, setItems] = useState([]);
  const [open, setOpen] = useState(false);
  const load = () => get("/notifications").then(setItems, () => {});
  useEffect(() => {
    load();
    const timer = setInterval(load, 30000);
    const unsubscribe = onNotificationsChanged(load);
    return () => {
      clearInterval(timer);
      unsubscribe();
    };
  }, []);
  const unread = items.filter((n) => !n.read).length;
  const readAll = async () => {
    await post("/notifications/read");
    notificationsChanged();
  };
  return html`<div class="menu">
    <button type="button" class="icon-btn" aria-haspopup="true" aria-expanded=${open} onClick=${() => setOpen(!open)}
      aria-label=${unread ? `Notifications, ${unread} unread` : "Notifications"}>
      <${Icon} name="bell" />${unread > 0 && html`<span class="count" aria-hidden="true">${unread}</span>`}
    </button>
    ${open &&
    html`<div class="menu-list notes" role="region" aria-label="Notifications">
      ${items.length === 0 && html`<p class="muted">No notifications.</p>`}
      <ul>
        ${items.slice(0, 8).map(
          (n) => html`<li class=${n.read ? "" : "unread"}><span>${noteText(n)}</span><small>${ago(n.created_at)}</small></li>`,
        )}
      </ul>
      <div class="row">
        ${unread > 0 && html`<button type="button" class="btn btn-ghost" onClick=${readAll}>Mark all read</button>`}
        <span class="notes-all" onClick=${() => setOpen(false)}><${Link} href="/access">All requests and notifications</${Link}></span>
      </div>
    </div>`}
  </div>`;
}

function WorkspaceSwitcher() {
  const { workspaces, workspace, setWorkspace } = useSession();
  if (!workspaces.length) return null;
  return html`<label class="switcher">
    <span class="visually-hidden">Workspace</span>
    <${Icon} name="layers" />
    <select value=${workspace} onChange=${(e) => setWorkspace(e.target.value)} aria-label="Workspace">
      ${workspaces.map((w) => html`<option value=${w.name}>${w.name}</option>`)}
    </select>
  </label>`;
}

export function Shell({ children }) {
  const { user, signOut } = useSession();
  const { path } = useLocation();
  const nav = NAV.filter((entry) => !entry.admin || user.is_admin).map((entry) => [entry.href, entry.label]);
  const leave = async () => {
    try {
      await del("/session");
    } finally {
      signOut();
    }
  };
  return html`<div class="shell">
    <a class="skip" href="#main">Skip to content</a>
    <header class="topbar">
      <${Link} class="brand" href="/repository"><${Icon} name="box" size=${22} /><span>Dockyard</span></${Link}>
      <nav aria-label="Main">
        <ul>
          ${nav.map(
            ([href, label]) =>
              html`<li><${Link} href=${href} aria-current=${path.startsWith(href) ? "page" : undefined}>${label}</${Link}></li>`,
          )}
        </ul>
      </nav>
      <div class="topbar-end">
        <${SearchBox} />
        <${WorkspaceSwitcher} />
        <${Notifications} />
        <${Menu}
          id="user-menu"
          kind="ghost"
          label=${html`<${Icon} name="user" /><span class="user-name">${user.username}</span>`}
          items=${[
            { label: "Access tokens", icon: "key", onSelect: () => navigate("/account/tokens") },
            { label: "Sign out", icon: "signout", onSelect: leave },
          ]}
        />
      </div>
    </header>
    <main id="main" tabindex="-1">${children}</main>
  </div>`;
}
