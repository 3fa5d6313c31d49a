// The photos waiting on this phone, and their upload. A photo taken offline is saved in
// IndexedDB (database `labboard-photos`, store `photos`, keyed by [labId, id]) before anything is
// sent, so it survives a reload or a closed tab, and goes up to the server exactly once, with
// `PUT /api/labs/{labId}/photos/{sha256}`.
//
// How the phone uses it (web-client/src/phone/photos.ts):
//   - After `preparePhoto` (photo.ts): `await photoQueue.add(labId, prepared, "draft")` while the
//     note is written (a draft is never uploaded; `discardDraft` when the coach takes it off);
//     `release(labId, ids)` when the note is sent, with `prepared.id` in the note's photo ids. The note and the photo travel separately: the note
//     with the board's sync, the photo here; the board shows a thumbnail from `get(labId, id)`
//     (an object URL of its blob) until the server has it, and from `GET …/photos/{id}` after.
//   - Upload with `drain(labId, token, uploadPhoto)`: when the lab page opens, after `add`, when
//     the sync socket comes back online (LabSocket's onState(true)) and on the browser's `online`
//     event. When the result has `stopped` (no network, a server error, an expired sign-in:
//     `stopped.status === 401` means renew the token first), call it again after
//     `backoffDelay(attempt, Math.random())` (backoff.ts), counting attempts up from 0 and
//     resetting them after a drain without `stopped`. Calling it while one runs is safe: the
//     running one picks up the new photos and both calls get its result.
//   - Show each photo's state from `list(labId)`: "pending" (waiting on this phone), "stored"
//     (on the server), "refused" with `reason`, a sentence for the coach (e.g. "The lab's photo
//     space on the server is full…"). `requeue(labId, id)` offers a refused photo again.
//   - `forgetLab(labId)` when the lab is forgotten or deleted on this device.
//
// Decisions:
//   - `markStored` keeps the bytes, in state "stored": the phone can show its own photos without
//     the network and without a token, and a stored photo is never offered for upload again
//     (`add` of the same photo keeps its state). They go with `forgetLab`.
//   - The bytes are kept as an ArrayBuffer with their type, not as a Blob: Safari has failed to
//     store Blobs in IndexedDB in several versions, and an ArrayBuffer works everywhere.
//   - A refusal (400, 404, 409, 413, 415, 507 and other 4xx answers) is recorded with its reason
//     and not retried; no network, a timeout, 401, 408, 429 and 5xx stop the drain to be retried.
//   - Only one drain per lab and database runs in this page (and across tabs where the browser
//     has Web Locks, which needs https or localhost; phones on plain http have only the in-page
//     guard); each photo's state is read again just before its upload. Should two tabs still
//     upload one photo, the server answers the second 200 and stores it once.

import { UNREACHABLE } from "./api";
import type { PhotoType, PreparedPhoto } from "./photo";

export const PHOTO_DB = "labboard-photos";
const STORE = "photos";
const BY_LAB = "labId";

/** How the server answered an upload, as the queue acts on it. */
export type UploadResult =
  | { state: "stored" }
  /** Try again later: no network, a timeout, a server error, or an expired sign-in (401). */
  | { state: "retry"; reason: string; status?: number; retryAfterSeconds?: number }
  /** Never try this photo again: the reason, in words for the coach. */
  | { state: "refused"; status: number; reason: string };

export type Upload = (labId: string, token: string, id: string, blob: Blob) => Promise<UploadResult>;

/** The photo's URL on this origin, for PUT and GET. */
export function photoPath(labId: string, id: string): string {
  return `/api/labs/${encodeURIComponent(labId)}/photos/${encodeURIComponent(id)}`;
}

/** Answers that will not change by trying again. */
const REFUSALS: Record<number, string> = {
  400: "The server could not check this photo: it arrived damaged or under the wrong name. Take it again.",
  404: "This lab is no longer on the server, or this sign-in is for another lab. The photo stays on this phone.",
  409: "This lab has ended, so it takes no new photos. The photo stays on this phone.",
  413: "This photo is larger than the server accepts. Take it again.",
  415: "The server could not read this photo as a JPEG, PNG or WebP picture. Take it again.",
  507: "The lab's photo space on the server is full, so no more photos can be added to this lab. The photo stays on this phone.",
};

const EXPIRED = "Your sign-in for this lab has expired. Sign in again; the photo waits on this phone.";
const TOO_SLOW = "The upload took too long. The photo waits on this phone and will be sent again.";

/** Whether an answer with this status is worth trying again later. */
export function isRetryStatus(status: number): boolean {
  return status === 0 || status === 401 || status === 408 || status === 425 || status === 429 || (status >= 500 && status !== 507);
}

/**
 * What an answer means for the queue. `words`: the server's `{"error"}` text, used for answers
 * this client has no sentence of its own for.
 */
export function uploadResultFor(status: number, words?: string, retryAfterSeconds?: number): UploadResult {
  if (status === 200 || status === 201) return { state: "stored" };
  if (isRetryStatus(status)) {
    const reason =
      status === 0 ? UNREACHABLE : status === 401 ? EXPIRED : `The server answered ${status}. The photo waits on this phone and will be sent again.`;
    return retryAfterSeconds ? { state: "retry", reason, status, retryAfterSeconds } : { state: "retry", reason, status };
  }
  const reason = REFUSALS[status] ?? (words ? `The server refused this photo: ${words}` : `The server refused this photo (${status}).`);
  return { state: "refused", status, reason };
}

export interface UploadOptions {
  fetch?: typeof fetch;
  /** Give up on an upload after this long (default 60 s); school Wi-Fi can hang a request. */
  timeoutMs?: number;
}

/** Uploads one photo: `PUT /api/labs/{labId}/photos/{id}` with the lab's token. Never throws. */
export async function uploadPhoto(labId: string, token: string, id: string, blob: Blob, opts: UploadOptions = {}): Promise<UploadResult> {
  const doFetch = opts.fetch ?? fetch;
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, opts.timeoutMs ?? 60_000);
  try {
    let res: Response;
    try {
      res = await doFetch(photoPath(labId, id), {
        method: "PUT",
        headers: { Authorization: `Bearer ${token}`, "Content-Type": blob.type || "application/octet-stream" },
        body: blob,
        cache: "no-store",
        credentials: "omit",
        signal: controller.signal,
      });
    } catch {
      return { state: "retry", reason: timedOut ? TOO_SLOW : UNREACHABLE, status: 0 };
    }
    let words: string | undefined;
    if (!res.ok) {
      try {
        const json = JSON.parse(await res.text()) as { error?: unknown };
        if (typeof json?.error === "string" && json.error) words = json.error;
      } catch {
        /* not JSON */
      }
    }
    const retry = Number(res.headers.get("Retry-After"));
    return uploadResultFor(res.status, words, Number.isFinite(retry) && retry > 0 ? retry : undefined);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * "draft": attached to a note still being written; kept on the phone, never uploaded (the coach
 * may still take it off). "pending": on a sent note, waiting for upload. "stored": the server has
 * it. "refused": the server will not take it (`reason` says why).
 */
export type PhotoState = "draft" | "pending" | "stored" | "refused";

/** A photo this phone holds for a lab. */
export interface QueuedPhoto {
  labId: string;
  id: string;
  blob: Blob;
  type: PhotoType;
  /** Bytes. */
  size: number;
  width: number;
  height: number;
  /** When it was added (ms since the epoch). */
  addedAt: number;
  state: PhotoState;
  /** When the server confirmed it ("stored"). */
  storedAt?: number;
  /** The refusal's HTTP status ("refused"). */
  status?: number;
  /** Why it was refused, for the coach ("refused"); why the last try failed ("pending"). */
  reason?: string;
  /** Uploads tried and not finished (no network, server errors). */
  attempts: number;
}

/** What IndexedDB holds. */
interface Row extends Omit<QueuedPhoto, "blob"> {
  bytes: ArrayBuffer;
}

function toPhoto(row: Row): QueuedPhoto {
  const { bytes, ...rest } = row;
  return { ...rest, blob: new Blob([bytes], { type: row.type }) };
}

export interface DrainResult {
  /** Photos the server confirmed in this drain. */
  uploaded: string[];
  /** Photos refused in this drain, with the reason. */
  refused: { id: string; status: number; reason: string }[];
  /** Set when the drain stopped on a failure worth retrying later (see the header). */
  stopped?: { reason: string; status?: number; retryAfterSeconds?: number };
  /** Photos still waiting. */
  pending: number;
}

type Locks = Pick<LockManager, "request">;

export interface PhotoQueueOptions {
  /** The IndexedDB to use (tests pass fake-indexeddb's). */
  indexedDB?: IDBFactory;
  /** The database name (default `labboard-photos`). */
  name?: string;
  now?: () => number;
  /** Web Locks, to keep two tabs from draining one lab at once; null for none. */
  locks?: Locks | null;
}

function request<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error ?? new Error("IndexedDB request failed"));
  });
}

function finished(tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error ?? new Error("IndexedDB transaction failed"));
    tx.onabort = () => reject(tx.error ?? new Error("IndexedDB transaction aborted"));
  });
}

const NO_SPACE = "This phone has no room left to keep the photo. Free some space, then take it again.";

/** Drains running in this page, by database and lab. */
const running = new Map<string, { promise: Promise<DrainResult>; again?: { token: string; upload: Upload } }>();

export class PhotoQueue {
  readonly #factory: IDBFactory | undefined;
  readonly #name: string;
  readonly #now: () => number;
  readonly #locks: Locks | undefined;
  #db: Promise<IDBDatabase> | undefined;

  constructor(opts: PhotoQueueOptions = {}) {
    this.#factory = opts.indexedDB ?? (typeof indexedDB !== "undefined" ? indexedDB : undefined);
    this.#name = opts.name ?? PHOTO_DB;
    this.#now = opts.now ?? Date.now;
    const nav = typeof navigator !== "undefined" ? (navigator as { locks?: Locks }) : undefined;
    this.#locks = opts.locks === null ? undefined : (opts.locks ?? nav?.locks);
  }

  #open(): Promise<IDBDatabase> {
    if (!this.#db) {
      const factory = this.#factory;
      this.#db = new Promise<IDBDatabase>((resolve, reject) => {
        if (!factory) throw new Error("This browser cannot keep photos (no IndexedDB). Try another browser.");
        const r = factory.open(this.#name, 1);
        r.onupgradeneeded = () => {
          const store = r.result.createObjectStore(STORE, { keyPath: ["labId", "id"] });
          store.createIndex(BY_LAB, "labId");
        };
        r.onsuccess = () => {
          const db = r.result;
          // A newer version of the app in another tab wants to upgrade: let it.
          db.onversionchange = () => {
            db.close();
            this.#db = undefined;
          };
          resolve(db);
        };
        r.onerror = () => reject(r.error ?? new Error("This browser could not open its photo storage."));
        r.onblocked = () => reject(new Error("Close Labboard's other tabs, then try again."));
      });
      this.#db.catch(() => (this.#db = undefined));
    }
    return this.#db;
  }

  async #row(labId: string, id: string): Promise<Row | undefined> {
    const db = await this.#open();
    return request(db.transaction(STORE, "readonly").objectStore(STORE).get([labId, id]) as IDBRequest<Row | undefined>);
  }

  async #rows(labId: string): Promise<Row[]> {
    const db = await this.#open();
    const rows = await request(db.transaction(STORE, "readonly").objectStore(STORE).index(BY_LAB).getAll(labId) as IDBRequest<Row[]>);
    return rows.sort((a, b) => a.addedAt - b.addedAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /** Changes a stored row in one transaction; nothing when it is gone. */
  async #update(labId: string, id: string, fn: (row: Row) => Row | undefined): Promise<Row | undefined> {
    const db = await this.#open();
    const tx = db.transaction(STORE, "readwrite");
    const store = tx.objectStore(STORE);
    const row = (await request(store.get([labId, id]) as IDBRequest<Row | undefined>)) ?? undefined;
    const next = row ? fn(row) : undefined;
    if (next) store.put(next);
    await finished(tx);
    return next ?? row;
  }

  /**
   * Keeps a prepared photo for `labId`, waiting for upload ("pending"), or as a draft that is not
   * uploaded until `release`. The same photo again (same bytes, same id) keeps the one there, its
   * state included, so it is never uploaded twice.
   */
  async add(labId: string, prepared: PreparedPhoto, state: "pending" | "draft" = "pending"): Promise<QueuedPhoto> {
    // Read the bytes before the transaction: it would commit while we wait on the Blob.
    const bytes = await prepared.blob.arrayBuffer();
    const db = await this.#open();
    const tx = db.transaction(STORE, "readwrite");
    const store = tx.objectStore(STORE);
    const before = await request(store.get([labId, prepared.id]) as IDBRequest<Row | undefined>);
    const row: Row = before ?? {
      labId,
      id: prepared.id,
      bytes,
      type: prepared.type,
      size: bytes.byteLength,
      width: prepared.width,
      height: prepared.height,
      addedAt: this.#now(),
      state,
      attempts: 0,
    };
    if (!before) store.put(row);
    try {
      await finished(tx);
    } catch (e) {
      if (e instanceof Error && e.name === "QuotaExceededError") throw new Error(NO_SPACE);
      throw e;
    }
    return toPhoto(row);
  }

  /** One photo of the lab, whatever its state (to show it on the phone), or undefined. */
  async get(labId: string, id: string): Promise<QueuedPhoto | undefined> {
    const row = await this.#row(labId, id);
    return row ? toPhoto(row) : undefined;
  }

  /** Every photo this phone holds for the lab, oldest first. */
  async list(labId: string): Promise<QueuedPhoto[]> {
    return (await this.#rows(labId)).map(toPhoto);
  }

  /** The lab's photos still to upload, oldest first. */
  async pending(labId: string): Promise<QueuedPhoto[]> {
    return (await this.#rows(labId)).filter((r) => r.state === "pending").map(toPhoto);
  }

  /** The server has the photo: keep it for display, never upload it again. */
  async markStored(labId: string, id: string): Promise<void> {
    await this.#update(labId, id, (row) => ({ ...row, state: "stored", storedAt: this.#now(), reason: undefined, status: undefined }));
  }

  /** The server refused the photo for good: keep it, with the reason, and do not retry it. */
  async markRefused(labId: string, id: string, status: number, reason: string): Promise<void> {
    await this.#update(labId, id, (row) => (row.state === "stored" ? undefined : { ...row, state: "refused", status, reason }));
  }

  /** Offers a refused photo for upload again (the coach asked to). A stored one stays stored. */
  async requeue(labId: string, id: string): Promise<void> {
    await this.#update(labId, id, (row) =>
      row.state === "refused" ? { ...row, state: "pending", status: undefined, reason: undefined, attempts: 0 } : undefined,
    );
  }

  /** The note carrying these draft photos was sent: upload them. Other states stay as they are. */
  async release(labId: string, ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    const db = await this.#open();
    const tx = db.transaction(STORE, "readwrite");
    const store = tx.objectStore(STORE);
    for (const id of ids) {
      const r = store.get([labId, id]) as IDBRequest<Row | undefined>;
      r.onsuccess = () => {
        if (r.result?.state === "draft") store.put({ ...r.result, state: "pending" });
      };
    }
    await finished(tx);
  }

  /** Takes a draft photo off this phone (the coach removed it from the note); any other state stays. */
  async discardDraft(labId: string, id: string): Promise<void> {
    const db = await this.#open();
    const tx = db.transaction(STORE, "readwrite");
    const store = tx.objectStore(STORE);
    const r = store.get([labId, id]) as IDBRequest<Row | undefined>;
    r.onsuccess = () => {
      if (r.result?.state === "draft") store.delete([labId, id]);
    };
    await finished(tx);
  }

  /** Removes one photo from this phone. */
  async remove(labId: string, id: string): Promise<void> {
    const db = await this.#open();
    const tx = db.transaction(STORE, "readwrite");
    tx.objectStore(STORE).delete([labId, id]);
    await finished(tx);
  }

  /** Removes every photo of the lab from this phone. */
  async forgetLab(labId: string): Promise<void> {
    const db = await this.#open();
    const tx = db.transaction(STORE, "readwrite");
    const store = tx.objectStore(STORE);
    const keys = await request(store.index(BY_LAB).getAllKeys(labId));
    for (const key of keys) store.delete(key);
    await finished(tx);
  }

  /**
   * Uploads the lab's pending photos one at a time, oldest first, with `upload` (normally
   * `uploadPhoto`). Stops at the first failure worth retrying (`stopped` in the result); records
   * refusals and goes on. Only one drain per lab runs at a time: a call while one runs gets that
   * one's result, and that one looks again for photos added meanwhile before it ends.
   */
  drain(labId: string, token: string, upload: Upload): Promise<DrainResult> {
    const key = `${this.#name}\u0000${labId}`;
    const current = running.get(key);
    if (current) {
      current.again = { token, upload };
      return current.promise;
    }
    const entry: { promise: Promise<DrainResult>; again?: { token: string; upload: Upload } } = { promise: Promise.resolve(undefined as never) };
    const work = async (): Promise<DrainResult> => {
      const result: DrainResult = { uploaded: [], refused: [], pending: 0 };
      let args = { token, upload };
      for (;;) {
        entry.again = undefined;
        await this.#drainOnce(labId, args.token, args.upload, result);
        const again = entry.again as { token: string; upload: Upload } | undefined;
        if (result.stopped || !again) break;
        args = again;
      }
      result.pending = (await this.#rows(labId)).filter((r) => r.state === "pending").length;
      return result;
    };
    const locks = this.#locks;
    entry.promise = (async () => {
      try {
        return locks ? ((await locks.request(`labboard-photos:${key}`, work)) as DrainResult) : await work();
      } finally {
        running.delete(key);
      }
    })();
    running.set(key, entry);
    return entry.promise;
  }

  async #drainOnce(labId: string, token: string, upload: Upload, result: DrainResult): Promise<void> {
    for (;;) {
      // Read again each time: another tab or an earlier drain may have sent some meanwhile.
      const next = (await this.#rows(labId)).find((r) => r.state === "pending");
      if (!next) return;
      let answer: UploadResult;
      try {
        answer = await upload(labId, token, next.id, new Blob([next.bytes], { type: next.type }));
      } catch (e) {
        answer = { state: "retry", reason: e instanceof Error && e.message ? e.message : UNREACHABLE };
      }
      if (answer.state === "stored") {
        await this.markStored(labId, next.id);
        result.uploaded.push(next.id);
      } else if (answer.state === "refused") {
        await this.markRefused(labId, next.id, answer.status, answer.reason);
        result.refused.push({ id: next.id, status: answer.status, reason: answer.reason });
      } else {
        await this.#update(labId, next.id, (row) => (row.state === "pending" ? { ...row, attempts: row.attempts + 1, reason: answer.reason } : undefined));
        const { reason, status, retryAfterSeconds } = answer;
        result.stopped = { reason, ...(status !== undefined ? { status } : {}), ...(retryAfterSeconds ? { retryAfterSeconds } : {}) };
        return;
      }
    }
  }

  /** Closes the database (tests; a page simply goes away). */
  async close(): Promise<void> {
    const db = this.#db;
    this.#db = undefined;
    if (db) (await db.catch(() => undefined))?.close();
  }
}

/** The page's photo queue. */
export const photoQueue = new PhotoQueue();
