// A confirmation asked on the page (a modal <dialog>), for actions that cannot be undone: ending
// a lab, deleting one. It says what will happen, keeps Cancel first and focused, runs the action
// itself, and if the action fails says why without closing.

import { h, replace } from "../dom";

export interface Ask {
  title: string;
  /** Paragraphs saying what will happen. */
  text: string[];
  /** The confirm button's words ("End lab", "Delete for good"). */
  confirm: string;
  /** Whether the action destroys something (a red button). */
  danger: boolean;
  /** Runs on confirm; a thrown Error's message is shown in the dialog. */
  run: () => Promise<void>;
}

export interface ConfirmDialog {
  element: HTMLDialogElement;
  ask(opts: Ask): void;
}

/** A dialog whose parts carry the test ids `<name>`, `<name>-confirm`, `<name>-cancel`, `<name>-error`. */
export function confirmDialog(name: string): ConfirmDialog {
  const title = h("h2", { id: `${name}-title`, class: "card-title" });
  const text = h("div", { class: "stack", id: `${name}-text` });
  const error = h("p", { class: "error", role: "alert", testid: `${name}-error`, hidden: true });
  const confirm = h("button", { type: "button", class: "btn", testid: `${name}-confirm` });
  const cancel = h("button", { type: "button", class: "btn", testid: `${name}-cancel` }, "Cancel");
  const element = h(
    "dialog",
    { class: "home-dialog", testid: name, "aria-labelledby": `${name}-title`, "aria-describedby": `${name}-text` },
    h("div", { class: "stack" }, title, text, error, h("div", { class: "home-dialog-actions" }, cancel, confirm)),
  );
  let onConfirm: (() => Promise<void>) | undefined;
  cancel.addEventListener("click", () => element.close());
  confirm.addEventListener("click", async () => {
    if (!onConfirm) return;
    const label = confirm.textContent ?? "";
    confirm.disabled = true;
    cancel.disabled = true;
    error.hidden = true;
    confirm.textContent = "Working…";
    try {
      await onConfirm();
      element.close();
    } catch (e) {
      error.textContent = e instanceof Error ? e.message : String(e);
      error.hidden = false;
      confirm.textContent = label;
    } finally {
      confirm.disabled = false;
      cancel.disabled = false;
    }
  });
  return {
    element,
    ask(opts) {
      title.textContent = opts.title;
      replace(text, ...opts.text.map((t) => h("p", {}, t)));
      confirm.textContent = opts.confirm;
      confirm.className = opts.danger ? "btn btn-danger" : "btn btn-primary";
      error.hidden = true;
      onConfirm = opts.run;
      element.showModal();
      cancel.focus();
    },
  };
}
