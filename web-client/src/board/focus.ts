// One note full screen, whole and in large type (a long note clamped on its card opens here), or
// one of its photos full size (a thumbnail opens here): the photo fits the screen whole, with
// "Previous" and "Next" (and the arrow keys) when the note has several, and for the facilitator
// "Hide this photo" (undoable). Escape or the button closes it and gives the focus back to what
// opened it.

import { formatTime, type Note } from "../board";
import { h, setAttr, setText } from "../dom";
import { phaseLabel } from "../model";
import { photoName, showLoad, visiblePhotos } from "./notephotos";
import type { PhotoLoader } from "./photos";
import { hidePhoto } from "./undoable";
import type { BoardModel, UndoableWriter } from "./view";

export interface FocusOverlay {
  el: HTMLElement;
  open(noteId: string, from?: HTMLElement): void;
  /** Opens one photo of the note full size. */
  openPhoto(noteId: string, photoId: string, from?: HTMLElement): void;
  close(): void;
  update(model: BoardModel): void;
  destroy(): void;
}

export interface FocusOptions {
  rerender(): void;
  photos: PhotoLoader;
  isFacilitator(): boolean;
  changeWithUndo(message: string, fn: UndoableWriter): boolean;
}

export function focusOverlay(opts: FocusOptions): FocusOverlay {
  let noteId: string | undefined;
  /** The photo shown full size; undefined shows the note's text. */
  let photoId: string | undefined;
  let last: BoardModel | undefined;
  let back: HTMLElement | null = null;
  let shownNote: Note | undefined;
  const text = h("p", { class: "focus-text", testid: "focus-text" });
  const meta = h("p", { class: "focus-meta", testid: "focus-meta" });
  const closeButton = h("button", { type: "button", class: "btn focus-close", testid: "focus-close" }, "Close (Esc)");
  // Focusable: a long note scrolls inside the card, by keyboard too.
  const card = h("div", { class: "focus-card", tabindex: "0" }, text, meta);

  // The photo view.
  const img = h("img", { class: "focus-photo-img", testid: "focus-photo-img", alt: "", hidden: true });
  const state = h("p", { class: "focus-photo-state", testid: "focus-photo-state" });
  const caption = h("p", { class: "focus-photo-caption", testid: "focus-photo-caption" });
  const noteLine = h("p", { class: "focus-photo-note", testid: "focus-photo-note" });
  const prev = h("button", { type: "button", class: "btn focus-photo-step", testid: "focus-photo-prev" }, "‹ Previous");
  const next = h("button", { type: "button", class: "btn focus-photo-step", testid: "focus-photo-next" }, "Next ›");
  const hideButton = h("button", { type: "button", class: "btn focus-photo-hide", testid: "focus-photo-hide", hidden: true }, "Hide this photo");
  const figure = h("figure", { class: "focus-photo", testid: "focus-photo", hidden: true }, h("div", { class: "focus-photo-frame" }, img, state), h("figcaption", {}, caption, noteLine));
  const tools = h("div", { class: "focus-tools" }, prev, next, hideButton, closeButton);
  const el = h("div", { class: "focus-overlay", testid: "focus-overlay", role: "dialog", "aria-modal": "true", "aria-label": "One note", hidden: true }, card, figure, tools);

  let stopWatch: (() => void) | undefined;
  let watched: string | undefined;
  const watch = (id: string | undefined) => {
    if (id === watched) return;
    stopWatch?.();
    stopWatch = undefined;
    watched = id;
    if (id) stopWatch = opts.photos.watch(id, (load) => showLoad(img, state, load));
  };

  const close = () => {
    if (!noteId) return;
    noteId = undefined;
    photoId = undefined;
    watch(undefined);
    el.hidden = true;
    document.body.classList.remove("has-focus-overlay");
    if (back?.isConnected) back.focus();
    back = null;
  };
  closeButton.addEventListener("click", close);

  /** Moves to the note's photo `step` away (wrapping round). */
  const step = (by: number) => {
    if (!shownNote || !photoId) return;
    const shown = visiblePhotos(shownNote);
    const i = shown.findIndex((p) => p.id === photoId);
    if (shown.length < 2 || i < 0) return;
    photoId = shown[(i + by + shown.length) % shown.length]!.id;
    if (last) fill(last);
  };
  prev.addEventListener("click", () => step(-1));
  next.addEventListener("click", () => step(1));
  hideButton.addEventListener("click", () => {
    const n = shownNote;
    const id = photoId;
    if (!n || !id) return;
    const shown = visiblePhotos(n);
    const i = shown.findIndex((p) => p.id === id);
    // The next photo takes its place; the note's last photo hidden closes the view.
    const after = shown.filter((p) => p.id !== id);
    photoId = after[Math.min(i, after.length - 1)]?.id;
    opts.changeWithUndo("Photo hidden from the board", hidePhoto(n.id, id, true));
    if (!photoId) close();
  });

  const onKey = (e: KeyboardEvent) => {
    if (!noteId) return;
    if (e.key === "Escape") {
      e.preventDefault();
      close();
    } else if (photoId && (e.key === "ArrowLeft" || e.key === "ArrowRight") && !e.altKey && !e.ctrlKey && !e.metaKey) {
      e.preventDefault();
      step(e.key === "ArrowLeft" ? -1 : 1);
    }
  };
  document.addEventListener("keydown", onKey);

  const fill = (model: BoardModel) => {
    if (!noteId) return;
    const n = model.notes.find((x) => x.id === noteId);
    if (!n) {
      close();
      return;
    }
    shownNote = n;
    const cat = model.categories.find((c) => c.id === n.category);
    const metaText = [phaseLabel(model, n.phase), cat?.label ?? "", n.authorName, formatTime(n.createdAt)].filter(Boolean).join(" · ");
    if (photoId) {
      const shown = visiblePhotos(n);
      let i = shown.findIndex((p) => p.id === photoId);
      // Hidden meanwhile (on another screen): the note's next photo, or the note itself.
      if (i < 0) {
        photoId = shown[0]?.id;
        i = 0;
      }
      if (!photoId) {
        close();
        return;
      }
      const name = photoName(n, i, shown.length);
      setAttr(el, "aria-label", name);
      setAttr(img, "alt", `${name}: ${n.text.replace(/\s+/g, " ").trim().slice(0, 120)}`);
      // The author is in the photo's name; the note says what the photo shows.
      setText(caption, [name, phaseLabel(model, n.phase), cat?.label ?? "", formatTime(n.createdAt)].filter(Boolean).join(" · "));
      setText(noteLine, n.text);
      prev.hidden = next.hidden = shown.length < 2;
      hideButton.hidden = !opts.isFacilitator();
      watch(photoId);
    } else {
      setAttr(el, "aria-label", "One note");
      setText(text, n.text);
      setText(meta, metaText);
      card.style.setProperty("--cat", cat?.color ?? "#64748b");
      prev.hidden = next.hidden = hideButton.hidden = true;
      watch(undefined);
    }
    card.hidden = !!photoId;
    figure.hidden = !photoId;
    el.classList.toggle("is-photo", !!photoId);
  };

  const show = (id: string, photo: string | undefined, from?: HTMLElement) => {
    noteId = id;
    photoId = photo;
    back = from ?? (document.activeElement instanceof HTMLElement ? document.activeElement : null);
    el.hidden = false;
    document.body.classList.add("has-focus-overlay");
    // Filled at once from the last model (never shown empty), and again on the next render.
    if (last) fill(last);
    opts.rerender();
    closeButton.focus();
  };

  return {
    el,
    open: (id, from) => show(id, undefined, from),
    openPhoto: (id, photo, from) => show(id, photo, from),
    close,
    update(model) {
      last = model;
      fill(model);
    },
    destroy() {
      watch(undefined);
      document.removeEventListener("keydown", onKey);
      document.body.classList.remove("has-focus-overlay");
    },
  };
}
