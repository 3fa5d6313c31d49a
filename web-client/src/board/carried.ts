// What the last debrief agreed to try, on the projector during the next lesson: a band above the
// notes listing the agreements made in the phases before the current lesson, by phase.

import { h, setAttr, setText } from "../dom";
import { isLesson, type Agreement } from "../labrun";
import { KeyedList } from "../views/keyed";
import type { BoardModel } from "./view";

export interface CarriedBand {
  el: HTMLElement;
  update(model: BoardModel): void;
}

export function carriedBand(): CarriedBand {
  const heading = h("h2", { class: "carried-board-heading", id: "carried-board-heading" });
  const list = h("ol", { class: "carried-board-list" });
  const el = h("section", { class: "carried-board", testid: "agreements-carried-board", "aria-labelledby": "carried-board-heading", hidden: true }, heading, list);
  const items = new KeyedList<Agreement, HTMLLIElement>(list, (a) => a.id, {
    create: (a) => h("li", { class: "carried-board-item", testid: "carried-agreement", "data-agreement-id": a.id }, h("span", { class: "carried-board-text" }), h("span", { class: "carried-board-owner" })),
    update(li, a) {
      setText(li.children[0], a.text);
      const owner = li.children[1] as HTMLElement;
      setText(owner, a.owner);
      owner.hidden = !a.owner;
    },
  });

  return {
    el,
    update(model) {
      const current = model.currentPhase;
      const index = current ? model.phases.findIndex((p) => p.id === current.id) : -1;
      const before = new Set(index < 0 ? [] : model.phases.slice(0, index).map((p) => p.id));
      const carried = current && isLesson(current.id) ? model.agreements.filter((a) => before.has(a.phase)) : [];
      el.hidden = carried.length === 0;
      if (carried.length === 0) return;
      const phases = [...new Set(carried.map((a) => a.phase))].map((id) => model.phases.find((p) => p.id === id)?.label ?? id);
      setText(heading, `${phases.join(" and ")} agreed to try`);
      setAttr(el, "data-count", String(carried.length));
      items.reconcile(carried);
    },
  };
}
