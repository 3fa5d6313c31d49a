// The phone's top bar: the lab's title, whether the phone is online, and how many of my notes
// wait on this device.

import { h, setAttr, setText } from "../dom";

export interface TopbarState {
  title: string;
  online: boolean;
  /** The browser says it has a network (so "reconnecting" rather than plain "Offline"). */
  browserOnline: boolean;
  waiting: number;
  /** The lab has ended: nothing more goes to the server, online or not. */
  ended?: boolean;
}

export class Topbar {
  readonly el: HTMLElement;
  readonly #title: HTMLHeadingElement;
  readonly #connection: HTMLSpanElement;
  readonly #pending: HTMLSpanElement;
  readonly #pendingCount: HTMLSpanElement;

  constructor(title: string) {
    this.#title = h("h1", { class: "topbar-title" }, title);
    this.#connection = h("span", { class: "conn", testid: "connection", "data-state": "offline", role: "status" }, "Offline");
    this.#pendingCount = h("span", { testid: "pending-count" }, "0");
    this.#pending = h("span", { class: "pending", "data-count": "0", title: "Your notes not yet on the server" }, this.#pendingCount, " waiting");
    this.el = h("header", { class: "topbar" }, this.#title, h("div", { class: "topbar-status" }, this.#connection, this.#pending));
  }

  render(state: TopbarState): void {
    if (state.title) setText(this.#title, state.title);
    setAttr(this.#connection, "data-state", connectionState(state));
    setText(this.#connection, connectionText(state));
    setText(this.#pendingCount, String(state.waiting));
    setAttr(this.#pending, "data-count", String(state.waiting));
  }
}

/** The top bar's connection chip: `ended` once the lab has ended, whatever the network does. */
export function connectionState(state: Pick<TopbarState, "online" | "ended">): "online" | "offline" | "ended" {
  if (state.ended) return "ended";
  return state.online ? "online" : "offline";
}

export function connectionText(state: Pick<TopbarState, "online" | "browserOnline" | "ended">): string {
  if (state.ended) return "Lab ended";
  return state.online ? "Online" : state.browserOnline ? "Offline · reconnecting" : "Offline";
}

/** The line under Send: what happened to my notes. */
export function statusText(waiting: number, online: boolean, justSent: boolean): string {
  const notes = waiting === 1 ? "1 note is" : `${waiting} notes are`;
  if (waiting > 0 && !online) return `Offline: ${notes} saved on this device and will be sent when the connection is back.`;
  if (waiting > 0) return "Sending…";
  return justSent ? "Sent ✓" : "";
}
