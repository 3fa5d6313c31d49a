// The timeline view: a phase minute by minute, the notes and the time-outs in the order they
// happened, time-outs marked. With the board's phase filter on "All phases" it shows every phase
// that has notes or time-outs, side by side (Lesson 1 beside Lesson 2); with one phase chosen, that
// phase. Keyed at every level: phases, minutes, items.

import type { Note } from "../board";
import { h, setAttr, setText } from "../dom";
import { formatTimer, timeline, type Phase, type RunDoc, type Timeout, type TimelineSlot } from "../labrun";
import { noteCard, type Card } from "./card";
import { KeyedList } from "../views/keyed";
import { phaseLabel } from "../model";
import { filterNotes, type BoardModel, type BoardView, type ViewContext } from "./view";

type Item = { kind: "note"; note: Note; at: number } | { kind: "timeout"; timeout: Timeout; at: number };

/** The slots of a phase from the model (labrun's `timeline` reads a document; give it one). */
function slotsOf(model: BoardModel, phase: Phase, notes: Note[]): TimelineSlot[] {
  const doc: RunDoc = {
    phases: { [phase.id]: { label: phase.label, order: phase.order, startedAt: phase.startedAt, endedAt: phase.endedAt } },
    timeouts: Object.fromEntries(model.timeouts.map((t) => [t.id, { phase: t.phase, calledBy: t.calledBy, calledById: t.calledById, startedAt: t.startedAt, endedAt: t.endedAt, note: t.note }])),
  };
  return timeline(doc, phase.id, notes);
}

export function timelineView(ctx: ViewContext): BoardView {
  const empty = h("p", { class: "column-empty" }, "No notes in this phase yet");
  const grid = h("div", { class: "timeline-phases" });
  const el = h("main", { class: "timeline", testid: "timeline", hidden: true, "aria-label": "Notes minute by minute" }, empty, grid);
  let model: BoardModel | undefined;
  const cards = new Map<string, Card>();

  const phases = new KeyedList<{ phase: Phase; slots: TimelineSlot[] }, HTMLElement>(grid, (p) => p.phase.id, {
    create(p) {
      const title = h("h2", { class: "timeline-title" });
      const rows = h("ol", { class: "timeline-rows" });
      const section = h("section", { class: "timeline-phase-box", testid: "timeline-phase", "data-phase": p.phase.id }, title, rows);
      const minutes = new KeyedList<TimelineSlot, HTMLLIElement>(rows, (s) => String(s.minute ?? "none"), {
        create(s) {
          const items = h("ol", { class: "timeline-items" });
          const li = h("li", { class: "timeline-row", testid: "timeline-minute", "data-minute": s.minute === undefined ? "" : String(s.minute) }, h("span", { class: "timeline-minute" }, s.minute === undefined ? "—" : `${s.minute}′`), items);
          const list = new KeyedList<Item, HTMLElement>(items, (i) => (i.kind === "note" ? `n:${i.note.id}` : `t:${i.timeout.id}`), {
            create(i) {
              if (i.kind === "timeout") return h("li", { class: "timeline-timeout", testid: "timeline-timeout", "data-timeout-id": i.timeout.id });
              const card = noteCard(ctx, "timeline-note", i.note);
              cards.set(i.note.id, card);
              return card.el;
            },
            update(elem, i) {
              if (i.kind === "timeout") {
                const t = i.timeout;
                const long = t.endedAt !== undefined ? `lasted ${formatTimer(t.endedAt - t.startedAt)}` : "running";
                const text = `Time-out called by ${t.calledBy || "someone"} · ${long}`;
                if (elem.textContent !== `T${text}`) elem.replaceChildren(h("span", { class: "timeout-t", "aria-hidden": "true" }, "T"), text);
                return;
              }
              const n = i.note;
              const m = model!;
              cards.get(n.id)?.update({ note: n, category: m.categories.find((c) => c.id === n.category), phaseLabel: phaseLabel(m, n.phase), clusters: m.clusters, showCategory: true, draggable: false });
              elem.classList.toggle("in-timeout", !!n.timeoutId && m.timeouts.some((t) => t.id === n.timeoutId));
            },
            remove(_e, key) {
              if (!key.startsWith("n:")) return;
              cards.get(key.slice(2))?.destroy();
              cards.delete(key.slice(2));
            },
          });
          lists.set(li, list);
          return li;
        },
        update(li, s) {
          const items: Item[] = [...s.timeouts.map((t): Item => ({ kind: "timeout", timeout: t, at: t.startedAt })), ...s.notes.map((n): Item => ({ kind: "note", note: n, at: n.createdAt }))];
          items.sort((a, b) => a.at - b.at);
          lists.get(li)?.reconcile(items);
        },
      });
      sections.set(section, { title, minutes });
      return section;
    },
    update(section, p) {
      const s = sections.get(section)!;
      setText(s.title, `${p.phase.label}, minute by minute`);
      s.minutes.reconcile(p.slots);
    },
  });
  const sections = new WeakMap<HTMLElement, { title: HTMLElement; minutes: KeyedList<TimelineSlot, HTMLLIElement> }>();
  const lists = new WeakMap<HTMLLIElement, KeyedList<Item, HTMLElement>>();

  return {
    el,
    update(m, filter) {
      model = m;
      const notes = filterNotes(m, filter);
      const shown = m.phases
        .filter((p) => (filter.phase !== undefined ? p.id === filter.phase : true))
        .map((phase) => ({ phase, slots: slotsOf(m, phase, notes) }))
        .filter((p) => filter.phase !== undefined || p.slots.length > 0);
      // Nothing yet anywhere: show the current phase's (empty) timeline under its name.
      if (shown.length === 0 && filter.phase === undefined && m.currentPhase) shown.push({ phase: m.currentPhase, slots: [] });
      setAttr(el, "data-phase", shown.map((p) => p.phase.id).join(" "));
      el.style.setProperty("--phases", String(Math.max(1, shown.length)));
      empty.hidden = shown.some((p) => p.slots.length > 0);
      phases.reconcile(shown);
    },
  };
}
