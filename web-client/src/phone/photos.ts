// The phone's photos of a lab: the ones on its notes and the ones attached to the note being
// written. They live in IndexedDB (photoqueue.ts) from the moment they are prepared; a photo on a
// draft is never uploaded (the coach may still take it off), one on a sent note goes up with
// `drain`, which this class runs when the page opens, after a note is sent, when the network
// comes back, and after a failure again with backoff.
//
// A note of mine that refers to a photo this phone still holds ("draft" or "pending") is waiting,
// like a note the server has not acknowledged: it becomes "sent" only once the server has both.

import { backoffDelay } from "../backoff";
import type { Note } from "../board";
import { preparePhoto, type PreparedPhoto } from "../photo";
import { photoQueue, uploadPhoto, type PhotoQueue, type PhotoState, type QueuedPhoto, type Upload } from "../photoqueue";


/** What the phone knows of one of its photos. */
export interface LocalPhoto {
  state: PhotoState;
  /** Why the server refused it (state "refused"). */
  reason?: string;
}

/** Ids of my notes that wait for one of their photos to reach the server. */
export function notesWaitingOnPhotos(notes: readonly Note[], deviceId: string, state: (id: string) => PhotoState | undefined): Set<string> {
  const waiting = new Set<string>();
  for (const n of notes) {
    if (n.authorId !== deviceId || !n.photos) continue;
    if (n.photos.some((p) => {
      const s = state(p.id);
      return s === "pending" || s === "draft";
    })) waiting.add(n.id);
  }
  return waiting;
}

/** Photo ids any note refers to. */
function referenced(notes: readonly Note[]): Set<string> {
  const ids = new Set<string>();
  for (const n of notes) for (const p of n.photos ?? []) ids.add(p.id);
  return ids;
}

export interface PhonePhotosOptions {
  labId: string;
  /** The lab token to upload with (it may be renewed while the page is open). */
  token(): string;
  /** Something changed: a photo's state, or a local photo became viewable. */
  onChange(): void;
  /** The server no longer takes our token (401): check it, as the sync socket does. */
  onUnauthorized(): void;
  queue?: PhotoQueue;
  upload?: Upload;
  prepare?: (file: Blob) => Promise<PreparedPhoto>;
  /** Whether the browser thinks it has a network (default `navigator.onLine`); uploads wait for it. */
  online?: () => boolean;
  /** For tests: the random number used for backoff jitter. */
  random?: () => number;
}

export class PhonePhotos {
  readonly #opts: PhonePhotosOptions;
  readonly #queue: PhotoQueue;
  readonly #photos = new Map<string, LocalPhoto>();
  readonly #urls = new Map<string, string>();
  #attempt = 0;
  #retry: ReturnType<typeof setTimeout> | undefined;
  #closed = false;

  constructor(opts: PhonePhotosOptions) {
    this.#opts = opts;
    this.#queue = opts.queue ?? photoQueue;
  }

  /**
   * Reads what this phone holds for the lab. Drafts that a note already refers to (the page went
   * away between sending the note and releasing them) are released; the others are returned,
   * oldest first, for the composer to show again.
   */
  async load(notes: readonly Note[]): Promise<string[]> {
    const all = await this.#queue.list(this.#opts.labId);
    const onNotes = referenced(notes);
    const release = all.filter((p) => p.state === "draft" && onNotes.has(p.id)).map((p) => p.id);
    await this.#queue.release(this.#opts.labId, release);
    for (const p of all) this.#remember(p, release.includes(p.id) ? "pending" : p.state);
    this.#opts.onChange();
    return all.filter((p) => p.state === "draft" && !onNotes.has(p.id)).map((p) => p.id);
  }

  #remember(p: QueuedPhoto, state: PhotoState): void {
    this.#photos.set(p.id, { state, ...(p.reason && state === "refused" ? { reason: p.reason } : {}) });
    if (!this.#urls.has(p.id)) this.#urls.set(p.id, URL.createObjectURL(p.blob));
  }

  /** This phone's copy of a photo, for an `<img>`, or undefined when it has none. */
  url(id: string): string | undefined {
    return this.#urls.get(id);
  }

  get(id: string): LocalPhoto | undefined {
    return this.#photos.get(id);
  }

  /** Ids of my notes waiting for a photo (see the header). */
  waitingNotes(notes: readonly Note[], deviceId: string): Set<string> {
    return notesWaitingOnPhotos(notes, deviceId, (id) => this.#photos.get(id)?.state);
  }

  /**
   * Prepares a picture the coach took or chose (upright, at most 1600 px, re-encoded without
   * metadata) and keeps it on the phone as a draft. Rejects with a message for the coach.
   */
  async attach(file: Blob): Promise<string> {
    const prepared = await (this.#opts.prepare ?? preparePhoto)(file);
    const kept = await this.#queue.add(this.#opts.labId, prepared, "draft");
    this.#remember(kept, kept.state);
    return kept.id;
  }

  /** The coach took a photo off the note being written: it leaves the phone, never uploaded. */
  async discard(id: string): Promise<void> {
    await this.#queue.discardDraft(this.#opts.labId, id);
    const state = (await this.#queue.get(this.#opts.labId, id))?.state;
    if (state) return;
    this.#photos.delete(id);
    const url = this.#urls.get(id);
    this.#urls.delete(id);
    if (url) URL.revokeObjectURL(url);
  }

  /** The note carrying these photos is saved: they may go up now. */
  async release(ids: readonly string[]): Promise<void> {
    await this.#queue.release(this.#opts.labId, ids);
    for (const id of ids) {
      const p = this.#photos.get(id);
      if (p?.state === "draft") this.#photos.set(id, { state: "pending" });
    }
    this.#opts.onChange();
    this.drain();
  }

  /**
   * Uploads what waits, now; on a failure, again later with backoff. With no network at all it
   * waits for the page to call it when the network is back.
   */
  drain(): void {
    if (this.#closed) return;
    clearTimeout(this.#retry);
    this.#retry = undefined;
    if (!(this.#opts.online ?? (() => navigator.onLine))()) return;
    const { labId } = this.#opts;
    void this.#queue
      .drain(labId, this.#opts.token(), this.#opts.upload ?? uploadPhoto)
      .then((result) => {
        if (this.#closed) return;
        // The drain says what changed: no need to read every photo's bytes back.
        for (const id of result.uploaded) this.#photos.set(id, { state: "stored" });
        for (const { id, reason } of result.refused) this.#photos.set(id, { state: "refused", reason });
        this.#opts.onChange();
        if (!result.stopped) {
          this.#attempt = 0;
          return;
        }
        if (result.stopped.status === 401) this.#opts.onUnauthorized();
        const wait = result.stopped.retryAfterSeconds
          ? result.stopped.retryAfterSeconds * 1000
          : backoffDelay(this.#attempt, (this.#opts.random ?? Math.random)());
        this.#attempt += 1;
        this.#retry = setTimeout(() => this.drain(), wait);
      })
      .catch(() => {
        // IndexedDB failed under us (a private window, the phone out of space): try again later.
        if (this.#closed) return;
        this.#retry = setTimeout(() => this.drain(), backoffDelay(this.#attempt++, Math.random()));
      });
  }

  /** Stops retrying and frees the photos' object URLs. */
  destroy(): void {
    this.#closed = true;
    clearTimeout(this.#retry);
    for (const url of this.#urls.values()) URL.revokeObjectURL(url);
    this.#urls.clear();
  }
}
