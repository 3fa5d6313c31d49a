// The board's undoable writes. Each changes the draft like its writer in labrun.ts or debrief.ts
// and returns the writer that puts back exactly what it changed: the values found before the
// write are captured, and the inverse writes them back (or deletes a key that was absent).

import { str } from "../board";
import { removeCluster, setNoteCluster, setNoteFlag, setPhotoHidden, type NoteFlag } from "../debrief";
import { currentPhaseId, isObj, num, setCurrentPhase } from "../labrun";
import type { Draft, UndoableWriter, Writer } from "./view";

type Value = unknown;

/** An undoable writer used where no undo is offered (pin, highlight, move into a cluster). */
export function once(fn: UndoableWriter): Writer {
  return (d, now, scalar, updateText) => fn(d, now, scalar, updateText) !== undefined;
}

/** A map's key as it is now: its value, or undefined when it is absent. */
function keyOf(map: Record<string, unknown>, key: string): { present: boolean; value: Value } {
  return { present: key in map, value: map[key] };
}

/** A number or a string value back in place (numbers stay numbers; strings as scalars). */
function restore(map: Record<string, unknown>, key: string, was: { present: boolean; value: Value }, scalar: (s: string) => unknown): void {
  if (!was.present) {
    if (key in map) delete map[key];
    return;
  }
  const v = was.value;
  if (typeof v === "number" || typeof v === "boolean") map[key] = v;
  else if (typeof v === "bigint") map[key] = Number(v);
  else map[key] = scalar(str(v));
}

function noteOf(d: Draft, noteId: string): Record<string, unknown> | undefined {
  const n = (d.notes as Record<string, unknown> | undefined)?.[noteId];
  return isObj(n) ? n : undefined;
}

/** Pin, highlight or hide a note (or the reverse); undo puts the flag back as it was. */
export function setFlag(noteId: string, flag: NoteFlag, on: boolean): UndoableWriter {
  return (d) => {
    const n = noteOf(d, noteId);
    if (!n) return undefined;
    const was = keyOf(n, flag);
    if (!setNoteFlag(d, noteId, flag, on)) return undefined;
    return (u, _now, scalar) => {
      const m = noteOf(u, noteId);
      if (!m) return false;
      restore(m, flag, was, scalar);
      return true;
    };
  };
}

/**
 * Hides one photo of a note from the board or shows it again; undo puts it back as it was (and
 * takes away the `hiddenPhotos` map this hide created, if nothing else is in it).
 */
export function hidePhoto(noteId: string, photoId: string, hidden: boolean): UndoableWriter {
  return (d) => {
    const n = noteOf(d, noteId);
    if (!n) return undefined;
    const hadMap = isObj(n.hiddenPhotos);
    const was = hadMap && (n.hiddenPhotos as Record<string, unknown>)[photoId] === true;
    if (!setPhotoHidden(d, noteId, photoId, hidden)) return undefined;
    return (u) => {
      const m = noteOf(u, noteId);
      if (!m) return false;
      const changed = setPhotoHidden(u, noteId, photoId, was);
      if (!hadMap && isObj(m.hiddenPhotos) && Object.keys(m.hiddenPhotos).length === 0) {
        delete m.hiddenPhotos;
        return true;
      }
      return changed;
    };
  };
}

/**
 * Shows again the given hidden photos of a note (the card's "1 photo hidden — show"); undo hides
 * exactly those it showed.
 */
export function showPhotos(noteId: string, photoIds: string[]): UndoableWriter {
  return (d, now, scalar, updateText) => {
    const inverses: Writer[] = [];
    for (const id of photoIds) {
      const inverse = hidePhoto(noteId, id, false)(d, now, scalar, updateText);
      if (inverse) inverses.push(inverse);
    }
    if (inverses.length === 0) return undefined;
    return (u, now2, scalar2, updateText2) => {
      let changed = false;
      for (const inverse of inverses.reverse()) changed = inverse(u, now2, scalar2, updateText2) || changed;
      return changed;
    };
  };
}

/** Puts a note in a cluster or takes it out of any; undo puts it back where it was. */
export function setCluster(noteId: string, clusterId: string | undefined): UndoableWriter {
  return (d, _now, scalar) => {
    const n = noteOf(d, noteId);
    if (!n) return undefined;
    const was = str(n.clusterId) || undefined;
    if (!setNoteCluster(d, noteId, clusterId, scalar)) return undefined;
    return (u, _now2, scalar2) => {
      if (was === undefined) return setNoteCluster(u, noteId, undefined, scalar2);
      // The cluster may have been removed meanwhile: then the note stays out.
      return setNoteCluster(u, noteId, was, scalar2);
    };
  };
}

/** Removes a cluster (its notes go back to none); undo brings it back with the same notes. */
export function dropCluster(clusterId: string): UndoableWriter {
  return (d) => {
    const c = d.clusters?.[clusterId];
    if (!isObj(c)) return undefined;
    const label = str(c.label) || "Untitled";
    const order = num(c.order) ?? 0;
    const createdAt = num(c.createdAt) ?? 0;
    const members: string[] = [];
    for (const [id, n] of Object.entries((d.notes ?? {}) as Record<string, unknown>)) {
      if (isObj(n) && str(n.clusterId) === clusterId) members.push(id);
    }
    if (!removeCluster(d, clusterId)) return undefined;
    return (u, _now, scalar) => {
      if (!isObj(u.clusters) || isObj(u.clusters[clusterId])) return false;
      u.clusters[clusterId] = { label, order, createdAt };
      for (const id of members) {
        const n = noteOf(u, id);
        if (n && !("clusterId" in n)) n.clusterId = scalar(clusterId);
      }
      return true;
    };
  };
}

/**
 * Makes `phaseId` the current phase (labrun's setCurrentPhase: ends the previous phase and its
 * running time-outs, starts the new one); undo restores the current phase, both phases' start
 * and end, and the time-outs it ended.
 */
export function changePhase(phaseId: string): UndoableWriter {
  return (d, now, scalar) => {
    const phases = d.phases;
    if (!isObj(phases) || !isObj(phases[phaseId])) return undefined;
    const prev = currentPhaseId(d);
    const prevPhase = prev ? phases[prev] : undefined;
    const prevEnded = isObj(prevPhase) ? keyOf(prevPhase, "endedAt") : undefined;
    const nextStarted = keyOf(phases[phaseId]!, "startedAt");
    const wasCurrent = keyOf(d as Record<string, unknown>, "currentPhase");
    const running: string[] = [];
    for (const [id, t] of Object.entries(d.timeouts ?? {})) {
      if (isObj(t) && prev && str(t.phase) === prev && num(t.endedAt) === undefined) running.push(id);
    }
    if (!setCurrentPhase(d, phaseId, now, scalar)) return undefined;
    const undo: Writer = (u, _now, scalar2) => {
      const ps = u.phases;
      if (!isObj(ps)) return false;
      // Someone moved on meanwhile: undoing now would throw their phase away.
      if (currentPhaseId(u) !== phaseId) return false;
      restore(u as Record<string, unknown>, "currentPhase", wasCurrent, scalar2);
      if (prev && prevEnded && isObj(ps[prev])) restore(ps[prev]!, "endedAt", prevEnded, scalar2);
      if (isObj(ps[phaseId])) restore(ps[phaseId]!, "startedAt", nextStarted, scalar2);
      for (const id of running) {
        const t = u.timeouts?.[id];
        if (isObj(t) && "endedAt" in t) delete t.endedAt;
      }
      return true;
    };
    return undo;
  };
}
