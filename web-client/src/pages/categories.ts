// The board's category settings (facilitator): rename, recolour and reorder the lab's categories,
// or add one. Each edit writes one key of one category (debrief.ts), so two people editing
// different things at once both keep their change.

import { h, replace } from "../dom";
import { randomUuid } from "../ids";
import { readCategories, type Category } from "../board";
import { addCategory, MAX_CATEGORY_CHARS, movedOrder, updateCategory, type DebriefDoc } from "../debrief";
import type { LabConnection } from "../sync";

export interface CategoriesPanel {
  el: HTMLElement;
  open(): void;
  close(): void;
  isOpen(): boolean;
  render(doc: DebriefDoc): void;
}

const PALETTE = ["#2563eb", "#16a34a", "#9333ea", "#ea580c", "#0f766e", "#be123c", "#a16207", "#4f46e5"];

export function categoriesPanel(conn: () => LabConnection | undefined, rerender: () => void, onClose: () => void): CategoriesPanel {
  const rows = h("ol", { class: "categories-rows" });
  const close = h("button", { type: "button", class: "btn btn-small", testid: "categories-close" }, "Done");
  const newLabel = h("input", { class: "input", testid: "category-new-label", maxlength: MAX_CATEGORY_CHARS, placeholder: "New category", "aria-label": "New category", autocomplete: "off" });
  const newAdd = h("button", { type: "submit", class: "btn btn-small btn-primary", testid: "category-new-add" }, "Add");
  const form = h("form", { class: "categories-new", novalidate: true }, newLabel, newAdd);
  const el = h(
    "div",
    { class: "categories-panel", testid: "categories-panel", role: "dialog", "aria-modal": "false", "aria-labelledby": "categories-heading", hidden: true },
    h("div", { class: "categories-head" }, h("h2", { id: "categories-heading" }, "Categories"), close),
    h("p", { class: "agreements-hint" }, "Changes show on every phone and on the board at once."),
    rows,
    form,
  );

  let key = "";
  let last: Category[] = [];
  const run = (fn: Parameters<LabConnection["run"]>[0]) => {
    conn()?.run(fn);
    rerender();
  };

  close.addEventListener("click", () => panel.close());
  el.addEventListener("keydown", (e) => {
    if (e.key === "Escape") {
      e.stopPropagation();
      panel.close();
    }
  });
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const used = new Set(last.map((c) => c.color.toLowerCase()));
    const color = PALETTE.find((p) => !used.has(p)) ?? PALETTE[last.length % PALETTE.length];
    let ok = false;
    conn()?.run((d) => (ok = addCategory(d, `cat-${randomUuid().slice(0, 8)}`, newLabel.value, color)));
    if (ok) newLabel.value = "";
    rerender();
  });

  const row = (c: Category, index: number, all: Category[]) => {
    const label = h("input", { class: "input", testid: "category-label", value: c.label, maxlength: MAX_CATEGORY_CHARS, "aria-label": `Name of ${c.label}`, autocomplete: "off" });
    const color = h("input", { type: "color", class: "category-color", testid: "category-color", value: c.color, "aria-label": `Colour of ${c.label}` });
    const up = h("button", { type: "button", class: "note-tool", testid: "category-up", "aria-label": `Move ${c.label} earlier`, disabled: index === 0 }, "↑");
    const down = h("button", { type: "button", class: "note-tool", testid: "category-down", "aria-label": `Move ${c.label} later`, disabled: index === all.length - 1 }, "↓");
    const saveLabel = () => run((d, _now, _scalar, updateText) => updateCategory(d, c.id, { label: label.value }, updateText));
    label.addEventListener("change", saveLabel);
    label.addEventListener("keydown", (e) => {
      if (e.key === "Enter") {
        e.preventDefault();
        saveLabel();
      }
    });
    color.addEventListener("change", () => run((d) => updateCategory(d, c.id, { color: color.value })));
    const move = (step: -1 | 1) => {
      const order = movedOrder(all.map((x) => x.order), index, step);
      if (order !== undefined) run((d) => updateCategory(d, c.id, { order }));
    };
    up.addEventListener("click", () => move(-1));
    down.addEventListener("click", () => move(1));
    const li = h("li", { class: "category-row", testid: "category-row", "data-category": c.id }, color, label, up, down);
    li.style.setProperty("--cat", c.color);
    return li;
  };

  const panel: CategoriesPanel = {
    el,
    open() {
      el.hidden = false;
      key = "";
      rerender();
      (rows.querySelector("input[data-testid=category-label]") as HTMLInputElement | null)?.focus();
    },
    close() {
      if (el.hidden) return;
      el.hidden = true;
      onClose();
    },
    isOpen: () => !el.hidden,
    render(doc) {
      form.hidden = !doc.categories;
      const cats = readCategories(doc);
      last = cats;
      const k = JSON.stringify(cats);
      if (k === key) return;
      key = k;
      // Keep what is being typed: a row whose label has focus keeps its input element.
      const focused = document.activeElement;
      const keepId = focused instanceof HTMLInputElement && rows.contains(focused) ? (focused.closest("li") as HTMLElement | null)?.dataset.category : undefined;
      const newRows = cats.map((c, i) => row(c, i, cats));
      if (keepId) {
        const i = newRows.findIndex((r) => r.dataset.category === keepId);
        const old = [...rows.children].find((r) => (r as HTMLElement).dataset.category === keepId);
        if (i >= 0 && old && focused instanceof HTMLInputElement && focused.type !== "color") {
          const fresh = newRows[i].querySelector("input[data-testid=category-label]")!;
          fresh.replaceWith(focused);
        }
      }
      replace(rows, ...newRows);
      if (focused instanceof HTMLElement && rows.contains(focused)) focused.focus();
    },
  };
  return panel;
}
