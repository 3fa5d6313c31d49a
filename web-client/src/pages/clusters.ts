// The board's clusters view: the notes not yet in a cluster on the left, each cluster (a named
// group, like a patch of chart paper) with its notes on the right. The facilitator makes a
// cluster, drags notes into it with the mouse (HTML5 drag and drop) or uses each note's "Move
// to" menu, and takes notes out again (which deletes their `clusterId`).

import { h, replace, setAttr } from "../dom";
import { randomUuid } from "../ids";
import type { Category, Note } from "../board";
import { addCluster, groupByCluster, MAX_CLUSTER_CHARS, readClusters, removeCluster, setNoteCluster, type Cluster, type DebriefDoc } from "../debrief";
import type { LabConnection } from "../sync";

const NOTE_TYPE = "application/x-labboard-note";

export interface ClustersView {
  el: HTMLElement;
  render(doc: DebriefDoc, notes: Note[], categories: Category[]): void;
}

export function clustersView(conn: () => LabConnection | undefined, rerender: () => void): ClustersView {
  const isFacilitator = () => conn()?.role === "facilitator";
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
  const el = h(
    "main",
    { class: "clusters-view", testid: "clusters-view", hidden: true, "aria-label": "Notes by cluster" },
    pool,
    h("div", { class: "clusters-side" }, form, empty, grid),
  );

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    if (conn()?.run((d, now) => addCluster(d, randomUuid(), newLabel.value, now))) newLabel.value = "";
    rerender();
  });

  const move = (noteId: string, clusterId: string | undefined) => {
    conn()?.run((d, _now, scalar) => setNoteCluster(d, noteId, clusterId, scalar));
    rerender();
  };

  /** Makes `target` accept dropped notes, putting them in `clusterId` (undefined: out of any). */
  const dropZone = (target: HTMLElement, clusterId: string | undefined) => {
    target.addEventListener("dragover", (e) => {
      if (!e.dataTransfer?.types.includes(NOTE_TYPE)) return;
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
      if (!id) return;
      e.preventDefault();
      move(id, clusterId);
    });
  };
  dropZone(pool, undefined);

  const noteCard = (n: Note, cat: Category | undefined, clusters: Cluster[], facilitator: boolean): HTMLLIElement => {
    const li = h(
      "li",
      { class: "cluster-note", testid: "cluster-note", "data-note-id": n.id, draggable: facilitator ? "true" : undefined },
      h("p", { class: "note-body", testid: "note-body" }, n.text),
      h("p", { class: "board-note-meta" }, [cat?.label ?? "", n.authorName].filter(Boolean).join(" · ")),
    );
    li.style.setProperty("--cat", cat?.color ?? "#64748b");
    li.classList.toggle("is-highlighted", !!n.highlighted);
    if (!facilitator) return li;
    li.addEventListener("dragstart", (e) => {
      e.dataTransfer?.setData(NOTE_TYPE, n.id);
      e.dataTransfer?.setData("text/plain", n.text);
      if (e.dataTransfer) e.dataTransfer.effectAllowed = "move";
      li.classList.add("is-dragging");
    });
    li.addEventListener("dragend", () => li.classList.remove("is-dragging"));
    // The same without a mouse: a menu of clusters.
    const select = h(
      "select",
      { class: "cluster-move", testid: "note-move", "aria-label": "Move to cluster" },
      h("option", { value: "", selected: n.clusterId === undefined || !clusters.some((c) => c.id === n.clusterId) }, n.clusterId ? "Take out of cluster" : "Move to cluster…"),
      ...clusters.map((c) => h("option", { value: c.id, selected: c.id === n.clusterId }, c.label)),
    );
    select.addEventListener("change", () => move(n.id, select.value || undefined));
    const tools = h("div", { class: "cluster-note-tools" }, select);
    if (n.clusterId) {
      const out = h("button", { type: "button", class: "note-tool", testid: "cluster-note-remove", title: "Take out of this cluster" }, "Take out");
      out.addEventListener("click", () => move(n.id, undefined));
      tools.append(out);
    }
    li.append(tools);
    return li;
  };

  let key = "";
  const render = (doc: DebriefDoc, notes: Note[], categories: Category[]) => {
    const facilitator = isFacilitator();
    form.hidden = !facilitator || !doc.clusters;
    const clusters = readClusters(doc);
    const { groups, loose } = groupByCluster(clusters, notes);
    const k = JSON.stringify([clusters, notes.map((n) => [n.id, n.text, n.clusterId, n.category, n.highlighted, n.authorName]), categories, facilitator]);
    if (k === key) return;
    key = k;
    const cats = new Map(categories.map((c) => [c.id, c]));
    poolEmpty.hidden = loose.length > 0;
    replace(poolList, ...loose.map((n) => noteCard(n, cats.get(n.category), clusters, facilitator)));
    empty.hidden = clusters.length > 0;
    replace(
      grid,
      ...groups.map(({ cluster, notes: inIt }) => {
        const count = h("span", { class: "column-count" }, String(inIt.length));
        const head = h("h2", { class: "cluster-head" }, h("span", { class: "cluster-label", testid: "cluster-label" }, cluster.label), count);
        const box = h(
          "section",
          { class: "cluster", testid: "cluster", "data-cluster-id": cluster.id, "data-count": String(inIt.length) },
          head,
          inIt.length === 0 ? h("p", { class: "column-empty" }, facilitator ? "Drag notes here" : "No notes yet") : null,
          h("ol", { class: "cluster-notes" }, ...inIt.map((n) => noteCard(n, cats.get(n.category), clusters, facilitator))),
        );
        if (facilitator) {
          dropZone(box, cluster.id);
          let armedAt = 0;
          const remove = h("button", { type: "button", class: "note-tool", testid: "cluster-remove", title: "Remove this cluster (its notes stay)" }, "Remove");
          remove.addEventListener("click", () => {
            if (Date.now() - armedAt > 4_000) {
              armedAt = Date.now();
              remove.textContent = "Click again to remove";
              setTimeout(() => (remove.textContent = "Remove"), 4_000);
              return;
            }
            conn()?.run((d) => removeCluster(d, cluster.id));
            rerender();
          });
          head.append(remove);
        }
        return box;
      }),
    );
    setAttr(el, "data-clusters", String(clusters.length));
  };

  return { el, render };
}
