// `/lab/<labId>/board`: the projector board. One column per category, notes arriving live, the
// join code and its QR code, how many people are connected, light and dark themes.

import { api, checkSession } from "../api";
import { formatTime, groupByCategory, readCategories, readLab, readNotes, type Category, type Note } from "../board";
import { h, markReady, replace, setAttr, setText } from "../dom";
import { randomUuid } from "../ids";
import {
  callTimeout,
  canEndTimeout,
  currentPhaseId,
  endTimeouts,
  formatTimer,
  isLesson,
  nextPhase,
  readPhases,
  readTimeouts,
  runningTimeout,
  setCurrentPhase,
  timeline,
  type RunDoc,
} from "../labrun";
import type { PageContext } from "../main";
import { applyTheme, currentTheme } from "../theme";
import { qrSvg } from "../qr";
import { store } from "../store";
import { apiErrorText, openLab, type OpenLab } from "./lab";
import { agreementsPanel } from "./agreements";
import { clustersView } from "./clusters";
import { categoriesPanel } from "./categories";
import { phasesPanel } from "./phases";
import { groupByChild, isDebrief, notesOfChild, pinnedFirst, readChildren, readClusters, type DebriefDoc, setNoteFlag, visibleNotes, type NoteFlag } from "../debrief";

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
  reactions: HTMLSpanElement;
  timeout: HTMLSpanElement;
  flags: HTMLSpanElement;
  tools: HTMLDivElement;
  pin: HTMLButtonElement;
  highlight: HTMLButtonElement;
  hide: HTMLButtonElement;
  cluster: HTMLSpanElement;
  kids: HTMLSpanElement;
}

type View = "columns" | "timeline" | "clusters" | "children";

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

  // The run: phases, the next-phase button, the time-out banner, the view toggle.
  const phaseList = h("ol", { class: "phase-steps" });
  const phaseNext = h("button", { type: "button", class: "btn btn-primary btn-phase-next", testid: "phase-next", hidden: true });
  const phaseBar = h("nav", { class: "phase-bar", testid: "phase-bar", "aria-label": "Phases", hidden: true }, phaseList, phaseNext);
  const timeoutCaller = h("span", { class: "board-timeout-caller", testid: "timeout-caller" });
  const timeoutTimer = h("span", { class: "board-timeout-timer mono", testid: "timeout-timer", role: "timer" }, "00:00");
  const timeoutEnd = h("button", { type: "button", class: "btn btn-small", testid: "timeout-end", hidden: true }, "End time-out");
  const timeoutBanner = h(
    "div",
    { class: "board-timeout", testid: "timeout-banner", role: "status", hidden: true },
    h("span", { class: "timeout-t", "aria-hidden": "true" }, "T"),
    h("strong", {}, "Time-out"),
    timeoutCaller,
    timeoutTimer,
    timeoutEnd,
  );
  const timeoutCall = h("button", { type: "button", class: "btn btn-timeout btn-board-timeout", testid: "timeout-call", hidden: true }, h("span", { class: "timeout-t", "aria-hidden": "true" }, "T"), "Record a time-out");
  const viewColumns = h("button", { type: "button", class: "btn btn-small", testid: "view-toggle", "data-view": "columns", "aria-pressed": "true" }, "Columns");
  const viewTimeline = h("button", { type: "button", class: "btn btn-small", testid: "view-toggle", "data-view": "timeline", "aria-pressed": "false" }, "Timeline");
  const viewClusters = h("button", { type: "button", class: "btn btn-small", testid: "view-toggle", "data-view": "clusters", "aria-pressed": "false" }, "Clusters");
  const viewChildren = h("button", { type: "button", class: "btn btn-small", testid: "view-toggle", "data-view": "children", "aria-pressed": "false" }, "By child");
  const viewToggle = h("div", { class: "view-toggle", role: "group", "aria-label": "View" }, viewColumns, viewTimeline, viewClusters, viewChildren);
  // Filter by child: every view shows only the notes about the chosen alias.
  const childFilter = h("select", { class: "input", testid: "child-filter", "aria-label": "Show notes about" });
  const childFilterBox = h("label", { class: "board-child-filter", hidden: true }, "Child", childFilter);
  let childChoice: string | undefined;
  childFilter.addEventListener("change", () => {
    childChoice = childFilter.value || undefined;
    render();
  });
  const childrenGrid = h("main", { class: "children-view", testid: "children-view", hidden: true, "aria-label": "Notes by child" });
  const showHiddenToggle = h("button", { type: "button", class: "btn btn-small", testid: "show-hidden", "aria-pressed": "false", hidden: true }, "Show hidden");
  const agreementsToggle = h("button", { type: "button", class: "btn btn-small", testid: "agreements-toggle", "aria-pressed": "false", hidden: true }, "Agreements");
  const runRow = h("div", { class: "board-run" }, phaseBar, timeoutCall, timeoutBanner, viewToggle, h("div", { class: "board-debrief-tools" }, childFilterBox, showHiddenToggle, agreementsToggle));
  /** Hidden notes shown (marked) on the board; phones never show them. */
  let showHidden = false;
  showHiddenToggle.addEventListener("click", () => {
    showHidden = !showHidden;
    render();
  });
  /** The agreements panel: opens by itself when a debrief starts, closes when it ends. */
  let panelOpen = false;
  let panelPhase: string | undefined | null = null;
  agreementsToggle.addEventListener("click", () => {
    panelOpen = !panelOpen;
    render();
  });
  const panel = agreementsPanel(() => lab?.conn, () => render());
  const clusters = clustersView(() => lab?.conn, () => render());
  const settingsButton = h("button", { type: "button", class: "btn btn-small", testid: "categories-settings", "aria-expanded": "false", hidden: true }, "Categories");
  const settings = categoriesPanel(
    () => lab?.conn,
    () => render(),
    () => {
      setAttr(settingsButton, "aria-expanded", "false");
      settingsButton.focus();
    },
  );
  settingsButton.addEventListener("click", () => {
    if (settings.isOpen()) settings.close();
    else {
      phaseSettings.close();
      setAttr(settingsButton, "aria-expanded", "true");
      settings.open();
    }
  });
  // Phase settings: rename, reorder and add phases (the two panels share the right side).
  const phasesButton = h("button", { type: "button", class: "btn btn-small", testid: "phases-settings", "aria-expanded": "false", hidden: true }, "Phases");
  const phaseSettings = phasesPanel(
    () => lab?.conn,
    () => render(),
    () => {
      setAttr(phasesButton, "aria-expanded", "false");
      phasesButton.focus();
    },
  );
  phasesButton.addEventListener("click", () => {
    if (phaseSettings.isOpen()) phaseSettings.close();
    else {
      settings.close();
      setAttr(phasesButton, "aria-expanded", "true");
      phaseSettings.open();
    }
  });

  // One note full screen, in large type; Escape or the button closes it.
  let focusedId: string | undefined;
  const focusText = h("p", { class: "focus-text", testid: "focus-text" });
  const focusMeta = h("p", { class: "focus-meta" });
  const focusClose = h("button", { type: "button", class: "btn focus-close", testid: "focus-close" }, "Close (Esc)");
  const focusCard = h("div", { class: "focus-card" }, focusText, focusMeta);
  const focusOverlay = h("div", { class: "focus-overlay", testid: "focus-overlay", role: "dialog", "aria-modal": "true", "aria-label": "One note", hidden: true }, focusCard, focusClose);
  let focusReturn: HTMLElement | null = null;
  const closeFocus = () => {
    if (!focusedId) return;
    focusedId = undefined;
    focusOverlay.hidden = true;
    focusReturn?.focus();
    focusReturn = null;
  };
  const openFocus = (id: string, from: HTMLElement) => {
    focusedId = id;
    focusReturn = from;
    focusOverlay.hidden = false;
    render();
    focusClose.focus();
  };
  focusClose.addEventListener("click", closeFocus);
  const onKey = (e: KeyboardEvent) => {
    if (e.key === "Escape" && focusedId) {
      e.preventDefault();
      closeFocus();
    }
  };
  document.addEventListener("keydown", onKey);
  const timelinePhase = h("select", { class: "input timeline-phase", testid: "timeline-phase", "aria-label": "Phase shown" });
  const timelineTitle = h("h2", { class: "timeline-title" }, "Minute by minute");
  const timelineRows = h("ol", { class: "timeline-rows" });
  const timelineEmpty = h("p", { class: "column-empty" }, "No notes in this phase yet");
  const timelineEl = h(
    "main",
    { class: "timeline", testid: "timeline", hidden: true, "aria-label": "Notes minute by minute" },
    h("div", { class: "timeline-head" }, timelineTitle, timelinePhase),
    timelineEmpty,
    timelineRows,
  );
  let view: View = "columns";
  /** The phase the timeline shows; undefined follows the current phase. */
  let timelineChoice: string | undefined;
  const setView = (v: View) => {
    view = v;
    setAttr(viewColumns, "aria-pressed", String(v === "columns"));
    setAttr(viewTimeline, "aria-pressed", String(v === "timeline"));
    setAttr(viewClusters, "aria-pressed", String(v === "clusters"));
    columnsEl.hidden = v !== "columns";
    timelineEl.hidden = v !== "timeline";
    clusters.el.hidden = v !== "clusters";
    childrenGrid.hidden = v !== "children";
    setAttr(viewChildren, "aria-pressed", String(v === "children"));
    render();
  };
  viewColumns.addEventListener("click", () => setView("columns"));
  viewTimeline.addEventListener("click", () => setView("timeline"));
  viewClusters.addEventListener("click", () => setView("clusters"));
  viewChildren.addEventListener("click", () => setView("children"));
  timelinePhase.addEventListener("change", () => {
    timelineChoice = timelinePhase.value || undefined;
    render();
  });
  const isFacilitator = () => lab?.conn.role === "facilitator";
  const goToPhase = (id: string) => {
    if (!isFacilitator()) return;
    lab?.conn.run((d, now, scalar) => setCurrentPhase(d, id, now, scalar));
    render();
  };
  phaseNext.addEventListener("click", () => {
    const id = phaseNext.dataset.phase;
    if (id) goToPhase(id);
  });
  timeoutEnd.addEventListener("click", () => {
    lab?.conn.run((d, now) => endTimeouts(d, now));
    render();
  });
  timeoutCall.addEventListener("click", () => {
    const conn = lab?.conn;
    if (!conn) return;
    const me = { name: conn.name || "Facilitator", deviceId: conn.deviceId };
    conn.run((d, now, scalar) => callTimeout(d, randomUuid(), me, now, scalar));
    render();
  });

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
        h("div", { class: "board-tools" }, presence, connection, h("div", { class: "board-buttons" }, phasesButton, settingsButton, themeToggle, fullscreen)),
      ),
      status,
      runRow,
      h("div", { class: "board-main" }, columnsEl, timelineEl, clusters.el, childrenGrid, panel.el),
      focusOverlay,
      settings.el,
      phaseSettings.el,
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
    const reactions = h("span", { class: "board-reactions", testid: "board-note-reactions", title: "People who saw that too", hidden: true });
    const timeout = h("span", { class: "timeout-marker", testid: "board-note-timeout", hidden: true }, "T time-out");
    const flags = h("span", { class: "board-note-flags" });
    const cluster = h("span", { class: "board-note-cluster", testid: "board-note-cluster", hidden: true });
    const kids = h("span", { class: "board-note-children", testid: "board-note-children", hidden: true });
    const tool = (flag: NoteFlag, testid: string, label: string) => {
      const b = h("button", { type: "button", class: "note-tool", testid, "aria-pressed": "false", title: label }, label);
      b.addEventListener("click", () => {
        const on = b.getAttribute("aria-pressed") !== "true";
        lab?.conn.run((d) => setNoteFlag(d, n.id, flag, on));
        render();
      });
      return b;
    };
    const pin = tool("pinned", "note-pin", "Pin");
    const highlight = tool("highlighted", "note-highlight", "Highlight");
    const hide = tool("hidden", "note-hide", "Hide");
    const focus = h("button", { type: "button", class: "note-tool", testid: "note-focus", title: "Show full screen" }, "Focus");
    focus.addEventListener("click", () => openFocus(n.id, focus));
    const tools = h("div", { class: "note-tools", role: "group", "aria-label": "Facilitate this note", hidden: true }, pin, highlight, hide, focus);
    const li = h(
      "li",
      { class: "board-note", testid: "board-note", "data-note-id": n.id },
      flags,
      h("p", { class: "note-body", testid: "note-body" }, n.text),
      h("div", { class: "board-note-foot" }, meta, kids, cluster, timeout, reactions),
      tools,
    );
    li.addEventListener("animationend", () => li.classList.remove("is-new"));
    return { li, meta, reactions, timeout, flags, tools, pin, highlight, hide, cluster, kids };
  };

  const updateCard = (card: Card, n: Note, clusterLabel: string | undefined) => {
    card.cluster.hidden = !clusterLabel;
    card.kids.hidden = n.children.length === 0;
    setText(card.kids, n.children.join(", "));
    setText(card.cluster, clusterLabel ?? "");
    setText(card.li.querySelector(".note-body")!, n.text);
    setText(card.meta, [n.authorName, formatTime(n.createdAt), n.minute !== undefined ? `min ${n.minute}` : ""].filter(Boolean).join(" · "));
    const count = n.reactions?.length ?? 0;
    setText(card.reactions, `+${count} saw it too`);
    setAttr(card.reactions, "data-count", String(count));
    card.reactions.hidden = count === 0;
    card.timeout.hidden = !n.timeoutId;
    if (n.timeoutId) setAttr(card.timeout, "data-timeout-id", n.timeoutId);
    for (const [flag, button] of [["pinned", card.pin], ["highlighted", card.highlight], ["hidden", card.hide]] as const) {
      const on = !!n[flag];
      setAttr(card.li, `data-${flag}`, String(on));
      setAttr(button, "aria-pressed", String(on));
    }
    setText(card.hide, n.hidden ? "Unhide" : "Hide");
    setText(card.pin, n.pinned ? "Unpin" : "Pin");
    card.li.classList.toggle("is-pinned", !!n.pinned);
    card.li.classList.toggle("is-highlighted", !!n.highlighted);
    card.li.classList.toggle("is-hidden", !!n.hidden);
    setText(card.flags, [n.pinned ? "Pinned" : "", n.hidden ? "Hidden from phones" : ""].filter(Boolean).join(" · "));
    card.flags.hidden = !n.pinned && !n.hidden;
    card.tools.hidden = !isFacilitator();
  };

  let phaseKey = "";
  const renderRun = (doc: RunDoc) => {
    const now = Date.now();
    const phases = readPhases(doc);
    const current = currentPhaseId(doc);
    phaseBar.hidden = phases.length === 0;
    const key = JSON.stringify([phases.map((p) => [p.id, p.label]), current, isFacilitator()]);
    if (key !== phaseKey) {
      phaseKey = key;
      replace(
        phaseList,
        ...phases.map((p) => {
          const b = h(
            "button",
            { type: "button", class: "phase-step", testid: "phase-item", "data-phase": p.id, "aria-current": p.id === current ? "step" : undefined, disabled: !isFacilitator() },
            p.label,
          );
          b.addEventListener("click", () => goToPhase(p.id));
          return h("li", {}, b);
        }),
      );
      // The timeline's phase chooser.
      replace(
        timelinePhase,
        h("option", { value: "" }, "Current phase"),
        ...phases.map((p) => h("option", { value: p.id, selected: p.id === timelineChoice }, p.label)),
      );
    }
    for (const b of phaseList.querySelectorAll<HTMLButtonElement>(".phase-step")) {
      const p = phases.find((x) => x.id === b.dataset.phase);
      b.classList.toggle("is-done", !!p && p.id !== current && p.endedAt !== undefined);
    }
    const next = nextPhase(doc);
    phaseNext.hidden = !next || !isFacilitator();
    if (next) {
      phaseNext.dataset.phase = next.id;
      setText(phaseNext, `Start ${next.label}`);
    }
    setAttr(phaseBar, "data-current", current ?? "");

    const t = runningTimeout(doc);
    timeoutBanner.hidden = !t;
    timeoutCall.hidden = !!t || !isLesson(current) || !doc.timeouts || !isFacilitator();
    if (t) {
      setAttr(timeoutBanner, "data-timeout-id", t.id);
      setText(timeoutCaller, `called by ${t.calledBy || "someone"}`);
      setText(timeoutTimer, formatTimer(now - t.startedAt));
      timeoutEnd.hidden = !canEndTimeout(t, lab?.conn.deviceId ?? "", lab?.conn.role ?? "");
    }
  };

  let timelineKey = "";
  const renderTimeline = (doc: RunDoc, notes: Note[]) => {
    const phases = readPhases(doc);
    const phaseId = timelineChoice ?? currentPhaseId(doc) ?? phases.find((p) => isLesson(p.id))?.id ?? "";
    const phase = phases.find((p) => p.id === phaseId);
    const slots = timeline(doc, phaseId, notes);
    const timeouts = readTimeouts(doc).filter((t) => t.phase === phaseId);
    const key = JSON.stringify([phaseId, slots]);
    if (key === timelineKey) return;
    timelineKey = key;
    setText(timelineTitle, phase ? `${phase.label}, minute by minute` : "Minute by minute");
    setAttr(timelineEl, "data-phase", phaseId);
    timelineEmpty.hidden = slots.length > 0;
    const byId = new Map(readCategories(doc).map((c) => [c.id, c]));
    replace(
      timelineRows,
      ...slots.map((slot) => {
        const items = h("div", { class: "timeline-items" });
        // Time-outs and notes in the order they happened within the minute.
        const entries: { at: number; el: HTMLElement }[] = [];
        for (const t of slot.timeouts) {
          const long = t.endedAt !== undefined ? formatTimer(t.endedAt - t.startedAt) : "running";
          entries.push({
            at: t.startedAt,
            el: h("div", { class: "timeline-timeout", testid: "timeline-timeout", "data-timeout-id": t.id }, h("span", { class: "timeout-t", "aria-hidden": "true" }, "T"), `Time-out called by ${t.calledBy || "someone"} · ${t.endedAt !== undefined ? `lasted ${long}` : long}`),
          });
        }
        for (const n of slot.notes) {
          const card = h(
            "div",
            { class: "timeline-note", testid: "timeline-note", "data-note-id": n.id },
            h("p", { class: "note-body" }, n.text),
            h("p", { class: "board-note-meta" }, [n.authorName, n.timeoutId ? "T time-out" : "", n.reactions?.length ? `+${n.reactions.length} saw it too` : ""].filter(Boolean).join(" · ")),
          );
          card.style.setProperty("--cat", byId.get(n.category)?.color ?? "#64748b");
          if (n.timeoutId && timeouts.some((t) => t.id === n.timeoutId)) card.classList.add("in-timeout");
          entries.push({ at: n.createdAt, el: card });
        }
        entries.sort((a, b) => a.at - b.at);
        items.append(...entries.map((e) => e.el));
        return h(
          "li",
          { class: "timeline-row", testid: "timeline-minute", "data-minute": slot.minute === undefined ? "" : String(slot.minute) },
          h("span", { class: "timeline-minute" }, slot.minute === undefined ? "—" : `${slot.minute}′`),
          items,
        );
      }),
    );
  };

  let childFilterKey = "";
  const renderChildFilter = (aliases: string[]) => {
    childFilterBox.hidden = aliases.length === 0;
    const key = JSON.stringify([aliases, childChoice]);
    if (key === childFilterKey) return;
    childFilterKey = key;
    replace(childFilter, h("option", { value: "" }, "All children"), ...aliases.map((a) => h("option", { value: a, selected: a === childChoice }, a)));
    setAttr(childFilter, "data-value", childChoice ?? "");
  };

  let childrenKey = "";
  const renderChildren = (aliases: string[], notes: Note[], categories: Category[]) => {
    const groups = groupByChild(aliases, notes).filter((g) => childChoice === undefined || g.alias === childChoice);
    const key = JSON.stringify([groups.map((g) => [g.alias, g.notes.map((n) => [n.id, n.text, n.category, n.highlighted])]), categories]);
    if (key === childrenKey) return;
    childrenKey = key;
    const cats = new Map(categories.map((c) => [c.id, c]));
    if (groups.length === 0) {
      replace(childrenGrid, h("p", { class: "clusters-empty" }, "No children yet. Observers add initials or aliases with “+ child” on their phones."));
      return;
    }
    replace(
      childrenGrid,
      ...groups.map((g) =>
        h(
          "section",
          { class: "child-group", testid: "child-group", "data-child": g.alias, "data-count": String(g.notes.length) },
          h("h2", { class: "cluster-head" }, h("span", { class: "cluster-label" }, g.alias), h("span", { class: "column-count" }, String(g.notes.length))),
          g.notes.length === 0 ? h("p", { class: "column-empty" }, "No notes yet") : null,
          h(
            "ol",
            { class: "cluster-notes" },
            ...g.notes.map((n) => {
              const cat = cats.get(n.category);
              const li = h(
                "li",
                { class: "cluster-note", testid: "child-note", "data-note-id": n.id },
                h("p", { class: "note-body", testid: "note-body" }, n.text),
                h("p", { class: "board-note-meta" }, [cat?.label ?? "", n.authorName, formatTime(n.createdAt)].filter(Boolean).join(" · ")),
              );
              li.style.setProperty("--cat", cat?.color ?? "#64748b");
              li.classList.toggle("is-highlighted", !!n.highlighted);
              return li;
            }),
          ),
        ),
      ),
    );
  };

  const renderDebrief = (doc: RunDoc, notes: Note[]) => {
    const facilitator = isFacilitator();
    const current = currentPhaseId(doc);
    if (panelPhase !== (current ?? undefined)) {
      panelPhase = current ?? undefined;
      panelOpen = isDebrief(current);
    }
    const hiddenCount = notes.filter((n) => n.hidden).length;
    showHiddenToggle.hidden = !facilitator || (hiddenCount === 0 && !showHidden);
    setAttr(showHiddenToggle, "aria-pressed", String(showHidden));
    setText(showHiddenToggle, showHidden ? `Showing hidden (${hiddenCount})` : `Show hidden (${hiddenCount})`);
    agreementsToggle.hidden = !doc.agreements;
    setAttr(agreementsToggle, "aria-pressed", String(panelOpen));
    panel.el.hidden = !panelOpen || !doc.agreements;
    if (!panel.el.hidden) panel.render(doc);
    if (focusedId) {
      const n = notes.find((x) => x.id === focusedId);
      if (!n) {
        closeFocus();
      } else {
        setText(focusText, n.text);
        setText(focusMeta, [readCategories(doc).find((c) => c.id === n.category)?.label ?? "", n.authorName, formatTime(n.createdAt)].filter(Boolean).join(" · "));
        focusCard.style.setProperty("--cat", readCategories(doc).find((c) => c.id === n.category)?.color ?? "#64748b");
      }
    }
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

    renderRun(doc as RunDoc);
    const everyNote = readNotes(doc);
    const aliases = readChildren(doc as DebriefDoc);
    for (const n of everyNote) for (const c of n.children) if (!aliases.includes(c)) aliases.push(c);
    if (childChoice !== undefined && !aliases.includes(childChoice)) childChoice = undefined;
    renderChildFilter(aliases);
    const allNotes = notesOfChild(visibleNotes(everyNote, showHidden), childChoice);
    if (view === "timeline") renderTimeline(doc as RunDoc, allNotes);
    renderDebrief(doc as RunDoc, everyNote);
    settingsButton.hidden = !isFacilitator() || !doc.categories;
    if (settings.isOpen()) settings.render(doc as DebriefDoc);
    phasesButton.hidden = !isFacilitator() || !(doc as RunDoc).phases;
    if (phaseSettings.isOpen()) phaseSettings.render(doc as RunDoc);
    if (view === "clusters") clusters.render(doc as DebriefDoc, allNotes, readCategories(doc));
    if (view === "children") renderChildren(childChoice !== undefined ? [childChoice] : aliases, allNotes, readCategories(doc));
    const clusterLabels = new Map(readClusters(doc as DebriefDoc).map((c) => [c.id, c.label]));
    const groups = groupByCategory(readCategories(doc), allNotes).map((g) => ({ ...g, notes: pinnedFirst(g.notes) }));
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
        updateCard(card, n, n.clusterId !== undefined ? clusterLabels.get(n.clusterId) : undefined);
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
  if (!lab) {
    document.removeEventListener("keydown", onKey);
    return () => document.body.classList.remove("is-board");
  }
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
  // A running time-out's timer counts by the second.
  const clock = setInterval(() => {
    const doc = opened.conn.doc();
    if (doc && !timeoutBanner.hidden) renderRun(doc as RunDoc);
  }, 1_000);
  return () => {
    clearInterval(tick);
    clearInterval(clock);
    document.removeEventListener("keydown", onKey);
    document.body.classList.remove("is-board");
    void opened.conn.close();
  };
}
