// `/lab/<labId>/board`: the projector board. The page owns the connection, the header
// (board/header.ts: title, join code, who is connected), the run (phase bar, time-out banner, what the last
// debrief agreed), the board's filter (phase, child, hidden notes), presenter mode, the overlays
// (focus on one note, the undo toast, the settings panels) — and one view at a time, chosen in the
// view switch. Every view is a small module over the board model (board/view.ts), updated in place
// by id, so no card is rebuilt under a finger or a drag.

import { h, markReady, replace, setAttr, setText } from "../dom";
import { randomUuid } from "../ids";
import { callTimeout, endTimeouts, isLesson, runningTimeout, undoTimeout } from "../labrun";
import { isDebrief } from "../debrief";
import type { PageContext } from "../main";
import { readBoard, type BoardModel } from "../model";
import { api } from "../api";
import { store } from "../store";
import { apiErrorText, openLab, type OpenLab } from "./lab";
import { agreementsPanel } from "./agreements";
import { clustersView } from "./clusters";
import { categoriesPanel } from "./categories";
import { phasesPanel } from "./phases";
import { closeNoteMenu } from "../board/card";
import { carriedBand } from "../board/carried";
import { boardHeader } from "../board/header";
import { KeyedList } from "../views/keyed";
import { childrenView } from "../board/children";
import { columnsView } from "../board/columns";
import { compareView } from "../board/compare";
import { nextStepsView } from "../board/nextsteps";
import { picksView } from "../board/picks";
import { focusOverlay } from "../board/focus";
import { photoLoader } from "../board/photos";
import { renewFacilitator } from "../renew";
import { phaseBar } from "../board/phasebar";
import { timelineView } from "../board/timeline";
import type { BoardFilter, BoardView, ViewContext, Writer } from "../board/view";
import { replayBar, type ReplayMark } from "../board/replaybar";
import { boardAt, headsKey, momentAt, moments, span, type Moment } from "../replay";
import { removeUndo, showUndo } from "../views/undo";
import { timeoutBanner } from "../views/timeout";
import { confirmDialog } from "../views/confirm";

/** How often a playing replay moves on (wall-clock ms); each step advances by the speed. */
const REPLAY_TICK_MS = 200;

type ViewId = "columns" | "timeline" | "clusters" | "children" | "lessons" | "picks" | "nextsteps";

const VIEWS: { id: ViewId; label: string }[] = [
  { id: "columns", label: "Columns" },
  { id: "timeline", label: "Timeline" },
  { id: "clusters", label: "Clusters" },
  { id: "children", label: "By child" },
  { id: "lessons", label: "Lesson 1 | 2" },
  { id: "picks", label: "Picks" },
  { id: "nextsteps", label: "Next steps" },
];

export async function mountBoard(ctx: PageContext, labId: string, isAlive: () => boolean): Promise<() => void> {
  document.title = "Board · Labboard";
  document.body.classList.add("is-board");
  let lab: OpenLab | undefined;
  let model: BoardModel | undefined;
  /**
   * Replay (facilitator): the board at one moment of the lab, read from the document's own
   * history (replay.ts). While it is on, every view renders that moment, nothing can be changed
   * (views see no role; writes are refused), and live changes keep arriving into the document
   * unseen until "Back to live".
   */
  let replay:
    | {
        all: Moment[];
        /** The live document's heads when `all` was computed. */
        heads: string;
        start: number;
        end: number;
        t: number;
        playing: boolean;
        speed: number;
        last: number;
        timer?: ReturnType<typeof setInterval>;
      }
    | undefined;
  /** The replayed moment's document, kept while its heads are shown. */
  let shown: { heads: string; doc: unknown } | undefined;
  // Once the lab has ended the board is read-only too: its editing tools go, the facilitator's too.
  const isFacilitator = () => !replay && lab?.conn.role === "facilitator" && !lab.conn.ended;

  // ---- The photos on the cards, fetched with the board's token (never in a URL); a token that
  // expired is renewed with the facilitator's key, as the board's connection does.
  const photos = photoLoader({
    labId,
    token: () => store.lab(labId)?.token,
    renew: async () => {
      const access = store.lab(labId);
      const renewed = access ? await renewFacilitator(access) : undefined;
      if (renewed?.token) lab?.conn.setToken(renewed.token);
      return renewed?.token;
    },
  });

  // ---- What a view may do (board/view.ts).
  let frame = 0;
  const rerender = () => {
    if (frame) return;
    frame = requestAnimationFrame(() => {
      frame = 0;
      if (isAlive()) render();
    });
  };
  const vctx: ViewContext = {
    get role() {
      return replay || lab?.conn.ended ? "" : (lab?.conn.role ?? "");
    },
    get deviceId() {
      return lab?.conn.deviceId ?? "";
    },
    get name() {
      return lab?.conn.name ?? "";
    },
    isFacilitator,
    change(fn) {
      if (replay || lab?.conn.ended) return false;
      const ok = lab?.conn.run(fn) ?? false;
      render();
      return ok;
    },
    changeWithUndo(message, fn) {
      if (replay || lab?.conn.ended) return false;
      let inverse: Writer | undefined;
      const ok =
        lab?.conn.run((d, now, scalar, updateText) => {
          inverse = fn(d, now, scalar, updateText);
          return inverse !== undefined;
        }) ?? false;
      render();
      const undo = inverse;
      if (ok && undo && message) {
        showUndo(message, () => {
          if (!lab?.conn.run(undo)) ui.status("That could not be undone: the board changed meanwhile.");
          render();
        });
      }
      return ok;
    },
    openFocus: (noteId, from) => focus.open(noteId, from),
    openPhoto: (noteId, photoId, from) => focus.openPhoto(noteId, photoId, from),
    photos,
    showsHidden: () => filter.showHidden,
    showUndo,
    rerender,
  };

  const presenterToggle = h("button", { type: "button", class: "btn btn-small", testid: "presenter-toggle", "aria-pressed": "false" }, "Presenter mode");
  const status = h("p", { class: "board-status", role: "status", hidden: true });
  const endedNote = h("p", { class: "board-ended", testid: "board-ended", role: "status", hidden: true }, "Lab ended");
  const endButton = h("button", { type: "button", class: "btn btn-small", testid: "end-lab", hidden: true }, "End lab");
  const endDialog = confirmDialog("end-dialog");
  endButton.addEventListener("click", () => {
    const conn = lab?.conn;
    const token = store.lab(labId)?.token;
    if (!conn || !token) return;
    endDialog.ask({
      title: "End this lab?",
      text: [
        "Nobody can add or change anything on the board afterwards, and the join code stops working. Phones say the lab has ended. The board can still be read, printed as the record and exported.",
        "Ending a lab is for good.",
      ],
      confirm: "End the lab",
      danger: false,
      run: async () => {
        try {
          const res = await api.endLab(labId, token);
          conn.markEnded(res.endedAt);
        } catch (e) {
          throw new Error(apiErrorText(e));
        }
      },
    });
  });
  const recordLink = h("a", { class: "btn btn-small", testid: "record-link", href: `/lab/${encodeURIComponent(labId)}/record`, hidden: true }, "Record");
  const showStatus = (message: string | undefined) => {
    status.textContent = message ?? "";
    status.hidden = !message;
  };

  // ---- The run: phase bar, time-out, what the last debrief agreed.
  const phases = phaseBar(vctx);
  const banner = timeoutBanner({
    get deviceId() {
      return replay ? "" : lab?.conn.deviceId ?? "";
    },
    get role() {
      return replay || lab?.conn.ended ? "" : (lab?.conn.role ?? "");
    },
    variant: "board",
    onEnd: () => vctx.change((d, now) => endTimeouts(d, now)),
    onUndo: (id) => vctx.change((d) => undoTimeout(d, id, lab?.conn.deviceId ?? "")),
  });
  const timeoutCall = h("button", { type: "button", class: "btn btn-timeout btn-board-timeout", testid: "timeout-call", hidden: true }, h("span", { class: "timeout-t", "aria-hidden": "true" }, "T"), "Record a time-out");
  timeoutCall.addEventListener("click", () => {
    const conn = lab?.conn;
    if (!conn) return;
    const me = { name: conn.name || "Facilitator", deviceId: conn.deviceId };
    vctx.change((d, now, scalar) => callTimeout(d, randomUuid(), me, now, scalar));
  });
  const carried = carriedBand();

  // ---- The filter and the view switch.
  const filter: BoardFilter = { showHidden: false, presenter: false };
  const phaseFilter = h("div", { class: "phase-filter", role: "group", "aria-label": "Show notes from" });
  const childFilter = h("select", { class: "input", testid: "child-filter", "aria-label": "Show notes about" });
  const childFilterBox = h("label", { class: "board-child-filter", hidden: true }, "Child", childFilter);
  childFilter.addEventListener("change", () => {
    filter.child = childFilter.value || undefined;
    render();
  });
  const showHiddenToggle = h("button", { type: "button", class: "btn btn-small", testid: "show-hidden", "aria-pressed": "false", hidden: true }, "Show hidden");
  showHiddenToggle.addEventListener("click", () => {
    filter.showHidden = !filter.showHidden;
    render();
  });
  /** The agreements panel: opens by itself when a debrief starts, closes when it ends. */
  let panelOpen = false;
  let seenPhase: string | undefined | null = null;
  const agreementsToggle = h("button", { type: "button", class: "btn btn-small", testid: "agreements-toggle", "aria-pressed": "false", hidden: true }, "Agreements");
  agreementsToggle.addEventListener("click", () => {
    panelOpen = !panelOpen;
    render();
  });
  presenterToggle.addEventListener("click", () => {
    filter.presenter = !filter.presenter;
    render();
  });

  const views: Record<ViewId, BoardView> = {
    columns: columnsView(vctx),
    timeline: timelineView(vctx),
    clusters: clustersView(vctx),
    children: childrenView(vctx),
    lessons: compareView(vctx),
    picks: picksView(vctx),
    nextsteps: nextStepsView(vctx),
  };
  let view: ViewId = "columns";
  const viewButtons = VIEWS.map(({ id, label }) => {
    const b = h("button", { type: "button", class: "btn btn-small", testid: "view-toggle", "data-view": id, "aria-pressed": String(id === view) }, label);
    b.addEventListener("click", () => {
      view = id;
      render();
    });
    return b;
  });
  const viewToggle = h("div", { class: "view-toggle", role: "group", "aria-label": "View" }, ...viewButtons);

  // In replay the panel gets no connection: it shows the moment's agreements without its tools.
  // ---- Replay: the slider, playback and the way back to live.
  const replayToggle = h("button", { type: "button", class: "btn btn-small", testid: "replay-toggle", hidden: true }, "Replay");
  const stopPlaying = () => {
    if (replay?.timer) clearInterval(replay.timer);
    if (replay) replay.timer = undefined;
    if (replay) replay.playing = false;
  };
  const seek = (t: number) => {
    if (!replay) return;
    replay.t = Math.min(replay.end, Math.max(replay.start, t));
    render();
  };
  const backToLive = () => {
    stopPlaying();
    replay = undefined;
    shown = undefined;
    render();
    replayToggle.focus();
  };
  const replayControls = replayBar({
    seek(t) {
      stopPlaying();
      seek(t);
    },
    play() {
      const r = replay;
      if (!r || r.timer) return;
      if (r.t >= r.end) r.t = r.start;
      r.playing = true;
      r.last = performance.now();
      r.timer = setInterval(() => {
        const now = performance.now();
        const t = r.t + ((now - r.last) / 1000) * r.speed;
        r.last = now;
        // Playing past the last moment reaches the live board, with whatever arrived meanwhile.
        if (t >= r.end) backToLive();
        else seek(t);
      }, REPLAY_TICK_MS);
      render();
    },
    pause() {
      stopPlaying();
      render();
    },
    speed(speed) {
      if (replay) replay.speed = speed;
      render();
    },
    live: backToLive,
  });
  replayToggle.addEventListener("click", () => {
    const doc = lab?.conn.doc();
    if (!doc || replay) return;
    const all = moments(doc);
    if (all.length === 0) return;
    const { start, end } = span(all);
    closeNoteMenu();
    removeUndo();
    settings.close();
    phaseSettings.close();
    replay = { all, heads: headsKey(doc), start, end, t: start, playing: false, speed: 10, last: 0 };
    render();
    replayControls.el.querySelector<HTMLElement>("[data-testid=replay-play]")?.focus();
  });
  /** The live board's phase starts and time-outs, marked on the slider. */
  const replayMarks = (m: BoardModel): ReplayMark[] => [
    ...m.phases.filter((p) => p.startedAt).map((p) => ({ kind: "phase" as const, time: Math.floor((p.startedAt ?? 0) / 1000), label: `${p.label} starts` })),
    ...m.timeouts.map((t) => ({ kind: "timeout" as const, time: Math.floor(t.startedAt / 1000), label: `Time-out called by ${t.calledBy || "someone"}` })),
  ];
  /** The document shown: live, or the replayed moment (one view per moment, kept while it is shown). */
  const replayDoc = <T,>(live: T & object): T => {
    if (!replay) return live;
    const heads = momentAt(replay.all, replay.t)?.heads.join(",") ?? "";
    if (shown?.heads !== heads) shown = { heads, doc: boardAt(live as never, replay.t, replay.all) };
    return shown.doc as T;
  };

  const panel = agreementsPanel(() => (replay ? undefined : lab?.conn), () => render());
  const focus = focusOverlay({ rerender, photos, isFacilitator, changeWithUndo: (message, fn) => vctx.changeWithUndo(message, fn) });

  // ---- Settings panels (facilitator): categories and phases share the right side.
  const settingsButton = h("button", { type: "button", class: "btn btn-small", testid: "categories-settings", "aria-expanded": "false", hidden: true }, "Categories");
  const phasesButton = h("button", { type: "button", class: "btn btn-small", testid: "phases-settings", "aria-expanded": "false", hidden: true }, "Phases");
  const settings = categoriesPanel(
    () => lab?.conn,
    () => render(),
    () => {
      setAttr(settingsButton, "aria-expanded", "false");
      settingsButton.focus();
    },
  );
  const phaseSettings = phasesPanel(
    () => lab?.conn,
    () => render(),
    () => {
      setAttr(phasesButton, "aria-expanded", "false");
      phasesButton.focus();
    },
  );
  /** The settings panels open under the header, so its buttons (which close them) stay in reach. */
  const placePanels = () => {
    const head = board.querySelector(".board-head");
    const bottom = head ? head.getBoundingClientRect().bottom : 0;
    board.style.setProperty("--panel-top", `${Math.round(Math.max(8, bottom + 8))}px`);
  };
  settingsButton.addEventListener("click", () => {
    placePanels();
    if (settings.isOpen()) settings.close();
    else {
      phaseSettings.close();
      setAttr(settingsButton, "aria-expanded", "true");
      settings.open();
    }
  });
  phasesButton.addEventListener("click", () => {
    placePanels();
    if (phaseSettings.isOpen()) phaseSettings.close();
    else {
      settings.close();
      setAttr(phasesButton, "aria-expanded", "true");
      phaseSettings.open();
    }
  });

  const header = boardHeader(labId, [presenterToggle, replayToggle, phasesButton, settingsButton, recordLink, endButton], showStatus);
  const board = h(
    "div",
    { class: "board", testid: "board" },
    header.el,
    endedNote,
    status,
    replayControls.el,
    h(
      "div",
      { class: "board-bars" },
      h("div", { class: "board-run" }, phases.el, timeoutCall, banner.el),
      carried.el,
      h("div", { class: "board-filters" }, viewToggle, phaseFilter, h("div", { class: "board-debrief-tools" }, childFilterBox, showHiddenToggle, agreementsToggle)),
    ),
    h("div", { class: "board-main" }, ...Object.values(views).map((v) => v.el), panel.el),
    focus.el,
    settings.el,
    phaseSettings.el,
    endDialog.element,
  );
  replace(ctx.root, board);

  // ---- The phase filter: "All phases" and every phase that has notes (with how many); keyed,
  // so a count that changes under a finger changes in place.
  interface PhaseEntry {
    id: string;
    label: string;
    count: number;
  }
  const phaseButtons = new KeyedList<PhaseEntry, HTMLButtonElement>(phaseFilter, (e) => e.id, {
    create(e) {
      const b = h("button", { type: "button", class: "btn btn-small phase-filter-item", testid: "phase-filter", "data-phase": e.id }, h("span", {}), h("span", { class: "phase-filter-count" }));
      b.addEventListener("click", () => {
        filter.phase = e.id || undefined;
        render();
      });
      return b;
    },
    update(b, e) {
      setText(b.children[0], e.label);
      setText(b.children[1], String(e.count));
      setAttr(b, "aria-pressed", String((filter.phase ?? "") === e.id));
    },
  });
  const renderPhaseFilter = (m: BoardModel) => {
    const counts = new Map<string, number>();
    for (const n of m.notes) if (filter.showHidden || !n.hidden) counts.set(n.phase ?? "", (counts.get(n.phase ?? "") ?? 0) + 1);
    if (filter.phase !== undefined && !m.phases.some((p) => p.id === filter.phase)) filter.phase = undefined;
    const offered = m.phases.filter((p) => (counts.get(p.id) ?? 0) > 0 || p.id === filter.phase);
    phaseFilter.hidden = offered.length === 0;
    const total = [...counts.values()].reduce((a, b) => a + b, 0);
    phaseButtons.reconcile([{ id: "", label: "All phases", count: total }, ...offered.map((p) => ({ id: p.id, label: p.label, count: counts.get(p.id) ?? 0 }))]);
  };

  let childKey = "";
  const renderChildFilter = (m: BoardModel) => {
    const aliases = [...m.children];
    for (const n of m.notes) for (const c of n.children) if (!aliases.includes(c)) aliases.push(c);
    if (filter.child !== undefined && !aliases.includes(filter.child)) filter.child = undefined;
    childFilterBox.hidden = aliases.length === 0;
    const key = JSON.stringify([aliases, filter.child]);
    if (key === childKey) return;
    childKey = key;
    replace(childFilter, h("option", { value: "" }, "All children"), ...aliases.map((a) => h("option", { value: a, selected: a === filter.child }, a)));
    setAttr(childFilter, "data-value", filter.child ?? "");
  };

  // ---- Render: the model once, then the header, the run, the filter and the shown view.
  const render = () => {
    if (!lab) return;
    const conn = lab.conn;
    const live = conn.doc();
    const doc = live ? replayDoc(live) : undefined;
    // A replayed time-out's timer runs on the replay clock.
    const now = replay ? replay.t * 1000 : Date.now();
    const m = doc ? readBoard(doc) : undefined;
    header.update({ model: m, online: conn.socket.online, present: conn.presence.count(Date.now()) });
    if (!doc || !m) return;
    model = m;
    const facilitator = isFacilitator();
    board.classList.toggle("is-replay", !!replay);
    replayToggle.hidden = !!replay || conn.role !== "facilitator";
    replayControls.el.hidden = !replay;
    if (replay && live) {
      // Changes that arrive during the replay lengthen the slider; the moment shown stays.
      const heads = headsKey(live);
      if (heads !== replay.heads) {
        replay.all = moments(live);
        replay.heads = heads;
        ({ start: replay.start, end: replay.end } = span(replay.all));
      }
    }
    if (replay && live) replayControls.update({ t: replay.t, start: replay.start, end: replay.end, playing: replay.playing, speed: replay.speed, marks: replayMarks(readBoard(live)) });
    const current = m.currentPhase?.id;
    const ended = conn.ended;
    endedNote.hidden = !ended;
    board.classList.toggle("is-ended", ended);
    endButton.hidden = ended || !!replay || conn.role !== "facilitator";
    recordLink.hidden = !!replay || conn.role !== "facilitator";
    if (ended && settings.isOpen()) settings.close();
    if (ended && phaseSettings.isOpen()) phaseSettings.close();


    // A debrief opens the agreements panel and presenter mode; leaving it closes the panel.
    if (seenPhase !== (current ?? undefined)) {
      const first = seenPhase === null;
      seenPhase = current ?? undefined;
      panelOpen = isDebrief(current);
      if (!first || isDebrief(current)) filter.presenter = isDebrief(current);
    }
    phases.update(m);
    const t = runningTimeout(doc);
    banner.update({ timeout: t, reached: t ? !!replay || conn.serverHas("timeouts", t.id) : false, now });
    timeoutCall.hidden = !!t || !isLesson(current) || !facilitator;
    carried.update(m);

    renderPhaseFilter(m);
    renderChildFilter(m);
    // Lesson 1 | 2 chooses its own phases and shows the carried agreements beside Lesson 2;
    // next steps belong to no phase or child.
    if (view === "lessons" || view === "nextsteps") phaseFilter.hidden = true;
    if (view === "nextsteps") childFilterBox.hidden = true;
    if (view === "lessons") carried.el.hidden = true;
    // Hidden notes, and the hidden photos of the notes shown ("1 photo hidden — show" on their cards).
    const hiddenCount =
      m.notes.filter((n) => n.hidden).length + m.notes.filter((n) => !n.hidden).reduce((k, n) => k + (n.photos ?? []).filter((p) => p.hidden).length, 0);
    showHiddenToggle.hidden = !facilitator || (hiddenCount === 0 && !filter.showHidden);
    setAttr(showHiddenToggle, "aria-pressed", String(filter.showHidden));
    setText(showHiddenToggle, filter.showHidden ? `Showing hidden (${hiddenCount})` : `Show hidden (${hiddenCount})`);
    agreementsToggle.hidden = false;
    setAttr(agreementsToggle, "aria-pressed", String(panelOpen));
    panel.el.hidden = !panelOpen;
    if (panelOpen) panel.render(doc);

    board.classList.toggle("is-presenter", filter.presenter);
    document.body.classList.toggle("is-presenter", filter.presenter);
    setAttr(presenterToggle, "aria-pressed", String(filter.presenter));
    setText(presenterToggle, filter.presenter ? "Leave presenter mode" : "Presenter mode");

    for (const b of viewButtons) setAttr(b, "aria-pressed", String(b.dataset.view === view));
    for (const [id, v] of Object.entries(views)) v.el.hidden = id !== view;
    views[view].update(m, filter);
    focus.update(m);

    settingsButton.hidden = !facilitator;
    if (settings.isOpen()) settings.render(doc);
    phasesButton.hidden = !facilitator;
    if (phaseSettings.isOpen()) phaseSettings.render(doc);
  };

  const ui = {
    render,
    status: showStatus,
  };

  lab = await openLab(ctx, labId, ui, isAlive);
  const destroy = () => {
    if (frame) cancelAnimationFrame(frame);
    stopPlaying();
    for (const v of Object.values(views)) v.destroy?.();
    focus.destroy();
    closeNoteMenu();
    photos.destroy();
    removeUndo();
    document.body.classList.remove("is-board", "is-presenter");
  };
  if (!lab) return destroy;
  const opened = lab;
  render();
  markReady();
  // A facilitator who signed in with the key on this device does not know the join code; a
  // server that includes it in the session answer lets us show it.
  header.fetchJoinCode(isAlive);
  // Presence ages out even when nothing else happens.
  const tick = setInterval(render, 5_000);
  // A running time-out's timer counts by the second.
  const clock = setInterval(() => {
    const doc = opened.conn.doc();
    if (!doc || !model || replay) return;
    const t = runningTimeout(doc);
    if (t) banner.update({ timeout: t, reached: opened.conn.serverHas("timeouts", t.id), now: Date.now() });
  }, 1_000);
  return () => {
    clearInterval(tick);
    clearInterval(clock);
    destroy();
    void opened.conn.close();
  };
}
