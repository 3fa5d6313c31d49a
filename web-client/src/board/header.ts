// The board's header: the lab's title, the join code with its link and QR code (a small code chip
// in presenter mode), who is connected, whether the board is live, and the page's buttons (the
// page passes its own: presenter mode, settings; the header adds theme and full screen).

import { api, checkSession } from "../api";
import { h, replace, setAttr, setText } from "../dom";
import { qrSvg } from "../qr";
import { store } from "../store";
import { applyTheme, currentTheme } from "../theme";
import { apiErrorText } from "../pages/lab";
import type { BoardModel } from "./view";

export interface BoardHeader {
  el: HTMLElement;
  /** Redraws the join code and QR code when they changed (they live in the store, not the board). */
  renderJoin(): void;
  update(state: { model: BoardModel | undefined; online: boolean; present: number }): void;
  /** Asks the server for the join code a facilitator's sign-in on this device does not know. */
  fetchJoinCode(isAlive: () => boolean): void;
}

function shortUrl(url: string): string {
  return url.replace(/^https?:\/\//, "");
}

export function boardHeader(labId: string, buttons: HTMLElement[], status: (message: string | undefined) => void): BoardHeader {
  const title = h("h1", { class: "board-title" }, store.lab(labId)?.title ?? "");
  const subtitle = h("p", { class: "board-subtitle" });
  const joinCode = h("strong", { class: "board-code", testid: "board-join-code" });
  const joinUrl = h("span", { class: "board-url" });
  const qrBox = h("div", { class: "board-qr-box" });
  const rotate = h("button", { type: "button", class: "btn btn-small", hidden: true, testid: "rotate-code" }, "Show a new join code");
  const joinBox = h(
    "div",
    { class: "board-join" },
    h("div", { class: "board-join-text" }, h("span", { class: "board-label" }, "Join with code"), joinCode, joinUrl, rotate),
    qrBox,
  );
  const chipCode = h("strong", { class: "mono" });
  const joinChip = h("span", { class: "join-chip", testid: "join-chip" }, "Join ", chipCode);
  const presenceCount = h("span", { testid: "presence-count" }, "0");
  const presence = h("span", { class: "presence", title: "People whose device is on this board now" }, presenceCount, " connected");
  const connection = h("span", { class: "conn", testid: "connection", "data-state": "offline" }, "Offline");
  const themeToggle = h("button", { type: "button", class: "btn btn-small", testid: "theme-toggle" });
  const fullscreen = h("button", { type: "button", class: "btn btn-small", "aria-label": "Full screen" }, "Full screen");
  const el = h(
    "header",
    { class: "board-head" },
    h("div", { class: "board-heading" }, title, subtitle),
    joinBox,
    h("div", { class: "board-tools" }, h("div", { class: "board-status-line" }, joinChip, presence, connection), h("div", { class: "board-buttons" }, ...buttons, themeToggle, fullscreen)),
  );

  const syncThemeButton = () => {
    const dark = currentTheme() === "dark";
    themeToggle.textContent = dark ? "Light theme" : "Dark theme";
    setAttr(themeToggle, "aria-pressed", String(dark));
  };
  themeToggle.addEventListener("click", () => {
    const next = currentTheme() === "dark" ? "light" : "dark";
    store.setTheme(next);
    applyTheme(next);
    syncThemeButton();
  });
  syncThemeButton();
  fullscreen.addEventListener("click", () => {
    if (document.fullscreenElement) void document.exitFullscreen();
    else void document.documentElement.requestFullscreen?.().catch(() => undefined);
  });
  fullscreen.hidden = !document.fullscreenEnabled;

  let shownJoin = "";
  const renderJoin = () => {
    const access = store.lab(labId);
    const code = access?.joinCode ?? "";
    const url = access?.joinUrl ?? (code ? `${location.origin}/j/${code}` : "");
    const key = `${code}|${url}`;
    rotate.hidden = !!code || access?.role !== "facilitator";
    joinChip.hidden = !code;
    if (key === shownJoin) return;
    shownJoin = key;
    setText(joinCode, code || "——————");
    setText(chipCode, code);
    setAttr(joinChip, "title", url ? `Join at ${shortUrl(url)}` : "Join code");
    setText(joinUrl, url ? shortUrl(url) : "Join code unknown on this device");
    replace(qrBox);
    if (url) {
      const svg = qrSvg(url, `QR code to join: ${url}`);
      svg.dataset.testid = "board-qr";
      svg.classList.add("board-qr");
      qrBox.append(svg);
    }
  };
  rotate.addEventListener("click", async () => {
    const access = store.lab(labId);
    if (!access?.token) return;
    if (!confirm("Make a new join code? The old code stops working; people who joined stay in.")) return;
    try {
      const res = await api.rotateJoinCode(labId, access.token);
      store.putLab({ ...access, joinCode: res.joinCode, joinUrl: res.joinUrl, updatedAt: Date.now() });
      renderJoin();
    } catch (e) {
      status(apiErrorText(e));
    }
  });
  renderJoin();

  return {
    el,
    renderJoin,
    update({ model, online, present }) {
      setAttr(connection, "data-state", online ? "online" : "offline");
      setText(connection, online ? "Live" : "Offline · reconnecting");
      setText(presenceCount, String(present));
      renderJoin();
      if (!model) return;
      setText(title, model.lab.title || store.lab(labId)?.title || "Lab");
      document.title = `${model.lab.title || "Board"} · Labboard`;
      setText(subtitle, [model.lab.school, model.lab.grade ? `Grade ${model.lab.grade}` : "", model.lab.date].filter(Boolean).join(" · "));
    },
    fetchJoinCode(isAlive) {
      const known = store.lab(labId);
      if (!known?.token || known.joinCode) return;
      void checkSession(known.token).then((r) => {
        if (r.state === "valid" && r.session.joinCode && isAlive()) {
          const now = store.lab(labId);
          if (now) store.putLab({ ...now, joinCode: r.session.joinCode, joinUrl: r.session.joinUrl ?? now.joinUrl, updatedAt: Date.now() });
          renderJoin();
        }
      });
    },
  };
}
