// The facilitator's phase settings (schema v2, see protocol/src/board.rs): rename, add and
// reorder the lab's phases. Like debrief.ts's categories: every writer sets single keys inside the
// existing `phases` map (never creates or replaces it), a label is collaborative text (edited
// with `updateText`, so two people fixing words merge), and a move writes only the moved phase's
// `order`, halfway between its new neighbours.

import { str } from "./board";
import { cleanLine, movedOrder, type UpdateText } from "./debrief";
import { isObj, num, readPhases, type RunDoc } from "./labrun";

export const MAX_PHASE_CHARS = 40;

/** What a new phase is: its id's prefix says so (`lesson…` allows time-outs, `…debrief…` agreements). */
export type PhaseKind = "lesson" | "debrief" | "other";

/** A new phase's id: `lesson-<random>`, `debrief-<random>` or `phase-<random>`. */
export function newPhaseId(kind: PhaseKind, random: string): string {
  const tail = random.replace(/[^0-9a-zA-Z]/g, "").slice(0, 8).toLowerCase() || "x";
  return `${kind === "lesson" ? "lesson" : kind === "debrief" ? "debrief" : "phase"}-${tail}`;
}

/** The `order` after every phase of the board (a new phase goes last). */
export function nextPhaseOrder(doc: RunDoc | undefined): number {
  let max = -1;
  for (const p of Object.values(doc?.phases ?? {})) {
    const o = isObj(p) ? num(p.order) : undefined;
    if (o !== undefined && o > max) max = o;
  }
  return Math.floor(max) + 1;
}

/** Adds a phase at the end (never creates `phases`, never overwrites a phase). */
export function addPhase(d: RunDoc, id: string, label: string): boolean {
  const phases = d.phases;
  const clean = cleanLine(label, MAX_PHASE_CHARS);
  if (!isObj(phases) || !clean || id === "" || id in phases) return false;
  phases[id] = { label: clean, order: nextPhaseOrder(d) };
  return true;
}

/** Renames a phase and/or sets its order (only what is given, valid and different). */
export function updatePhase(d: RunDoc, id: string, change: { label?: string; order?: number }, updateText?: UpdateText): boolean {
  const p = d.phases?.[id];
  if (!isObj(p)) return false;
  let changed = false;
  const label = change.label !== undefined ? cleanLine(change.label, MAX_PHASE_CHARS) : undefined;
  if (label && str(p.label) !== label) {
    if (updateText && typeof p.label === "string") updateText(["phases", id, "label"], label);
    else p.label = label;
    changed = true;
  }
  if (change.order !== undefined && Number.isFinite(change.order) && num(p.order) !== change.order) {
    p.order = change.order;
    changed = true;
  }
  return changed;
}

/**
 * The `order` that moves `phaseId` one step earlier (-1) or later (+1) in the displayed order,
 * halfway between its new neighbours; undefined when it is already at that end (or unknown).
 */
export function movedPhaseOrder(doc: RunDoc | undefined, phaseId: string, step: -1 | 1): number | undefined {
  const phases = readPhases(doc);
  const i = phases.findIndex((p) => p.id === phaseId);
  if (i < 0) return undefined;
  return movedOrder(phases.map((p) => p.order), i, step);
}

/** Moves a phase one step, writing only its `order`. */
export function movePhase(d: RunDoc, phaseId: string, step: -1 | 1): boolean {
  const order = movedPhaseOrder(d, phaseId, step);
  return order !== undefined && updatePhase(d, phaseId, { order });
}
