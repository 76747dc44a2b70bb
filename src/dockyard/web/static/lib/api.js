// The one way the UI talks to Dockyard: /api/v1 with the session cookie. Every change carries
// the X-Dockyard-Web header (the server refuses cookie-authenticated changes without it), and
// every failure becomes an ApiError whose message is the server's own words.

export class ApiError extends Error {
  constructor(status, problem) {
    const detail = typeof problem === "object" && problem ? problem.detail || problem.title : problem;
    super(detail || `the server answered ${status}`);
    this.status = status;
    this.problem = typeof problem === "object" ? problem : null;
  }

  // Field-level messages from a 422: {"body.name": "..."} keyed by the last location part.
  get fields() {
    const out = {};
    for (const e of this.problem?.errors || []) out[e.location.split(".").pop()] = e.message;
    return out;
  }
}

const listeners = new Set();
// Called with no arguments whenever the server says the session has ended (401).
export function onSignedOut(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

export async function api(method, path, body, { signal, raw = false } = {}) {
  const headers = { Accept: "application/json", "X-Dockyard-Web": "1" };
  let payload;
  if (body instanceof Blob || body instanceof ArrayBuffer) {
    payload = body;
    headers["Content-Type"] = "application/octet-stream";
  } else if (body !== undefined) {
    payload = JSON.stringify(body);
    headers["Content-Type"] = "application/json";
  }
  let response;
  try {
    response = await fetch(`/api/v1${path}`, { method, headers, body: payload, credentials: "same-origin", signal });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, { detail: "Dockyard cannot be reached: check your connection, then try again." });
  }
  if (raw && response.ok) return response;
  if (response.status === 204) return null;
  const type = response.headers.get("content-type") || "";
  const data = type.includes("json") ? await response.json() : await response.text();
  if (!response.ok) {
    const error = new ApiError(response.status, data);
    if (response.status === 401 && path !== "/session") listeners.forEach((listener) => listener());
    throw error;
  }
  return data;
}

export const get = (path, options) => api("GET", path, undefined, options);
export const post = (path, body, options) => api("POST", path, body ?? {}, options);
export const put = (path, body, options) => api("PUT", path, body ?? {}, options);
export const patch = (path, body, options) => api("PATCH", path, body ?? {}, options);
export const del = (path, options) => api("DELETE", path, undefined, options);

// A query string from an object, leaving out empty values.
export function query(params) {
  const q = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") q.set(key, String(value));
  }
  const text = q.toString();
  return text ? `?${text}` : "";
}

// Image names contain slashes (workspace/name); each part is escaped, the slashes are kept.
export const imagePath = (name) => name.split("/").map(encodeURIComponent).join("/");
