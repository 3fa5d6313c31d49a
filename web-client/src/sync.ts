// The connection to a lab's board: Automerge WASM, the repo with IndexedDB storage, a WebSocket
// adapter that reconnects with jittered backoff, the server's acknowledged heads, and presence.
// Only the lab pages import this module (it pulls in Automerge), so the join page stays small.

import {
  Automerge,
  ImmutableString,
  Repo,
  cbor,
  decodeHeads,
  initializeWasm,
  type AutomergeUrl,
  type DocHandle,
  type DocHandleRemoteHeadsPayload,
  type PeerId,
} from "@automerge/automerge-repo/slim";
import wasmUrl from "@automerge/automerge/automerge.wasm?url";
import { BrowserWebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket";
import { IndexedDBStorageAdapter } from "@automerge/automerge-repo-storage-indexeddb";

import { backoffDelay, nudgeDelay } from "./backoff";
import { isLabEndedError } from "./ended";
import { randomUuid } from "./ids";
import { syncUrl } from "./routes";
import { buildNote, waitingNoteIds, type BoardDoc, type HistoryOps, type NoteInput } from "./board";
import { runFieldsForNewNote, type RunDoc } from "./labrun";
import type { StoredBoard } from "./model";
import { PRESENCE_INTERVAL_MS, PresenceTracker, type PresenceMessage } from "./presence";
import type { Store } from "./store";

let wasm: Promise<void> | undefined;

/** Loads and compiles Automerge's WASM once per page. */
export function loadAutomerge(): Promise<void> {
  wasm ??= initializeWasm(wasmUrl).then(() => undefined);
  return wasm;
}

// The adapter's own retry (a fixed interval, the same on every phone) is switched off with the
// largest delay timers accept; LabSocket schedules reconnects itself.
const NEVER = 2_147_483_647;
const OPEN = 1;
const CONNECTING = 0;

export interface SocketEvents {
  /** The server peer joined (online) or left (offline). */
  onState(online: boolean): void;
  /** An attempt ended without reaching the server; `consecutive` counts them since the last success. */
  onFailure(consecutive: number): void;
  /** The server refused our changes because the lab has ended; the socket has stopped. */
  onEnded(): void;
}

/**
 * `BrowserWebSocketClientAdapter` with our own reconnect policy: after a drop, retry after
 * 0.5–1 s, then with doubling, jittered delays (1–2 s, 2–4 s, … up to 7.5–15 s); retry at once (plus up to 1 s of
 * jitter) when the browser comes back online or the page becomes visible; drop the socket when the
 * browser goes offline. Connected means the server answered our `join` with its `peer` message.
 */
export class LabSocket extends BrowserWebSocketClientAdapter {
  #online = false;
  #onlineSince = 0;
  #failures = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #stopped = false;
  readonly #events: SocketEvents;
  readonly #labId: string;

  constructor(labId: string, token: string, events: SocketEvents) {
    super(syncUrl(labId, token), NEVER);
    this.#labId = labId;
    this.#events = events;
    const parentClose = this.onClose;
    this.onClose = () => {
      parentClose();
      // The parent announced the peer's departure; make sure a later disconnect() cannot again.
      this.remotePeerId = undefined;
      this.#dropped();
    };
    this.on("peer-candidate", () => {
      this.#onlineSince = Date.now();
      this.#setOnline(true);
    });
    this.on("peer-disconnected", () => this.#setOnline(false));
  }

  get online(): boolean {
    return this.#online;
  }

  override receiveMessage(messageBytes: Uint8Array): void {
    let message: unknown;
    try {
      message = cbor.decode(new Uint8Array(messageBytes));
    } catch {
      message = undefined;
    }
    if (isLabEndedError(message)) {
      // Reconnecting would only send the same changes to be refused again: stay offline. The
      // changes stay in this device's copy.
      this.#stopped = true;
      clearTimeout(this.#timer);
      this.#closeSocket();
      this.#events.onEnded();
      return;
    }
    super.receiveMessage(messageBytes);
  }

  /** The token changed (e.g. a renewed facilitator sign-in): use it from the next connection. */
  setToken(token: string): void {
    (this as unknown as { url: string }).url = syncUrl(this.#labId, token);
  }

  #setOnline(online: boolean): void {
    if (online === this.#online) return;
    this.#online = online;
    this.#events.onState(online);
  }

  #dropped(): void {
    const wasOnline = this.#online;
    this.#setOnline(false);
    if (this.#stopped) return;
    // A connection that lasted is a fresh start; one the server ended at once counts as a
    // failure, so a server that keeps closing on us is not hammered twice a second.
    if (wasOnline && Date.now() - this.#onlineSince >= 10_000) this.#failures = 0;
    else this.#failures += 1;
    if (!wasOnline) this.#events.onFailure(this.#failures);
    this.#schedule(backoffDelay(this.#failures, Math.random()));
  }

  #schedule(delay: number): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#connectNow(false), delay);
  }

  #connectNow(force: boolean): void {
    this.#timer = undefined;
    if (this.#stopped || !this.peerId) return;
    const state = this.socket?.readyState;
    if (state === OPEN || state === CONNECTING) {
      if (!force) return;
      this.#closeSocket();
    }
    this.connect(this.peerId, this.peerMetadata);
  }

  /** Closes the current socket without the close handler (and so without scheduling a retry). */
  #closeSocket(): void {
    if (!this.socket) return;
    if (!this.#online) this.remotePeerId = undefined;
    super.disconnect(); // emits peer-disconnected when the server peer was connected
    this.remotePeerId = undefined;
  }

  /**
   * Reconnect soon, with a little jitter: the network is back, or the page is visible again.
   * `force` replaces a socket that looks open but may be dead (phones kill sockets in the background).
   */
  nudge(force = false): void {
    if (this.#stopped) return;
    this.#failures = 0;
    const state = this.socket?.readyState;
    if (!force && (state === OPEN || state === CONNECTING)) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#connectNow(force), nudgeDelay(Math.random()));
  }

  /** The browser says it is offline: stop pretending, and wait for `online` (or the backoff). */
  wentOffline(): void {
    if (this.#stopped) return;
    this.#closeSocket();
    this.#schedule(backoffDelay(Math.max(this.#failures, 3), Math.random()));
  }

  /** Called by the repo on shutdown. */
  override disconnect(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#closeSocket();
  }
}

export interface LabConnectionOptions {
  labId: string;
  docUrl: string;
  token: string;
  deviceId: string;
  name: string;
  role: string;
  store: Store;
  /** Called for any change: the document, the connection, the server's heads or presence. */
  onUpdate(): void;
  /** The sync socket keeps failing; `consecutive` failed attempts so far. */
  onFailure(consecutive: number): void;
}

/** An open lab: its repo, document handle, connection and presence. */
export class LabConnection {
  readonly repo: Repo;
  readonly socket: LabSocket;
  readonly presence: PresenceTracker;
  handle: DocHandle<BoardDoc> | undefined;
  /** The server's last acknowledged heads (hex), as last heard or remembered from before. */
  serverHeads: string[] | undefined;
  /** When we last saw progress: connected, the server acknowledged something, or we wrote a note. */
  lastProgressAt = 0;
  /**
   * When the lab ended (ms since the epoch; 0 when only the server's refusal told us), or
   * undefined while it runs. The board is read-only then.
   */
  endedAt: number | undefined;
  readonly #opts: LabConnectionOptions;
  readonly #docId: string;
  #token: string;
  #presenceTimer: ReturnType<typeof setInterval> | undefined;
  #replyTimer: ReturnType<typeof setTimeout> | undefined;
  #cleanup: (() => void)[] = [];
  #closed = false;

  constructor(opts: LabConnectionOptions) {
    this.#opts = opts;
    this.#token = opts.token;
    this.#docId = opts.docUrl.replace(/^automerge:/, "");
    this.presence = new PresenceTracker(opts.deviceId);
    this.serverHeads = opts.store.serverHeads(this.#docId)?.heads;
    this.socket = new LabSocket(opts.labId, opts.token, {
      onState: (online) => {
        if (online) {
          this.lastProgressAt = Date.now();
          this.#sayPresence(true);
        }
        opts.onUpdate();
      },
      onFailure: (n) => opts.onFailure(n),
      onEnded: () => this.markEnded(0),
    });
    this.repo = new Repo({
      network: [this.socket],
      storage: new IndexedDBStorageAdapter("labboard", "documents"),
      // The server only syncs this lab's board; announce nothing else we may hold.
      sharePolicy: async (_peer: PeerId, documentId?: string) => documentId === this.#docId,
    });
    this.#listen(window, "online", () => this.socket.nudge());
    this.#listen(window, "offline", () => {
      this.socket.wentOffline();
      opts.onUpdate();
    });
    let hiddenAt = 0;
    this.#listen(document, "visibilitychange", () => {
      if (document.visibilityState === "hidden") {
        hiddenAt = Date.now();
        return;
      }
      // Back from the background: a socket that looks open may have been killed meanwhile.
      this.socket.nudge(hiddenAt > 0 && Date.now() - hiddenAt > 15_000);
      if (this.socket.online) this.#sayPresence(true);
    });
    this.#listen(window, "pagehide", () => this.#sayPresence(false, true));
  }

  /** The lab has ended (the server said so): stop offering to write. */
  markEnded(at: number): void {
    if (this.endedAt !== undefined && this.endedAt !== 0) return;
    this.endedAt = at;
    this.#opts.onUpdate();
  }

  get ended(): boolean {
    return this.endedAt !== undefined;
  }

  #listen(target: EventTarget, type: string, fn: () => void): void {
    target.addEventListener(type, fn);
    this.#cleanup.push(() => target.removeEventListener(type, fn));
  }

  /**
   * Opens the board: from IndexedDB when this device has it (works offline), else from the
   * server. Resolves with "ready", or "waiting" when neither has it yet; then `whenAvailable`
   * resolves once the server sends it.
   */
  async open(): Promise<"ready" | "waiting"> {
    const handle = await this.repo.find<BoardDoc>(this.#opts.docUrl as AutomergeUrl, {
      allowableStates: ["ready", "unavailable"],
    });
    this.handle = handle;
    handle.on("change", () => this.#opts.onUpdate());
    handle.on("remote-heads", (p) => this.#remoteHeads(p));
    handle.on("ephemeral-message", ({ message }) => this.#presenceMessage(message));
    this.#presenceTimer = setInterval(() => {
      this.#sayPresence(false);
      this.#opts.onUpdate(); // presence counts age out
    }, PRESENCE_INTERVAL_MS);
    if (this.socket.online) this.#sayPresence(true);
    return handle.isReady() ? "ready" : "waiting";
  }

  /** Resolves when the document is ready (it may arrive from the server later). */
  async whenAvailable(): Promise<void> {
    await this.handle?.whenReady(["ready"]);
  }

  doc(): BoardDoc | undefined {
    return this.handle?.isReady() ? this.handle.doc() : undefined;
  }

  #remoteHeads({ storageId, heads }: DocHandleRemoteHeadsPayload): void {
    // The server is our only peer; it has a stable storage id and persists what it acknowledges.
    const hex = decodeHeads(heads);
    this.serverHeads = hex;
    this.lastProgressAt = Date.now();
    this.#opts.store.setServerHeads(this.#docId, storageId, hex);
    this.#opts.onUpdate();
  }

  /** Ids of this device's notes the server has not acknowledged yet. */
  waiting(): Set<string> {
    const doc = this.doc();
    if (!doc) return new Set();
    // Pages ask every second; the answer changes only with the document or the server's heads.
    const key = `${Automerge.getHeads(doc).join(",")}|${(this.serverHeads ?? []).join(",")}`;
    if (this.#waiting?.key !== key) {
      this.#waiting = { key, ids: waitingNoteIds(doc, this.#opts.deviceId, this.serverHeads, Automerge as unknown as HistoryOps) };
    }
    return new Set(this.#waiting.ids);
  }

  #waiting: { key: string; ids: Set<string> } | undefined;

  #atServer: { key: string; doc: RunDoc | undefined } | undefined;

  /**
   * Whether the server has stored `doc[root][key]` (a time-out, a pick, a next step), going by
   * its last acknowledged heads that this device holds: like `waiting()`, a lower bound, so
   * nothing is shown as shared early.
   */
  serverHas(root: string, key: string): boolean {
    const doc = this.doc();
    if (!doc) return false;
    const heads = (this.serverHeads ?? []).filter((h) => Automerge.hasHeads(doc, [h]));
    if (heads.length === 0) return false;
    const cacheKey = heads.join(",");
    if (this.#atServer?.key !== cacheKey) {
      this.#atServer = { key: cacheKey, doc: Automerge.view(doc, heads) as RunDoc };
    }
    const map = (this.#atServer.doc as Record<string, unknown> | undefined)?.[root];
    return map !== null && typeof map === "object" && Object.prototype.hasOwnProperty.call(map, key);
  }

  /**
   * Adds a note: saved to IndexedDB at once, sent to the server when connected. It records the
   * current phase, the minute into it and the running time-out. Returns its id.
   */
  addNote(input: Omit<NoteInput, "authorId" | "authorName" | "createdAt" | "phase" | "minute" | "timeoutId">): string {
    const handle = this.handle;
    if (!handle?.isReady()) throw new Error("the board is not loaded yet");
    // Never create a missing top-level map: another device could create it at the same time.
    if (!handle.doc().notes) throw new Error("the board is not ready for notes yet");
    const id = randomUuid();
    const now = Date.now();
    const note = buildNote(
      { ...input, ...runFieldsForNewNote(handle.doc(), now), authorId: this.#opts.deviceId, authorName: this.#opts.name, createdAt: now },
      (s) => new ImmutableString(s),
    );
    handle.change((d) => {
      if (d.notes) (d.notes as Record<string, unknown>)[id] = note;
    });
    this.lastProgressAt = Date.now();
    // Write it to IndexedDB now rather than after the repo's save debounce.
    void this.repo.flush([handle.documentId]).catch(() => undefined);
    return id;
  }

  /**
   * Applies one of labrun.ts's or debrief.ts's writers (`fn` gets the draft, the time, the scalar
   * wrapper and Automerge's `updateText` on the draft, and says whether it changed anything), then saves to IndexedDB at once.
   */
  run(fn: (d: StoredBoard, now: number, scalar: (s: string) => unknown, updateText: (path: string[], value: string) => void) => boolean): boolean {
    const handle = this.handle;
    if (!handle?.isReady()) return false;
    let changed = false;
    const now = Date.now();
    handle.change((d) => {
      changed = fn(d as StoredBoard, now, (s) => new ImmutableString(s), (path, value) => Automerge.updateText(d, path, value));
    });
    if (changed) {
      this.lastProgressAt = Date.now();
      void this.repo.flush([handle.documentId]).catch(() => undefined);
    }
    return changed;
  }

  get deviceId(): string {
    return this.#opts.deviceId;
  }

  get name(): string {
    return this.#opts.name;
  }

  get role(): string {
    return this.#opts.role;
  }

  #presenceMessage(message: unknown): void {
    const { wantsReply } = this.presence.record(message, Date.now());
    if (wantsReply && !this.#replyTimer) {
      // Answer newcomers soon, not all at once.
      this.#replyTimer = setTimeout(() => {
        this.#replyTimer = undefined;
        this.#sayPresence(false);
      }, 200 + Math.random() * 1500);
    }
    this.#opts.onUpdate();
  }

  #sayPresence(hello: boolean, leaving = false): void {
    if (this.#closed || !this.handle?.isReady() || !this.socket.online) return;
    const message: PresenceMessage = {
      type: "presence",
      peer: this.#opts.deviceId,
      name: this.#opts.name,
      role: this.#opts.role,
      at: Date.now(),
      ...(hello ? { hello: true } : {}),
      ...(leaving ? { leaving: true } : {}),
    };
    try {
      this.handle.broadcast(message);
    } catch {
      /* the socket closed under us; the next connect says hello again */
    }
  }

  /** The lab token in use (for the API calls that go with the board, such as photo uploads). */
  get token(): string {
    return this.#token;
  }

  setToken(token: string): void {
    this.#token = token;
    this.socket.setToken(token);
    this.socket.nudge(true);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#sayPresence(false, true);
    this.#closed = true;
    clearInterval(this.#presenceTimer);
    clearTimeout(this.#replyTimer);
    for (const fn of this.#cleanup) fn();
    await this.repo.shutdown().catch(() => undefined);
  }
}
