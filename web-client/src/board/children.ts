// The by-child view: one group per child alias (the lab's list, then aliases only notes name),
// each with the notes about that child; a note about two children is in both. Keyed by alias and
// by note.

import type { Note } from "../board";
import { groupByChild } from "../debrief";
import { h, setAttr, setText } from "../dom";
import { noteCard, type Card } from "./card";
import { KeyedList } from "../views/keyed";
import { phaseLabel } from "../model";
import { filterNotes, type BoardModel, type BoardView, type ViewContext } from "./view";

interface Group {
  alias: string;
  notes: Note[];
}

export function childrenView(ctx: ViewContext): BoardView {
  const none = h("p", { class: "clusters-empty" }, "No children yet. Observers add initials or aliases with “+ child” on their phones.");
  const grid = h("div", { class: "children-grid" });
  const el = h("main", { class: "children-view", testid: "children-view", hidden: true, "aria-label": "Notes by child" }, none, grid);
  let model: BoardModel | undefined;
  const parts = new WeakMap<HTMLElement, { count: HTMLElement; empty: HTMLElement; cards: KeyedList<Note, HTMLLIElement>; byId: Map<string, Card> }>();

  const groups = new KeyedList<Group, HTMLElement>(grid, (g) => g.alias, {
    create(g) {
      const count = h("span", { class: "column-count" });
      const empty = h("p", { class: "column-empty" }, "No notes yet");
      const list = h("ol", { class: "cluster-notes" });
      const section = h("section", { class: "child-group", testid: "child-group", "data-child": g.alias }, h("h2", { class: "cluster-head" }, h("span", { class: "cluster-label" }, g.alias), count), empty, list);
      const byId = new Map<string, Card>();
      const cards = new KeyedList<Note, HTMLLIElement>(list, (n) => n.id, {
        create(n) {
          const card = noteCard(ctx, "child-note", n);
          byId.set(n.id, card);
          return card.el;
        },
        update(_el, n) {
          const m = model!;
          byId.get(n.id)?.update({ note: n, category: m.categories.find((c) => c.id === n.category), phaseLabel: phaseLabel(m, n.phase), clusters: m.clusters, showCategory: true, draggable: false });
        },
        remove(_el, id) {
          byId.get(id)?.destroy();
          byId.delete(id);
        },
      });
      parts.set(section, { count, empty, cards, byId });
      return section;
    },
    update(section, g) {
      const p = parts.get(section)!;
      setText(p.count, String(g.notes.length));
      setAttr(section, "data-count", String(g.notes.length));
      p.empty.hidden = g.notes.length > 0;
      p.cards.reconcile(g.notes);
    },
    remove(section) {
      const p = parts.get(section);
      if (p) for (const c of p.byId.values()) c.destroy();
    },
  });

  return {
    el,
    update(m, filter) {
      model = m;
      const notes = filterNotes(m, filter);
      const aliases = filter.child !== undefined ? [filter.child] : m.children;
      const shown = groupByChild(aliases, notes).filter((g) => filter.child === undefined || g.alias === filter.child);
      none.hidden = shown.length > 0;
      groups.reconcile(shown);
    },
  };
}
