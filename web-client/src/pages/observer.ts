// `/lab/<labId>`: the observer's phone page. Write a note, pick a category, send; see everyone's
// notes live. Works offline: notes are saved on the phone at once and sent when the network
// returns.

import { formatTime, readCategories, readLab, readNotes, type Category, type Note } from "../board";
import {
  agreementsOf,
  callTimeout,
  canEndTimeout,
  currentPhase,
  deleteNote,
  editNote,
  endTimeouts,
  formatTimer,
  isLesson,
  minuteOf,
  reactionState,
  runningTimeout,
  toggleReaction,
  type RunDoc,
} from "../labrun";
import { randomUuid } from "../ids";
import { addChild, cleanAlias, readChildren, visibleNotes, MAX_ALIAS_CHARS, type DebriefDoc } from "../debrief";
import { h, markReady, replace, setAttr, setText } from "../dom";
import type { PageContext } from "../main";
import { store } from "../store";
import { aliasLooksLikeName, cleanNoteText, MAX_NOTE_CHARS, possibleFullNames } from "../validate";
import { openLab, type OpenLab } from "./lab";

interface FeedItem {
  li: HTMLLIElement;
  meta: HTMLSpanElement;
  time: HTMLTimeElement;
  badge: HTMLSpanElement;
  body: HTMLParagraphElement;
  marker: HTMLSpanElement;
  edited: HTMLSpanElement;
  kids: HTMLSpanElement;
  react: HTMLButtonElement;
  reactCount: HTMLSpanElement;
  edit: HTMLButtonElement;
  del: HTMLButtonElement;
  editor: HTMLDivElement;
  editText: HTMLTextAreaElement;
  /** When "Delete" was tapped once (a second tap within 4 s deletes). */
  armedAt: number;
  editing: boolean;
}

/** The line under the send button: what happened to my notes. */
function statusText(waiting: number, online: boolean, justSent: boolean): string {
  const notes = waiting === 1 ? "1 note is" : `${waiting} notes are`;
  if (waiting > 0 && !online) return `Offline: ${notes} saved on this device and will be sent when the connection is back.`;
  if (waiting > 0) return "Sending…";
  return justSent ? "Sent ✓" : "";
}

export async function mountObserver(ctx: PageContext, labId: string, isAlive: () => boolean): Promise<() => void> {
  document.title = "Observe · Labboard";
  // Who this phone is on the board: the author id the server granted (see `LabAccess`).
  const deviceId = store.lab(labId)?.authorId ?? store.deviceId();
  let lab: OpenLab | undefined;
  let categories: Category[] = [];
  let categoriesKey = "";
  let selected = store.lastCategory(labId);
  let lastSentAt = 0;

  // Header: lab title, connection, my waiting notes.
  const title = h("h1", { class: "topbar-title" }, store.lab(labId)?.title ?? "Lab");
  const connection = h("span", { class: "conn", testid: "connection", "data-state": "offline", role: "status" }, "Offline");
  const pendingCount = h("span", { testid: "pending-count" }, "0");
  const pending = h("span", { class: "pending", "data-count": "0", title: "Your notes not yet on the server" }, pendingCount, " waiting");
  const topbar = h(
    "header",
    { class: "topbar" },
    title,
    h("div", { class: "topbar-status" }, connection, pending),
  );

  // Composer.
  const textarea = h("textarea", {
    id: "note-text",
    testid: "note-text",
    class: "note-input",
    rows: 4,
    maxlength: MAX_NOTE_CHARS,
    placeholder: "What did a child say, write or try?",
    "aria-describedby": "note-hint",
    disabled: true,
  });
  const nameWarning = h("p", { class: "name-warning", role: "status", hidden: true, testid: "name-warning" });
  const chips = h("div", { class: "chips", role: "group", "aria-label": "Category" });
  // Which children the note is about: one-tap chips from the lab's list, and "+ child" to extend it.
  const selectedChildren = new Set<string>();
  const childChips = h("div", { class: "child-chips", role: "group", "aria-label": "Children (aliases or initials)" });
  const childAddOpen = h("button", { type: "button", class: "chip child-chip-add", testid: "child-add", "aria-expanded": "false" }, "+ child");
  const childNew = h("input", {
    class: "input child-new",
    testid: "child-new",
    maxlength: MAX_ALIAS_CHARS,
    placeholder: "Initials or alias, e.g. T. or TR",
    "aria-label": "New child: initials or an alias",
    autocomplete: "off",
    autocapitalize: "characters",
    enterkeyhint: "done",
  });
  const childNewAdd = h("button", { type: "button", class: "btn btn-small btn-primary", testid: "child-new-add" }, "Add");
  const childNewCancel = h("button", { type: "button", class: "btn btn-small", "aria-label": "Cancel adding a child" }, "Cancel");
  const childWarning = h("p", { class: "name-warning", role: "status", testid: "child-warning", hidden: true });
  const childAdder = h("div", { class: "child-adder", hidden: true }, h("div", { class: "child-adder-row" }, childNew, childNewAdd, childNewCancel), childWarning);
  const childBox = h("div", { class: "child-box", hidden: true }, h("div", { class: "child-row" }, childChips, childAddOpen), childAdder);
  const send = h("button", { type: "submit", class: "btn btn-primary btn-block btn-send", testid: "note-send", disabled: true }, "Send");
  const statusLine = h("p", { class: "status-line", role: "status", "aria-live": "polite" });
  const form = h(
    "form",
    { class: "composer", novalidate: true },
    h("label", { for: "note-text", class: "sr-only" }, "Observation"),
    textarea,
    h("p", { id: "note-hint", class: "hint sr-only" }, "Describe what you saw. Use initials or an alias for children."),
    nameWarning,
    chips,
    childBox,
    send,
    statusLine,
  );

  // The lab's run: the current phase, the time-out button and banner, what we try this time.
  const phaseName = h("strong", { class: "phase-name" });
  const phaseClock = h("span", { class: "phase-clock" });
  const phaseLine = h("p", { class: "phase-line", testid: "phase-current", hidden: true }, phaseName, phaseClock);
  const timeoutCall = h("button", { type: "button", class: "btn btn-timeout btn-block", testid: "timeout-call", hidden: true }, h("span", { class: "timeout-t", "aria-hidden": "true" }, "T"), "Time-out");
  const timeoutCaller = h("span", { testid: "timeout-caller" });
  const timeoutTimer = h("span", { class: "timeout-timer mono", testid: "timeout-timer", role: "timer" }, "00:00");
  const timeoutEnd = h("button", { type: "button", class: "btn btn-small btn-timeout-end", testid: "timeout-end", hidden: true }, "End time-out");
  const timeoutBanner = h(
    "div",
    { class: "timeout-banner", testid: "timeout-banner", role: "status", hidden: true },
    h("div", { class: "timeout-text" }, h("strong", {}, "Time-out"), timeoutCaller),
    timeoutTimer,
    timeoutEnd,
  );
  const carriedList = h("ol", { class: "carried-list" });
  const carried = h(
    "section",
    { class: "carried", testid: "agreements-carried", hidden: true, "aria-labelledby": "carried-heading" },
    h("h2", { id: "carried-heading", class: "carried-heading" }, "What we are trying this time"),
    carriedList,
  );
  const runBox = h("section", { class: "run", "aria-label": "Lab phase" }, phaseLine, timeoutBanner, timeoutCall);

  // Feed.
  const feedCount = h("span", { class: "feed-count" }, "");
  const feedList = h("ol", { class: "feed-list", "aria-live": "off" });
  const feedEmpty = h("p", { class: "feed-empty" }, "Loading the board…");
  const access = store.lab(labId);
  const footer = h(
    "footer",
    { class: "page-footer" },
    h("span", {}, "You are ", h("strong", {}, access?.name ?? ""), ". "),
    access?.role === "facilitator" ? h("a", { href: `/lab/${labId}/board` }, "Projector board") : null,
    access?.role === "facilitator" ? " · " : null,
    h("a", { href: "/" }, "Other lab"),
  );

  replace(
    ctx.root,
    h(
      "div",
      { class: "observer" },
      topbar,
      h(
        "main",
        { class: "page page-phone" },
        runBox,
        carried,
        form,
        h("section", { class: "feed", "aria-labelledby": "feed-heading" }, h("h2", { id: "feed-heading", class: "feed-heading" }, "Notes ", feedCount), feedEmpty, feedList),
        footer,
      ),
    ),
  );

  const updateSend = () => {
    const ready = !!lab?.conn.doc();
    send.disabled = !ready || cleanNoteText(textarea.value) === undefined;
    const names = possibleFullNames(textarea.value);
    nameWarning.hidden = names.length === 0;
    if (names.length > 0) {
      nameWarning.textContent = `“${names[0]}” looks like a full name. Use initials or an alias for children.`;
    }
  };
  textarea.addEventListener("input", () => {
    // A new draft: "Sent ✓" belonged to the previous note.
    if (lastSentAt !== 0 && textarea.value !== "") {
      lastSentAt = 0;
      render();
    }
    updateSend();
  });
  textarea.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      form.requestSubmit();
    }
  });

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const text = cleanNoteText(textarea.value);
    if (!text || !lab) return;
    const category = selected ?? categories[0]?.id ?? "";
    try {
      lab.conn.addNote({ text, category, children: [...selectedChildren] });
    } catch (err) {
      statusLine.textContent = `Not saved: ${err instanceof Error ? err.message : String(err)}`;
      return;
    }
    textarea.value = "";
    // The next note is likely about someone else.
    selectedChildren.clear();
    childKey = "";
    lastSentAt = Date.now();
    updateSend();
    render();
    textarea.focus();
  });

  timeoutCall.addEventListener("click", () => {
    if (!lab) return;
    const me = { name: lab.conn.name || "Someone", deviceId };
    lab.conn.run((d, now, scalar) => callTimeout(d, randomUuid(), me, now, scalar));
    render();
  });
  timeoutEnd.addEventListener("click", () => {
    lab?.conn.run((d, now) => endTimeouts(d, now));
    render();
  });

  // "+ child": type initials, add; the alias joins the lab's list (every phone gets it) and is
  // selected for this note. Something that looks like a full name needs a second tap.
  let childConfirm = "";
  const updateChildWarning = () => {
    const look = aliasLooksLikeName(childNew.value);
    childWarning.hidden = !look;
    if (look === "full") childWarning.textContent = "That looks like a full name. Children's names stay out of the board: use initials (T. R.) or an alias.";
    else if (look === "name") childWarning.textContent = "That looks like a name. Initials or an alias keep children private.";
    const confirming = look === "full" && childConfirm === childNew.value.trim();
    setText(childNewAdd, confirming ? "Add anyway" : "Add");
  };
  const closeAdder = () => {
    childAdder.hidden = true;
    setAttr(childAddOpen, "aria-expanded", "false");
    childNew.value = "";
    childConfirm = "";
    updateChildWarning();
  };
  childAddOpen.addEventListener("click", () => {
    childAdder.hidden = false;
    setAttr(childAddOpen, "aria-expanded", "true");
    childNew.focus();
  });
  childNewCancel.addEventListener("click", closeAdder);
  childNew.addEventListener("input", () => {
    childConfirm = "";
    updateChildWarning();
  });
  const addTypedChild = () => {
    const alias = cleanAlias(childNew.value);
    if (!alias || !lab) return;
    if (aliasLooksLikeName(alias) === "full" && childConfirm !== childNew.value.trim()) {
      childConfirm = childNew.value.trim();
      updateChildWarning();
      return;
    }
    const me = { name: lab.conn.name, deviceId };
    lab.conn.run((d, now, scalar) => addChild(d as DebriefDoc, alias, me, now, scalar));
    selectedChildren.add(alias);
    childKey = "";
    closeAdder();
    render();
  };
  childNewAdd.addEventListener("click", addTypedChild);
  childNew.addEventListener("keydown", (e) => {
    if (e.key === "Enter") {
      e.preventDefault();
      addTypedChild();
    }
  });

  let childKey = "";
  const renderChildren = (doc: DebriefDoc) => {
    childBox.hidden = !doc.children;
    const aliases = readChildren(doc);
    // Selected but not (yet) in the list, e.g. added while the list had not synced: still shown.
    for (const a of selectedChildren) if (!aliases.includes(a)) aliases.push(a);
    const key = JSON.stringify([aliases, [...selectedChildren]]);
    if (key === childKey) return;
    childKey = key;
    replace(
      childChips,
      ...aliases.map((alias) => {
        const on = selectedChildren.has(alias);
        const chip = h("button", { type: "button", class: "chip child-chip", testid: "child-chip", "data-child": alias, "aria-pressed": String(on) }, alias);
        chip.addEventListener("click", () => {
          if (selectedChildren.has(alias)) selectedChildren.delete(alias);
          else selectedChildren.add(alias);
          childKey = "";
          render();
        });
        return chip;
      }),
    );
  };

  const renderRun = (doc: RunDoc) => {
    const now = Date.now();
    const phase = currentPhase(doc);
    phaseLine.hidden = !phase;
    if (phase) {
      setAttr(phaseLine, "data-phase", phase.id);
      setText(phaseName, phase.label);
      const min = phase.startedAt !== undefined ? minuteOf(now, phase.startedAt) : undefined;
      setText(phaseClock, min !== undefined && isLesson(phase.id) ? ` · minute ${min}` : "");
    }
    const t = runningTimeout(doc);
    timeoutBanner.hidden = !t;
    timeoutCall.hidden = !!t || !isLesson(phase?.id) || !doc.timeouts;
    if (t) {
      setAttr(timeoutBanner, "data-timeout-id", t.id);
      setText(timeoutCaller, t.calledById === deviceId ? "called by you" : `called by ${t.calledBy || "someone"}`);
      setText(timeoutTimer, formatTimer(now - t.startedAt));
      timeoutEnd.hidden = !canEndTimeout(t, deviceId, lab?.conn.role ?? "");
    }
    const agreements = phase?.id === "lesson-2" ? agreementsOf(doc, "debrief-1") : [];
    carried.hidden = agreements.length === 0;
    const key = JSON.stringify(agreements.map((a) => [a.id, a.text, a.owner]));
    if (carriedList.dataset.key !== key) {
      carriedList.dataset.key = key;
      replace(
        carriedList,
        ...agreements.map((a) =>
          h("li", { class: "carried-item", testid: "agreement-item", "data-agreement-id": a.id }, a.text, a.owner ? h("span", { class: "carried-owner" }, ` — ${a.owner}`) : null),
        ),
      );
    }
  };

  const renderChips = () => {
    const key = JSON.stringify(categories);
    if (!categories.some((c) => c.id === selected)) selected = categories[0]?.id;
    if (key !== categoriesKey) {
      categoriesKey = key;
      replace(
        chips,
        ...categories.map((c) => {
          const chip = h("button", { type: "button", class: "chip", testid: "category-chip", "data-category": c.id, "aria-pressed": "false" }, h("span", { class: "chip-dot", "aria-hidden": "true" }), c.label);
          chip.style.setProperty("--cat", c.color);
          chip.addEventListener("click", () => {
            selected = c.id;
            store.setLastCategory(labId, c.id);
            renderChips();
          });
          return chip;
        }),
      );
    }
    for (const chip of chips.querySelectorAll<HTMLButtonElement>(".chip")) {
      setAttr(chip, "aria-pressed", String(chip.dataset.category === selected));
    }
  };

  const items = new Map<string, FeedItem>();
  const makeItem = (n: Note): FeedItem => {
    const meta = h("span", { class: "feed-meta-text" });
    const time = h("time", { class: "feed-time" });
    const badge = h("span", { class: "badge" });
    const body = h("p", { class: "note-body", testid: "note-body" }, n.text);
    const marker = h("span", { class: "timeout-marker", testid: "note-timeout-marker", hidden: true }, "T · during a time-out");
    const edited = h("span", { class: "edited", hidden: true }, "edited");
    const kids = h("span", { class: "note-children", testid: "note-children", hidden: true });
    const reactCount = h("span", { class: "react-count", testid: "note-react-count" }, "0");
    const react = h("button", { type: "button", class: "btn-react", testid: "note-react", "aria-pressed": "false" }, h("span", {}, "I saw that too"), reactCount);
    const edit = h("button", { type: "button", class: "btn-note", testid: "note-edit", hidden: true }, "Edit");
    const del = h("button", { type: "button", class: "btn-note btn-note-danger", testid: "note-delete", hidden: true }, "Delete");
    const editText = h("textarea", { class: "note-input note-edit-input", testid: "note-edit-text", rows: 3, maxlength: MAX_NOTE_CHARS, "aria-label": "Edit your note" });
    const save = h("button", { type: "button", class: "btn btn-primary btn-small", testid: "note-edit-save" }, "Save");
    const cancel = h("button", { type: "button", class: "btn btn-small", testid: "note-edit-cancel" }, "Cancel");
    const editor = h("div", { class: "note-editor", hidden: true }, editText, h("div", { class: "note-editor-buttons" }, save, cancel));
    const li = h(
      "li",
      { class: "feed-note", testid: "feed-note", "data-note-id": n.id },
      h("div", { class: "feed-meta" }, h("span", { class: "chip-dot", "aria-hidden": "true" }), meta, time, badge),
      body,
      editor,
      h("div", { class: "feed-flags" }, kids, marker, edited),
      h("div", { class: "feed-actions" }, react, edit, del),
    );
    const item: FeedItem = { li, meta, time, badge, body, marker, edited, kids, react, reactCount, edit, del, editor, editText, armedAt: 0, editing: false };
    const stopEditing = () => {
      item.editing = false;
      editor.hidden = true;
      body.hidden = false;
      render();
    };
    react.addEventListener("click", () => {
      lab?.conn.run((d, now) => toggleReaction(d, n.id, deviceId, now));
      render();
    });
    edit.addEventListener("click", () => {
      item.editing = true;
      editText.value = body.textContent ?? "";
      editor.hidden = false;
      body.hidden = true;
      editText.focus();
      render();
    });
    cancel.addEventListener("click", stopEditing);
    save.addEventListener("click", () => {
      const text = cleanNoteText(editText.value);
      if (!text) return;
      lab?.conn.run((d, now, scalar) => editNote(d, n.id, deviceId, text, now, scalar));
      stopEditing();
    });
    del.addEventListener("click", () => {
      if (Date.now() - item.armedAt > 4_000) {
        item.armedAt = Date.now();
        render();
        setTimeout(render, 4_100);
        return;
      }
      lab?.conn.run((d) => deleteNote(d, n.id, deviceId));
      render();
    });
    return item;
  };

  const renderFeed = (notes: Note[], waiting: Set<string>) => {
    const byId = new Map(categories.map((c) => [c.id, c]));
    const seen = new Set<string>();
    let prev: Element | null = null;
    for (const n of notes) {
      seen.add(n.id);
      let item = items.get(n.id);
      if (!item) {
        item = makeItem(n);
        items.set(n.id, item);
      }
      const cat = byId.get(n.category);
      item.li.style.setProperty("--cat", cat?.color ?? "#64748b");
      const mine = n.authorId === deviceId;
      setText(item.meta, `${cat?.label ?? "Other"} · ${mine ? "you" : n.authorName || "someone"}`);
      setText(item.time, formatTime(n.createdAt));
      setAttr(item.time, "datetime", new Date(n.createdAt || 0).toISOString());
      const status = waiting.has(n.id) ? "waiting" : "synced";
      setAttr(item.li, "data-status", status);
      item.li.classList.toggle("is-mine", mine);
      setText(item.badge, mine ? (status === "waiting" ? "waiting" : "sent ✓") : "");
      item.badge.hidden = !mine;
      if (!item.editing) setText(item.body, n.text);
      item.marker.hidden = !n.timeoutId;
      item.edited.hidden = n.editedAt === undefined;
      item.kids.hidden = n.children.length === 0;
      setText(item.kids, n.children.join(", "));
      const reaction = reactionState(n, deviceId);
      setText(item.reactCount, String(reaction.count));
      setAttr(item.react, "aria-pressed", String(reaction.mine));
      setAttr(item.react, "data-count", String(reaction.count));
      item.react.disabled = !reaction.possible;
      item.edit.hidden = !mine || item.editing;
      item.del.hidden = !mine || item.editing;
      const armed = Date.now() - item.armedAt <= 4_000;
      setText(item.del, armed ? "Tap again to delete" : "Delete");
      item.del.classList.toggle("is-armed", armed);
      // Keep DOM order = notes order, moving only what is out of place.
      const want: Element | null = prev ? prev.nextElementSibling : feedList.firstElementChild;
      if (want !== item.li) feedList.insertBefore(item.li, want);
      prev = item.li;
    }
    for (const [id, item] of items) {
      if (!seen.has(id)) {
        item.li.remove();
        items.delete(id);
      }
    }
    setText(feedCount, notes.length ? `(${notes.length})` : "");
    feedEmpty.hidden = notes.length > 0;
    setText(feedEmpty, "No notes yet. Yours will be the first.");
  };

  const render = () => {
    if (!lab) return;
    const online = lab.conn.socket.online;
    setAttr(connection, "data-state", online ? "online" : "offline");
    setText(connection, online ? "Online" : navigator.onLine ? "Offline · reconnecting" : "Offline");
    const doc = lab.conn.doc();
    if (!doc) return;
    const info = readLab(doc);
    if (info.title) {
      setText(title, info.title);
      document.title = `${info.title} · Labboard`;
    }
    categories = readCategories(doc);
    renderChips();
    renderChildren(doc as DebriefDoc);
    const waiting = lab.conn.waiting();
    setText(pendingCount, String(waiting.size));
    setAttr(pending, "data-count", String(waiting.size));
    setText(statusLine, statusText(waiting.size, online, Date.now() - lastSentAt < 6_000));
    renderRun(doc as RunDoc);
    // Notes the facilitator hid stay in the document but leave the phones' feeds.
    renderFeed(visibleNotes(readNotes(doc), false), waiting);
    updateSend();
  };

  const ui = {
    render,
    status: (message: string | undefined) => {
      setText(feedEmpty, message ?? "");
      feedEmpty.hidden = !message;
    },
  };

  lab = await openLab(ctx, labId, ui, isAlive);
  if (!lab) return () => undefined;
  const opened = lab;
  textarea.disabled = false;
  render();
  markReady();

  // If notes wait while we look connected, the socket may be silently dead: replace it.
  const watchdog = setInterval(() => {
    const c = opened.conn;
    if (c.socket.online && c.waiting().size > 0 && Date.now() - c.lastProgressAt > 20_000) {
      c.lastProgressAt = Date.now();
      c.socket.nudge(true);
    }
    render(); // connection text, relative state
  }, 5_000);

  // The time-out timer and the lesson minute count by the second.
  const clock = setInterval(() => {
    const doc = opened.conn.doc();
    if (doc) renderRun(doc as RunDoc);
  }, 1_000);

  return () => {
    clearInterval(clock);
    clearInterval(watchdog);
    void opened.conn.close();
  };
}
