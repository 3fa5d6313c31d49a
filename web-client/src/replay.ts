// Replay: the board as it was at any moment of the lab, computed from the document's own
// history. Automerge keeps every change with its author's clock (seconds since the epoch), so no
// second log is needed: `moments` orders the changes and records the heads after each, and
// `boardAt` reads the document at the last moment not after a time (`A.view`). The board page
// renders what `boardAt` returns through the same views as the live board.
//
// A change's time is its author's clock, which can be wrong: 0 (the server's Rust writes carry
// none), behind the changes it builds on, or in the future. Order therefore follows the causal
// history first: a change's replay time is the latest of its own time and its dependencies'
// replay times, so a change never shows before what it depends on; a time of 0 takes its
// dependencies' time, and a time past `now` is taken as `now`.

import * as A from "@automerge/automerge/slim";

/** One moment of the lab: the replay time of a change (seconds) and the heads right after it. */
export interface Moment {
  /** Seconds since the epoch; never before an earlier moment. */
  time: number;
  /** The document's heads after this moment's change and every earlier one. */
  heads: A.Heads;
}

interface Timed {
  hash: string;
  deps: string[];
  time: number;
  index: number;
}

/**
 * Every change of `doc` with its replay time, in replay order (by time, then causal order).
 * `nowSeconds` caps clocks that are ahead of this device's.
 */
function timedChanges(doc: A.Doc<unknown>, nowSeconds: number): Timed[] {
  const decoded = A.getAllChanges(doc).map((c) => A.decodeChange(c));
  // getAllChanges lists dependencies before their dependents; a dependency missing from the
  // map (never the case in a whole document) counts as time 0.
  const timeOf = new Map<string, number>();
  const out: Timed[] = [];
  decoded.forEach((c, index) => {
    const own = c.time > 0 ? Math.min(c.time, nowSeconds) : 0;
    const time = c.deps.reduce((t, d) => Math.max(t, timeOf.get(d) ?? 0), own);
    timeOf.set(c.hash, time);
    out.push({ hash: c.hash, deps: c.deps, time, index });
  });
  // A change with no time and no timed dependency (the server's first write) belongs at the
  // start: give it the first real time there is, so the slider does not begin in 1970.
  const first = out.find((c) => c.time > 0)?.time ?? 0;
  for (const c of out) if (c.time === 0) c.time = first;
  // Replay time never decreases along a dependency, so a stable sort by it keeps every change
  // after what it depends on.
  return out.sort((a, b) => a.time - b.time || a.index - b.index);
}

/** A key of the document's heads: it changes whenever the document does. */
export function headsKey(doc: A.Doc<unknown>): string {
  return A.getHeads(doc).join(",");
}

/** The lab's moments: one per change, in replay order, with the heads after it. */
export function moments(doc: A.Doc<unknown>, nowSeconds = Math.floor(Date.now() / 1000)): Moment[] {
  const heads = new Set<string>();
  return timedChanges(doc, nowSeconds).map((c) => {
    for (const d of c.deps) heads.delete(d);
    heads.add(c.hash);
    return { time: c.time, heads: [...heads].sort() };
  });
}

/** The last moment at or before `t` (seconds), or undefined when `t` is before the first. */
export function momentAt(all: readonly Moment[], t: number): Moment | undefined {
  let lo = 0;
  let hi = all.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (all[mid].time <= t) lo = mid + 1;
    else hi = mid;
  }
  return lo > 0 ? all[lo - 1] : undefined;
}

/**
 * The document as of time `t` (seconds): every change whose replay time is not after `t`,
 * nothing else. Before the first moment it is the empty document.
 */
export function boardAt<T>(doc: A.Doc<T>, t: number, all: readonly Moment[] = moments(doc)): A.Doc<T> {
  return A.view(doc, momentAt(all, t)?.heads ?? []);
}

/** The changes (encoded) whose replay time is not after `t`, in an order that applies. */
export function changesUpTo(doc: A.Doc<unknown>, t: number, nowSeconds = Math.floor(Date.now() / 1000)): A.Change[] {
  const keep = new Set(timedChanges(doc, nowSeconds).filter((c) => c.time <= t).map((c) => c.hash));
  return A.getAllChanges(doc).filter((c) => keep.has(A.decodeChange(c).hash));
}

/** The first and last replay times (seconds); both 0 for a document without changes. */
export function span(all: readonly Moment[]): { start: number; end: number } {
  return { start: all[0]?.time ?? 0, end: all[all.length - 1]?.time ?? 0 };
}
