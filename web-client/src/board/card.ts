// One note on the board: made once per note id and updated in place by every view (columns,
// timeline, by child, clusters), so a card is never rebuilt under a finger or a drag.
//
// - A phase tag says which phase (lesson) the note is from.
// - Long text is clamped to a few lines; a visible "more" opens the whole note in focus.
// - The tools sit behind one visible "⋯" button in the card's footer (no strip of invisible
//   buttons): it opens a small menu — pin, highlight, hide, show full screen, move to a cluster or
//   take out of one. The card itself does nothing when tapped, so a tap on its blank area cannot
//   hide or focus anything by accident.
// - Hide, unpin and take-out-of-cluster show the undo toast.
// - The note's photos sit under its text as thumbnails (board/notephotos.ts); each opens full
//   size. The facilitator hides one from the menu ("Hide this photo") or the full-size view.

import type { Category, Note } from "../board";
import { formatTime } from "../board";
import type { Cluster } from "../debrief";
import { h, setAttr, setText } from "../dom";
import { notePhotos, visiblePhotos } from "./notephotos";
import { hidePhoto, once, setCluster, setFlag } from "./undoable";
import type { ViewContext } from "./view";

export const NOTE_TYPE = "application/x-labboard-note";

export interface CardInfo {
  note: Note;
  category: Category | undefined;
  /** The label of the note's phase ("Lesson 1"), or "" for a note written before any phase. */
  phaseLabel: string;
  clusters: Cluster[];
  /** Show the category in the meta line (views that do not group by category). */
  showCategory: boolean;
  /** Let the facilitator drag it (the clusters view). */
  draggable: boolean;
}

export interface Card {
  el: HTMLLIElement;
  update(info: CardInfo): void;
  destroy(): void;
}

// One menu open at a time on the whole board.
let openMenu: { close(returnFocus: boolean): void; el: HTMLElement; menu: HTMLElement } | undefined;
document.addEventListener("pointerdown", (e) => {
  const target = e.target as Node | null;
  if (openMenu && !openMenu.el.contains(target) && !openMenu.menu.contains(target)) openMenu.close(false);
});

/** Closes whatever note menu is open (a page that unmounts calls this: the menu lives in body). */
export function closeNoteMenu(): void {
  openMenu?.close(false);
}

// One observer for every card's text: a clamped text whose box changes is measured again.
const measured = new WeakMap<Element, () => void>();
const resizes = new ResizeObserver((entries) => {
  for (const e of entries) measured.get(e.target)?.();
});

export function noteCard(ctx: ViewContext, testid: string, first: Note): Card {
  let note = first;
  let info: CardInfo | undefined;
  const phase = h("span", { class: "note-phase", testid: "note-phase" });
  const flags = h("span", { class: "board-note-flags", testid: "board-note-flags", hidden: true });
  const body = h("p", { class: "note-body", testid: "note-body" });
  const more = h("button", { type: "button", class: "note-more", testid: "note-more", hidden: true }, "more");
  const metaAuthor = h("span", { class: "meta-author" });
  const metaTime = h("span", { class: "meta-time" });
  const metaMinute = h("span", { class: "meta-minute" });
  const metaCategory = h("span", { class: "meta-category" });
  const meta = h("p", { class: "board-note-meta" }, metaCategory, metaAuthor, metaTime, metaMinute);
  const kids = h("span", { class: "board-note-children", testid: "board-note-children", hidden: true });
  const cluster = h("span", { class: "board-note-cluster", testid: "board-note-cluster", hidden: true });
  const timeout = h("span", { class: "timeout-marker", testid: "board-note-timeout", hidden: true }, "T time-out");
  const reactions = h("span", { class: "board-reactions", testid: "board-note-reactions", title: "People who saw that too", hidden: true });

  // The menu.
  const menuButton = h("button", { type: "button", class: "note-menu-button", testid: "note-tools-open", "aria-haspopup": "true", "aria-expanded": "false" }, h("span", { "aria-hidden": "true" }, "⋯"));
  const pin = h("button", { type: "button", class: "note-tool", testid: "note-pin", "aria-pressed": "false" }, "Pin");
  const highlight = h("button", { type: "button", class: "note-tool", testid: "note-highlight", "aria-pressed": "false" }, "Highlight");
  const hide = h("button", { type: "button", class: "note-tool", testid: "note-hide", "aria-pressed": "false" }, "Hide");
  const focus = h("button", { type: "button", class: "note-tool", testid: "note-focus" }, "Show full screen");
  const moveTo = h("select", { class: "cluster-move", testid: "note-move" });
  const moveLabel = h("label", { class: "note-menu-move" }, h("span", {}, "Cluster"), moveTo);
  const takeOut = h("button", { type: "button", class: "note-tool", testid: "note-uncluster", hidden: true }, "Take out of cluster");
  // "Hide this photo" (or "Hide photo 2" when the note shows several), one per shown photo.
  const photoTools = h("div", { class: "note-menu-photos", hidden: true });
  const menu = h("div", { class: "note-menu", testid: "note-menu", role: "group", "data-note-id": first.id, hidden: true }, pin, highlight, hide, focus, photoTools, moveLabel, takeOut);
  const photos = notePhotos(ctx, first);

  const foot = h("div", { class: "board-note-foot" }, phase, meta, kids, cluster, timeout, reactions, menuButton);
  // "more" sits on the end of the clamped text's last line, so it costs no line of its own.
  const el = h("li", { class: "board-note", testid, "data-note-id": first.id }, flags, h("div", { class: "note-text" }, body, more), photos.el, photos.hiddenButton, foot);
  el.addEventListener("animationend", () => el.classList.remove("is-new"));

  // While open, the menu lives at the end of the page, fixed under (or over) its button: inside
  // the presenter's newspaper columns any box of the card is split across two columns.
  const place = () => {
    const b = menuButton.getBoundingClientRect();
    const m = menu.getBoundingClientRect();
    const below = b.bottom + 4;
    const top = below + m.height <= window.innerHeight - 8 ? below : Math.max(8, b.top - 4 - m.height);
    menu.style.top = `${Math.round(top)}px`;
    menu.style.left = `${Math.round(Math.max(8, Math.min(b.right - m.width, window.innerWidth - m.width - 8)))}px`;
  };
  const onScroll = () => place();
  const closeMenu = (returnFocus: boolean) => {
    if (menu.hidden) return;
    window.removeEventListener("scroll", onScroll, true);
    window.removeEventListener("resize", onScroll);
    menu.hidden = true;
    menu.remove();
    setAttr(menuButton, "aria-expanded", "false");
    el.classList.remove("has-menu");
    if (openMenu?.el === el) openMenu = undefined;
    if (returnFocus) menuButton.focus();
  };
  const openMenuHere = () => {
    openMenu?.close(false);
    document.body.append(menu);
    menu.hidden = false;
    place();
    window.addEventListener("scroll", onScroll, { capture: true, passive: true });
    window.addEventListener("resize", onScroll);
    setAttr(menuButton, "aria-expanded", "true");
    el.classList.add("has-menu");
    openMenu = { el, menu, close: closeMenu };
    (menu.querySelector("button:not([hidden])") as HTMLButtonElement | null)?.focus();
  };
  menuButton.addEventListener("click", () => (menu.hidden ? openMenuHere() : closeMenu(true)));
  menu.addEventListener("keydown", (e) => {
    if (e.key === "Escape") {
      e.preventDefault();
      e.stopPropagation();
      closeMenu(true);
    }
  });

  const flag = (b: HTMLButtonElement, f: "pinned" | "highlighted" | "hidden") => {
    b.addEventListener("click", () => {
      const on = !note[f];
      closeMenu(true);
      const short = shortText(note.text);
      if (f === "hidden" && on) ctx.changeWithUndo(`Hidden from every phone: “${short}”`, setFlag(note.id, f, on));
      else if (f === "pinned" && !on) ctx.changeWithUndo(`Unpinned: “${short}”`, setFlag(note.id, f, on));
      else ctx.change(once(setFlag(note.id, f, on)));
    });
  };
  flag(pin, "pinned");
  flag(highlight, "highlighted");
  flag(hide, "hidden");
  focus.addEventListener("click", () => {
    closeMenu(false);
    ctx.openFocus(note.id, menuButton);
  });
  more.addEventListener("click", () => ctx.openFocus(note.id, more));
  moveTo.addEventListener("change", () => {
    const target = moveTo.value || undefined;
    closeMenu(true);
    if (target === undefined) ctx.changeWithUndo(`Taken out of its cluster: “${shortText(note.text)}”`, setCluster(note.id, undefined));
    else ctx.change(once(setCluster(note.id, target)));
  });
  takeOut.addEventListener("click", () => {
    closeMenu(true);
    ctx.changeWithUndo(`Taken out of its cluster: “${shortText(note.text)}”`, setCluster(note.id, undefined));
  });

  // Drag (mouse) in the clusters view; the menu's "Cluster" does the same by touch or keyboard.
  el.addEventListener("dragstart", (e) => {
    if (!info?.draggable) return;
    e.dataTransfer?.setData(NOTE_TYPE, note.id);
    e.dataTransfer?.setData("text/plain", note.text);
    if (e.dataTransfer) e.dataTransfer.effectAllowed = "move";
    el.classList.add("is-dragging");
  });
  el.addEventListener("dragend", () => el.classList.remove("is-dragging"));

  // "more" shows only when the clamp cuts the text.
  const measure = () => {
    more.hidden = body.scrollHeight <= body.clientHeight + 1;
  };
  measured.set(body, measure);
  resizes.observe(body);

  let clusterKey = "";
  let photoKey = "";
  const update = (i: CardInfo) => {
    info = i;
    const n = i.note;
    note = n;
    const facilitator = ctx.isFacilitator();
    // A note written before the facilitator started any phase has none to show.
    setText(phase, i.phaseLabel);
    phase.hidden = i.phaseLabel === "";
    setAttr(el, "data-phase", n.phase ?? "");
    const textChanged = body.textContent !== n.text;
    setText(body, n.text);
    if (textChanged) requestAnimationFrame(measure);
    setText(metaCategory, i.showCategory ? i.category?.label ?? "" : "");
    setText(metaAuthor, n.authorName);
    setText(metaTime, formatTime(n.createdAt));
    setText(metaMinute, n.minute !== undefined ? `min ${n.minute}` : "");
    el.style.setProperty("--cat", i.category?.color ?? "#64748b");
    kids.hidden = n.children.length === 0;
    setText(kids, n.children.join(", "));
    const inCluster = n.clusterId !== undefined ? i.clusters.find((c) => c.id === n.clusterId) : undefined;
    cluster.hidden = !inCluster;
    setText(cluster, inCluster?.label ?? "");
    const count = n.reactions?.length ?? 0;
    setText(reactions, `+${count} saw it too`);
    setAttr(reactions, "data-count", String(count));
    reactions.hidden = count === 0;
    timeout.hidden = !n.timeoutId;
    if (n.timeoutId) setAttr(timeout, "data-timeout-id", n.timeoutId);
    for (const [f, b] of [["pinned", pin], ["highlighted", highlight], ["hidden", hide]] as const) {
      setAttr(el, `data-${f}`, String(!!n[f]));
      setAttr(b, "aria-pressed", String(!!n[f]));
    }
    setText(pin, n.pinned ? "Unpin" : "Pin");
    setText(highlight, n.highlighted ? "Remove highlight" : "Highlight");
    setText(hide, n.hidden ? "Show on phones" : "Hide from phones");
    el.classList.toggle("is-pinned", !!n.pinned);
    el.classList.toggle("is-highlighted", !!n.highlighted);
    el.classList.toggle("is-hidden", !!n.hidden);
    setText(flags, [n.pinned ? "Pinned" : "", n.hidden ? "Hidden from phones" : ""].filter(Boolean).join(" · "));
    flags.hidden = !n.pinned && !n.hidden;
    setAttr(menuButton, "aria-label", `Actions for the note: ${shortText(n.text)}`);
    setAttr(menu, "aria-label", `Actions for the note: ${shortText(n.text)}`);
    setAttr(more, "aria-label", `more: the whole note “${shortText(n.text)}”`);
    for (const b of [pin, highlight, hide]) b.hidden = !facilitator;
    photos.update(n);
    const shown = facilitator ? visiblePhotos(n) : [];
    const pk = shown.map((p) => p.id).join(",");
    photoTools.hidden = shown.length === 0;
    if (pk !== photoKey) {
      photoKey = pk;
      photoTools.replaceChildren(
        ...shown.map((p, i) => {
          const b = h("button", { type: "button", class: "note-tool", testid: "note-hide-photo", "data-photo-id": p.id }, shown.length === 1 ? "Hide this photo" : `Hide photo ${i + 1}`);
          b.addEventListener("click", () => {
            closeMenu(true);
            ctx.changeWithUndo(`Photo hidden from the board: “${shortText(note.text)}”`, hidePhoto(note.id, p.id, true));
          });
          return b;
        }),
      );
    }
    moveLabel.hidden = !facilitator || i.clusters.length === 0;
    takeOut.hidden = !facilitator || !inCluster;
    const draggable = i.draggable && facilitator;
    if (draggable) setAttr(el, "draggable", "true");
    else el.removeAttribute("draggable");
    const k = JSON.stringify([i.clusters.map((c) => [c.id, c.label]), inCluster?.id]);
    if (k !== clusterKey && facilitator) {
      clusterKey = k;
      moveTo.replaceChildren(
        h("option", { value: "", selected: !inCluster }, inCluster ? "Take out of cluster" : "Move to cluster…"),
        ...i.clusters.map((c) => h("option", { value: c.id, selected: c.id === inCluster?.id }, c.label)),
      );
    }
  };

  return {
    el,
    update,
    destroy() {
      resizes.unobserve(body);
      closeMenu(false);
      photos.destroy();
    },
  };
}

/** The start of a note, for messages and labels. */
export function shortText(text: string): string {
  const clean = text.replace(/\s+/g, " ").trim();
  const chars = [...clean];
  return chars.length <= 40 ? clean : `${chars.slice(0, 38).join("")}…`;
}
