// The board's photos: fetched with the board's token and shown from object URLs.
//
// An <img src> cannot carry a token, and tokens never go into URLs, so every photo is fetched
// (`GET /api/labs/{labId}/photos/{id}` with `Authorization: Bearer …`) into a blob and shown
// from its object URL (the page's CSP allows `img-src blob:`).
//
//   const photos = photoLoader({ labId, token: () => …, renew: async () => … });
//   const stop = photos.watch(id, (s) => { … s.state: "loading" | "waiting" | "ready" | "failed" });
//   stop();            // this card no longer shows the photo
//   photos.destroy();  // the page unmounts: every URL revoked, every timer stopped
//
// - One request per id however many cards watch it; every watcher gets the same URL.
// - At most `maxConcurrent` requests at once; the rest wait their turn, first asked first.
// - 404: the photo is not on the server yet (its phone is still uploading): "waiting", asked
//   again with backoff until it comes. A network failure or a 5xx: asked again with backoff too.
// - 401: the token is renewed once (`renew`) and the request made again; without a new token
//   the photo fails with a sentence.
// - Other refusals (400, 403, 415 …): "failed", with a sentence; not asked again.
// - When the last watcher stops, the URL is revoked and any retry is cancelled.

import { backoffDelay } from "../backoff";
import { photoPath } from "../photoqueue";

export type PhotoLoad =
  | { state: "loading" }
  /** Not on the server yet: the phone that took it is still uploading it. */
  | { state: "waiting" }
  | { state: "ready"; url: string }
  | { state: "failed"; reason: string };

export interface PhotoLoaderOptions {
  labId: string;
  /** The token the board uses for its API calls (read at each request). */
  token(): string | undefined;
  /** Renews an expired token; the new token, or undefined when it cannot. */
  renew(): Promise<string | undefined>;
  /** Requests at once (4 by default). */
  maxConcurrent?: number;
  fetch?: typeof fetch;
  createObjectURL?: (blob: Blob) => string;
  revokeObjectURL?: (url: string) => void;
  /** Runs `fn` after `ms` (setTimeout by default); returns a function that cancels it. */
  schedule?: (fn: () => void, ms: number) => () => void;
  /** The delay before retry `attempt` (0 first), backoff.ts's by default: 1 s doubling to 15 s. */
  retryDelay?: (attempt: number) => number;
}

export interface PhotoLoader {
  /** Calls `listener` at once with the photo's state and on every change until the returned stop. */
  watch(id: string, listener: (load: PhotoLoad) => void): () => void;
  /** Revokes every URL and stops every request and retry (the page unmounts). */
  destroy(): void;
}

export const PHOTO_EXPIRED = "This photo could not be loaded: the board's sign-in has expired. Reload the board.";
export const PHOTO_MISSING = "The server no longer has this lab's photos.";

interface Entry {
  load: PhotoLoad;
  listeners: Set<(load: PhotoLoad) => void>;
  attempt: number;
  queued: boolean;
  running: boolean;
  cancelRetry?: () => void;
  abort?: AbortController;
}

export function photoLoader(opts: PhotoLoaderOptions): PhotoLoader {
  const max = Math.max(1, opts.maxConcurrent ?? 4);
  const doFetch = opts.fetch ?? ((input: RequestInfo | URL, init?: RequestInit) => fetch(input, init));
  const createUrl = opts.createObjectURL ?? ((b: Blob) => URL.createObjectURL(b));
  const revokeUrl = opts.revokeObjectURL ?? ((u: string) => URL.revokeObjectURL(u));
  const schedule =
    opts.schedule ??
    ((fn: () => void, ms: number) => {
      const t = setTimeout(fn, ms);
      return () => clearTimeout(t);
    });
  const retryDelay = opts.retryDelay ?? ((attempt: number) => backoffDelay(attempt, Math.random()));
  const entries = new Map<string, Entry>();
  const queue: string[] = [];
  let active = 0;
  let destroyed = false;

  const set = (e: Entry, load: PhotoLoad) => {
    e.load = load;
    for (const l of [...e.listeners]) l(load);
  };

  const pump = () => {
    while (!destroyed && active < max && queue.length > 0) {
      const id = queue.shift()!;
      const e = entries.get(id);
      if (!e || !e.queued) continue;
      e.queued = false;
      void run(id, e);
    }
  };

  const enqueue = (id: string, e: Entry) => {
    if (e.queued || e.running) return;
    e.queued = true;
    queue.push(id);
    pump();
  };

  const retryLater = (id: string, e: Entry) => {
    const ms = retryDelay(e.attempt);
    e.attempt += 1;
    e.cancelRetry = schedule(() => {
      e.cancelRetry = undefined;
      if (entries.get(id) === e) enqueue(id, e);
    }, ms);
  };

  /** One GET; undefined when the network failed. */
  const get = async (id: string, token: string, signal: AbortSignal): Promise<Response | undefined> => {
    try {
      return await doFetch(photoPath(opts.labId, id), {
        method: "GET",
        headers: { Authorization: `Bearer ${token}` },
        credentials: "omit",
        signal,
      });
    } catch {
      return undefined;
    }
  };

  const run = async (id: string, e: Entry) => {
    e.running = true;
    active += 1;
    const abort = new AbortController();
    e.abort = abort;
    try {
      let token = opts.token();
      let res = token ? await get(id, token, abort.signal) : undefined;
      if (token && res?.status === 401 && entries.get(id) === e) {
        token = await opts.renew();
        res = token && entries.get(id) === e ? await get(id, token, abort.signal) : undefined;
        if (!token) {
          set(e, { state: "failed", reason: PHOTO_EXPIRED });
          return;
        }
      }
      if (!token) {
        set(e, { state: "failed", reason: PHOTO_EXPIRED });
        return;
      }
      if (entries.get(id) !== e) return;
      if (res?.ok) {
        let blob: Blob | undefined;
        try {
          blob = await res.blob();
        } catch {
          blob = undefined;
        }
        if (entries.get(id) !== e) return;
        if (blob) {
          set(e, { state: "ready", url: createUrl(blob) });
          return;
        }
        res = undefined;
      }
      if (res?.status === 404) {
        if (e.load.state !== "waiting") set(e, { state: "waiting" });
        retryLater(id, e);
      } else if (!res || res.status >= 500 || res.status === 429 || res.status === 408) {
        // Not reached, or the server is busy: keep what is shown and ask again.
        retryLater(id, e);
      } else if (res.status === 401) {
        set(e, { state: "failed", reason: PHOTO_EXPIRED });
      } else if (res.status === 410) {
        set(e, { state: "failed", reason: PHOTO_MISSING });
      } else {
        set(e, { state: "failed", reason: `This photo could not be loaded (the server answered ${res.status}).` });
      }
    } finally {
      e.running = false;
      e.abort = undefined;
      active -= 1;
      pump();
    }
  };

  const drop = (id: string, e: Entry) => {
    e.cancelRetry?.();
    e.cancelRetry = undefined;
    e.abort?.abort();
    e.queued = false;
    entries.delete(id);
    if (e.load.state === "ready") revokeUrl(e.load.url);
  };

  return {
    watch(id, listener) {
      if (destroyed) {
        listener({ state: "failed", reason: "The board was closed." });
        return () => {};
      }
      let e = entries.get(id);
      if (!e) {
        e = { load: { state: "loading" }, listeners: new Set(), attempt: 0, queued: false, running: false };
        entries.set(id, e);
        enqueue(id, e);
      }
      const entry = e;
      entry.listeners.add(listener);
      listener(entry.load);
      let stopped = false;
      return () => {
        if (stopped) return;
        stopped = true;
        entry.listeners.delete(listener);
        if (entry.listeners.size === 0 && entries.get(id) === entry) drop(id, entry);
      };
    },
    destroy() {
      destroyed = true;
      for (const [id, e] of [...entries]) drop(id, e);
      queue.length = 0;
    },
  };
}
