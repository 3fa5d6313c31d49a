// What every view of the projector board is: a small module over the board model.
//
// The board page (pages/board.ts) owns the connection, the header, the phase bar, the filters
// and the undo toast. Each view — columns, timeline, clusters, by child, and Lesson 1 | 2, picks
// and next steps — is built once from a ViewContext and then updated with the whole model and the
// board's filter on every render while it is shown (and once more when it is shown again). A view
// keeps one element per id (note, category, cluster …) and updates it in place, moving it only
// when the order changes, so no card is rebuilt under a finger or a drag.
//
//   import type { BoardView, ViewContext } from "./view";
//   export function picksView(ctx: ViewContext): BoardView {
//     const el = h("section", { class: "picks-view", testid: "picks-view" });
//     return { el, update(model, filter) { /* keyed update of el from filterNotes(model, filter) */ } };
//   }

import type { Note } from "../board";
import type { BoardModel, StoredBoard } from "../model";
import type { PhotoLoader } from "./photos";

export type { BoardModel, NextStep, Pick } from "../model";

/** The draft a writer gets inside a change (the board document being changed). */
export type Draft = StoredBoard;

/**
 * A writer, as in labrun.ts, debrief.ts and model.ts: changes the draft and says whether it
 * changed anything. `scalar` wraps a string as an immutable scalar; `updateText` splices a
 * collaborative text at a path.
 */
export type Writer = (d: Draft, now: number, scalar: (s: string) => unknown, updateText: (path: string[], value: string) => void) => boolean;

/**
 * An undoable writer: changes the draft and returns the writer that puts back exactly what it
 * changed (built from the values it found before writing), or undefined when it changed nothing.
 */
export type UndoableWriter = (d: Draft, now: number, scalar: (s: string) => unknown, updateText: (path: string[], value: string) => void) => Writer | undefined;

// ---------------------------------------------------------------------------------------------

/** What the board shows; every view applies it (filterNotes does the note part). */
export interface BoardFilter {
  /** Only notes written in this phase; undefined shows every phase. */
  phase?: string;
  /** Only notes about this child alias; undefined shows every note. */
  child?: string;
  /** Hidden notes shown, marked (the facilitator's "show hidden"); phones never show them. */
  showHidden: boolean;
  /** Presenter mode (the debrief on the projector): denser cards, larger type, small header. */
  presenter: boolean;
}

/** What a view may do: read who is looking, change the document, and use the board's overlays. */
export interface ViewContext {
  /** "facilitator" or "observer"; views offer a role only what the server lets it do. */
  readonly role: string;
  /** This device's author id (the id the server checks picks, reactions and next steps against). */
  readonly deviceId: string;
  /** The display name this device joined with. */
  readonly name: string;
  /** Whether this device is the facilitator's (shorthand for role === "facilitator"). */
  isFacilitator(): boolean;
  /**
   * Applies a writer to the board document (saved on this device at once, synced when online)
   * and redraws the board. Returns whether the writer changed anything.
   */
  change(fn: Writer): boolean;
  /**
   * Applies an undoable writer; when it changed something, shows the undo toast with `message`
   * ("Note hidden"), whose Undo applies the inverse writer. Returns whether it changed anything.
   */
  changeWithUndo(message: string, fn: UndoableWriter): boolean;
  /** Shows one note full screen, whole (Escape closes it and gives the focus back to `from`). */
  openFocus(noteId: string, from?: HTMLElement): void;
  /** Shows one photo of a note full size, with its note's other photos a step away. */
  openPhoto(noteId: string, photoId: string, from?: HTMLElement): void;
  /** The board's photos, fetched with its token (board/photos.ts). */
  readonly photos: PhotoLoader;
  /** Whether the facilitator's "show hidden" is on (hidden notes and photos shown, marked). */
  showsHidden(): boolean;
  /** Shows the undo toast (views/undo.ts) for an action the view undoes itself. */
  showUndo(message: string, undo: () => void, ms?: number): void;
  /** Redraws the board on the next frame (after a view changed only its own local state). */
  rerender(): void;
}

/** A view of the board: its element (the page mounts it) and a keyed update from the model. */
export interface BoardView {
  el: HTMLElement;
  /** Called on every render while the view is shown; must update in place, keyed by id. */
  update(model: BoardModel, filter: BoardFilter): void;
  /** Called when the page unmounts: stop timers, drop listeners on document or window. */
  destroy?(): void;
}

/** A view module's constructor; the compare, picks and next-steps views export one each. */
export type ViewFactory = (ctx: ViewContext) => BoardView;

/**
 * The notes a view shows under `filter`: hidden ones only when showHidden, only the chosen phase
 * and child when chosen; in the model's order (newest first).
 */
export function filterNotes(model: BoardModel, filter: BoardFilter): Note[] {
  return model.notes.filter(
    (n) =>
      (filter.showHidden || !n.hidden) &&
      (filter.phase === undefined || n.phase === filter.phase) &&
      (filter.child === undefined || n.children.includes(filter.child)),
  );
}
