// The phase bar: the lab's phases in order, the current one marked, and "Start <next phase>".
// The facilitator moves the whole lab: every phone follows at once. Going back (to a phase before
// the current one) asks first, in a dialog; every phase change shows the undo toast, whose Undo
// puts the lab back exactly as it was (current phase, start and end times, ended time-outs).

import { h, setAttr, setText } from "../dom";
import type { Phase } from "../labrun";
import { KeyedList } from "../views/keyed";
import { changePhase } from "./undoable";
import type { BoardModel, ViewContext } from "./view";

export interface PhaseBar {
  el: HTMLElement;
  update(model: BoardModel): void;
}

export function phaseBar(ctx: ViewContext): PhaseBar {
  const list = h("ol", { class: "phase-steps" });
  const next = h("button", { type: "button", class: "btn btn-primary btn-phase-next", testid: "phase-next", hidden: true });
  // Going back: asks first.
  const question = h("p", { class: "phase-confirm-text", id: "phase-confirm-text" });
  const go = h("button", { type: "button", class: "btn btn-primary", testid: "phase-confirm-go" });
  const stay = h("button", { type: "button", class: "btn", testid: "phase-confirm-stay" });
  const heading = h("h2", { id: "phase-confirm-heading" });
  const dialog = h("dialog", { class: "phase-confirm", testid: "phase-confirm", "aria-labelledby": "phase-confirm-heading", "aria-describedby": "phase-confirm-text" }, heading, question, h("div", { class: "phase-confirm-buttons" }, stay, go));
  const el = h("nav", { class: "phase-bar", testid: "phase-bar", "aria-label": "Phases", hidden: true }, list, next, dialog);
  let model: BoardModel | undefined;
  let pending: string | undefined;

  const labelOf = (id: string) => model?.phases.find((p) => p.id === id)?.label ?? id;
  const move = (id: string) => {
    const from = model?.currentPhase;
    const message = from ? `${labelOf(id)} started (was ${from.label}). Every phone follows.` : `${labelOf(id)} started. Every phone follows.`;
    ctx.changeWithUndo(message, changePhase(id));
  };
  const ask = (id: string) => {
    if (!ctx.isFacilitator() || !model) return;
    const phases = model.phases;
    const current = model.currentPhase;
    if (current?.id === id) return;
    const back = current !== undefined && phases.findIndex((p) => p.id === id) < phases.findIndex((p) => p.id === current.id);
    if (!back) {
      move(id);
      return;
    }
    pending = id;
    setText(heading, `Go back to ${labelOf(id)}?`);
    setText(question, `Every phone moves back from ${current.label} to ${labelOf(id)} now, and new notes count for ${labelOf(id)}.`);
    setText(go, `Go back to ${labelOf(id)}`);
    setText(stay, `Stay in ${current.label}`);
    dialog.showModal();
    stay.focus();
  };
  go.addEventListener("click", () => {
    const id = pending;
    pending = undefined;
    dialog.close();
    if (id) move(id);
  });
  stay.addEventListener("click", () => {
    pending = undefined;
    dialog.close();
  });
  dialog.addEventListener("close", () => (pending = undefined));
  next.addEventListener("click", () => {
    const id = next.dataset.phase;
    if (id) ask(id);
  });

  const steps = new KeyedList<Phase, HTMLLIElement>(list, (p) => p.id, {
    create(p) {
      const b = h("button", { type: "button", class: "phase-step", testid: "phase-item", "data-phase": p.id });
      b.addEventListener("click", () => ask(p.id));
      return h("li", {}, b);
    },
    update(li, p) {
      const b = li.firstElementChild as HTMLButtonElement;
      const m = model!;
      const current = m.currentPhase?.id;
      setText(b, p.label);
      b.disabled = !ctx.isFacilitator();
      if (p.id === current) setAttr(b, "aria-current", "step");
      else b.removeAttribute("aria-current");
      b.classList.toggle("is-done", p.id !== current && p.endedAt !== undefined);
    },
  });

  return {
    el,
    update(m) {
      model = m;
      el.hidden = m.phases.length === 0;
      steps.reconcile(m.phases);
      const current = m.currentPhase;
      const i = current ? m.phases.findIndex((p) => p.id === current.id) : -1;
      const after = current ? (i < 0 ? undefined : m.phases[i + 1]) : m.phases[0];
      next.hidden = !after || !ctx.isFacilitator();
      if (after) {
        next.dataset.phase = after.id;
        setText(next, `Start ${after.label}`);
      }
      setAttr(el, "data-current", current?.id ?? "");
    },
  };
}
