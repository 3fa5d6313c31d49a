// Next steps on the phone: in the final debrief each coach writes the next step(s) they will take
// with their own teachers; they edit or delete only their own; everyone's stay on the phones
// afterwards. Each step is a keyed item, edited in place.

import { h, setAttr, setText } from "../dom";
import { MAX_NEXT_STEP_CHARS, type NextStep } from "../model";
import { KeyedList } from "./keyed";
import { DELETE_CONFIRM_MS, confirmTap } from "./feed";

export interface NextStepsOptions {
  deviceId: string;
  onAdd(text: string): void;
  onEdit(id: string, text: string): void;
  onRemove(id: string): void;
}

export interface NextStepsState {
  steps: NextStep[];
  /** Writing is open (the final debrief, on a board with next steps). */
  open: boolean;
  /** Which of `steps` the server has not stored yet. */
  waiting: ReadonlySet<string>;
  now: number;
}

/** Why a next step cannot be saved, or undefined when it can. */
export function nextStepProblem(text: string): string | undefined {
  // Counted as the model's writer counts (UTF-16 units), so what passes here is saved.
  const chars = text.trim().length;
  if (chars <= MAX_NEXT_STEP_CHARS) return undefined;
  return `Too long to save: a next step holds up to ${MAX_NEXT_STEP_CHARS} characters. Shorten it by ${chars - MAX_NEXT_STEP_CHARS}.`;
}

interface Item {
  el: HTMLLIElement;
  text: HTMLParagraphElement;
  who: HTMLSpanElement;
  badge: HTMLSpanElement;
  edit: HTMLButtonElement;
  del: HTMLButtonElement;
  editor: HTMLDivElement;
  editText: HTMLTextAreaElement;
  editProblem: HTMLParagraphElement;
  save: HTMLButtonElement;
  editing: boolean;
  armedAt: number;
}


export class NextStepsView {
  readonly el: HTMLElement;
  readonly #opts: NextStepsOptions;
  readonly #form: HTMLFormElement;
  readonly #text: HTMLTextAreaElement;
  readonly #problem: HTMLParagraphElement;
  readonly #add: HTMLButtonElement;
  readonly #list: KeyedList<NextStep, Item>;
  readonly #empty: HTMLParagraphElement;
  #state: NextStepsState | undefined;

  constructor(opts: NextStepsOptions) {
    this.#opts = opts;
    this.#text = h("textarea", {
      id: "next-step-text",
      class: "note-input next-step-input",
      testid: "next-step-text",
      rows: 3,
      placeholder: "e.g. Try a number talk on making ten with my grade 2 teachers",
      "aria-describedby": "next-step-problem",
    });
    this.#problem = h("p", { id: "next-step-problem", class: "compose-problem", testid: "next-step-problem", role: "alert", hidden: true });
    this.#add = h("button", { type: "submit", class: "btn btn-primary btn-block", testid: "next-step-add", disabled: true }, "Add my next step");
    this.#form = h(
      "form",
      { class: "next-step-form", novalidate: true },
      h("label", { for: "next-step-text" }, "What will you do with your teachers?"),
      this.#text,
      h("div", { class: "send-bar" }, this.#problem, this.#add),
    );
    this.#empty = h("p", { class: "hint" }, "No next steps yet.");
    const list = h("ul", { class: "next-step-list" });
    this.#list = new KeyedList<NextStep, Item>(list, (s) => s.id, { make: (s) => this.#make(s), update: (item, s) => this.#update(item, s) });
    this.el = h(
      "section",
      { class: "next-steps", testid: "next-steps", "aria-labelledby": "next-steps-heading", hidden: true },
      h("h2", { id: "next-steps-heading", class: "carried-heading" }, "Next steps"),
      this.#form,
      this.#empty,
      list,
    );
    const check = () => {
      const problem = nextStepProblem(this.#text.value);
      this.#problem.hidden = !problem;
      setText(this.#problem, problem ?? "");
      this.#add.disabled = !!problem || this.#text.value.trim() === "";
    };
    this.#text.addEventListener("input", check);
    this.#form.addEventListener("submit", (e) => {
      e.preventDefault();
      const text = this.#text.value.replace(/\r\n?/g, "\n").trim();
      if (text === "" || nextStepProblem(text)) return;
      this.#opts.onAdd(text);
      this.#text.value = "";
      check();
    });
  }

  render(state: NextStepsState): void {
    this.#state = state;
    this.el.hidden = !state.open && state.steps.length === 0;
    this.#form.hidden = !state.open;
    this.#empty.hidden = state.steps.length > 0;
    this.#list.render(state.steps);
  }

  #rerender(): void {
    if (this.#state) this.render({ ...this.#state, now: Date.now() });
  }

  #make(s: NextStep): Item {
    const editText = h("textarea", { class: "note-input", testid: "next-step-edit-text", rows: 3, "aria-label": "Edit your next step" });
    const editProblem = h("p", { class: "compose-problem", role: "alert", hidden: true });
    const save = h("button", { type: "button", class: "btn btn-primary btn-small", testid: "next-step-save" }, "Save");
    const cancel = h("button", { type: "button", class: "btn btn-small", testid: "next-step-cancel" }, "Cancel");
    const item: Item = {
      el: h("li", { class: "next-step", testid: "next-step-item", "data-next-step-id": s.id }),
      text: h("p", { class: "note-body", testid: "next-step-body" }),
      who: h("span", { class: "feed-meta-text" }),
      badge: h("span", { class: "badge" }),
      edit: h("button", { type: "button", class: "btn-note", testid: "next-step-edit", hidden: true }, "Edit"),
      del: h("button", { type: "button", class: "btn-note btn-note-danger", testid: "next-step-delete", hidden: true }, "Delete"),
      editor: h("div", { class: "note-editor", hidden: true }),
      editText,
      editProblem,
      save,
      editing: false,
      armedAt: 0,
    };
    item.editor.append(editText, editProblem, h("div", { class: "note-editor-buttons" }, save, cancel));
    item.el.append(h("div", { class: "feed-meta" }, item.who, item.badge), item.text, item.editor, h("div", { class: "feed-actions" }, item.edit, item.del));
    const check = () => {
      const problem = nextStepProblem(editText.value);
      editProblem.hidden = !problem;
      setText(editProblem, problem ?? "");
      save.disabled = !!problem || editText.value.trim() === "";
    };
    editText.addEventListener("input", check);
    item.edit.addEventListener("click", () => {
      item.editing = true;
      editText.value = item.text.textContent ?? "";
      check();
      this.#rerender();
      editText.focus();
    });
    cancel.addEventListener("click", () => {
      item.editing = false;
      this.#rerender();
    });
    save.addEventListener("click", () => {
      const text = editText.value.replace(/\r\n?/g, "\n").trim();
      if (text === "" || nextStepProblem(text)) return;
      this.#opts.onEdit(s.id, text);
      item.editing = false;
      this.#rerender();
    });
    item.del.addEventListener("click", () => confirmTap(item, () => this.#rerender(), () => this.#opts.onRemove(s.id)));
    return item;
  }

  #update(item: Item, s: NextStep): void {
    const state = this.#state!;
    const mine = s.authorId === this.#opts.deviceId;
    item.el.classList.toggle("is-mine", mine);
    setText(item.who, mine ? "You" : s.authorName || "Someone");
    const waiting = state.waiting.has(s.id);
    setAttr(item.el, "data-status", waiting ? "waiting" : "synced");
    item.badge.hidden = !mine;
    setText(item.badge, waiting ? "waiting" : "saved ✓");
    item.text.hidden = item.editing;
    item.editor.hidden = !item.editing;
    if (!item.editing) setText(item.text, s.text);
    item.edit.hidden = !mine || item.editing;
    item.del.hidden = !mine || item.editing;
    const armed = state.now - item.armedAt <= DELETE_CONFIRM_MS;
    setText(item.del, armed ? "Tap again to delete" : "Delete");
    item.del.classList.toggle("is-armed", armed);
  }
}
