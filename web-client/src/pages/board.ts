// `/lab/<labId>/board`: the projector board. One column per category, notes arriving live, the
// join code and its QR code, how many people are connected, light and dark themes.

import { api, checkSession } from "../api";
import { formatTime, groupByCategory, readCategories, readLab, readNotes, type Note } from "../board";
import { h, markReady, replace, setAttr, setText } from "../dom";
import type { PageContext } from "../main";
import { applyTheme, currentTheme } from "../theme";
import { qrSvg } from "../qr";
import { store } from "../store";
import { apiErrorText, openLab, type OpenLab } from "./lab";

interface Column {
  section: HTMLElement;
  title: HTMLSpanElement;
  count: HTMLSpanElement;
  list: HTMLOListElement;
  empty: HTMLParagraphElement;
}

interface Card {
  li: HTMLLIElement;
  meta: HTMLParagraphElement;
}

function shortUrl(url: string): string {
  return url.replace(/^https?:\/\//, "");
}

export async function mountBoard(ctx: PageContext, labId: string, isAlive: () => boolean): Promise<() => void> {
  document.title = "Board · Labboard";
  document.body.classList.add("is-board");
  let lab: OpenLab | undefined;

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
  const presenceCount = h("span", { testid: "presence-count" }, "0");
  const presence = h("span", { class: "presence", title: "People whose device is on this board now" }, presenceCount, " connected");
  const connection = h("span", { class: "conn", testid: "connection", "data-state": "offline" }, "Offline");
  const themeToggle = h("button", { type: "button", class: "btn btn-small", testid: "theme-toggle" });
  const fullscreen = h("button", { type: "button", class: "btn btn-small", "aria-label": "Full screen" }, "Full screen");
  const status = h("p", { class: "board-status", role: "status", hidden: true });
  const columnsEl = h("main", { class: "columns", "aria-label": "Notes by category" });

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

  replace(
    ctx.root,
    h(
      "div",
      { class: "board" },
      h(
        "header",
        { class: "board-head" },
        h("div", { class: "board-heading" }, title, subtitle),
        joinBox,
        h("div", { class: "board-tools" }, presence, connection, h("div", { class: "board-buttons" }, themeToggle, fullscreen)),
      ),
      status,
      columnsEl,
    ),
  );

  let shownJoin = "";
  const renderJoin = () => {
    const access = store.lab(labId);
    const code = access?.joinCode ?? "";
    const url = access?.joinUrl ?? (code ? `${location.origin}/j/${code}` : "");
    const key = `${code}|${url}`;
    rotate.hidden = !!code || access?.role !== "facilitator";
    if (key === shownJoin) return;
    shownJoin = key;
    setText(joinCode, code || "——————");
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
      status.textContent = apiErrorText(e);
      status.hidden = false;
    }
  });
  renderJoin();

  const columns = new Map<string, Column>();
  const cards = new Map<string, Card>();
  let firstRender = true;

  const makeColumn = (id: string): Column => {
    const titleEl = h("span", { class: "column-title" });
    const count = h("span", { class: "column-count" });
    const list = h("ol", { class: "column-list" });
    const empty = h("p", { class: "column-empty" }, "No notes yet");
    const section = h(
      "section",
      { class: "column", testid: "board-column", "data-category": id },
      h("h2", { class: "column-head" }, h("span", { class: "chip-dot", "aria-hidden": "true" }), titleEl, count),
      empty,
      list,
    );
    return { section, title: titleEl, count, list, empty };
  };

  const makeCard = (n: Note): Card => {
    const meta = h("p", { class: "board-note-meta" });
    const li = h(
      "li",
      { class: "board-note", testid: "board-note", "data-note-id": n.id },
      h("p", { class: "note-body", testid: "note-body" }, n.text),
      meta,
    );
    li.addEventListener("animationend", () => li.classList.remove("is-new"));
    return { li, meta };
  };

  const render = () => {
    if (!lab) return;
    const online = lab.conn.socket.online;
    setAttr(connection, "data-state", online ? "online" : "offline");
    setText(connection, online ? "Live" : "Offline · reconnecting");
    setText(presenceCount, String(lab.conn.presence.count(Date.now())));
    renderJoin();
    const doc = lab.conn.doc();
    if (!doc) return;
    const info = readLab(doc);
    setText(title, info.title || store.lab(labId)?.title || "Lab");
    document.title = `${info.title || "Board"} · Labboard`;
    setText(subtitle, [info.school, info.grade ? `Grade ${info.grade}` : "", info.date].filter(Boolean).join(" · "));

    const groups = groupByCategory(readCategories(doc), readNotes(doc));
    columnsEl.style.setProperty("--cols", String(Math.max(1, groups.length)));
    const wantColumns = new Set<string>();
    let prevCol: Element | null = null;
    const seenCards = new Set<string>();
    for (const { category, notes } of groups) {
      wantColumns.add(category.id);
      let col = columns.get(category.id);
      if (!col) {
        col = makeColumn(category.id);
        columns.set(category.id, col);
      }
      col.section.style.setProperty("--cat", category.color);
      setText(col.title, category.label);
      setText(col.count, String(notes.length));
      col.empty.hidden = notes.length > 0;
      const wantCol: Element | null = prevCol ? prevCol.nextElementSibling : columnsEl.firstElementChild;
      if (wantCol !== col.section) columnsEl.insertBefore(col.section, wantCol);
      prevCol = col.section;

      let prev: Element | null = null;
      for (const n of notes) {
        seenCards.add(n.id);
        let card = cards.get(n.id);
        if (!card) {
          card = makeCard(n);
          cards.set(n.id, card);
          if (!firstRender) card.li.classList.add("is-new");
        }
        setText(card.meta, [n.authorName, formatTime(n.createdAt)].filter(Boolean).join(" · "));
        const want: Element | null = prev ? prev.nextElementSibling : col.list.firstElementChild;
        if (want !== card.li) col.list.insertBefore(card.li, want);
        prev = card.li;
      }
    }
    for (const [id, card] of cards) {
      if (!seenCards.has(id)) {
        card.li.remove();
        cards.delete(id);
      }
    }
    for (const [id, col] of columns) {
      if (!wantColumns.has(id)) {
        col.section.remove();
        columns.delete(id);
      }
    }
    firstRender = false;
  };

  const ui = {
    render,
    status: (message: string | undefined) => {
      status.textContent = message ?? "";
      status.hidden = !message;
    },
  };

  lab = await openLab(ctx, labId, ui, isAlive);
  if (!lab) return () => document.body.classList.remove("is-board");
  const opened = lab;
  render();
  markReady();
  // A facilitator who signed in with the key on this device does not know the join code; a
  // server that includes it in the session answer lets us show it.
  const known = store.lab(labId);
  if (known?.token && !known.joinCode) {
    void checkSession(known.token).then((r) => {
      if (r.state === "valid" && r.session.joinCode && isAlive()) {
        const now = store.lab(labId);
        if (now) store.putLab({ ...now, joinCode: r.session.joinCode, joinUrl: r.session.joinUrl ?? now.joinUrl, updatedAt: Date.now() });
        renderJoin();
      }
    });
  }
  // Presence ages out even when nothing else happens.
  const tick = setInterval(render, 5_000);
  return () => {
    clearInterval(tick);
    document.body.classList.remove("is-board");
    void opened.conn.close();
  };
}
