// The phone's feed: everyone's notes, newest first, one keyed card per note (kept and updated in
// place). A card says whose it is and whether it reached the server; others' notes get "I saw
// that too" (never one's own); one's own get Edit and Delete (a second tap confirms); in a
// debrief every card gets Pick, up to the lab's pick limit.

import { formatTime, type Category, type Note } from "../board";
import { h, setAttr, setText } from "../dom";
import { reactionState } from "../labrun";
import { MAX_NOTE_CHARS } from "../validate";
import { charCount, tooLongText } from "./composer";
import { KeyedList } from "./keyed";

export interface FeedOptions {
  deviceId: string;
  onReact(noteId: string): void;
  onEdit(noteId: string, text: string): void;
  onDelete(noteId: string): void;
  onPick(noteId: string): void;
  /** A photo's picture for an `<img>` (this phone's copy, or the server's once fetched), if at hand. */
  photoUrl(id: string): string | undefined;
  /** This phone's photo, when it is one: its upload state and why it was refused. */
  photoState(id: string): { state: string; reason?: string } | undefined;
}

export interface FeedPicks {
  /** The note ids this person picked. */
  mine: ReadonlySet<string>;
  /** How many picks each person has. */
  limit: number;
}

export interface FeedState {
  categories: Category[];
  /** The notes to show, newest first. */
  notes: Note[];
  /** Ids of my notes the server has not stored yet. */
  waiting: ReadonlySet<string>;
  /** Picking is open (a debrief on a board with picks); undefined hides Pick. */
  picks: FeedPicks | undefined;
  now: number;
  /** The lab has ended: nothing can be written, so no button offers to. */
  readOnly?: boolean;
}

interface Card {
  el: HTMLLIElement;
  meta: HTMLSpanElement;
  time: HTMLTimeElement;
  badge: HTMLSpanElement;
  body: HTMLParagraphElement;
  marker: HTMLSpanElement;
  edited: HTMLSpanElement;
  kids: HTMLSpanElement;
  photos: HTMLUListElement;
  /** What `photos` shows, to redraw it only when that changes. */
  photosKey: string;
  react: HTMLButtonElement;
  reactCount: HTMLSpanElement;
  seen: HTMLSpanElement;
  pick: HTMLButtonElement;
  edit: HTMLButtonElement;
  del: HTMLButtonElement;
  editor: HTMLDivElement;
  editText: HTMLTextAreaElement;
  editProblem: HTMLParagraphElement;
  save: HTMLButtonElement;
  /** When Delete was tapped once (a second tap within DELETE_CONFIRM_MS deletes). */
  armedAt: number;
  editing: boolean;
}

/** How long a first tap on Delete waits for the second that confirms it. */
export const DELETE_CONFIRM_MS = 4_000;

/**
 * A button that asks for a second tap: the first arms it (`armed.armedAt`; the view shows
 * "Tap again…" while armed), a second within DELETE_CONFIRM_MS runs `run`.
 */
export function confirmTap(armed: { armedAt: number }, rerender: () => void, run: () => void): void {
  if (Date.now() - armed.armedAt > DELETE_CONFIRM_MS) {
    armed.armedAt = Date.now();
    rerender();
    setTimeout(rerender, DELETE_CONFIRM_MS + 100);
    return;
  }
  run();
}

export class Feed {
  readonly el: HTMLElement;
  readonly #opts: FeedOptions;
  readonly #list: KeyedList<Note, Card>;
  readonly #count: HTMLSpanElement;
  readonly #empty: HTMLParagraphElement;
  readonly #picksBar: HTMLDivElement;
  readonly #picksLeft: HTMLSpanElement;
  readonly #picksMessage: HTMLParagraphElement;
  #picksMessageTimer: ReturnType<typeof setTimeout> | undefined;
  #state: FeedState | undefined;

  constructor(opts: FeedOptions) {
    this.#opts = opts;
    this.#count = h("span", { class: "feed-count" });
    this.#empty = h("p", { class: "feed-empty" }, "Loading the board…");
    const list = h("ol", { class: "feed-list", "aria-live": "off" });
    this.#list = new KeyedList<Note, Card>(list, (n) => n.id, { make: (n) => this.#make(n), update: (c, n) => this.#update(c, n) });
    this.#picksLeft = h("span", { testid: "picks-left" });
    this.#picksMessage = h("p", { class: "compose-problem", testid: "picks-message", role: "alert", hidden: true });
    this.#picksBar = h(
      "div",
      { class: "picks-bar", testid: "picks-bar", hidden: true },
      h("p", { class: "picks-help" }, h("strong", {}, "Pick your strongest evidence. "), this.#picksLeft),
      this.#picksMessage,
    );
    this.el = h(
      "section",
      { class: "feed", "aria-labelledby": "feed-heading" },
      h("h2", { id: "feed-heading", class: "feed-heading" }, "Notes ", this.#count),
      this.#picksBar,
      this.#empty,
      list,
    );
  }

  /** Says why a pick did not happen (every pick is used). */
  picksFull(): void {
    const limit = this.#state?.picks?.limit ?? 0;
    setText(this.#picksMessage, `You have used all ${limit} of your picks. Unpick a note to pick this one.`);
    this.#picksMessage.hidden = false;
    clearTimeout(this.#picksMessageTimer);
    this.#picksMessageTimer = setTimeout(() => {
      this.#picksMessage.hidden = true;
    }, 8_000);
  }

  /** A message instead of the notes (loading, offline), or undefined to clear it. */
  status(message: string | undefined): void {
    setText(this.#empty, message ?? "");
    this.#empty.hidden = !message;
  }

  render(state: FeedState): void {
    this.#state = state;
    this.#list.render(state.notes);
    const picks = state.picks;
    this.#picksBar.hidden = !picks || state.notes.length === 0;
    if (picks) {
      const left = Math.max(0, picks.limit - picks.mine.size);
      setText(this.#picksLeft, `${left} of ${picks.limit} ${picks.limit === 1 ? "pick" : "picks"} left.`);
      setAttr(this.#picksBar, "data-left", String(left));
      if (left > 0) this.#picksMessage.hidden = true;
    }
    setText(this.#count, state.notes.length ? `(${state.notes.length})` : "");
    this.status(state.notes.length > 0 ? undefined : "No notes yet. Yours will be the first.");
  }

  #rerender(): void {
    if (this.#state) this.render({ ...this.#state, now: Date.now() });
  }

  #make(n: Note): Card {
    const reactCount = h("span", { class: "react-count", testid: "note-react-count" }, "0");
    const editText = h("textarea", { class: "note-input note-edit-input", testid: "note-edit-text", rows: 3, "aria-label": "Edit your note" });
    const editProblem = h("p", { class: "compose-problem", testid: "note-edit-problem", role: "alert", hidden: true });
    const save = h("button", { type: "button", class: "btn btn-primary btn-small", testid: "note-edit-save" }, "Save");
    const cancel = h("button", { type: "button", class: "btn btn-small", testid: "note-edit-cancel" }, "Cancel");
    const c: Card = {
      el: h("li", { class: "feed-note", testid: "feed-note", "data-note-id": n.id }),
      meta: h("span", { class: "feed-meta-text" }),
      time: h("time", { class: "feed-time" }),
      badge: h("span", { class: "badge" }),
      body: h("p", { class: "note-body", testid: "note-body" }, n.text),
      marker: h("span", { class: "timeout-marker", testid: "note-timeout-marker", hidden: true }, "T · during a time-out"),
      edited: h("span", { class: "edited", hidden: true }, "edited"),
      kids: h("span", { class: "note-children", testid: "note-children", hidden: true }),
      photos: h("ul", { class: "feed-photos", testid: "note-photos", hidden: true }),
      photosKey: "",
      react: h("button", { type: "button", class: "btn-react", testid: "note-react", "aria-pressed": "false" }, h("span", {}, "I saw that too"), reactCount),
      reactCount,
      seen: h("span", { class: "note-seen", testid: "note-seen", hidden: true }),
      pick: h("button", { type: "button", class: "btn-note btn-pick", testid: "note-pick", "aria-pressed": "false", hidden: true }, "Pick"),
      edit: h("button", { type: "button", class: "btn-note", testid: "note-edit", hidden: true }, "Edit"),
      del: h("button", { type: "button", class: "btn-note btn-note-danger", testid: "note-delete", hidden: true }, "Delete"),
      editor: h("div", { class: "note-editor", hidden: true }),
      editText,
      editProblem,
      save,
      armedAt: 0,
      editing: false,
    };
    c.editor.append(editText, editProblem, h("div", { class: "note-editor-buttons" }, save, cancel));
    c.el.append(
      h("div", { class: "feed-meta" }, h("span", { class: "chip-dot", "aria-hidden": "true" }), c.meta, c.time, c.badge),
      c.body,
      c.photos,
      c.editor,
      h("div", { class: "feed-flags" }, c.kids, c.marker, c.edited),
      h("div", { class: "feed-actions" }, c.react, c.seen, c.pick, c.edit, c.del),
    );
    const stopEditing = () => {
      c.editing = false;
      this.#rerender();
    };
    const editCheck = () => {
      const problem = tooLongText(charCount(editText.value.trim()));
      c.editProblem.hidden = !problem;
      setText(c.editProblem, problem ?? "");
      c.save.disabled = !!problem || editText.value.trim() === "";
    };
    editText.addEventListener("input", editCheck);
    c.react.addEventListener("click", () => this.#opts.onReact(n.id));
    c.pick.addEventListener("click", () => this.#opts.onPick(n.id));
    c.edit.addEventListener("click", () => {
      c.editing = true;
      editText.value = c.body.textContent ?? "";
      editCheck();
      this.#rerender();
      editText.focus();
    });
    cancel.addEventListener("click", stopEditing);
    save.addEventListener("click", () => {
      const text = editText.value.replace(/\r\n?/g, "\n").trim();
      if (text === "" || charCount(text) > MAX_NOTE_CHARS) return;
      this.#opts.onEdit(n.id, text);
      stopEditing();
    });
    c.del.addEventListener("click", () => confirmTap(c, () => this.#rerender(), () => this.#opts.onDelete(n.id)));
    return c;
  }

  /** The note's photos (not those the facilitator hid): pictures, and what keeps one from the board. */
  #photos(c: Card, n: Note): void {
    const shown = (n.photos ?? []).filter((p) => !p.hidden);
    const items = shown.map((p) => ({ id: p.id, url: this.#opts.photoUrl(p.id), local: this.#opts.photoState(p.id) }));
    const key = JSON.stringify(items);
    if (key === c.photosKey) return;
    c.photosKey = key;
    c.photos.hidden = items.length === 0;
    const who = n.authorId === this.#opts.deviceId ? "your" : `${n.authorName || "someone"}'s`;
    c.photos.replaceChildren(
      ...items.map(({ id, url, local }, i) => {
        const alt = `Photo ${i + 1} of ${items.length} on ${who} note`;
        const status = local?.state === "refused" ? `Photo not sent: ${local.reason ?? "the server refused it."}` : local?.state === "pending" || local?.state === "draft" ? "waiting" : "";
        return h(
          "li",
          { class: `feed-photo${local?.state === "refused" ? " is-refused" : ""}`, testid: "note-photo", "data-photo-id": id, "data-state": local?.state ?? "server" },
          url ? h("img", { class: "photo-thumb", src: url, alt }) : h("span", { class: "photo-placeholder", role: "img", "aria-label": alt }, "Photo"),
          status ? h("span", { class: "feed-photo-status" }, status) : null,
        );
      }),
    );
  }

  #update(c: Card, n: Note): void {
    const state = this.#state!;
    const cat = state.categories.find((x) => x.id === n.category);
    c.el.style.setProperty("--cat", cat?.color ?? "#64748b");
    const mine = n.authorId === this.#opts.deviceId;
    setText(c.meta, `${cat?.label ?? "Other"} · ${mine ? "you" : n.authorName || "someone"}`);
    setText(c.time, formatTime(n.createdAt));
    setAttr(c.time, "datetime", new Date(n.createdAt || 0).toISOString());
    const status = state.waiting.has(n.id) ? "waiting" : "synced";
    setAttr(c.el, "data-status", status);
    c.el.classList.toggle("is-mine", mine);
    const readOnly = !!state.readOnly;
    setText(c.badge, mine ? (status === "waiting" ? (readOnly ? "not sent" : "waiting") : "sent ✓") : "");
    c.badge.hidden = !mine;
    c.body.hidden = c.editing;
    c.editor.hidden = !c.editing;
    if (!c.editing) setText(c.body, n.text);
    c.marker.hidden = !n.timeoutId;
    c.edited.hidden = n.editedAt === undefined;
    this.#photos(c, n);
    c.kids.hidden = n.children.length === 0;
    setText(c.kids, n.children.join(", "));
    // "I saw that too" is for others' notes; one's own shows how many saw it.
    const reaction = reactionState(n, this.#opts.deviceId);
    setText(c.reactCount, String(reaction.count));
    setAttr(c.react, "aria-pressed", String(reaction.mine));
    setAttr(c.react, "data-count", String(reaction.count));
    c.react.hidden = mine || readOnly;
    c.react.disabled = !reaction.possible;
    c.seen.hidden = !mine || reaction.count === 0;
    setText(c.seen, reaction.count === 1 ? "1 saw it too" : `${reaction.count} saw it too`);
    const picks = state.picks;
    c.pick.hidden = !picks || c.editing || readOnly;
    const picked = !!picks?.mine.has(n.id);
    setAttr(c.pick, "aria-pressed", String(picked));
    setText(c.pick, picked ? "Picked ★" : "Pick");
    c.edit.hidden = !mine || c.editing || readOnly;
    c.del.hidden = !mine || c.editing || readOnly;
    const armed = state.now - c.armedAt <= DELETE_CONFIRM_MS;
    setText(c.del, armed ? "Tap again to delete" : "Delete");
    c.del.classList.toggle("is-armed", armed);
  }
}
