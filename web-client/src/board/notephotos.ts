// The photos on a note's card: a row of square thumbnails under the text (at most four), each a
// button that opens the photo full size. A thumbnail is kept per photo id and its <img> keeps its
// object URL across renders, so a photo never flickers when the card is updated. A photo the
// server does not have yet (its phone is still uploading it) shows "Photo on its way" and turns
// into the picture by itself once it arrives.
//
// Hidden photos (the facilitator's) are shown to nobody; with "show hidden" on, the facilitator
// gets "1 photo hidden — show" on the card, which shows them again (undoable).

import type { Note, NotePhoto } from "../board";
import { h, setAttr, setText } from "../dom";
import type { PhotoLoad } from "./photos";
import { showPhotos } from "./undoable";
import type { ViewContext } from "./view";

export interface NotePhotos {
  /** The thumbnails' row (empty and hidden when the note shows no photo). */
  el: HTMLElement;
  /** "1 photo hidden — show" (the facilitator's, with "show hidden" on). */
  hiddenButton: HTMLButtonElement;
  update(note: Note): void;
  destroy(): void;
}

interface Thumb {
  el: HTMLButtonElement;
  stop(): void;
}

/** The name the board gives one photo of a note: "Photo 1 of 2 on Ana's note". */
export function photoName(note: Note, index: number, count: number): string {
  const who = note.authorName.trim();
  return `Photo ${index + 1} of ${count} on ${who ? `${who}’s` : "a"} note`;
}

/** The photos of a note the board shows: every photo not hidden, in order. */
export function visiblePhotos(note: Note): NotePhoto[] {
  return (note.photos ?? []).filter((p) => !p.hidden);
}

/** Shows a photo's state in a thumbnail or the full-size view: the picture or a sentence. */
export function showLoad(img: HTMLImageElement, label: HTMLElement, load: PhotoLoad): void {
  if (load.state === "ready") {
    if (img.getAttribute("src") !== load.url) img.src = load.url;
    img.hidden = false;
    label.hidden = true;
    return;
  }
  img.hidden = true;
  img.removeAttribute("src");
  label.hidden = false;
  setAttr(label, "data-state", load.state);
  setText(label, load.state === "waiting" ? "Photo on its way" : load.state === "failed" ? load.reason : "Loading photo…");
}

export function notePhotos(ctx: ViewContext, first: Note): NotePhotos {
  let note = first;
  const thumbs = new Map<string, Thumb>();
  const el = h("div", { class: "note-photos", testid: "note-photos", hidden: true });
  const hiddenButton = h("button", { type: "button", class: "note-photos-hidden", testid: "note-photos-hidden", hidden: true });
  hiddenButton.addEventListener("click", () => {
    const ids = (note.photos ?? []).filter((p) => p.hidden).map((p) => p.id);
    const n = ids.length;
    ctx.changeWithUndo(n === 1 ? "Photo shown again on the board" : `${n} photos shown again on the board`, showPhotos(note.id, ids));
  });

  const thumb = (id: string): Thumb => {
    const img = h("img", { class: "note-photo-img", alt: "", decoding: "async", draggable: "false", hidden: true });
    const label = h("span", { class: "note-photo-state", testid: "note-photo-state" }, "Loading photo…");
    const b = h("button", { type: "button", class: "note-photo", testid: "note-photo", "data-photo-id": id }, img, label);
    b.addEventListener("click", () => ctx.openPhoto(note.id, id, b));
    const stop = ctx.photos.watch(id, (load) => {
      setAttr(b, "data-state", load.state);
      showLoad(img, label, load);
    });
    return { el: b, stop };
  };

  const update = (n: Note) => {
    note = n;
    const shown = visiblePhotos(n);
    const keep = new Set(shown.map((p) => p.id));
    for (const [id, t] of thumbs) {
      if (keep.has(id)) continue;
      t.stop();
      t.el.remove();
      thumbs.delete(id);
    }
    shown.forEach((p, i) => {
      let t = thumbs.get(p.id);
      if (!t) {
        t = thumb(p.id);
        thumbs.set(p.id, t);
      }
      // Moved only when out of place, so an image already shown is never re-inserted.
      if (el.children[i] !== t.el) el.insertBefore(t.el, el.children[i] ?? null);
      setAttr(t.el, "aria-label", `${photoName(n, i, shown.length)} — open`);
    });
    el.hidden = shown.length === 0;
    const hiddenCount = (n.photos ?? []).length - shown.length;
    hiddenButton.hidden = !(hiddenCount > 0 && ctx.isFacilitator() && ctx.showsHidden());
    const label = hiddenCount === 1 ? "1 photo hidden — show" : `${hiddenCount} photos hidden — show`;
    setText(hiddenButton, label);
    const who = n.authorName.trim();
    setAttr(hiddenButton, "aria-label", `${label} (${who ? `${who}’s` : "a"} note)`);
  };
  update(first);

  return {
    el,
    hiddenButton,
    update,
    destroy() {
      for (const t of thumbs.values()) t.stop();
      thumbs.clear();
    },
  };
}
