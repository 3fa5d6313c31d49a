// The facilitator's replay controls on the projector board: a banner saying which moment is shown
// ("Replay — 10:42"), play/pause at a chosen speed, a time slider over the whole lab with its
// phase starts and time-outs marked (each mark a button that moves the slider there), and "Back
// to live". It only shows state and reports what was asked; the board page (pages/board.ts)
// owns the replay clock and renders the board at that moment through its usual views.

import { formatTime } from "../board";
import { h, replace, setAttr, setText } from "../dom";

/**
 * Playback speeds offered: real time; 10× and 60× (a 45-minute lesson in 45 s) to watch the notes
 * arrive; 600× to run through a whole four-hour lab in 24 s.
 */
export const REPLAY_SPEEDS = [1, 10, 60, 600] as const;

/** Something worth finding on the slider: a phase start or a time-out call. */
export interface ReplayMark {
  kind: "phase" | "timeout";
  /** Seconds since the epoch. */
  time: number;
  label: string;
}

export interface ReplayState {
  /** The moment shown, in seconds since the epoch. */
  t: number;
  start: number;
  end: number;
  playing: boolean;
  speed: number;
  marks: ReplayMark[];
}

export interface ReplayHandlers {
  seek(t: number): void;
  play(): void;
  pause(): void;
  speed(speed: number): void;
  live(): void;
}

export interface ReplayBar {
  el: HTMLElement;
  update(state: ReplayState): void;
}

const clock = (seconds: number) => formatTime(seconds * 1000);

export function replayBar(on: ReplayHandlers): ReplayBar {
  const banner = h("p", { class: "replay-banner", testid: "replay-banner" });
  const play = h("button", { type: "button", class: "btn btn-small btn-primary", testid: "replay-play" }, "Play");
  const speed = h(
    "select",
    { class: "input replay-speed", testid: "replay-speed", "aria-label": "Replay speed" },
    ...REPLAY_SPEEDS.map((s) => h("option", { value: String(s) }, `${s}×`)),
  );
  const slider = h("input", { type: "range", class: "replay-slider", testid: "replay-slider", min: "0", max: "0", step: "1", "aria-label": "Moment of the lab shown" });
  const marks = h("ol", { class: "replay-marks", testid: "replay-marks", "aria-label": "Phase starts and time-outs" });
  const live = h("button", { type: "button", class: "btn btn-small", testid: "replay-live" }, "Back to live");
  const el = h(
    "section",
    { class: "replay-bar", testid: "replay-bar", "aria-label": "Replay", hidden: true },
    h("div", { class: "replay-row" }, banner, play, h("label", { class: "replay-speed-label" }, "Speed ", speed), live),
    h("div", { class: "replay-track" }, slider, marks),
  );

  play.addEventListener("click", () => (play.dataset.playing === "true" ? on.pause() : on.play()));
  speed.addEventListener("change", () => on.speed(Number(speed.value)));
  slider.addEventListener("input", () => on.seek(Number(slider.value)));
  live.addEventListener("click", () => on.live());

  let marksKey = "";
  const update = (s: ReplayState) => {
    setText(banner, `Replay — ${clock(s.t)}`);
    setAttr(play, "data-playing", String(s.playing));
    setText(play, s.playing ? "Pause" : "Play");
    if (speed.value !== String(s.speed)) speed.value = String(s.speed);
    setAttr(slider, "min", String(s.start));
    setAttr(slider, "max", String(s.end));
    if (slider.value !== String(Math.floor(s.t))) slider.value = String(Math.floor(s.t));
    setAttr(slider, "aria-valuetext", clock(s.t));
    const key = JSON.stringify([s.start, s.end, s.marks]);
    if (key === marksKey) return;
    marksKey = key;
    const width = Math.max(1, s.end - s.start);
    replace(
      marks,
      ...s.marks
        .filter((m) => m.time >= s.start && m.time <= s.end)
        .map((m) => {
          const b = h(
            "button",
            { type: "button", class: `replay-mark replay-mark-${m.kind}`, testid: "replay-mark", "data-kind": m.kind, "data-time": String(m.time), title: `${m.label}, ${clock(m.time)}` },
            h("span", { class: "sr-only" }, `${m.label}, ${clock(m.time)}`),
          );
          b.addEventListener("click", () => on.seek(m.time));
          const li = h("li", { class: "replay-mark-item" }, b);
          li.style.left = `${((m.time - s.start) / width) * 100}%`;
          return li;
        }),
    );
  };

  return { el, update };
}
