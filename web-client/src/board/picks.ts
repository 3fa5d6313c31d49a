// The board's "Picks" view: the sticky-note ritual of the paper debrief. Each person picks their
// strongest pieces of evidence on their phone (up to the lab's pick limit); the board shows only
// the picked notes, most picked first, each with how many people picked it. The facilitator sets
// the pick limit and makes clusters from picks: select picked notes, name the pattern, and they
// become a cluster (the clusters view then shows it). Keyed like every board view: a card is
// kept and only moved when its place in the order changes.

import type { Note } from "../board";
import { pickTotals, plural, rankPicks, type PickedNote } from "../compare";
import { addCluster, MAX_CLUSTER_CHARS, setNoteCluster } from "../debrief";
import { h, setAttr, setText } from "../dom";
import { randomUuid } from "../ids";
import { MAX_PICK_LIMIT, phaseLabel, setPickLimit, type BoardModel } from "../model";
import { noteCard, type Card } from "./card";
import { KeyedList } from "../views/keyed";
import { filterNotes, type BoardFilter, type BoardView, type ViewContext } from "./view";

/** A picked note: the board's card (board/card.ts), headed by its count, with "Select". */
interface PickCard {
  card: Card;
  count: HTMLSpanElement;
  dots: HTMLSpanElement;
  select: HTMLButtonElement;
}

export function picksView(ctx: ViewContext): BoardView {
  const isFacilitator = () => ctx.role === "facilitator";
  /** Picked notes the facilitator has selected to make a cluster from. */
  const selected = new Set<string>();

  const totals = h("p", { class: "picks-totals", testid: "picks-totals" });
  const limitValue = h("output", { class: "picks-limit-value", testid: "pick-limit" });
  const limitDown = h("button", { type: "button", class: "btn btn-small", testid: "pick-limit-down", "aria-label": "One pick fewer per person" }, "−");
  const limitUp = h("button", { type: "button", class: "btn btn-small", testid: "pick-limit-up", "aria-label": "One pick more per person" }, "+");
  const limitText = h("span", { class: "picks-limit-text" });
  const limitBox = h("div", { class: "picks-limit", role: "group", "aria-label": "Picks per person" }, limitText, limitDown, limitValue, limitUp);

  const clusterName = h("input", {
    class: "input",
    testid: "picks-cluster-name",
    maxlength: MAX_CLUSTER_CHARS,
    placeholder: "Name the pattern these show",
    "aria-label": "Name of the new cluster",
    autocomplete: "off",
  });
  const clusterMake = h("button", { type: "submit", class: "btn btn-primary btn-small", testid: "picks-cluster-make" }, "Make cluster");
  const clusterClear = h("button", { type: "button", class: "btn btn-small", testid: "picks-clear" }, "Clear selection");
  const selectedCount = h("span", { class: "picks-selected", testid: "picks-selected", role: "status" });
  const clusterForm = h("form", { class: "picks-cluster-form", novalidate: true }, selectedCount, clusterName, clusterMake, clusterClear);

  const empty = h("p", { class: "compare-empty picks-empty", testid: "picks-empty" }, "No picks yet. Each person picks their strongest evidence on their phone.");
  const list = h("ol", { class: "picks-list" });
  const el = h(
    "main",
    { class: "picks-view", testid: "picks-view", "aria-labelledby": "picks-title", tabindex: 0 },
    h("div", { class: "picks-head" }, h("h2", { class: "picks-title", id: "picks-title" }, "Picked evidence"), totals, limitBox),
    clusterForm,
    empty,
    list,
  );

  let last: BoardModel | undefined;
  let lastFilter: BoardFilter | undefined;
  const rerender = () => {
    if (last) update(last, lastFilter!);
  };

  const changeLimit = (step: number) => {
    if (!last || !isFacilitator()) return;
    const n = Math.min(MAX_PICK_LIMIT, Math.max(1, last.lab.pickLimit + step));
    ctx.change((d) => setPickLimit(d, n));
  };
  limitDown.addEventListener("click", () => changeLimit(-1));
  limitUp.addEventListener("click", () => changeLimit(1));

  clusterClear.addEventListener("click", () => {
    selected.clear();
    rerender();
  });
  clusterForm.addEventListener("submit", (e) => {
    e.preventDefault();
    const ids = [...selected];
    const label = clusterName.value;
    if (!isFacilitator() || ids.length === 0 || label.trim() === "") return;
    const clusterId = randomUuid();
    const made = ctx.change((d, now, scalar) => {
      if (!addCluster(d, clusterId, label, now)) return false;
      for (const id of ids) setNoteCluster(d, id, clusterId, scalar);
      return true;
    });
    if (made) {
      selected.clear();
      clusterName.value = "";
    }
    rerender();
  });

  const cards = new Map<string, PickCard>();
  const pickedList = new KeyedList<PickedNote, HTMLLIElement>(list, (p) => p.note.id, {
    create(p) {
      const card = noteCard(ctx, "picked-note", p.note);
      const count = h("span", { class: "picks-count", testid: "pick-count" });
      const dots = h("span", { class: "picks-dots", "aria-hidden": "true" });
      const select = h("button", { type: "button", class: "btn btn-small picks-select", testid: "pick-select", "aria-pressed": "false" }, "Select");
      card.el.classList.add("picks-note");
      card.el.prepend(h("div", { class: "picks-note-head" }, count, dots));
      card.el.append(select);
      const id = p.note.id;
      select.addEventListener("click", () => {
        if (selected.has(id)) selected.delete(id);
        else selected.add(id);
        rerender();
      });
      cards.set(id, { card, count, dots, select });
      return card.el;
    },
    update() {
      // Filled below, with the model at hand.
    },
    remove(_el, id) {
      cards.get(id)?.card.destroy();
      cards.delete(id);
    },
  });

  const update = (model: BoardModel, filter: BoardFilter) => {
    last = model;
    lastFilter = filter;
    const facilitator = isFacilitator();
    // The board's filter applies: picks of one lesson, or about one child.
    const picked = rankPicks(filterNotes(model, filter), model.picks, { showHidden: true });
    for (const id of [...selected]) if (!picked.some((p) => p.note.id === id)) selected.delete(id);
    const { people, picks } = pickTotals(model.picks);
    setText(totals, picks === 0 ? "" : `${plural(picks, "pick")} from ${plural(people, "person", "people")}`);
    totals.hidden = picks === 0;
    const limit = model.lab.pickLimit;
    setText(limitText, facilitator ? "Picks per person" : `Each person picks up to ${limit}`);
    setText(limitValue, String(limit));
    limitDown.hidden = limitUp.hidden = limitValue.hidden = !facilitator;
    limitDown.disabled = limit <= 1;
    limitUp.disabled = limit >= MAX_PICK_LIMIT;

    clusterForm.hidden = !facilitator || picked.length === 0;
    setText(selectedCount, selected.size === 0 ? "Select picked notes to make a cluster of them" : `${plural(selected.size, "note")} selected`);
    clusterMake.disabled = selected.size === 0;
    clusterClear.hidden = selected.size === 0;

    empty.hidden = picked.length > 0;
    const cats = new Map(model.categories.map((c) => [c.id, c]));
    pickedList.reconcile(picked);
    for (const p of picked) {
      const c = cards.get(p.note.id)!;
      const n: Note = p.note;
      c.card.update({ note: n, category: cats.get(n.category), phaseLabel: phaseLabel(model, n.phase), clusters: model.clusters, showCategory: true, draggable: false });
      setAttr(c.card.el, "data-count", String(p.count));
      setText(c.count, plural(p.count, "pick"));
      setText(c.dots, "●".repeat(Math.min(p.count, 12)));
      const on = selected.has(n.id);
      c.select.hidden = !facilitator;
      setAttr(c.select, "aria-pressed", String(on));
      setText(c.select, on ? "Selected" : "Select");
      c.card.el.classList.toggle("is-selected", on);
    }
  };

  const destroy = () => {
    for (const c of cards.values()) c.card.destroy();
    cards.clear();
  };

  return { el, update, destroy };
}
