// The columns view: one column per category, each note a card (newest first, pinned first). In
// presenter mode the same columns flow into as many narrow newspaper columns as the screen holds,
// so a debrief's notes pack densely and the page scrolls, never a column on its own.

import { OTHER_CATEGORY, groupByCategory, type Category, type Note } from "../board";
import { pinnedFirst } from "../debrief";
import { h, setText } from "../dom";
import { noteCard, type Card } from "./card";
import { KeyedList } from "../views/keyed";
import { filterNotes, type BoardView, type ViewContext } from "./view";
import { phaseLabel } from "../model";

interface Column {
  section: HTMLElement;
  title: HTMLSpanElement;
  count: HTMLSpanElement;
  empty: HTMLParagraphElement;
  cards: KeyedList<Note, HTMLLIElement>;
  byId: Map<string, Card>;
}

export function columnsView(ctx: ViewContext): BoardView {
  const el = h("main", { class: "columns", testid: "columns", "aria-label": "Notes by category" });
  let firstRender = true;
  let group: { category: Category; notes: Note[] } | undefined;
  let extra: (n: Note) => Parameters<Card["update"]>[0] = () => {
    throw new Error("columns rendered before update");
  };

  const columns = new KeyedList<{ category: Category; notes: Note[] }, HTMLElement>(el, (g) => g.category.id, {
    create(g) {
      const title = h("span", { class: "column-title" });
      const count = h("span", { class: "column-count" });
      const list = h("ol", { class: "column-list" });
      const empty = h("p", { class: "column-empty" }, "No notes yet");
      const section = h("section", { class: "column", testid: "board-column", "data-category": g.category.id }, h("h2", { class: "column-head" }, h("span", { class: "chip-dot", "aria-hidden": "true" }), title, count), empty, list);
      const byId = new Map<string, Card>();
      const cards = new KeyedList<Note, HTMLLIElement>(list, (n) => n.id, {
        create(n) {
          const card = noteCard(ctx, "board-note", n);
          byId.set(n.id, card);
          if (!firstRender) card.el.classList.add("is-new");
          return card.el;
        },
        update(_el, n) {
          byId.get(n.id)?.update(extra(n));
        },
        remove(_el, id) {
          byId.get(id)?.destroy();
          byId.delete(id);
        },
      });
      const col: Column = { section, title, count, empty, cards, byId };
      cols.set(g.category.id, col);
      return section;
    },
    update(section, g) {
      const col = cols.get(g.category.id)!;
      section.style.setProperty("--cat", g.category.color);
      setText(col.title, g.category.label);
      setText(col.count, String(g.notes.length));
      col.section.classList.toggle("is-empty", g.notes.length === 0);
      col.empty.hidden = g.notes.length > 0;
      group = g;
      col.cards.reconcile(g.notes);
    },
    remove(_section, id) {
      const col = cols.get(id);
      if (col) for (const card of col.byId.values()) card.destroy();
      cols.delete(id);
    },
  });
  const cols = new Map<string, Column>();
  const fit = fitter(el);
  const onResize = () => fit(lastPresenter, lastCount, true);
  let lastPresenter = false;
  let lastCount = 0;
  window.addEventListener("resize", onResize);

  return {
    el,
    update(model, filter) {
      const notes = filterNotes(model, filter);
      const groups = groupByCategory(model.categories, notes).map((g) => ({ category: g.category, notes: pinnedFirst(g.notes) }));
      el.style.setProperty("--cols", String(Math.max(1, groups.length)));
      extra = (n) => ({
        note: n,
        category: group?.category.id === OTHER_CATEGORY.id ? undefined : group?.category,
        phaseLabel: phaseLabel(model, n.phase),
        clusters: model.clusters,
        showCategory: false,
        draggable: false,
      });
      columns.reconcile(groups);
      firstRender = false;
      lastPresenter = filter.presenter;
      lastCount = notes.length;
      fit(filter.presenter, notes.length);
    },
    destroy() {
      window.removeEventListener("resize", onResize);
    },
  };
}

/**
 * Presenter layouts, densest last: the column width (newspaper columns) and the lines of text a
 * card shows. The first with which every card lies within the first screen wins.
 */
const LAYOUTS = [
  { width: 280, lines: 4 },
  { width: 280, lines: 3 },
  { width: 240, lines: 3 },
  { width: 280, lines: 2 },
  { width: 240, lines: 2 },
];
/** When none fits (many notes): three lines a note, and the page scrolls. */
const SCROLLING = { width: 280, lines: 3 };
/** Past this many notes nothing fits one screen: no need to try. */
const FIT_AT_MOST = 80;

/**
 * In presenter mode, picks the first layout with which every card of the columns lies within
 * the first screen. Runs in the same frame as the update (layout is read, nothing is painted in
 * between), and again when the width or the notes change.
 */
function fitter(el: HTMLElement) {
  let lastKey = "";
  const apply = (l: { width: number; lines: number }) => {
    el.style.setProperty("--clamp", String(l.lines));
    el.style.setProperty("--col-w", `${l.width}px`);
  };
  const fits = () => el.getBoundingClientRect().top + window.scrollY + contentHeight(el) <= window.innerHeight;
  return (presenter: boolean, count: number, force = false) => {
    if (!presenter) {
      el.style.removeProperty("--clamp");
      el.style.removeProperty("--col-w");
      lastKey = "";
      return;
    }
    const key = `${count}|${el.clientWidth}x${window.innerHeight}|${el.textContent?.length ?? 0}`;
    if (key === lastKey && !force) return;
    lastKey = key;
    let chosen = SCROLLING;
    if (count > 0 && count <= FIT_AT_MOST) {
      for (const l of LAYOUTS) {
        apply(l);
        if (fits()) {
          chosen = l;
          break;
        }
      }
    }
    apply(chosen);
    el.dataset.layout = `${chosen.width}x${chosen.lines}`;
  };
}

/** How tall the columns' content is (the bottom of the lowest card, from the top of `el`). */
function contentHeight(el: HTMLElement): number {
  const top = el.getBoundingClientRect().top;
  let bottom = 0;
  for (const card of el.querySelectorAll<HTMLElement>(".board-note")) bottom = Math.max(bottom, card.getBoundingClientRect().bottom - top);
  return bottom;
}
