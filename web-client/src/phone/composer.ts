// The phone's composer: the note box, its character counter, the full-name check, category and
// child chips, and Send. Send sits in a bar that stays above the on-screen keyboard
// (`visualViewport`), so it is reachable at every phase with the keyboard open.
//
// Nothing is cut silently: a note over MAX_NOTE_CHARS is refused with the reason and how much
// to shorten it. A note that seems to hold a child's full name is not sent by Send: the coach
// replaces the name with initials in one tap, or says "Send anyway".

import { type Category } from "../board";
import { cleanAlias, MAX_ALIAS_CHARS } from "../debrief";
import { h, setAttr, setText } from "../dom";
import { aliasLooksLikeName, MAX_NOTE_CHARS, possibleFullNames } from "../validate";
import { KeyedList } from "./keyed";
import { initialsOf, withInitials } from "./names";
import { PhotoTray, type PhotoTrayOptions } from "./phototray";

/** The status line right after a note was saved. */
export const SENT = "Sent ✓";

/** From here on the counter shows how much room is left. */
export const COUNTER_FROM_CHARS = MAX_NOTE_CHARS - 400;

export interface NoteDraft {
  text: string;
  category: string;
  children: string[];
  /** Ids of the photos on the note, in order (kept on this phone as drafts until it is sent). */
  photos: string[];
}

export interface ComposerOptions {
  /** The category chosen last time on this device. */
  category: string | undefined;
  onCategory(id: string): void;
  /** Sends a note; returns an error message when it could not be saved. */
  onSend(draft: NoteDraft): string | undefined;
  /** Adds an alias to the lab's list of children. */
  onAddChild(alias: string): void;
  /** The camera and library buttons: what to do with a picture, and with one taken off. */
  photos: Omit<PhotoTrayOptions, "onChange">;
}

export interface ComposerState {
  /** Whether the board is loaded (notes can be saved). */
  ready: boolean;
  categories: Category[];
  /** The lab's child aliases, or undefined on a board without a list. */
  children: string[] | undefined;
  /** The line under Send: what happened to my notes. */
  status: string;
}

/** Characters as people count them (a 🙂 is one). */
export function charCount(text: string): number {
  return [...text].length;
}

/** Why a note this long cannot be sent, or undefined when it can. */
export function tooLongText(chars: number): string | undefined {
  if (chars <= MAX_NOTE_CHARS) return undefined;
  const over = (chars - MAX_NOTE_CHARS).toLocaleString("en-US");
  return `Too long to send: a note holds up to ${MAX_NOTE_CHARS.toLocaleString("en-US")} characters, so that it fits on the board. Shorten it by ${over}, or send it as two notes.`;
}

/** Keeps `--keyboard-inset` on <html> at the height the on-screen keyboard covers. */
export function followKeyboard(): () => void {
  const vv = window.visualViewport;
  if (!vv) return () => undefined;
  const root = document.documentElement;
  const place = () => {
    // A pinch-zoomed page also shows less than the layout viewport: that is not a keyboard.
    const zoomed = Math.abs(vv.scale - 1) > 0.01;
    const covered = zoomed ? 0 : Math.max(0, Math.round(window.innerHeight - vv.height - vv.offsetTop));
    root.style.setProperty("--keyboard-inset", `${covered}px`);
  };
  place();
  vv.addEventListener("resize", place);
  vv.addEventListener("scroll", place);
  return () => {
    vv.removeEventListener("resize", place);
    vv.removeEventListener("scroll", place);
    root.style.removeProperty("--keyboard-inset");
  };
}

interface ChipView {
  el: HTMLButtonElement;
}

export class Composer {
  readonly el: HTMLFormElement;
  readonly textarea: HTMLTextAreaElement;
  readonly #opts: ComposerOptions;
  readonly #send: HTMLButtonElement;
  readonly #counter: HTMLSpanElement;
  readonly #tooLong: HTMLParagraphElement;
  readonly #nameWarning: HTMLDivElement;
  readonly #nameText: HTMLSpanElement;
  readonly #initials: HTMLButtonElement;
  readonly #statusLine: HTMLParagraphElement;
  readonly #chips: KeyedList<Category, ChipView>;
  readonly #childChips: KeyedList<string, ChipView>;
  readonly #childBox: HTMLDivElement;
  readonly #tray: PhotoTray;
  readonly #selectedChildren = new Set<string>();
  #selected: string | undefined;
  #state: ComposerState = { ready: false, categories: [], children: undefined, status: "" };
  #error = "";

  constructor(opts: ComposerOptions) {
    this.#opts = opts;
    this.#selected = opts.category;
    this.textarea = h("textarea", {
      id: "note-text",
      testid: "note-text",
      class: "note-input",
      rows: 4,
      placeholder: "What did a child say, write or try?",
      "aria-describedby": "note-hint note-counter note-too-long name-warning-text",
      disabled: true,
    });
    this.#counter = h("span", { id: "note-counter", class: "note-counter", testid: "note-counter", hidden: true });
    this.#tooLong = h("p", { id: "note-too-long", class: "compose-problem", testid: "note-too-long", role: "alert", hidden: true });
    this.#nameText = h("span", { id: "name-warning-text" });
    this.#initials = h("button", { type: "button", class: "btn btn-small btn-primary", testid: "name-initials" }, "Use initials");
    const sendAnyway = h("button", { type: "button", class: "btn btn-small", testid: "name-send-anyway" }, "Send anyway");
    this.#nameWarning = h(
      "div",
      { class: "compose-problem name-warning", testid: "name-warning", role: "alert", hidden: true },
      this.#nameText,
      h("span", { class: "name-warning-buttons" }, this.#initials, sendAnyway),
    );
    this.#send = h("button", { type: "submit", class: "btn btn-primary btn-send", testid: "note-send", disabled: true }, "Send");
    this.#statusLine = h("p", { class: "status-line", testid: "note-status", role: "status", "aria-live": "polite" });

    const chipsEl = h("div", { class: "chips", role: "group", "aria-label": "Category" });
    this.#chips = new KeyedList<Category, ChipView>(chipsEl, (c) => c.id, {
      make: (c) => {
        const el = h("button", { type: "button", class: "chip", testid: "category-chip", "data-category": c.id, "aria-pressed": "false" }, h("span", { class: "chip-dot", "aria-hidden": "true" }), h("span", { class: "chip-label" }));
        el.addEventListener("click", () => {
          this.#selected = c.id;
          this.#opts.onCategory(c.id);
          this.#renderChips();
        });
        return { el };
      },
      update: (view, c) => {
        view.el.style.setProperty("--cat", c.color);
        setText(view.el.querySelector(".chip-label")!, c.label);
        setAttr(view.el, "aria-pressed", String(c.id === this.#selected));
      },
    });

    // Which children the note is about: one-tap chips from the lab's list, "+ child" to extend it.
    const childChipsEl = h("div", { class: "child-chips", role: "group", "aria-label": "Children (aliases or initials)" });
    this.#childChips = new KeyedList<string, ChipView>(childChipsEl, (a) => a, {
      make: (alias) => {
        const el = h("button", { type: "button", class: "chip child-chip", testid: "child-chip", "data-child": alias, "aria-pressed": "false" }, alias);
        el.addEventListener("click", () => {
          if (this.#selectedChildren.has(alias)) this.#selectedChildren.delete(alias);
          else this.#selectedChildren.add(alias);
          this.#renderChildren();
        });
        return { el };
      },
      update: (view, alias) => setAttr(view.el, "aria-pressed", String(this.#selectedChildren.has(alias))),
    });
    this.#tray = new PhotoTray({ ...opts.photos, onChange: () => this.#update() });
    const adder = this.#childAdder();
    this.#childBox = h("div", { class: "child-box", hidden: true }, h("div", { class: "child-row" }, childChipsEl, adder.open), adder.el);

    this.el = h(
      "form",
      { class: "composer", novalidate: true, testid: "composer" },
      h("label", { for: "note-text", class: "sr-only" }, "Observation"),
      this.textarea,
      h("p", { id: "note-hint", class: "hint sr-only" }, "Describe what you saw. Use initials or an alias for children."),
      chipsEl,
      this.#childBox,
      this.#tray.el,
      h("div", { class: "send-bar", testid: "send-bar" }, this.#tooLong, this.#nameWarning, h("div", { class: "send-row" }, this.#counter, this.#send)),
      this.#statusLine,
    );

    this.textarea.addEventListener("input", () => {
      this.#error = "";
      this.#update();
    });
    this.textarea.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
        e.preventDefault();
        this.el.requestSubmit();
      }
    });
    this.el.addEventListener("submit", (e) => {
      e.preventDefault();
      this.#submit(false);
    });
    sendAnyway.addEventListener("click", () => this.#submit(true));
    this.#initials.addEventListener("click", () => {
      this.textarea.value = withInitials(this.textarea.value);
      this.#update();
      this.textarea.focus();
    });
  }

  /** The note as it would be stored, or undefined when there is nothing to send. */
  #text(): string | undefined {
    const clean = this.textarea.value.replace(/\r\n?/g, "\n").trim();
    return clean === "" ? undefined : clean;
  }

  #submit(anyway: boolean): void {
    const text = this.#text();
    if (!text || !this.#state.ready || tooLongText(charCount(text)) || this.#tray.busy) return;
    if (!anyway && possibleFullNames(text).length > 0) return;
    const category = this.#selected ?? this.#state.categories[0]?.id ?? "";
    const error = this.#opts.onSend({ text, category, children: [...this.#selectedChildren], photos: this.#tray.ids });
    if (error) {
      this.#error = error;
      this.#update();
      return;
    }
    this.textarea.value = "";
    this.#tray.clear();
    // The next note is likely about someone else.
    this.#selectedChildren.clear();
    this.#renderChildren();
    this.#update();
    this.textarea.focus();
  }

  /** Shows the photos of a note that was being written when the page went away. */
  restorePhotos(ids: readonly string[]): void {
    this.#tray.restore(ids);
  }

  render(state: ComposerState): void {
    this.#state = state;
    this.textarea.disabled = !state.ready;
    this.#tray.setEnabled(state.ready);
    if (!state.categories.some((c) => c.id === this.#selected)) this.#selected = state.categories[0]?.id;
    this.#renderChips();
    this.#renderChildren();
    this.#update();
  }

  #renderChips(): void {
    this.#chips.render(this.#state.categories);
  }

  #renderChildren(): void {
    const list = this.#state.children;
    this.#childBox.hidden = list === undefined;
    const aliases = [...(list ?? [])];
    // Selected but not (yet) in the list, e.g. added while the list had not synced: still shown.
    for (const a of this.#selectedChildren) if (!aliases.includes(a)) aliases.push(a);
    this.#childChips.render(aliases);
  }

  /** Counter, problems and Send, from the text as typed. */
  #update(): void {
    const text = this.#text() ?? "";
    const chars = charCount(text);
    const tooLong = tooLongText(chars);
    this.#counter.hidden = chars < COUNTER_FROM_CHARS;
    setText(this.#counter, `${chars.toLocaleString("en-US")} / ${MAX_NOTE_CHARS.toLocaleString("en-US")}`);
    this.#counter.classList.toggle("is-over", !!tooLong);
    this.#tooLong.hidden = !tooLong;
    setText(this.#tooLong, tooLong ?? "");
    const names = tooLong ? [] : possibleFullNames(text);
    this.#nameWarning.hidden = names.length === 0;
    if (names.length > 0) {
      setText(this.#nameText, `“${names[0]}” looks like a child's full name. Use initials or an alias instead.`);
      setText(this.#initials, `Use ${initialsOf(names[0]!)}`);
    }
    const preparing = this.#tray.busy;
    this.#send.disabled = !this.#state.ready || text === "" || !!tooLong || names.length > 0 || preparing;
    // "Sent ✓" belongs to the previous note, not to a new draft.
    const drafting = text !== "" || this.#tray.ids.length > 0;
    const status = preparing
      ? "Preparing the photo…"
      : text === "" && this.#tray.ids.length > 0
        ? "Add a few words about the photo, then Send."
        : drafting && this.#state.status === SENT
          ? ""
          : this.#state.status;
    setText(this.#statusLine, this.#error ? `Not saved: ${this.#error}` : status);
  }

  /** "+ child": type initials, add; the alias joins the lab's list and is selected for this note. */
  #childAdder(): { el: HTMLDivElement; open: HTMLButtonElement } {
    const open = h("button", { type: "button", class: "chip child-chip-add", testid: "child-add", "aria-expanded": "false" }, "+ child");
    const input = h("input", {
      class: "input child-new",
      testid: "child-new",
      maxlength: MAX_ALIAS_CHARS,
      placeholder: "Initials or alias, e.g. T. or TR",
      "aria-label": "New child: initials or an alias",
      autocomplete: "off",
      autocapitalize: "characters",
      enterkeyhint: "done",
    });
    const add = h("button", { type: "button", class: "btn btn-small btn-primary", testid: "child-new-add" }, "Add");
    const cancel = h("button", { type: "button", class: "btn btn-small", "aria-label": "Cancel adding a child" }, "Cancel");
    const warning = h("p", { class: "name-warning", role: "status", testid: "child-warning", hidden: true });
    const el = h("div", { class: "child-adder", hidden: true }, h("div", { class: "child-adder-row" }, input, add, cancel), warning);
    // Something that looks like a full name needs a second tap.
    let confirm = "";
    const updateWarning = () => {
      const look = aliasLooksLikeName(input.value);
      warning.hidden = !look;
      if (look === "full") warning.textContent = "That looks like a full name. Children's names stay out of the board: use initials (T. R.) or an alias.";
      else if (look === "name") warning.textContent = "That looks like a name. Initials or an alias keep children private.";
      setText(add, look === "full" && confirm === input.value.trim() ? "Add anyway" : "Add");
    };
    const close = () => {
      el.hidden = true;
      setAttr(open, "aria-expanded", "false");
      input.value = "";
      confirm = "";
      updateWarning();
    };
    const addTyped = () => {
      const alias = cleanAlias(input.value);
      if (!alias || !this.#state.ready) return;
      if (aliasLooksLikeName(alias) === "full" && confirm !== input.value.trim()) {
        confirm = input.value.trim();
        updateWarning();
        return;
      }
      this.#opts.onAddChild(alias);
      this.#selectedChildren.add(alias);
      close();
      this.#renderChildren();
    };
    open.addEventListener("click", () => {
      el.hidden = false;
      setAttr(open, "aria-expanded", "true");
      input.focus();
    });
    cancel.addEventListener("click", close);
    input.addEventListener("input", () => {
      confirm = "";
      updateWarning();
    });
    add.addEventListener("click", addTyped);
    input.addEventListener("keydown", (e) => {
      if (e.key === "Enter") {
        e.preventDefault();
        addTyped();
      }
    });
    return { el, open };
  }
}
