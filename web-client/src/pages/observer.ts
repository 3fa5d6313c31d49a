// `/lab/<labId>`: the observer's phone page. Write a note, pick a category, send; see everyone's
// notes live. Works offline: notes are saved on the phone at once and sent when the network
// returns.
//
// This file only wires the phone's views (web-client/src/phone/) to the board: each render reads
// the board once into the typed model (`readBoard`), hands each view its part, and turns what the
// views ask for into writes through the one connection (`LabConnection`, opened by lab.ts).
// Credentials are `openLab`'s (it reads them from `store`); who this phone is on the board comes
// from the connection it opened.

import { addChild, visibleNotes } from "../debrief";
import { notSentText } from "../ended";
import { h, markReady, replace, setText } from "../dom";
import { randomUuid } from "../ids";
import { callTimeout, deleteNote, editNote, endTimeouts, isLesson, toggleReaction, undoTimeout, type Phase } from "../labrun";
import type { PageContext } from "../main";
import { addNextStep, editNextStep, myPicks, readBoard, removeNextStep, togglePick, type BoardModel } from "../model";
import { AgreementsView, agreementsToShow } from "../phone/agreements";
import { Composer, followKeyboard } from "../phone/composer";
import { Feed } from "../phone/feed";
import { NextStepsView } from "../phone/nextsteps";
import { PhonePhotos } from "../phone/photos";
import { RunStrip } from "../phone/runstrip";
import { Topbar, statusText } from "../phone/topbar";
import { store } from "../store";
import type { LabConnection } from "../sync";
import { openLab } from "./lab";
import { UNDO_MS, removeUndo, showUndo } from "../views/undo";

type Writer = Parameters<LabConnection["run"]>[0];

/** How long "Sent ✓" stays under Send. */
const SENT_SHOWN_MS = 6_000;

/** Whether a phase is a debrief (its id says so: `debrief-1`, `final-debrief`, `debrief-…`). */
function isDebrief(phase: Phase | undefined): boolean {
  return !!phase && phase.id.includes("debrief");
}

/** The final debrief: `final-debrief`, or a debrief that is the last phase. */
export function isFinalDebrief(model: BoardModel): boolean {
  const p = model.currentPhase;
  return isDebrief(p) && (p!.id === "final-debrief" || model.phases[model.phases.length - 1]?.id === p!.id);
}

/** The running time-out of the current phase (the oldest, if two were called at once). */
function runningTimeout(model: BoardModel) {
  const phase = model.currentPhase?.id;
  return model.timeouts.find((t) => t.endedAt === undefined && (!phase || t.phase === phase));
}

export async function mountObserver(ctx: PageContext, labId: string, isAlive: () => boolean): Promise<() => void> {
  document.title = "Observe · Labboard";
  // Until the board opens: the lab's name as this device remembers it, and what is going on.
  const topbar = new Topbar(store.lab(labId)?.title ?? "Lab");
  const loading = h("p", { class: "feed-empty", role: "status" }, "Loading the board…");
  const main = h("main", { class: "page page-phone" }, loading);
  const signalSlot = h("div");
  replace(ctx.root, h("div", { class: "observer" }, topbar.el, signalSlot, main));

  let page: PhonePage | undefined;
  const ui = {
    render: () => page?.render(),
    status: (message: string | undefined) => {
      loading.textContent = message ?? "";
      page?.feed.status(message);
    },
  };
  const lab = await openLab(ctx, labId, ui, isAlive);
  if (!lab) return () => undefined;
  const photos = new PhonePhotos({
    labId,
    token: () => lab.conn.token,
    onChange: () => ui.render(),
    onUnauthorized: () => lab.checkToken(),
  });
  page = new PhonePage(lab.conn, labId, topbar, photos);
  signalSlot.replaceWith(page.agreements.signal);
  main.replaceChildren(...page.sections);
  page.render();
  // The photos this phone holds: a draft comes back into the note box, the rest goes up.
  void photos
    .load(readBoard(lab.conn.doc()).notes)
    .then((drafts) => {
      if (!isAlive()) return;
      page?.composer.restorePhotos(drafts);
      photos.drain();
    })
    .catch(() => undefined)
    .finally(() => {
      if (isAlive()) markReady();
    });

  // If notes wait while we look connected, the socket may be silently dead: replace it.
  const conn = lab.conn;
  // Back online: photos go up without waiting for their backoff.
  let wasOnline = conn.socket.online;
  const onOnline = () => photos.drain();
  window.addEventListener("online", onOnline);
  const watchOnline = setInterval(() => {
    const online = conn.socket.online;
    if (online && !wasOnline) photos.drain();
    wasOnline = online;
  }, 1_000);
  const watchdog = setInterval(() => {
    if (conn.socket.online && conn.waiting().size > 0 && Date.now() - conn.lastProgressAt > 20_000) {
      conn.lastProgressAt = Date.now();
      conn.socket.nudge(true);
    }
  }, 5_000);
  // The time-out timer, the lesson minute, "Sent ✓" and Undo count by the second.
  const clock = setInterval(() => page?.render(), 1_000);

  return () => {
    clearInterval(clock);
    clearInterval(watchdog);
    clearInterval(watchOnline);
    window.removeEventListener("online", onOnline);
    photos.destroy();
    page?.destroy();
    void conn.close();
  };
}

/**
 * The phone's views over one open board. Who this phone is (author id, name, role) comes from
 * the connection, which got it from the stored credentials when the lab opened.
 */
class PhonePage {
  readonly strip: RunStrip;
  readonly composer: Composer;
  readonly agreements = new AgreementsView();
  readonly nextSteps: NextStepsView;
  readonly feed: Feed;
  readonly sections: HTMLElement[];
  /** Shown once the lab has ended: that it has, and how many of my notes were not sent. */
  readonly #ended: HTMLElement;
  readonly #notSent: HTMLParagraphElement;
  readonly #conn: LabConnection;
  readonly #photos: PhonePhotos;
  readonly #topbar: Topbar;
  readonly #unfollowKeyboard: () => void;
  #lastSentAt = 0;
  /** Own notes and next steps deleted while their undo toast shows: written when it goes. */
  readonly #deleting = new Set<string>();
  readonly #removingSteps = new Set<string>();

  constructor(conn: LabConnection, labId: string, topbar: Topbar, photos: PhonePhotos) {
    this.#conn = conn;
    this.#photos = photos;
    this.#topbar = topbar;
    const { deviceId, name, role } = conn;
    const write = (fn: Writer) => {
      conn.run(fn);
      this.render();
    };
    this.strip = new RunStrip({
      deviceId,
      role,
      onCall: () => write((d, now, scalar) => callTimeout(d, randomUuid(), { name: name || "Someone", deviceId }, now, scalar)),
      onEnd: () => write((d, now) => endTimeouts(d, now)),
      onUndo: (id) => write((d) => undoTimeout(d, id, deviceId)),
    });
    this.composer = new Composer({
      category: store.lastCategory(labId),
      onCategory: (id) => store.setLastCategory(labId, id),
      onSend: (draft) => {
        try {
          conn.addNote(draft);
        } catch (err) {
          return err instanceof Error ? err.message : String(err);
        }
        // Saved with the note: its photos may go up now (a reload before this releases them too).
        void photos.release(draft.photos);
        this.#lastSentAt = Date.now();
        this.render();
        return undefined;
      },
      onAddChild: (alias) => write((d, now, scalar) => addChild(d, alias, { name, deviceId }, now, scalar)),
      photos: {
        onAttach: (file) => photos.attach(file),
        onRemove: (id) => photos.discard(id),
        url: (id) => photos.url(id),
      },
    });
    this.nextSteps = new NextStepsView({
      deviceId,
      onAdd: (text) => write((d, now, scalar) => addNextStep(d, randomUuid(), { text, authorId: deviceId, authorName: name }, now, scalar)),
      onEdit: (id, text) => write((d, now, scalar) => editNextStep(d, id, deviceId, text, now, scalar)),
      onRemove: (id) =>
        this.#deleteLater(this.#removingSteps, id, "Next step deleted", () => write((d) => removeNextStep(d, id, deviceId))),
    });
    this.feed = new Feed({
      deviceId,
      onReact: (id) => write((d, now) => toggleReaction(d, id, deviceId, now)),
      onEdit: (id, text) => write((d, now, scalar) => editNote(d, id, deviceId, text, now, scalar)),
      onDelete: (id) => this.#deleteLater(this.#deleting, id, "Note deleted", () => write((d) => deleteNote(d, id, deviceId))),
      onPick: (id) => {
        let result = "none";
        write((d, now) => {
          result = togglePick(d, deviceId, id, now);
          return result === "picked" || result === "unpicked";
        });
        if (result === "limit") this.feed.picksFull();
      },
      photoUrl: (id) => photos.url(id),
      photoState: (id) => photos.get(id),
    });
    const footer = h(
      "footer",
      { class: "page-footer" },
      h("span", {}, "You are ", h("strong", {}, name), ". "),
      role === "facilitator" ? h("a", { href: `/lab/${labId}/board` }, "Projector board") : null,
      role === "facilitator" ? " · " : null,
      h("a", { href: "/" }, "Other lab"),
    );
    this.#notSent = h("p", { testid: "not-sent", hidden: true });
    this.#ended = h(
      "section",
      { class: "ended-notice", testid: "lab-ended", role: "status", "aria-labelledby": "ended-heading", hidden: true },
      h("h2", { id: "ended-heading" }, "This lab has ended"),
      h("p", {}, "Nothing more can be added. You can still read the board."),
      this.#notSent,
    );
    this.sections = [this.#ended, this.strip.el, this.composer.el, this.agreements.el, this.nextSteps.el, this.feed.el, footer];
    this.#unfollowKeyboard = followKeyboard();
  }

  /**
   * Deletes one's own note or next step after the undo toast goes. A phone cannot restore either
   * exactly (a note's reactions and flags are other people's to write), so until then the entry
   * is only out of sight (`hidden` holds its id); Undo brings it back, never having been deleted.
   */
  #deleteLater(hidden: Set<string>, id: string, message: string, remove: () => void): void {
    hidden.add(id);
    this.render();
    const show = () => {
      hidden.delete(id);
      this.render();
    };
    showUndo(message, show, UNDO_MS, () => {
      hidden.delete(id);
      remove();
    });
  }

  render(): void {
    const conn = this.#conn;
    const deviceId = conn.deviceId;
    const online = conn.socket.online;
    const doc = conn.doc();
    const model = readBoard(doc);
    // A note of mine waits until the server has it and each of its photos.
    const waiting = conn.waiting();
    for (const id of this.#photos.waitingNotes(model.notes, deviceId)) waiting.add(id);
    this.#topbar.render({ title: model.lab.title, online, browserOnline: navigator.onLine, waiting: waiting.size, ended: conn.ended });
    if (model.lab.title) document.title = `${model.lab.title} · Labboard`;
    const ended = conn.ended;
    this.#ended.hidden = !ended;
    this.#notSent.hidden = !ended || waiting.size === 0;
    setText(this.#notSent, notSentText(waiting.size));
    // Nothing offers to write once the lab has ended.
    this.composer.el.hidden = ended;
    this.strip.el.classList.toggle("is-read-only", ended);
    this.nextSteps.el.classList.toggle("is-read-only", ended);
    if (!doc) return;
    const now = Date.now();
    // Schema v2 boards have phases, time-outs and children; v3 ones picks and next steps. The
    // server upgrades a board when it loads it; a phone never creates those maps itself.
    const v2 = model.schemaVersion >= 2;
    const v3 = model.schemaVersion >= 3;
    const phase = model.currentPhase;
    const timeout = runningTimeout(model);
    const reached = !!timeout && conn.serverHas("timeouts", timeout.id);
    this.strip.render({ phase, canCall: !ended && v2 && isLesson(phase?.id), timeout, reached, now });
    this.composer.render({
      ready: true,
      categories: model.categories,
      children: v2 ? model.children : undefined,
      status: statusText(waiting.size, online, now - this.#lastSentAt < SENT_SHOWN_MS),
    });
    this.agreements.render({ ...agreementsToShow(model.phases, phase, model.agreements), all: model.agreements });
    const mine = model.nextSteps.filter((s) => s.authorId === deviceId);
    this.nextSteps.render({
      steps: model.nextSteps.filter((s) => !this.#removingSteps.has(s.id)),
      open: !ended && v3 && isFinalDebrief(model),
      waiting: new Set(mine.filter((s) => !conn.serverHas("nextSteps", s.id)).map((s) => s.id)),
      now,
    });
    this.feed.render({
      categories: model.categories,
      // Notes the facilitator hid stay in the document but leave the phones' feeds.
      notes: visibleNotes(model.notes, false).filter((n) => !this.#deleting.has(n.id)),
      waiting,
      picks: !ended && v3 && isDebrief(phase) ? { mine: new Set(myPicks(model, deviceId)), limit: model.lab.pickLimit } : undefined,
      now,
      readOnly: ended,
    });
  }

  destroy(): void {
    // A delete still offered for undo is written now, before the connection closes.
    removeUndo();
    this.#unfollowKeyboard();
    this.agreements.destroy();
  }
}
