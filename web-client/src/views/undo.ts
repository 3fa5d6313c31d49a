// The undo toast, shared by the phone and the board: after an action someone may regret (hide,
// unpin, take out of a cluster, delete, a phase change, a time-out), one large bar at the bottom
// of the screen says what happened and offers "Undo" for a few seconds.
//
// - One toast at a time: a new action replaces the toast of the previous one (which then stays
//   done, as it would without a toast).
// - It announces itself (role=status, polite), so a screen reader hears what happened.
// - Its buttons are real buttons, at least 48 px high, reachable by touch and by Tab; Ctrl+Z
//   (or Cmd+Z) also undoes while it shows, unless the focus is in a text field (whose own undo
//   wins).
// - The countdown pauses while a pointer is over the toast or the focus is in it (WCAG 2.2.1:
//   nobody loses the chance to undo while reaching for it).
// - `undo` runs at most once. It must restore exactly what the action changed: callers pass the
//   inverse of their write, captured from the values before it. An action that cannot be
//   inverted exactly (deleting a note: its reactions and flags are other people's to write) is
//   instead held back: the caller shows it as done, passes `done`, and writes it only then — when
//   the toast times out, is dismissed, is replaced by another, or its page goes away.

import { h, setText } from "../dom";

/** How long the toast offers to undo, in ms: long enough to read a short line and reach it. */
export const UNDO_MS = 6_000;

interface Shown {
  undo: () => void;
  done: (() => void) | undefined;
  remaining: number;
  startedAt: number;
  timer: ReturnType<typeof setTimeout> | undefined;
}

let toast: { el: HTMLElement; message: HTMLElement; undoButton: HTMLButtonElement; close: HTMLButtonElement } | undefined;
let shown: Shown | undefined;
let hovered = false;
let focused = false;

function build() {
  if (toast && document.body.contains(toast.el)) return toast;
  const message = h("span", { class: "undo-toast-message", testid: "undo-message" });
  const undoButton = h("button", { type: "button", class: "btn undo-toast-undo", testid: "undo-button" }, "Undo");
  const close = h("button", { type: "button", class: "btn undo-toast-close", testid: "undo-dismiss", "aria-label": "Dismiss" }, "✕");
  const el = h("div", { class: "undo-toast", testid: "undo-toast", role: "status", "aria-live": "polite", hidden: true }, message, undoButton, close);
  undoButton.addEventListener("click", () => runUndo());
  close.addEventListener("click", () => dismissUndo());
  el.addEventListener("pointerenter", () => {
    hovered = true;
    pause();
  });
  el.addEventListener("pointerleave", () => {
    hovered = false;
    resume();
  });
  el.addEventListener("focusin", () => {
    focused = true;
    pause();
  });
  el.addEventListener("focusout", (e) => {
    if (el.contains(e.relatedTarget as Node | null)) return;
    focused = false;
    resume();
  });
  document.addEventListener("keydown", onKey);
  document.body.append(el);
  toast = { el, message, undoButton, close };
  return toast;
}

function onKey(e: KeyboardEvent): void {
  if (!shown || e.key.toLowerCase() !== "z" || !(e.ctrlKey || e.metaKey) || e.shiftKey || e.altKey) return;
  const t = e.target;
  if (t instanceof HTMLInputElement || t instanceof HTMLTextAreaElement || (t instanceof HTMLElement && t.isContentEditable)) return;
  e.preventDefault();
  runUndo();
}

function pause(): void {
  if (!shown?.timer) return;
  clearTimeout(shown.timer);
  shown.timer = undefined;
  shown.remaining = Math.max(0, shown.remaining - (Date.now() - shown.startedAt));
}

function resume(): void {
  if (!shown || shown.timer || hovered || focused) return;
  shown.startedAt = Date.now();
  // Whoever paused it gets at least a moment after leaving.
  shown.timer = setTimeout(() => dismissUndo(), Math.max(shown.remaining, 1_500));
}

function runUndo(): void {
  const s = shown;
  if (!s) return;
  s.done = undefined;
  const hadFocus = !!toast?.el.contains(document.activeElement);
  dismissUndo();
  s.undo();
  // The button that had the focus is gone: give it back to the page, not to nowhere.
  if (hadFocus && document.activeElement === document.body) restoreFocus?.focus();
}

let restoreFocus: HTMLElement | null = null;

/**
 * Shows "`message` · Undo" for `ms` milliseconds (default 6 s, paused while pointed at or
 * focused). Replaces any toast already shown. `undo` runs at most once, when the person asks;
 * otherwise `done` runs once, when the toast goes (see the header).
 */
export function showUndo(message: string, undo: () => void, ms: number = UNDO_MS, done?: () => void): void {
  const t = build();
  if (shown?.timer) clearTimeout(shown.timer);
  finish(shown);
  const active = document.activeElement;
  restoreFocus = active instanceof HTMLElement && active !== document.body && !t.el.contains(active) ? active : restoreFocus;
  shown = { undo, done, remaining: ms, startedAt: Date.now(), timer: undefined };
  // Re-announce a repeated message: a live region only speaks when its text changes.
  setText(t.message, "");
  t.el.hidden = false;
  setText(t.message, message);
  t.undoButton.setAttribute("aria-label", `Undo: ${message}`);
  resume();
}

/** Runs what a toast held back, once. */
function finish(s: Shown | undefined): void {
  const done = s?.done;
  if (!s || !done) return;
  s.done = undefined;
  done();
}

/** Hides the toast; what it offered to undo stays done. */
export function dismissUndo(): void {
  if (shown?.timer) clearTimeout(shown.timer);
  const s = shown;
  shown = undefined;
  finish(s);
  if (!toast) return;
  const hadFocus = toast.el.contains(document.activeElement);
  toast.el.hidden = true;
  hovered = false;
  focused = false;
  if (hadFocus) restoreFocus?.focus();
}

/** Removes the toast from the page (a page that unmounts calls this). */
export function removeUndo(): void {
  dismissUndo();
  document.removeEventListener("keydown", onKey);
  toast?.el.remove();
  toast = undefined;
  restoreFocus = null;
}

/** Whether a toast is showing now (for tests and for pages that lay out around it). */
export function undoShowing(): boolean {
  return shown !== undefined;
}
