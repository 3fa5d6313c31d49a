// The teacher time-out banner, one component for the phone and the projector board.
//
// Interface (both pages use it the same way):
//
//   const banner = timeoutBanner({ deviceId, role, variant: "phone" | "board", onEnd, onUndo });
//   parent.append(banner.el);
//   banner.update({ timeout, reached, now });   // on every render, and once a second
//
// - `timeout` is the running time-out of the current phase (`runningTimeout(doc)` in labrun.ts,
//   or the model's), undefined when none runs: the banner is then hidden.
// - `reached` says whether the server has stored it: `LabConnection.serverHas("timeouts", id)`.
//   Another device's time-out always counts as reached (it came here through the server, even if
//   the server's acknowledgement has not arrived yet), so only the caller's own can be waiting.
//   A time-out that is only on this device (called offline) is shown as "waiting to reach the
//   others", like a waiting note, with no running timer: nobody else can see it yet.
// - End is offered to whoever may end it (`canEndTimeout`: its caller or a facilitator);
//   `onEnd()` should run `endTimeouts`.
// - The caller gets Undo for `TIMEOUT_UNDO_MS` after calling (a time-out called by mistake is
//   taken back, not ended); `onUndo(id)` should run `undoTimeout(d, id, deviceId)`.
//
// The element keeps the DOM contract the browser tests use: `timeout-banner` (with
// `data-timeout-id` and `data-status` = "waiting" | "synced"), `timeout-caller`,
// `timeout-timer` (a `role=timer` showing mm:ss), `timeout-end`, `timeout-undo`.
// Elements are built once and updated in place, so a button is never replaced under a finger.

import "./timeout.css";
import { h, setAttr, setText } from "../dom";
import { canEndTimeout, formatTimer, type Timeout } from "../labrun";

/** How long the caller may take a time-out back: long enough to notice a mistaken tap. */
export const TIMEOUT_UNDO_MS = 10_000;

export interface TimeoutBannerOptions {
  /** This device's author id (the `calledById` of the time-outs it calls). */
  deviceId: string;
  /** "observer" or "facilitator". */
  role: string;
  /** Which page draws it: sets a class so each page can size it. */
  variant: "phone" | "board";
  onEnd(): void;
  onUndo(timeoutId: string): void;
}

export interface TimeoutBannerState {
  timeout: Timeout | undefined;
  /** Whether the server has stored this time-out (false while it waits on this device). */
  reached: boolean;
  now: number;
}

export interface TimeoutBanner {
  el: HTMLElement;
  update(state: TimeoutBannerState): void;
}

/** The words under "Time-out": who called it, or that it has not reached anyone yet. */
export function timeoutCallerText(t: Timeout, deviceId: string, reached: boolean): string {
  // Only its caller can hold a time-out that has not reached the server.
  if (!reached) return "waiting to reach the others";
  return t.calledById === deviceId ? "called by you" : `called by ${t.calledBy || "someone"}`;
}

/** Whether the others can see a time-out: stored on the server, or called by another device. */
export function hasReached(t: Timeout, deviceId: string, stored: boolean): boolean {
  return stored || t.calledById !== deviceId;
}

/** Whether the caller may still undo a time-out at `now`. */
export function canUndoTimeout(t: Timeout, deviceId: string, now: number): boolean {
  return t.calledById === deviceId && now - t.startedAt < TIMEOUT_UNDO_MS;
}

export function timeoutBanner(opts: TimeoutBannerOptions): TimeoutBanner {
  const caller = h("span", { class: "tob-caller", testid: "timeout-caller" });
  const timer = h("span", { class: "tob-timer mono", testid: "timeout-timer", role: "timer", "aria-label": "Time-out length" }, "00:00");
  const undo = h("button", { type: "button", class: "btn btn-small tob-undo", testid: "timeout-undo", hidden: true }, "Undo");
  const end = h("button", { type: "button", class: "btn btn-small tob-end", testid: "timeout-end", hidden: true }, "End time-out");
  const el = h(
    "div",
    { class: `tob tob-${opts.variant}`, testid: "timeout-banner", role: "status", hidden: true },
    h("span", { class: "timeout-t", "aria-hidden": "true" }, "T"),
    h("span", { class: "tob-text" }, h("strong", { class: "tob-title" }, "Time-out"), caller),
    timer,
    h("span", { class: "tob-buttons" }, undo, end),
  );
  let current: Timeout | undefined;
  undo.addEventListener("click", () => {
    if (current) opts.onUndo(current.id);
  });
  end.addEventListener("click", () => opts.onEnd());

  const update = ({ timeout: t, reached: stored, now }: TimeoutBannerState) => {
    current = t;
    el.hidden = !t;
    if (!t) return;
    const reached = hasReached(t, opts.deviceId, stored);
    setAttr(el, "data-timeout-id", t.id);
    setAttr(el, "data-status", reached ? "synced" : "waiting");
    setText(caller, timeoutCallerText(t, opts.deviceId, reached));
    // No running timer for a time-out only this device knows about.
    timer.hidden = !reached;
    setText(timer, formatTimer(now - t.startedAt));
    undo.hidden = !canUndoTimeout(t, opts.deviceId, now);
    end.hidden = !canEndTimeout(t, opts.deviceId, opts.role);
  };
  return { el, update };
}
