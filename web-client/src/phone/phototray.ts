// The composer's photos: "Take photo" (the camera, `capture="environment"`) and "Choose photo"
// (the library), the reminder that photos are of student work and not of faces, and the photos
// attached to the note being written, each with a button to take it off. Up to MAX_NOTE_PHOTOS.
//
// Preparing a photo (decode, scale, re-encode, hash) takes a moment on a phone: meanwhile its
// slot says so, and Send waits (`busy`). What to do with a file is the page's (`onAttach`).

import { MAX_NOTE_PHOTOS } from "../board";
import { h, setAttr, setText } from "../dom";

export interface PhotoTrayOptions {
  /** Prepares and keeps a picture; resolves with its id, rejects with a message for the coach. */
  onAttach(file: File): Promise<string>;
  /** The coach took a photo off the note: resolves once the phone has let go of it. */
  onRemove(id: string): Promise<void>;
  /** This phone's copy of a photo, for its preview. */
  url(id: string): string | undefined;
  /** The photos changed (attached, ready, removed): the composer updates Send. */
  onChange(): void;
}

interface Slot {
  /** Set once the photo is prepared and kept. */
  id?: string;
  el: HTMLLIElement;
}

/** "2 of 4 photos", or how many more fit. */
export function photoCountText(n: number): string {
  if (n === 0) return "";
  if (n >= MAX_NOTE_PHOTOS) return `${MAX_NOTE_PHOTOS} photos: the most a note holds.`;
  return `${n} of ${MAX_NOTE_PHOTOS} photos`;
}

/** Keeps the first files that fit beside `attached` photos; says when some did not. */
export function filesThatFit<T>(files: readonly T[], attached: number): { take: T[]; left: number } {
  const room = Math.max(0, MAX_NOTE_PHOTOS - attached);
  return { take: files.slice(0, room), left: Math.max(0, files.length - room) };
}

const SVG = "http://www.w3.org/2000/svg";
/** Outline icons (drawn, so they show on phones without an emoji font). */
const ICONS = {
  camera: "M4 8h3l2-3h6l2 3h3a1 1 0 0 1 1 1v10a1 1 0 0 1-1 1H4a1 1 0 0 1-1-1V9a1 1 0 0 1 1-1zM12 17a4 4 0 1 0 0-8 4 4 0 0 0 0 8z",
  picture: "M4 5h16a1 1 0 0 1 1 1v12a1 1 0 0 1-1 1H4a1 1 0 0 1-1-1V6a1 1 0 0 1 1-1zM3 16l5-5 4 4 3-3 6 6M15.5 9.5a1.5 1.5 0 1 0 0-.01",
};

function icon(kind: keyof typeof ICONS): SVGSVGElement {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("class", "photo-icon");
  svg.setAttribute("aria-hidden", "true");
  const path = document.createElementNS(SVG, "path");
  path.setAttribute("d", ICONS[kind]);
  svg.append(path);
  return svg;
}

function fileInput(testid: string, label: string, capture: boolean): { label: HTMLLabelElement; input: HTMLInputElement } {
  const input = h("input", {
    type: "file",
    accept: "image/*",
    class: "photo-file",
    testid,
    ...(capture ? { capture: "environment" } : { multiple: true }),
  });
  const el = h("label", { class: "btn btn-small photo-pick" }, input, icon(capture ? "camera" : "picture"), label);
  return { label: el, input };
}

export class PhotoTray {
  readonly el: HTMLDivElement;
  readonly #opts: PhotoTrayOptions;
  readonly #list: HTMLUListElement;
  readonly #count: HTMLParagraphElement;
  readonly #problem: HTMLParagraphElement;
  readonly #inputs: HTMLInputElement[];
  readonly #labels: HTMLLabelElement[];
  #slots: Slot[] = [];
  #enabled = false;

  constructor(opts: PhotoTrayOptions) {
    this.#opts = opts;
    const camera = fileInput("photo-camera", "Take photo", true);
    const library = fileInput("photo-library", "Choose photo", false);
    this.#inputs = [camera.input, library.input];
    this.#labels = [camera.label, library.label];
    this.#list = h("ul", { class: "photo-attached", testid: "photo-attached", "aria-label": "Photos on this note" });
    this.#count = h("p", { class: "photo-count", testid: "photo-count", hidden: true });
    this.#problem = h("p", { class: "compose-problem", testid: "photo-problem", role: "alert", hidden: true });
    this.el = h(
      "div",
      { class: "photo-tray", testid: "photo-tray" },
      h("div", { class: "photo-buttons" }, camera.label, library.label),
      h("p", { class: "photo-reminder", testid: "photo-reminder" }, "Photos of student work only, not faces."),
      this.#list,
      this.#count,
      this.#problem,
    );
    for (const input of this.#inputs) {
      input.addEventListener("change", () => {
        const files = [...(input.files ?? [])];
        input.value = "";
        void this.add(files);
      });
    }
    this.#render(false);
  }

  /** Ids of the photos ready to go with the note, in the order they were added. */
  get ids(): string[] {
    return this.#slots.flatMap((s) => (s.id ? [s.id] : []));
  }

  /** Whether a photo is still being prepared. */
  get busy(): boolean {
    return this.#slots.some((s) => !s.id);
  }

  /** Whether the board is ready to take notes (the buttons work only then). */
  setEnabled(enabled: boolean): void {
    if (enabled === this.#enabled) return;
    this.#enabled = enabled;
    this.#render(false);
  }

  /** Attaches pictures, as many as fit. */
  async add(files: readonly File[]): Promise<void> {
    if (files.length === 0) return;
    const { take, left } = filesThatFit(files, this.#slots.length);
    this.#say(left > 0 ? `A note holds up to ${MAX_NOTE_PHOTOS} photos: ${left === 1 ? "one was" : `${left} were`} not added.` : "");
    await Promise.all(
      take.map(async (file) => {
        const slot: Slot = { el: h("li", { class: "photo-slot is-preparing", testid: "photo-slot" }, h("span", { class: "photo-preparing" }, "Preparing…")) };
        this.#slots.push(slot);
        this.#render();
        try {
          const id = await this.#opts.onAttach(file);
          if (!this.#slots.includes(slot)) return;
          if (this.#slots.some((s) => s.id === id)) {
            // The same picture twice: keep it once.
            this.#slots = this.#slots.filter((s) => s !== slot);
          } else {
            slot.id = id;
            this.#fill(slot);
          }
        } catch (e) {
          this.#slots = this.#slots.filter((s) => s !== slot);
          this.#say(e instanceof Error && e.message ? e.message : "This photo could not be added. Try again.");
        }
        this.#render();
      }),
    );
  }

  /** Shows photos kept from before (a draft that survived a reload). */
  restore(ids: readonly string[]): void {
    for (const id of ids.slice(0, MAX_NOTE_PHOTOS - this.#slots.length)) {
      if (this.#slots.some((s) => s.id === id)) continue;
      const slot: Slot = { id, el: h("li", { class: "photo-slot", testid: "photo-slot" }) };
      this.#fill(slot);
      this.#slots.push(slot);
    }
    this.#render();
  }

  /** The note was sent with these photos: start a new one. */
  clear(): void {
    this.#slots = [];
    this.#say("");
    this.#render();
  }

  #fill(slot: Slot): void {
    const id = slot.id!;
    const remove = h("button", { type: "button", class: "photo-remove", testid: "photo-remove" }, "×");
    remove.addEventListener("click", () => {
      // The slot goes once the phone has forgotten the photo, so a reload right after cannot
      // bring it back.
      remove.disabled = true;
      void this.#opts
        .onRemove(id)
        .catch(() => this.#say("This photo could not be taken off. Try again."))
        .finally(() => {
          this.#slots = this.#slots.filter((s) => s !== slot);
          this.#render();
        });
    });
    const url = this.#opts.url(id);
    slot.el.classList.remove("is-preparing");
    slot.el.dataset.photoId = id;
    slot.el.replaceChildren(url ? h("img", { class: "photo-thumb", src: url, alt: "" }) : h("span", { class: "photo-preparing" }, "Photo"), remove);
  }

  #say(message: string): void {
    this.#problem.hidden = message === "";
    setText(this.#problem, message);
  }

  #render(notify = true): void {
    const els = this.#slots.map((s) => s.el);
    if (els.length !== this.#list.children.length || els.some((el, i) => this.#list.children[i] !== el)) this.#list.replaceChildren(...els);
    this.#list.hidden = this.#slots.length === 0;
    this.#slots.forEach((s, i) => {
      const img = s.el.querySelector("img");
      if (img) setAttr(img, "alt", `Photo ${i + 1} on this note`);
      const remove = s.el.querySelector("button");
      if (remove) setAttr(remove, "aria-label", `Take photo ${i + 1} off this note`);
    });
    const full = this.#slots.length >= MAX_NOTE_PHOTOS;
    for (const input of this.#inputs) input.disabled = !this.#enabled || full;
    for (const label of this.#labels) label.classList.toggle("is-disabled", !this.#enabled || full);
    this.#count.hidden = this.#slots.length === 0;
    setText(this.#count, photoCountText(this.#slots.length));
    if (notify) this.#opts.onChange();
  }
}
