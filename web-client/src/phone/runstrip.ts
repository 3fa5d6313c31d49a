// The strip above the composer: the current phase and the lesson minute, the time-out button,
// and the time-out banner (views/timeout.ts) while one runs. The strip keeps one height through
// every phase and time-out state, so the composer under it never moves under a thumb.
//
// Calling a time-out is deliberate: the first tap arms the button ("Tap again to call"), a
// second tap within CONFIRM_MS calls it; the banner then offers Undo for a few seconds.

import { h, setAttr, setText } from "../dom";
import { isLesson, minuteOf, type Phase, type Timeout } from "../labrun";
import { timeoutBanner, type TimeoutBanner } from "../views/timeout";

/** How long an armed time-out button waits for its second tap. */
export const CONFIRM_MS = 4_000;

export interface RunStripOptions {
  deviceId: string;
  role: string;
  onCall(): void;
  onEnd(): void;
  onUndo(timeoutId: string): void;
}

export interface RunStripState {
  phase: Phase | undefined;
  /** Whether the board can take time-outs (it has the `timeouts` map). */
  canCall: boolean;
  timeout: Timeout | undefined;
  reached: boolean;
  now: number;
}

export class RunStrip {
  readonly el: HTMLElement;
  readonly #phaseLine: HTMLParagraphElement;
  readonly #phaseName: HTMLElement;
  readonly #phaseClock: HTMLSpanElement;
  readonly #call: HTMLButtonElement;
  readonly #callLabel: HTMLSpanElement;
  readonly #banner: TimeoutBanner;
  readonly #idle: HTMLDivElement;
  #armedAt = 0;
  #disarm: ReturnType<typeof setTimeout> | undefined;
  #last: RunStripState | undefined;

  constructor(opts: RunStripOptions) {
    this.#phaseName = h("strong", { class: "phase-name" });
    this.#phaseClock = h("span", { class: "phase-clock" });
    this.#phaseLine = h("p", { class: "phase-line", testid: "phase-current" }, this.#phaseName, this.#phaseClock);
    this.#callLabel = h("span", {}, "Time-out");
    this.#call = h(
      "button",
      { type: "button", class: "btn btn-timeout", testid: "timeout-call", "aria-describedby": "timeout-call-hint", hidden: true },
      h("span", { class: "timeout-t", "aria-hidden": "true" }, "T"),
      this.#callLabel,
    );
    const hint = h("span", { id: "timeout-call-hint", class: "sr-only" }, "Tap twice to call a teacher time-out on every screen.");
    this.#idle = h("div", { class: "run-idle" }, this.#phaseLine, this.#call, hint);
    this.#banner = timeoutBanner({ deviceId: opts.deviceId, role: opts.role, variant: "phone", onEnd: opts.onEnd, onUndo: opts.onUndo });
    this.el = h("section", { class: "run-strip", testid: "run-strip", "aria-label": "Lab phase" }, this.#idle, this.#banner.el);

    this.#call.addEventListener("click", () => {
      const now = Date.now();
      if (now - this.#armedAt > CONFIRM_MS) {
        this.#armedAt = now;
        clearTimeout(this.#disarm);
        this.#disarm = setTimeout(() => this.#rerender(), CONFIRM_MS + 50);
        this.#rerender();
        return;
      }
      this.#armedAt = 0;
      opts.onCall();
      this.#rerender();
    });
  }

  #rerender(): void {
    if (this.#last) this.render({ ...this.#last, now: Date.now() });
  }

  render(state: RunStripState): void {
    this.#last = state;
    const { phase, timeout, now } = state;
    this.#idle.hidden = !!timeout;
    this.#banner.update({ timeout, reached: state.reached, now });
    if (phase) {
      setAttr(this.#phaseLine, "data-phase", phase.id);
      setText(this.#phaseName, phase.label);
      const min = phase.startedAt !== undefined ? minuteOf(now, phase.startedAt) : undefined;
      setText(this.#phaseClock, min !== undefined && isLesson(phase.id) ? ` · minute ${min}` : "");
    } else {
      this.#phaseLine.removeAttribute("data-phase");
      setText(this.#phaseName, "Waiting for the lab to start");
      setText(this.#phaseClock, "");
    }
    this.#call.hidden = !!timeout || !isLesson(phase?.id) || !state.canCall;
    const armed = !this.#call.hidden && now - this.#armedAt <= CONFIRM_MS;
    if (!armed) this.#armedAt = 0;
    this.#call.classList.toggle("is-armed", armed);
    setAttr(this.#call, "data-armed", String(armed));
    setText(this.#callLabel, armed ? "Tap again to call" : "Time-out");
  }
}
