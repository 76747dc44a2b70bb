// Sending an archive to /api/v1/archives in chunks, the way `dockyard image upload` does:
// each chunk says where it starts (Content-Range), the server answers with its offset, and
// after any failure the page asks the server for its offset and goes on from there. A
// dropped connection waits for the network to come back; a reload finds the session again
// (GET /archives) and asks for the same file, checked against what this browser remembered.
//
// Chunks go by XMLHttpRequest rather than lib/api.js's fetch: fetch cannot report how far a
// request body has been sent, and the progress bar needs that within a chunk. The requests
// carry the same header and cookie as every other call of the UI.
import { ApiError, del, get } from "../lib/api.js";

const FIRST_CHUNK = 1 << 20; // small first: progress shows at once on any connection
const MAX_CHUNK = 32 << 20;
// A chunk should take about this long: the bar stays lively, a drop loses little.
const CHUNK_SECONDS = 2;
const IMPORT_POLL_MS = 1000;
const RETRY_MS = [1000, 2000, 4000, 8000, 15000]; // then every 15 s; "online" cuts it short
const STALL_MS = 60000;
const GIVE_UP_AFTER = 5; // the server refused this many chunks in a row, not the network
// Problems that mean the archive itself was refused (the session has failed).
const REFUSALS = ["invalid-archive", "unsafe-archive", "digest-mismatch", "too-large"];

// --- what this browser remembers of its uploads (the API keeps no file name) -----------

const MEMORY_KEY = "dockyard.uploads";

function memory() {
  try {
    const found = JSON.parse(localStorage.getItem(MEMORY_KEY));
    return found && typeof found === "object" ? found : {};
  } catch {
    return {};
  }
}

export const remembered = (id) => memory()[id] || null;

export function remember(id, record) {
  localStorage.setItem(MEMORY_KEY, JSON.stringify({ ...memory(), [id]: record }));
}

export function forget(id) {
  const known = memory();
  delete known[id];
  localStorage.setItem(MEMORY_KEY, JSON.stringify(known));
}

// The files picked in this page's life, by session id: a reload loses them (the browser does
// not let a page keep a File), and the page then asks for the file again.
export const pickedFiles = new Map();

const SAMPLE = 1 << 20;

// A short fingerprint of a file's first and last MiB (FNV-1a): tells two files of one name and
// size apart (a docker save ends with its manifest). Not a security check: the server checks
// every blob's digest.
export async function fingerprint(file) {
  const parts = [file.slice(0, SAMPLE)];
  if (file.size > SAMPLE) parts.push(file.slice(Math.max(SAMPLE, file.size - SAMPLE)));
  let hash = 0x811c9dc5;
  for (const part of parts) {
    let data;
    try {
      data = new Uint8Array(await part.arrayBuffer());
    } catch {
      throw new Error(`${file.name} cannot be read: choose the archive file itself, not a folder.`);
    }
    for (let i = 0; i < data.length; i += 1) hash = Math.imul(hash ^ data[i], 0x01000193) >>> 0;
  }
  return hash.toString(16).padStart(8, "0");
}

export function fileRecord(file, print, workspace) {
  return { name: file.name, size: file.size, modified: file.lastModified, fingerprint: print, workspace };
}

// Why `file` is not the file of the upload `status` (null when it is): the size the server
// knows, and the name and fingerprint this browser remembered, must all agree.
export function notTheSameFile(status, record, file, print) {
  if (status.size !== null && file.size !== status.size) {
    const what = record ? record.name : "the file you started uploading";
    return `${file.name} has ${file.size.toLocaleString()} bytes, but ${what} has ${status.size.toLocaleString()}.`;
  }
  if (!record) return null;
  if (file.name !== record.name) return `This is ${file.name}, but the upload is of ${record.name}.`;
  if (record.fingerprint && print !== record.fingerprint) {
    return `${file.name} has the name and size of the file you started uploading, but other content: it changed since.`;
  }
  return null;
}

// --- sending ------------------------------------------------------------------------------

class Refused extends Error {}

// One request carrying bytes; resolves with {status, body} whatever the status, rejects with
// an ApiError of status 0 when the network failed. A connection can also die silently (a
// laptop changing networks): a request that has made no progress for STALL_MS is given up.
function sendBytes(method, path, blob, headers, onProgress, hold) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    hold(xhr);
    let last = Date.now();
    let stalled = false;
    const watchdog = setInterval(() => {
      if (Date.now() - last < STALL_MS) return;
      stalled = true;
      xhr.abort();
    }, 5000);
    xhr.onloadend = () => clearInterval(watchdog);
    xhr.upload.onprogress = (event) => {
      last = Date.now();
      onProgress?.(event.loaded);
    };
    xhr.open(method, `/api/v1${path}`);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.setRequestHeader("X-Dockyard-Web", "1");
    xhr.setRequestHeader("Content-Type", "application/octet-stream");
    for (const [name, value] of Object.entries(headers)) xhr.setRequestHeader(name, value);
    xhr.onload = () => {
      let body = xhr.responseText;
      try {
        body = JSON.parse(body);
      } catch {
        // a proxy's HTML error page: its text is the message
      }
      resolve({ status: xhr.status, body });
    };
    const lost = () => reject(new ApiError(0, { detail: "Dockyard cannot be reached: the connection dropped." }));
    xhr.onerror = lost;
    xhr.ontimeout = lost;
    xhr.onabort = () => (stalled ? lost() : reject(new DOMException("stopped", "AbortError")));
    xhr.send(blob);
  });
}

// Bytes per second over the last few seconds.
class Meter {
  reset(done) {
    this.samples = [[performance.now(), done]];
  }

  add(done) {
    const now = performance.now();
    this.samples.push([now, done]);
    while (this.samples.length > 2 && now - this.samples[0][0] > 6000) this.samples.shift();
  }

  speed() {
    const [t0, b0] = this.samples[0];
    const [t1, b1] = this.samples[this.samples.length - 1];
    return t1 - t0 < 700 ? null : ((b1 - b0) * 1000) / (t1 - t0);
  }
}

const retryable = (error) => error.status === 0 || error.status >= 500 || [400, 409, 416, 422].includes(error.status);
const problemType = (error) => (error.problem?.type || "").split("/").pop();

// One upload session being sent and imported. `listen` gets a snapshot after every change:
// {phase, sent, size, speed, status, error, offline}; phases: checking, need-file, sending,
// lost, importing, done, failed, error.
export class Transfer {
  constructor(id, file, listen) {
    this.id = id;
    this.file = file;
    this.listen = listen;
    this.chunk = FIRST_CHUNK;
    this.meter = new Meter();
    this.stopped = false;
    this.lost = 0; // network failures in a row: the wait before the next try grows
    this.recovering = false; // a request failed, and no chunk has got through since
    this.snapshot = { phase: "checking", sent: 0, size: file ? file.size : null, speed: null };
  }

  emit(changes) {
    if (this.stopped) return;
    this.snapshot = { ...this.snapshot, ...changes };
    this.listen(this.snapshot);
  }

  stop() {
    this.stopped = true;
    this.xhr?.abort();
    this.wake?.();
  }

  // Cut short a wait for the network (the "Retry now" button).
  retryNow() {
    this.wake?.();
  }

  async run() {
    let failures = 0;
    while (!this.stopped) {
      try {
        const status = await get(`/archives/${this.id}`);
        this.emit({ status, size: status.size ?? this.snapshot.size, sent: status.offset });
        if (status.state === "receiving") {
          if (!this.file) return this.emit({ phase: "need-file" });
          await this.send(status.offset);
          await this.complete();
        } else if (status.state === "importing") {
          this.emit({ phase: "importing", sent: status.size });
          await this.pause(IMPORT_POLL_MS, false);
        } else {
          return this.emit({ phase: status.state, error: null }); // done or failed
        }
        failures = 0;
      } catch (error) {
        if (this.stopped || error.name === "AbortError") return undefined;
        if (error instanceof Refused) return this.emit({ phase: "failed", error: null });
        if (!retryable(error)) return this.emit({ phase: "error", error });
        const network = error.status === 0;
        failures = network ? failures : failures + 1;
        if (failures > GIVE_UP_AFTER) return this.emit({ phase: "error", error });
        this.recovering = true;
        this.emit({ phase: "lost", error, speed: null, offline: !navigator.onLine, retrying: false });
        const wait = network ? RETRY_MS[Math.min(this.lost, RETRY_MS.length - 1)] : RETRY_MS[0];
        this.lost = network ? this.lost + 1 : 0;
        await this.pause(wait, true);
        this.emit({ retrying: true });
      }
    }
    return undefined;
  }

  // Wait `ms`, or until the network is back (when `network`), or until retryNow(). Offline,
  // there is no point in knocking: only the browser's "online" ends the wait.
  pause(ms, network) {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        window.removeEventListener("online", done);
        this.wake = null;
        resolve();
      };
      const timer = network && !navigator.onLine ? null : setTimeout(done, ms);
      if (network) window.addEventListener("online", done);
      this.wake = done;
    });
  }

  // While recovering from a failure the page keeps saying so, until a chunk gets through.
  progress(done) {
    this.meter.add(done);
    if (this.recovering) this.emit({ sent: done });
    else this.emit({ phase: "sending", sent: done, speed: this.meter.speed(), error: null });
  }

  async send(from) {
    const size = this.file.size;
    let offset = from;
    this.meter.reset(offset);
    if (!this.recovering) this.emit({ phase: "sending", sent: offset, size, speed: null, error: null });
    while (offset < size) {
      const length = Math.min(this.chunk, size - offset);
      const started = performance.now();
      const at = offset;
      const answer = await sendBytes(
        "PATCH",
        `/archives/${this.id}`,
        this.file.slice(offset, offset + length),
        { "Content-Range": `bytes ${offset}-${offset + length - 1}/${size}` },
        (loaded) => this.progress(at + loaded),
        (xhr) => (this.xhr = xhr),
      );
      if (answer.status === 202) {
        offset = answer.body.offset;
        this.lost = 0;
        this.recovering = false;
        this.emit({ retrying: false });
        const seconds = (performance.now() - started) / 1000;
        if (seconds < CHUNK_SECONDS / 2) this.chunk = Math.min(this.chunk * 2, MAX_CHUNK);
        else if (seconds > CHUNK_SECONDS * 2) this.chunk = Math.max(this.chunk / 2, FIRST_CHUNK);
        this.progress(offset);
      } else if (answer.status === 416 && Number.isInteger(answer.body?.offset)) {
        offset = answer.body.offset; // the server kept less (it restarted): go on from its offset
        this.meter.reset(offset);
      } else {
        throw await this.problem(answer);
      }
    }
  }

  async complete() {
    this.emit({ phase: "importing", sent: this.file.size, speed: null });
    const answer = await sendBytes("PUT", `/archives/${this.id}?wait=false`, new Blob([]), {}, null, (xhr) => (this.xhr = xhr));
    if (answer.status !== 200 && answer.status !== 202) throw await this.problem(answer);
    this.emit({ status: answer.body });
  }

  // The error an answer means; Refused when the archive was refused (the session failed).
  async problem(answer) {
    const error = new ApiError(answer.status, answer.body);
    if (answer.status === 401) {
      await get(`/archives/${this.id}`).catch(() => {}); // lets the UI notice it was signed out
      return error;
    }
    if (REFUSALS.includes(problemType(error))) {
      const status = await get(`/archives/${this.id}`).catch(() => null);
      if (status) this.emit({ status });
      return new Refused(error.message);
    }
    if (answer.status === 409 || answer.status === 422) {
      const status = await get(`/archives/${this.id}`).catch(() => null);
      if (status?.state === "failed") {
        this.emit({ status });
        return new Refused(status.reason);
      }
    }
    return error;
  }
}

// Remove an upload session and this browser's memory of it.
export async function discard(id) {
  try {
    await del(`/archives/${id}`);
  } catch (error) {
    if (error.status !== 404) throw error;
  }
  forget(id);
  pickedFiles.delete(id);
}

// What a refusal means, in a user's words, and what to do about it.
export function refusalText(reason) {
  const text = reason || "the archive could not be read";
  return `Dockyard cannot make an image of this file: ${text.replace(/\.$/, "")}.`;
}
