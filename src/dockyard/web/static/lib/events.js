// Page-wide signals between parts of the UI that do not share state (e.g. the header's bell
// and the Access page): a window event per kind of change.
const NOTIFICATIONS = "dockyard:notifications";

export const notificationsChanged = () => window.dispatchEvent(new Event(NOTIFICATIONS));

export function onNotificationsChanged(listener) {
  window.addEventListener(NOTIFICATIONS, listener);
  return () => window.removeEventListener(NOTIFICATIONS, listener);
}
