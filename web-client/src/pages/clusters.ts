// The board's clusters view: the notes not yet in a cluster on the left, each cluster (a named
// group, like a patch of chart paper) with its notes on the right. The facilitator makes a
// cluster, drags notes into it with the mouse (HTML5 drag and drop) or uses each note's menu
// ("Cluster"), and takes notes out again (which deletes their `clusterId`); removing a cluster or
// taking a note out can be undone. Keyed like every board view: a card is made once per note and
// moved between the pool and the clusters, never rebuilt under a drag.

import type { Note } from "../board";
import { addCluster, groupByCluster, MAX_CLUSTER_CHARS, type Cluster } from "../debrief";
import { h, setAttr, setText } from "../dom";
import { randomUuid } from "../ids";
import { NOTE_TYPE, noteCard, shortText, type Card } from "../board/card";
import { KeyedList } from "../views/keyed";
import { phaseLabel } from "../model";
import { dropCluster, setCluster } from "../board/undoable";
import { filterNotes, type BoardModel, type BoardView, type ViewContext } from "../board/view";

export function clustersView(ctx: ViewContext): BoardView {
  const poolList = h("ol", { class: "cluster-notes" });
  const poolEmpty = h("p", { class: "column-empty" }, "Every note is in a cluster");
  const pool = h(
    "section",
    { class: "cluster cluster-pool", testid: "cluster-pool", "aria-label": "Notes not in a cluster" },
    h("h2", { class: "cluster-head" }, h("span", { class: "cluster-label" }, "Not in a cluster")),
    poolEmpty,
    poolList,
  );
  const newLabel = h("input", { class: "input", testid: "cluster-new-label", maxlength: MAX_CLUSTER_CHARS, placeholder: "Name a pattern we see", "aria-label": "New cluster", autocomplete: "off" });
  const add = h("button", { type: "submit", class: "btn btn-primary btn-small", testid: "cluster-add" }, "New cluster");
  const form = h("form", { class: "cluster-form", novalidate: true }, newLabel, add);
  const grid = h("div", { class: "cluster-grid" });
  const empty = h("p", { class: "clusters-empty" }, "No clusters yet. Name a pattern, then drag notes into it.");
  const el = h("main", { class: "clusters-view", testid: "clusters-view", hidden: true, "aria-label": "Notes by cluster" }, pool, h("div", { class: "clusters-side" }, form, empty, grid));

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    if (ctx.change((d, now) => addCluster(d, randomUuid(), newLabel.value, now))) newLabel.value = "";
  });

  /** Makes `target` accept dropped notes, putting them in `clusterId` (undefined: out of any). */
  const dropZone = (target: HTMLElement, clusterId: string | undefined) => {
    target.addEventListener("dragover", (e) => {
      if (!ctx.isFacilitator() || !e.dataTransfer?.types.includes(NOTE_TYPE)) return;
      e.preventDefault();
      e.dataTransfer.dropEffect = "move";
      target.classList.add("is-drop-target");
    });
    target.addEventListener("dragleave", (e) => {
      if (!target.contains(e.relatedTarget as Node | null)) target.classList.remove("is-drop-target");
    });
    target.addEventListener("drop", (e) => {
      target.classList.remove("is-drop-target");
      const id = e.dataTransfer?.getData(NOTE_TYPE);
      if (!id || !ctx.isFacilitator()) return;
      e.preventDefault();
      const note = model?.notes.find((n) => n.id === id);
      if (clusterId === undefined) ctx.changeWithUndo(`Taken out of its cluster: “${shortText(note?.text ?? "")}”`, setCluster(id, undefined));
      else ctx.change((d, now, scalar, updateText) => setCluster(id, clusterId)(d, now, scalar, updateText) !== undefined);
    });
  };
  dropZone(pool, undefined);

  let model: BoardModel | undefined;
  // One card per note for the whole view: a note dragged into a cluster keeps its card.
  const cards = new Map<string, Card>();
  const cardFor = (n: Note) => {
    let card = cards.get(n.id);
    if (!card) {
      card = noteCard(ctx, "cluster-note", n);
      cards.set(n.id, card);
    }
    return card;
  };
  const noteList = (parent: HTMLElement) =>
    new KeyedList<Note, HTMLLIElement>(parent, (n) => n.id, {
      create: (n) => cardFor(n).el,
      update(_el, n) {
        const m = model!;
        cardFor(n).update({ note: n, category: m.categories.find((c) => c.id === n.category), phaseLabel: phaseLabel(m, n.phase), clusters: m.clusters, showCategory: true, draggable: true });
      },
    });
  const poolCards = noteList(poolList);

  const parts = new WeakMap<HTMLElement, { label: HTMLElement; count: HTMLElement; empty: HTMLElement; remove: HTMLButtonElement; notes: KeyedList<Note, HTMLLIElement> }>();
  const clusters = new KeyedList<{ cluster: Cluster; notes: Note[] }, HTMLElement>(grid, (g) => g.cluster.id, {
    create(g) {
      const label = h("span", { class: "cluster-label", testid: "cluster-label" });
      const count = h("span", { class: "column-count" });
      const remove = h("button", { type: "button", class: "note-tool", testid: "cluster-remove" }, "Remove");
      const emptyNote = h("p", { class: "column-empty" });
      const list = h("ol", { class: "cluster-notes" });
      const box = h("section", { class: "cluster", testid: "cluster", "data-cluster-id": g.cluster.id }, h("h2", { class: "cluster-head" }, label, count, remove), emptyNote, list);
      remove.addEventListener("click", () => ctx.changeWithUndo(`Cluster removed: “${label.textContent ?? ""}” (its notes stay)`, dropCluster(g.cluster.id)));
      dropZone(box, g.cluster.id);
      parts.set(box, { label, count, empty: emptyNote, remove, notes: noteList(list) });
      return box;
    },
    update(box, g) {
      const p = parts.get(box)!;
      const facilitator = ctx.isFacilitator();
      setText(p.label, g.cluster.label);
      setText(p.count, String(g.notes.length));
      setAttr(box, "data-count", String(g.notes.length));
      setAttr(p.remove, "aria-label", `Remove the cluster ${g.cluster.label} (its notes stay)`);
      p.remove.hidden = !facilitator;
      p.empty.hidden = g.notes.length > 0;
      setText(p.empty, facilitator ? "Drag notes here, or use a note's ⋯ menu" : "No notes yet");
      p.notes.reconcile(g.notes);
    },
  });

  return {
    el,
    update(m, filter) {
      model = m;
      form.hidden = !ctx.isFacilitator();
      const notes = filterNotes(m, filter);
      const { groups, loose } = groupByCluster(m.clusters, notes);
      // Cards first leave the lists they no longer belong to, then join their new one (so a
      // card moved between two lists is the same element).
      poolEmpty.hidden = loose.length > 0;
      empty.hidden = m.clusters.length > 0;
      poolCards.reconcile(loose);
      clusters.reconcile(groups);
      const shown = new Set(notes.map((n) => n.id));
      for (const [id, card] of cards) {
        if (shown.has(id)) continue;
        card.destroy();
        card.el.remove();
        cards.delete(id);
      }
      setAttr(el, "data-clusters", String(m.clusters.length));
    },
  };
}
