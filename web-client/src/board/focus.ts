// One note full screen, whole and in large type (a long note clamped on its card opens here).
// Escape or the button closes it and gives the focus back to what opened it.

import { formatTime } from "../board";
import { h, setText } from "../dom";
import { phaseLabel } from "../model";
import type { BoardModel } from "./view";

export interface FocusOverlay {
  el: HTMLElement;
  open(noteId: string, from?: HTMLElement): void;
  close(): void;
  update(model: BoardModel): void;
  destroy(): void;
}

export function focusOverlay(rerender: () => void): FocusOverlay {
  let noteId: string | undefined;
  let last: BoardModel | undefined;
  let back: HTMLElement | null = null;
  const text = h("p", { class: "focus-text", testid: "focus-text" });
  const meta = h("p", { class: "focus-meta", testid: "focus-meta" });
  const closeButton = h("button", { type: "button", class: "btn focus-close", testid: "focus-close" }, "Close (Esc)");
  // Focusable: a long note scrolls inside the card, by keyboard too.
  const card = h("div", { class: "focus-card", tabindex: "0" }, text, meta);
  const el = h("div", { class: "focus-overlay", testid: "focus-overlay", role: "dialog", "aria-modal": "true", "aria-label": "One note", hidden: true }, card, closeButton);

  const close = () => {
    if (!noteId) return;
    noteId = undefined;
    el.hidden = true;
    document.body.classList.remove("has-focus-overlay");
    if (back?.isConnected) back.focus();
    back = null;
  };
  closeButton.addEventListener("click", close);
  const onKey = (e: KeyboardEvent) => {
    if (e.key === "Escape" && noteId) {
      e.preventDefault();
      close();
    }
  };
  document.addEventListener("keydown", onKey);

  const fill = (model: BoardModel) => {
    if (!noteId) return;
    const n = model.notes.find((x) => x.id === noteId);
    if (!n) {
      close();
      return;
    }
    const cat = model.categories.find((c) => c.id === n.category);
    setText(text, n.text);
    setText(meta, [phaseLabel(model, n.phase), cat?.label ?? "", n.authorName, formatTime(n.createdAt)].filter(Boolean).join(" · "));
    card.style.setProperty("--cat", cat?.color ?? "#64748b");
  };

  return {
    el,
    open(id, from) {
      noteId = id;
      back = from ?? (document.activeElement instanceof HTMLElement ? document.activeElement : null);
      el.hidden = false;
      document.body.classList.add("has-focus-overlay");
      // Filled at once from the last model (never shown empty), and again on the next render.
      if (last) fill(last);
      rerender();
      closeButton.focus();
    },
    close,
    update(model) {
      last = model;
      fill(model);
    },
    destroy() {
      document.removeEventListener("keydown", onKey);
      document.body.classList.remove("has-focus-overlay");
    },
  };
}
