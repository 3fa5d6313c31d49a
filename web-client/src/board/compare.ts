// The board's "Lesson 1 / Lesson 2" view: for each category, what was seen in the first lesson
// beside what was seen in the second, each lesson headed by its state, its counts and its
// time-outs, and the agreements of the debrief between them in a rail beside Lesson 2 (what the
// group chose to change is read against what the second lesson showed). Built for a projector
// at the back of a room: large type, one scroll for the whole view, nothing rebuilt on update
// (an element per id, kept and moved only when the order changes).

import { formatTime, OTHER_CATEGORY, type Category, type Note } from "../board";
import { compareLessons, formatDuration, lessonsOf, plural, type CompareRow, type LessonSide, type LessonTimeout } from "../compare";
import { h, setAttr, setText } from "../dom";
import { isLesson, type Agreement } from "../labrun";
import { phaseLabel } from "../model";
import { noteCard, type Card, type CardInfo } from "./card";
import { KeyedList } from "../views/keyed";
import { filterNotes, type BoardFilter, type BoardModel, type BoardView, type ViewContext } from "./view";

interface Cell {
  el: HTMLDivElement;
  count: HTMLSpanElement;
  empty: HTMLParagraphElement;
  notes: KeyedList<Note, HTMLLIElement>;
}

interface Row {
  label: HTMLSpanElement;
  first: Cell;
  second: Cell;
}

interface LessonHead {
  el: HTMLElement;
  title: HTMLHeadingElement;
  state: HTMLParagraphElement;
  totals: HTMLParagraphElement;
  timeouts: KeyedList<LessonTimeout, HTMLLIElement>;
}

/**
 * The view ignores the board's phase filter (it is itself a choice of phases) and applies the
 * child filter and "show hidden". Notes are the board's cards (board/card.ts): the same tools,
 * phase tag and clamp as in every other view.
 */
export function compareView(ctx: ViewContext): BoardView {
  /** The two lessons the facilitator chose when the lab has more than two; else by phase order. */
  let chosen: [string, string] | undefined;
  /** Every card of the view, by note id (a note is in one cell at a time). */
  const cards = new Map<string, Card>();
  /** What a card shows besides its note; set at each update. */
  let cardInfo: (n: Note, category: Category) => CardInfo = () => {
    throw new Error("compare view rendered before update");
  };

  /** A lesson's notes in one category; its count sits in the row's head line, above the cell. */
  const cell = (side: "first" | "second", category: () => Category): Cell => {
    const count = h("span", { class: "compare-count", testid: "compare-count", "data-side": side });
    const empty = h("p", { class: "compare-empty" });
    const list = h("ol", { class: "compare-notes" });
    const el = h("div", { class: "compare-cell", testid: "compare-cell", role: "group", "data-side": side }, empty, list);
    const notes = new KeyedList<Note, HTMLLIElement>(list, (n) => n.id, {
      create(n) {
        // A note that changed category moves here from another cell: a new card for it.
        cards.get(n.id)?.destroy();
        const card = noteCard(ctx, "compare-note", n);
        cards.set(n.id, card);
        return card.el;
      },
      update(_el, n) {
        cards.get(n.id)?.update(cardInfo(n, category()));
      },
      remove(el, id) {
        if (cards.get(id)?.el === el) {
          cards.get(id)?.destroy();
          cards.delete(id);
        }
      },
    });
    return { el, count, empty, notes };
  };

  const rows = h("div", { class: "compare-rows" });
  const rowParts = new Map<string, Row>();
  let rowCategory = new Map<string, Category>();
  const rowList = new KeyedList<CompareRow, HTMLElement>(rows, (r) => r.category.id, {
    create(r) {
      const id = r.category.id;
      const label = h("span", { class: "compare-row-label" });
      const first = cell("first", () => rowCategory.get(id) ?? OTHER_CATEGORY);
      const second = cell("second", () => rowCategory.get(id) ?? OTHER_CATEGORY);
      rowParts.set(id, { label, first, second });
      return h(
        "section",
        { class: "compare-row", testid: "compare-row", "data-category": id },
        h("h3", { class: "compare-row-head" }, h("span", { class: "chip-dot", "aria-hidden": "true" }), label, first.count),
        h("div", { class: "compare-row-head compare-row-head-second" }, second.count),
        first.el,
        second.el,
      );
    },
    update() {
      // Rows are filled below, once the lessons' states are known.
    },
    remove(_el, id) {
      rowParts.delete(id);
    },
  });

  const lessonHead = (side: "first" | "second"): LessonHead => {
    const title = h("h2", { class: "compare-lesson-title", testid: "compare-lesson-title" });
    const state = h("p", { class: "compare-lesson-state", testid: "compare-lesson-state" });
    const totals = h("p", { class: "compare-lesson-totals", testid: "compare-lesson-totals" });
    const list = h("ol", { class: "compare-timeouts", "aria-label": "Time-outs" });
    const el = h("section", { class: "compare-lesson", testid: "compare-lesson", "data-side": side }, title, state, totals, list);
    const timeouts = new KeyedList<LessonTimeout, HTMLLIElement>(list, (t) => t.id, {
      create: (t) => h("li", { class: "compare-timeout", testid: "compare-timeout", "data-timeout-id": t.id }),
      update(li, t) {
        setAttr(li, "data-notes", String(t.noteCount));
        const text = [
          t.minute !== undefined ? `Min ${t.minute}` : formatTime(t.startedAt),
          `called by ${t.calledBy || "someone"}`,
          t.durationMs !== undefined ? formatDuration(t.durationMs) : "still running",
          `${plural(t.noteCount, "note")} during it`,
        ].join(" · ");
        if (li.dataset.text !== text) {
          li.dataset.text = text;
          li.replaceChildren(h("span", { class: "timeout-t", "aria-hidden": "true" }, "T"), h("span", {}, text));
        }
      },
    });
    return { el, title, state, totals, timeouts };
  };
  const first = lessonHead("first");
  const second = lessonHead("second");

  const agreementsTitle = h("h2", { class: "compare-agreements-title", testid: "compare-agreements-title" });
  const agreementsEmpty = h("p", { class: "compare-empty" });
  const agreementsList = h("ol", { class: "compare-agreement-list" });
  const agreements = new KeyedList<Agreement, HTMLLIElement>(agreementsList, (a) => a.id, {
    create: (a) =>
      h("li", { class: "compare-agreement", testid: "compare-agreement", "data-agreement-id": a.id }, h("span", { class: "compare-agreement-text" }), h("span", { class: "compare-agreement-owner" })),
    update(li, a) {
      setText(li.children[0], a.text);
      const owner = li.children[1] as HTMLElement;
      setText(owner, a.owner ? `·\u00a0${a.owner}` : "");
      owner.hidden = !a.owner;
    },
  });
  const rail = h("aside", { class: "compare-rail", testid: "compare-agreements", "aria-labelledby": "compare-agreements-title" }, agreementsTitle, agreementsEmpty, agreementsList);
  agreementsTitle.id = "compare-agreements-title";

  // Only when the lab has more than two lessons: which two are compared.
  const pickA = h("select", { class: "input", testid: "compare-pick-first", "aria-label": "First lesson" });
  const pickB = h("select", { class: "input", testid: "compare-pick-second", "aria-label": "Second lesson" });
  const chooser = h("div", { class: "compare-chooser", hidden: true }, "Compare", pickA, "with", pickB);
  let last: { model: BoardModel; filter: BoardFilter } | undefined;
  const onPick = () => {
    chosen = [pickA.value, pickB.value];
    if (last) update(last.model, last.filter);
  };
  pickA.addEventListener("change", onPick);
  pickB.addEventListener("change", onPick);

  const el = h(
    "main",
    { class: "compare-view", testid: "compare-view", "aria-label": "Lesson 1 beside Lesson 2", tabindex: 0 },
    h("div", { class: "compare-layout" }, h("div", { class: "compare-main" }, chooser, h("div", { class: "compare-heads" }, first.el, second.el), rows), rail),
  );

  const updateHead = (head: LessonHead, s: LessonSide, fallback: string) => {
    setText(head.title, s.phase?.label ?? fallback);
    setAttr(head.el, "data-phase", s.phase?.id ?? "");
    setAttr(head.el, "data-state", s.state);
    const p = s.phase;
    setText(
      head.state,
      s.state === "not-taught"
        ? p
          ? "Not taught yet"
          : "No second lesson in this lab's phases"
        : s.state === "in-progress"
          ? `Teaching now, since ${formatTime(p?.startedAt ?? 0)}`
          : `Taught ${[...new Set([formatTime(p?.startedAt ?? 0), formatTime(p?.endedAt ?? 0)])].filter(Boolean).join("–")}`,
    );
    setText(head.totals, s.state === "not-taught" && s.noteCount === 0 ? "" : `${plural(s.noteCount, "note")} · ${plural(s.timeouts.length, "time-out")}`);
    head.totals.hidden = head.totals.textContent === "";
    setAttr(head.el, "data-notes", String(s.noteCount));
    head.timeouts.reconcile(s.timeouts);
  };

  const updateCell = (c: Cell, notes: Note[], s: LessonSide) => {
    setAttr(c.el, "data-count", String(notes.length));
    setText(c.count, plural(notes.length, "note"));
    c.count.hidden = s.state === "not-taught" && notes.length === 0;
    setText(c.empty, s.state === "not-taught" ? "Not taught yet" : "Nothing seen here");
    c.empty.hidden = notes.length > 0;
    c.notes.reconcile(notes);
  };

  const update = (model: BoardModel, filter: BoardFilter) => {
    last = { model, filter };
    // The child filter applies; the phase filter does not (the view is a choice of phases).
    const notes = filterNotes(model, { ...filter, phase: undefined, showHidden: true });
    const lessons = lessonsOf(model.phases);
    chooser.hidden = lessons.length <= 2;
    if (chosen && !chosen.every((id) => lessons.some((p) => p.id === id))) chosen = undefined;
    const cmp = compareLessons({ ...model, notes }, { showHidden: filter.showHidden, pair: chosen });
    if (!chooser.hidden) {
      for (const [select, s] of [[pickA, cmp.first], [pickB, cmp.second]] as const) {
        const key = JSON.stringify([lessons.map((p) => [p.id, p.label]), s.phase?.id]);
        if (select.dataset.key === key) continue;
        select.dataset.key = key;
        select.replaceChildren(...lessons.map((p) => h("option", { value: p.id, selected: p.id === s.phase?.id }, p.label)));
      }
    }
    updateHead(first, cmp.first, "Lesson 1");
    updateHead(second, cmp.second, "Lesson 2");

    // Named by the debriefs between (not by a lesson skipped over when the facilitator chose).
    const debrief = cmp.between
      .filter((p) => !isLesson(p.id))
      .map((p) => p.label)
      .join(" and ");
    setText(agreementsTitle, debrief ? `Agreed in ${debrief}` : `Agreed before ${cmp.second.phase?.label ?? "Lesson 2"}`);
    setText(agreementsEmpty, debrief ? `No agreements from ${debrief} yet` : "No agreements between these lessons");
    agreementsEmpty.hidden = cmp.agreements.length > 0;
    agreements.reconcile(cmp.agreements);

    rowCategory = new Map(cmp.rows.map((r) => [r.category.id, r.category]));
    cardInfo = (n, category) => ({
      note: n,
      category: category.id === OTHER_CATEGORY.id ? undefined : category,
      phaseLabel: phaseLabel(model, n.phase),
      clusters: model.clusters,
      showCategory: false,
      draggable: false,
    });
    rowList.reconcile(cmp.rows);
    for (const r of cmp.rows) {
      const row = rowParts.get(r.category.id)!;
      const section = rowList.get(r.category.id)!;
      section.style.setProperty("--cat", r.category.color);
      setText(row.label, r.category.label);
      updateCell(row.first, r.first, cmp.first);
      updateCell(row.second, r.second, cmp.second);
      setAttr(row.first.el, "aria-label", `${r.category.label}, ${cmp.first.phase?.label ?? "Lesson 1"}`);
      setAttr(row.second.el, "aria-label", `${r.category.label}, ${cmp.second.phase?.label ?? "Lesson 2"}`);
    }
  };

  const destroy = () => {
    for (const card of cards.values()) card.destroy();
    cards.clear();
  };

  return { el, update, destroy };
}
