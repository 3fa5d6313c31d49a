// What the lab agreed, where the phones look: during a lesson, what the debrief before it
// agreed to try; in a debrief, what it has agreed so far; in the final debrief, every agreement.
// A new agreement raises a signal pinned to the top of the screen, so a coach scrolled down
// the feed sees it too; "Show" scrolls to the list.

import { h, setAttr, setText } from "../dom";
import type { Agreement, Phase } from "../labrun";
import { KeyedList } from "./keyed";

/** How long the new-agreement signal stays up unless dismissed or looked at. */
export const SIGNAL_MS = 20_000;

export interface AgreementsState {
  /** What to show, already chosen by `agreementsToShow`. */
  heading: string;
  agreements: Agreement[];
  /** Every agreement on the board: a new one raises the signal. */
  all: Agreement[];
}

/** Which agreements a phone shows in `current`, under which heading. */
export function agreementsToShow(phases: Phase[], current: Phase | undefined, all: Agreement[]): { heading: string; agreements: Agreement[] } {
  if (!current) return { heading: "", agreements: [] };
  const i = phases.findIndex((p) => p.id === current.id);
  const isDebrief = (p: Phase) => p.id.includes("debrief");
  const last = i === phases.length - 1;
  const order = (a: Agreement) => phases.findIndex((p) => p.id === a.phase);
  if (isDebrief(current) && last) {
    return { heading: "Everything we agreed", agreements: [...all].sort((a, b) => order(a) - order(b)) };
  }
  if (isDebrief(current)) {
    return { heading: "Agreed so far", agreements: all.filter((a) => a.phase === current.id) };
  }
  // A lesson (or another phase): what the latest debrief before it agreed to try.
  const before = phases.slice(0, Math.max(0, i)).filter(isDebrief).pop();
  return { heading: "What we are trying this time", agreements: before ? all.filter((a) => a.phase === before.id) : [] };
}

interface Item {
  el: HTMLLIElement;
  text: HTMLSpanElement;
  owner: HTMLSpanElement;
}

export class AgreementsView {
  readonly el: HTMLElement;
  /** The signal; mount it once, anywhere (it is fixed to the top of the screen). */
  readonly signal: HTMLDivElement;
  readonly #heading: HTMLHeadingElement;
  readonly #list: KeyedList<Agreement, Item>;
  readonly #signalText: HTMLSpanElement;
  #known: Set<string> | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor() {
    this.#heading = h("h2", { id: "carried-heading", class: "carried-heading" });
    const list = h("ol", { class: "carried-list" });
    this.#list = new KeyedList<Agreement, Item>(list, (a) => a.id, {
      make: (a) => {
        const text = h("span", { class: "carried-text" });
        const owner = h("span", { class: "carried-owner" });
        return { el: h("li", { class: "carried-item", testid: "agreement-item", "data-agreement-id": a.id }, text, owner), text, owner };
      },
      update: (item, a) => {
        setText(item.text, a.text);
        setText(item.owner, a.owner ? ` — ${a.owner}` : "");
      },
    });
    this.el = h("section", { class: "carried", testid: "agreements-carried", hidden: true, "aria-labelledby": "carried-heading", tabindex: -1 }, this.#heading, list);

    this.#signalText = h("span", { class: "signal-text", testid: "agreement-signal-text" });
    const show = h("button", { type: "button", class: "btn btn-small btn-primary", testid: "agreement-signal-show" }, "Show");
    const close = h("button", { type: "button", class: "btn btn-small", testid: "agreement-signal-close" }, "Dismiss");
    this.signal = h(
      "div",
      { class: "agreement-signal", testid: "agreement-signal", role: "status", hidden: true },
      h("span", { class: "signal-body" }, h("strong", { class: "signal-title" }, "New agreement"), this.#signalText),
      h("span", { class: "signal-buttons" }, show, close),
    );
    show.addEventListener("click", () => {
      this.#hideSignal();
      if (!this.el.hidden) {
        this.el.scrollIntoView({ block: "center", behavior: "smooth" });
        this.el.focus({ preventScroll: true });
      }
    });
    close.addEventListener("click", () => this.#hideSignal());
  }

  #hideSignal(): void {
    clearTimeout(this.#timer);
    this.signal.hidden = true;
  }

  render(state: AgreementsState): void {
    this.el.hidden = state.agreements.length === 0;
    setText(this.#heading, state.heading);
    this.#list.render(state.agreements);
    // The first render is the baseline: what was there when the page opened is not news.
    const fresh = this.#known ? state.all.filter((a) => !this.#known!.has(a.id)) : [];
    this.#known = new Set(state.all.map((a) => a.id));
    const latest = fresh[fresh.length - 1];
    if (latest) {
      setText(this.#signalText, fresh.length > 1 ? `${latest.text} (and ${fresh.length - 1} more)` : latest.text);
      setAttr(this.signal, "data-agreement-id", latest.id);
      this.signal.hidden = false;
      clearTimeout(this.#timer);
      this.#timer = setTimeout(() => this.#hideSignal(), SIGNAL_MS);
    }
  }

  destroy(): void {
    clearTimeout(this.#timer);
  }
}
