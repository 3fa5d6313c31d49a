// Reading and writing the lab board document (schema v3, see protocol/src/board.rs; the run —
// phases, time-outs, reactions, agreements — is in labrun.ts).
// Every reader treats every field as optional and ignores keys it does not know.
// This module does not import Automerge: the functions it needs are passed in, so the join page
// stays small and the logic is testable in Node.

/** The board schema version this client reads and writes (protocol/src/board.rs). */
export const SCHEMA_VERSION = 3;

/** The board document as stored. Values are `unknown` on purpose: always read them with `str`. */
export interface BoardDoc {
  schemaVersion?: unknown;
  lab?: Record<string, unknown>;
  categories?: Record<string, { label?: unknown; color?: unknown; order?: unknown } | undefined>;
  notes?: Record<string, StoredNote | undefined>;
}

export interface StoredNote {
  text?: unknown;
  category?: unknown;
  authorName?: unknown;
  authorId?: unknown;
  createdAt?: unknown;
  children?: unknown;
  reactions?: unknown;
  phase?: unknown;
  minute?: unknown;
  timeoutId?: unknown;
  editedAt?: unknown;
  pinned?: unknown;
  highlighted?: unknown;
  hidden?: unknown;
  clusterId?: unknown;
  photos?: unknown;
  hiddenPhotos?: unknown;
}

/** The most photos a note refers to (protocol/src/board.rs, MAX_NOTE_PHOTOS). */
export const MAX_NOTE_PHOTOS = 4;

/** Whether `id` is written as a photo id is: the SHA-256 of the photo in 64 lowercase hex digits. */
export function isPhotoId(id: string): boolean {
  return /^[0-9a-f]{64}$/.test(id);
}

/** One photo of a note: its id (the photo is at `/api/labs/{labId}/photos/{id}`). */
export interface NotePhoto {
  id: string;
  /** Hidden from the board by the facilitator: absent means shown. */
  hidden?: boolean;
}

export interface Category {
  id: string;
  label: string;
  color: string;
  order: number;
}

/** What a note says about the lab's run (schema v2); every field may be missing. */
export interface NoteRun {
  phase?: string;
  minute?: number;
  timeoutId?: string;
  /** Device ids that said "I saw that too"; undefined when the note has no `reactions` map. */
  reactions?: string[];
  editedAt?: number;
}

export interface Note extends NoteRun {
  id: string;
  text: string;
  category: string;
  authorName: string;
  authorId: string;
  createdAt: number;
  children: string[];
  /** Facilitator flags (debrief): absent means false. */
  pinned?: boolean;
  highlighted?: boolean;
  hidden?: boolean;
  /** A key of `clusters`, when the note is in a cluster. */
  clusterId?: string;
  /** Its photos, in the order the author added them; absent when it has none. */
  photos?: NotePhoto[];
}

export interface LabInfo {
  title: string;
  school: string;
  grade: string;
  date: string;
}

export const FALLBACK_COLOR = "#64748b";

/**
 * A string field, whether it is stored as collaborative text (read as a JS string) or as a scalar
 * string (read as an ImmutableString, which has `val` and `toString`).
 */
export function str(value: unknown): string {
  if (typeof value === "string") return value;
  if (value !== null && typeof value === "object" && "val" in value) {
    const val = (value as { val: unknown }).val;
    if (typeof val === "string") return val;
  }
  return "";
}

function num(value: unknown): number {
  if (typeof value === "number" && Number.isFinite(value)) return value;
  if (typeof value === "bigint") return Number(value);
  return 0;
}

export function isColor(value: string): boolean {
  return /^#[0-9a-fA-F]{6}$/.test(value);
}

export function readLab(doc: BoardDoc | undefined): LabInfo {
  const lab = doc?.lab ?? {};
  return { title: str(lab.title), school: str(lab.school), grade: str(lab.grade), date: str(lab.date) };
}

/** The board's categories in display order (by `order`, then label). */
export function readCategories(doc: BoardDoc | undefined): Category[] {
  const out: Category[] = [];
  for (const [id, c] of Object.entries(doc?.categories ?? {})) {
    if (!c || typeof c !== "object") continue;
    const color = str(c.color);
    out.push({
      id,
      label: str(c.label) || id,
      color: isColor(color) ? color : FALLBACK_COLOR,
      order: num(c.order),
    });
  }
  return out.sort((a, b) => a.order - b.order || a.label.localeCompare(b.label) || a.id.localeCompare(b.id));
}

/** One note, or undefined when the entry is not a note with text. */
export function readNote(id: string, n: StoredNote | undefined): Note | undefined {
  if (!n || typeof n !== "object") return undefined;
  const text = str(n.text);
  if (text === "") return undefined;
  const children = Array.isArray(n.children) ? n.children.map(str).filter((c) => c !== "") : [];
  return {
    id,
    text,
    category: str(n.category),
    authorName: str(n.authorName),
    authorId: str(n.authorId),
    createdAt: num(n.createdAt),
    children,
    ...readNoteRun(n),
    ...readNoteFlags(n),
    ...readNotePhotos(n),
  };
}

/**
 * The photos of a stored note: the valid ids of its `photos`, each once, the first
 * `MAX_NOTE_PHOTOS` of them, in order; those in `hiddenPhotos` (set to `true`) marked hidden.
 */
export function readNotePhotos(n: StoredNote): Pick<Note, "photos"> {
  if (!Array.isArray(n.photos)) return {};
  const hidden = n.hiddenPhotos !== null && typeof n.hiddenPhotos === "object" && !Array.isArray(n.hiddenPhotos)
    ? (n.hiddenPhotos as Record<string, unknown>)
    : {};
  const ids: string[] = [];
  for (const value of n.photos) {
    const id = str(value);
    if (isPhotoId(id) && !ids.includes(id)) ids.push(id);
    if (ids.length === MAX_NOTE_PHOTOS) break;
  }
  if (ids.length === 0) return {};
  return { photos: ids.map((id) => (Object.prototype.hasOwnProperty.call(hidden, id) && hidden[id] === true ? { id, hidden: true } : { id })) };
}

/** The run fields of a stored note (phase, minute, time-out, reactions, edit time). */
export function readNoteRun(n: StoredNote): NoteRun {
  const out: NoteRun = {};
  const phase = str(n.phase);
  if (phase) out.phase = phase;
  if (typeof n.minute === "number" || typeof n.minute === "bigint") out.minute = Math.max(0, Math.floor(num(n.minute)));
  const timeoutId = str(n.timeoutId);
  if (timeoutId) out.timeoutId = timeoutId;
  if (n.reactions !== null && typeof n.reactions === "object" && !Array.isArray(n.reactions)) {
    out.reactions = Object.keys(n.reactions).sort();
  }
  if (typeof n.editedAt === "number" || typeof n.editedAt === "bigint") out.editedAt = num(n.editedAt);
  return out;
}

/** The facilitator's flags and the cluster of a stored note (only those that are set). */
export function readNoteFlags(n: StoredNote): Pick<Note, "pinned" | "highlighted" | "hidden" | "clusterId"> {
  const out: Pick<Note, "pinned" | "highlighted" | "hidden" | "clusterId"> = {};
  if (n.pinned === true) out.pinned = true;
  if (n.highlighted === true) out.highlighted = true;
  if (n.hidden === true) out.hidden = true;
  const clusterId = str(n.clusterId);
  if (clusterId) out.clusterId = clusterId;
  return out;
}

/** Every note, newest first (ties broken by id so the order is the same on every screen). */
export function readNotes(doc: BoardDoc | undefined): Note[] {
  const out: Note[] = [];
  for (const [id, n] of Object.entries(doc?.notes ?? {})) {
    const note = readNote(id, n);
    if (note) out.push(note);
  }
  return out.sort((a, b) => b.createdAt - a.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

export interface NoteInput {
  text: string;
  category: string;
  authorName: string;
  authorId: string;
  createdAt: number;
  children?: string[];
  phase?: string;
  minute?: number;
  timeoutId?: string;
  /** Ids of the photos the author added (already uploaded), in order; at most MAX_NOTE_PHOTOS. */
  photos?: string[];
}

/**
 * The value to put at `notes[id]`. `scalar` wraps a string as a scalar (Automerge's
 * `ImmutableString`): only the author sets these fields, so they need no collaborative text.
 */
export function buildNote<S>(input: NoteInput, scalar: (s: string) => S) {
  const photos = input.photos ?? [];
  if (photos.length > MAX_NOTE_PHOTOS || !photos.every(isPhotoId) || new Set(photos).size !== photos.length) {
    throw new RangeError(`a note refers to at most ${MAX_NOTE_PHOTOS} different photo ids (64 lowercase hex digits)`);
  }
  return {
    text: scalar(input.text),
    category: scalar(input.category),
    authorName: scalar(input.authorName),
    authorId: scalar(input.authorId),
    createdAt: Math.round(input.createdAt),
    children: (input.children ?? []).map(scalar),
    // Every new note has its (empty) reactions map: nobody may create it later, concurrently.
    reactions: {},
    ...(input.phase ? { phase: scalar(input.phase) } : {}),
    ...(input.minute !== undefined ? { minute: Math.max(0, Math.floor(input.minute)) } : {}),
    ...(input.timeoutId ? { timeoutId: scalar(input.timeoutId) } : {}),
    // Scalar strings: the server takes a photo only as its id, never as collaborative text.
    ...(photos.length > 0 ? { photos: photos.map(scalar) } : {}),
  };
}

/** The Automerge functions `waitingNoteIds` needs (from `@automerge/automerge`). */
export interface HistoryOps {
  hasHeads(doc: unknown, heads: string[]): boolean;
  view(doc: unknown, heads: string[]): unknown;
}

/**
 * The ids of my notes that the server has not acknowledged yet.
 *
 * `serverHeads` are the server's last known heads (hex change hashes). A note is acknowledged
 * when the document as of those heads already holds it, i.e. when the change that created it is
 * one of the heads or an ancestor of one. Heads this device has not received yet are skipped:
 * what remains is a lower bound of what the server has, so a note is never shown as sent early.
 */
export function waitingNoteIds(
  doc: BoardDoc,
  myAuthorId: string,
  serverHeads: readonly string[] | undefined,
  ops: HistoryOps,
): Set<string> {
  const mine = readNotes(doc)
    .filter((n) => n.authorId === myAuthorId)
    .map((n) => n.id);
  if (mine.length === 0) return new Set();
  const known = (serverHeads ?? []).filter((h) => ops.hasHeads(doc, [h]));
  if (known.length === 0) return new Set(mine);
  const atServer = ops.view(doc, known) as BoardDoc;
  const notes = atServer.notes ?? {};
  return new Set(mine.filter((id) => !Object.prototype.hasOwnProperty.call(notes, id)));
}

/** `14:05` for a note's time, in the viewer's time zone. */
export function formatTime(ms: number, locale?: string): string {
  if (!ms) return "";
  return new Date(ms).toLocaleTimeString(locale, { hour: "2-digit", minute: "2-digit" });
}

/** How a note's group is labelled when its category is not one of the board's. */
export const OTHER_CATEGORY: Category = { id: "_other", label: "Other", color: FALLBACK_COLOR, order: Number.MAX_SAFE_INTEGER };

/** Notes grouped by category for the board's columns, each group newest first. */
export function groupByCategory(categories: Category[], notes: Note[]): { category: Category; notes: Note[] }[] {
  const groups = new Map(categories.map((c) => [c.id, [] as Note[]]));
  const other: Note[] = [];
  for (const n of notes) (groups.get(n.category) ?? other).push(n);
  const out = categories.map((c) => ({ category: c, notes: groups.get(c.id) ?? [] }));
  if (other.length > 0) out.push({ category: OTHER_CATEGORY, notes: other });
  return out;
}
