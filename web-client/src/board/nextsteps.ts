// The board's "Next steps" view: what each coach will do with their own teachers next week,
// written on their phones in the final debrief, grouped by coach in large type, live. Keyed like
// every board view: a coach's card and each step are kept and updated in place.

import { nextStepsByCoach, plural, type CoachSteps } from "../compare";
import { h, setAttr, setText } from "../dom";
import type { BoardModel, NextStep } from "../model";
import { KeyedList } from "../views/keyed";
import type { BoardView, ViewContext } from "./view";

interface CoachCard {
  el: HTMLElement;
  name: HTMLSpanElement;
  count: HTMLSpanElement;
  steps: KeyedList<NextStep, HTMLLIElement>;
}

/** The view reads the model only: next steps are written on the coaches' phones. */
export function nextStepsView(_ctx: ViewContext): BoardView {
  const total = h("p", { class: "nextsteps-total", testid: "nextsteps-total" });
  const empty = h("p", { class: "compare-empty nextsteps-empty", testid: "nextsteps-empty" }, "No next steps yet. In the final debrief each coach writes the next step they will take, on their phone.");
  const grid = h("div", { class: "nextsteps-grid" });
  const el = h(
    "main",
    { class: "nextsteps-view", testid: "nextsteps-view", "aria-labelledby": "nextsteps-title", tabindex: 0 },
    h("div", { class: "nextsteps-head" }, h("h2", { class: "nextsteps-title", id: "nextsteps-title" }, "Next steps"), total),
    empty,
    grid,
  );

  const cards = new Map<string, CoachCard>();
  const coaches = new KeyedList<CoachSteps, HTMLElement>(grid, (c) => c.authorId, {
    create(c) {
      const name = h("span", { class: "nextsteps-name", testid: "nextsteps-name" });
      const count = h("span", { class: "compare-count nextsteps-count" });
      const list = h("ol", { class: "nextsteps-list" });
      const steps = new KeyedList<NextStep, HTMLLIElement>(list, (s) => s.id, {
        create: (s) => h("li", { class: "nextsteps-step", testid: "nextsteps-step", "data-step-id": s.id }),
        update: (li, s) => setText(li, s.text),
      });
      const el = h("section", { class: "nextsteps-coach", testid: "nextsteps-coach", "data-author-id": c.authorId }, h("h3", { class: "nextsteps-coach-head" }, name, count), list);
      cards.set(c.authorId, { el, name, count, steps });
      return el;
    },
    update(el, c) {
      const card = cards.get(c.authorId)!;
      setAttr(el, "data-count", String(c.steps.length));
      setText(card.name, c.name);
      setText(card.count, String(c.steps.length));
      setAttr(card.count, "aria-label", plural(c.steps.length, "next step"));
      card.steps.reconcile(c.steps);
    },
    remove(_el, id) {
      cards.delete(id);
    },
  });

  const update = (model: BoardModel) => {
    const groups = nextStepsByCoach(model.nextSteps);
    const steps = groups.reduce((n, g) => n + g.steps.length, 0);
    empty.hidden = groups.length > 0;
    total.hidden = groups.length === 0;
    setText(total, `${plural(steps, "next step")} from ${plural(groups.length, "coach", "coaches")}`);
    coaches.reconcile(groups);
  };

  return { el, update };
}
