// The board's phase settings (facilitator): rename the lab's phases, move them earlier or later,
// add one (a lesson, a debrief or something else). Each edit writes one key of one phase inside
// the existing `phases` map (phases.ts), so two people editing different things at once both keep
// their change. The phase bar and every phone follow from the document.

import { h, replace } from "../dom";
import { randomUuid } from "../ids";
import { currentPhaseId, isLesson, readPhases, type Phase, type RunDoc } from "../labrun";
import { isDebrief } from "../debrief";
import { addPhase, MAX_PHASE_CHARS, movePhase, newPhaseId, updatePhase, type PhaseKind } from "../phases";
import type { LabConnection } from "../sync";

export interface PhasesPanel {
  el: HTMLElement;
  open(): void;
  close(): void;
  isOpen(): boolean;
  render(doc: RunDoc): void;
}

const kindOf = (id: string): PhaseKind => (isLesson(id) ? "lesson" : isDebrief(id) ? "debrief" : "other");
const KIND_TEXT: Record<PhaseKind, string> = { lesson: "Lesson", debrief: "Debrief", other: "" };

export function phasesPanel(conn: () => LabConnection | undefined, rerender: () => void, onClose: () => void): PhasesPanel {
  const rows = h("ol", { class: "categories-rows" });
  const close = h("button", { type: "button", class: "btn btn-small", testid: "phases-close" }, "Done");
  const newLabel = h("input", { class: "input", testid: "phase-new-label", maxlength: MAX_PHASE_CHARS, placeholder: "New phase", "aria-label": "New phase", autocomplete: "off" });
  const newKind = h(
    "select",
    { class: "input phase-new-kind", testid: "phase-new-kind", "aria-label": "Kind of phase" },
    h("option", { value: "lesson" }, "Lesson (time-outs)"),
    h("option", { value: "debrief" }, "Debrief (agreements)"),
    h("option", { value: "other" }, "Other"),
  );
  const newAdd = h("button", { type: "submit", class: "btn btn-small btn-primary", testid: "phase-new-add" }, "Add");
  const form = h("form", { class: "categories-new phases-new", novalidate: true }, newLabel, newKind, newAdd);
  const el = h(
    "div",
    { class: "categories-panel phases-panel", testid: "phases-panel", role: "dialog", "aria-modal": "false", "aria-labelledby": "phases-heading", hidden: true },
    h("div", { class: "categories-head" }, h("h2", { id: "phases-heading" }, "Phases"), close),
    h("p", { class: "agreements-hint" }, "Rename, reorder or add phases; the phase bar and every phone follow at once. A new phase goes last."),
    rows,
    form,
  );

  let key = "";
  const run = (fn: Parameters<LabConnection["run"]>[0]) => {
    conn()?.run(fn);
    rerender();
  };

  close.addEventListener("click", () => panel.close());
  el.addEventListener("keydown", (e) => {
    if (e.key === "Escape") {
      e.stopPropagation();
      panel.close();
    }
  });
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const kind = (newKind.value as PhaseKind) || "other";
    let ok = false;
    conn()?.run((d) => (ok = addPhase(d, newPhaseId(kind, randomUuid()), newLabel.value)));
    if (ok) newLabel.value = "";
    rerender();
  });

  const row = (p: Phase, index: number, all: Phase[], current: string | undefined) => {
    const label = h("input", { class: "input", testid: "phase-label", value: p.label, maxlength: MAX_PHASE_CHARS, "aria-label": `Name of ${p.label}`, autocomplete: "off" });
    const kind = KIND_TEXT[kindOf(p.id)];
    const badge = h("span", { class: "phase-row-kind", testid: "phase-kind" }, [kind, p.id === current ? "now" : ""].filter(Boolean).join(" · "));
    const up = h("button", { type: "button", class: "note-tool", testid: "phase-up", "aria-label": `Move ${p.label} earlier`, disabled: index === 0 }, "↑");
    const down = h("button", { type: "button", class: "note-tool", testid: "phase-down", "aria-label": `Move ${p.label} later`, disabled: index === all.length - 1 }, "↓");
    const saveLabel = () => run((d, _now, _scalar, updateText) => updatePhase(d, p.id, { label: label.value }, updateText));
    label.addEventListener("change", saveLabel);
    label.addEventListener("keydown", (e) => {
      if (e.key === "Enter") {
        e.preventDefault();
        saveLabel();
      }
    });
    up.addEventListener("click", () => run((d) => movePhase(d, p.id, -1)));
    down.addEventListener("click", () => run((d) => movePhase(d, p.id, 1)));
    return h(
      "li",
      { class: "category-row phase-row", testid: "phase-row", "data-phase": p.id, "data-kind": kindOf(p.id), "aria-current": p.id === current ? "step" : undefined },
      label,
      badge,
      up,
      down,
    );
  };

  const panel: PhasesPanel = {
    el,
    open() {
      el.hidden = false;
      key = "";
      rerender();
      (rows.querySelector("input[data-testid=phase-label]") as HTMLInputElement | null)?.focus();
    },
    close() {
      if (el.hidden) return;
      el.hidden = true;
      onClose();
    },
    isOpen: () => !el.hidden,
    render(doc) {
      form.hidden = !doc.phases;
      const phases = readPhases(doc);
      const current = currentPhaseId(doc);
      const k = JSON.stringify([phases, current]);
      if (k === key) return;
      key = k;
      // Keep what is being typed: a row whose label has focus keeps its input element.
      const focused = document.activeElement;
      const keepId = focused instanceof HTMLInputElement && rows.contains(focused) ? (focused.closest("li") as HTMLElement | null)?.dataset.phase : undefined;
      const newRows = phases.map((p, i) => row(p, i, phases, current));
      if (keepId && focused instanceof HTMLInputElement) {
        const fresh = newRows.find((r) => r.dataset.phase === keepId)?.querySelector("input[data-testid=phase-label]");
        fresh?.replaceWith(focused);
      }
      // A move button that had focus: the same button of the moved phase's new row keeps it
      // (or the other one, at an end), so the keyboard can keep moving it.
      const keepButton = focused instanceof HTMLButtonElement && rows.contains(focused) ? [(focused.closest("li") as HTMLElement | null)?.dataset.phase, focused.dataset.testid] : undefined;
      replace(rows, ...newRows);
      if (focused instanceof HTMLElement && rows.contains(focused)) focused.focus();
      else if (keepButton) {
        const li = newRows.find((r) => r.dataset.phase === keepButton[0]);
        const buttons = [keepButton[1], keepButton[1] === "phase-up" ? "phase-down" : "phase-up"].map((t) => li?.querySelector<HTMLButtonElement>(`button[data-testid=${t}]`));
        buttons.find((b) => b && !b.disabled)?.focus();
      }
    },
  };
  return panel;
}
