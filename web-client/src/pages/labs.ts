// `/labs`: the facilitator's home page. With the organizer token (from `#organizer=…`) it lists
// every lab on the server; otherwise the labs this device signed in to as facilitator. Each lab
// shows its details, phones, notes and state, and offers its board, record, exports, End and
// Delete (both confirmed in a dialog on the page).

import { api, ApiError, type LabSummary } from "../api";
import { downloadExport } from "../download";
import { h, markReady, replace } from "../dom";
import { EXPORTS, chooseListing, deleteText, detailsParts, notesText, plural, stateText } from "../home";
import type { PageContext } from "../main";
import { organizerFromHash } from "../routes";
import { photoQueue } from "../photoqueue";
import { store, type LabAccess } from "../store";
import { confirmDialog } from "../views/confirm";
import { renewFacilitator } from "../renew";

/** One lab as the page shows it: its summary and the token its actions use, or why not. */
type Entry =
  | { kind: "lab"; lab: LabSummary; token: string }
  | { kind: "signed-out"; access: LabAccess }
  | { kind: "gone"; access: LabAccess }
  | { kind: "unreachable"; access: LabAccess; message: string };


/** A lab this device signed in to: its summary, renewing an expired sign-in silently. */
async function facilitatorEntry(access: LabAccess): Promise<Entry> {
  let current: LabAccess | undefined = access;
  if (!current.token) current = await renewFacilitator(current);
  for (let attempt = 0; current?.token && attempt < 2; attempt++) {
    const token: string = current.token;
    try {
      return { kind: "lab", lab: await api.getLab(access.labId, token), token };
    } catch (e) {
      if (!(e instanceof ApiError)) return { kind: "unreachable", access, message: "Something went wrong. Try again." };
      if (e.status === 404) return { kind: "gone", access };
      if (e.status !== 401) return { kind: "unreachable", access, message: e.message };
      store.dropToken(access.labId);
      current = attempt === 0 ? await renewFacilitator(current) : undefined;
    }
  }
  return { kind: "signed-out", access: store.lab(access.labId) ?? access };
}

export function mountLabs(ctx: PageContext, isAlive: () => boolean): () => void {
  document.title = "Your labs · Labboard";
  const fromHash = organizerFromHash(location.hash);
  if (fromHash) {
    store.setOrganizerToken(fromHash);
    // Keep the token out of the address bar, the history and screenshots of the screen.
    history.replaceState(history.state, "", location.pathname + location.search);
  }

  const status = h("p", { class: "hint", role: "status", testid: "labs-status" }, "Loading your labs…");
  const list = h("ul", { class: "home-list", testid: "labs-list", "aria-labelledby": "labs-heading" });
  const tagline = h("p", { class: "tagline" });
  const newLab = h("a", { href: "/new", class: "btn btn-small", testid: "labs-new", hidden: true }, "New lab");
  const main = h(
    "main",
    { class: "page page-home" },
    h(
      "header",
      { class: "home-header" },
      h("div", { class: "brand" }, h("h1", { id: "labs-heading" }, "Your labs"), tagline),
      h("nav", { class: "home-nav", "aria-label": "Labboard" }, newLab, h("a", { href: "/", class: "btn btn-small" }, "Join a lab")),
    ),
    status,
    list,
  );

  // The confirmation dialog of End and Delete, one for the page.
  const dialog = confirmDialog("labs-dialog");
  const ask = dialog.ask;

  replace(ctx.root, main, dialog.element);

  /** Why an action failed, in words for the facilitator. */
  const actionError = (e: unknown): Error => {
    if (!(e instanceof ApiError)) return new Error("Something went wrong. Try again.");
    if (e.status === 401) return new Error("Your sign-in is no longer accepted. Sign in again, then try once more.");
    if (e.status === 404) return new Error("This lab is no longer on the server.");
    return new Error(e.message);
  };

  const card = (entry: Entry): HTMLLIElement => {
    if (entry.kind !== "lab") {
      const { access } = entry;
      const title = access.title || access.labId;
      const forget = h("button", { type: "button", class: "btn btn-small" }, "Remove from this list");
      forget.addEventListener("click", () => {
        store.forgetLab(access.labId);
        // The lab's photos kept on this device go with it.
        void photoQueue.forgetLab(access.labId).catch(() => undefined);
        void load();
      });
      const body =
        entry.kind === "signed-out"
          ? [
              h("p", { class: "home-state home-state-warn", testid: "lab-signed-out" }, "Sign in again"),
              h("p", { class: "hint" }, "This device's sign-in to the lab has expired. Open the board with the lab id and facilitator key on the start page."),
              h("div", { class: "home-actions" }, h("a", { href: "/", class: "btn btn-small" }, "Sign in"), forget),
            ]
          : entry.kind === "gone"
            ? [
                h("p", { class: "home-state home-state-warn", testid: "lab-gone" }, "No longer on the server"),
                h("p", { class: "hint" }, "It was deleted, by hand or after its retention."),
                h("div", { class: "home-actions" }, forget),
              ]
            : [
                h("p", { class: "error", role: "alert" }, entry.message),
                h(
                  "div",
                  { class: "home-actions" },
                  (() => {
                    const again = h("button", { type: "button", class: "btn btn-small" }, "Try again");
                    again.addEventListener("click", () => void load());
                    return again;
                  })(),
                ),
              ];
      return h("li", { class: "card home-lab", testid: "lab-card", "data-lab-id": access.labId }, h("h2", { class: "home-title" }, title), ...body);
    }

    const { lab, token } = entry;
    const cardError = h("p", { class: "error", role: "alert", testid: "lab-error", hidden: true });
    const showError = (text: string | undefined) => {
      cardError.textContent = text ?? "";
      cardError.hidden = !text;
    };
    const ended = lab.endedAt !== null;
    const details = detailsParts(lab);
    const deletion = deleteText(lab);

    const exportItems = EXPORTS.map((x) => {
      const btn = h("button", { type: "button", class: "home-menu-item", testid: "lab-export-item", "data-format": x.format, "data-table": x.table }, x.label);
      btn.addEventListener("click", async () => {
        showError(undefined);
        btn.disabled = true;
        const label = btn.textContent;
        btn.textContent = `${x.label}: downloading…`;
        try {
          await downloadExport(lab.labId, token, x.format, x.table);
          menu.open = false;
        } catch (e) {
          showError(`Could not download ${x.label}. ${e instanceof Error ? e.message : String(e)}`);
        } finally {
          btn.disabled = false;
          btn.textContent = label;
        }
      });
      return h("li", {}, btn);
    });
    const menu = h(
      "details",
      { class: "home-export", testid: "lab-export" },
      h("summary", { class: "btn btn-small" }, "Export"),
      h("ul", { class: "home-menu" }, ...exportItems),
    );

    const endBtn = ended ? null : h("button", { type: "button", class: "btn btn-small", testid: "lab-end" }, "End lab");
    endBtn?.addEventListener("click", () =>
      ask({
        title: `End “${lab.title}”?`,
        text: [
          "Nobody can add or change anything on the board afterwards, and the join code stops working. The board can still be read and exported.",
          "Ending a lab is for good.",
        ],
        confirm: "End the lab",
        danger: false,
        run: async () => {
          try {
            await api.endLab(lab.labId, token);
          } catch (e) {
            throw actionError(e);
          }
          await load();
        },
      }),
    );
    const deleteBtn = h("button", { type: "button", class: "btn btn-small btn-danger-outline", testid: "lab-delete" }, "Delete");
    deleteBtn.addEventListener("click", () =>
      ask({
        title: `Delete “${lab.title}”?`,
        text: [
          `Every note on its board${lab.notes ? ` (${plural(lab.notes, "note", "notes")})` : ""}, its time-outs, agreements and next steps are deleted from the server for good. This cannot be undone.`,
          "Export what you want to keep first. Copies on phones stay there until their browser data is cleared.",
        ],
        confirm: "Delete for good",
        danger: true,
        run: async () => {
          try {
            await api.deleteLab(lab.labId, token);
          } catch (e) {
            if (!(e instanceof ApiError && e.status === 404)) throw actionError(e);
          }
          store.forgetLab(lab.labId);
          await photoQueue.forgetLab(lab.labId).catch(() => undefined);
          await load();
        },
      }),
    );

    return h(
      "li",
      { class: "card home-lab", testid: "lab-card", "data-lab-id": lab.labId, "data-state": lab.state },
      h(
        "div",
        { class: "home-lab-head" },
        h("h2", { class: "home-title", testid: "lab-title" }, lab.title || lab.labId),
        h("p", { class: `home-state ${ended ? "home-state-ended" : "home-state-active"}`, testid: "lab-state" }, stateText(lab)),
      ),
      details.length
        ? h(
            "p",
            { class: "home-details", testid: "lab-details" },
            // Each part stays on one line; the line breaks between them.
            ...details.flatMap((part, i) => [i > 0 ? " · " : null, h("span", { class: "home-detail" }, part)]),
          )
        : null,
      h(
        "p",
        { class: "home-stats" },
        h("span", { testid: "lab-phones", "data-count": lab.phones }, plural(lab.phones, "phone", "phones")),
        h("span", { testid: "lab-notes", "data-count": lab.notes ?? "" }, notesText(lab)),
      ),
      deletion ? h("p", { class: "home-deletion", testid: "lab-delete-at" }, deletion) : null,
      cardError,
      h(
        "div",
        { class: "home-actions" },
        h(
          "div",
          { class: "home-actions-main" },
          h("a", { href: `/lab/${encodeURIComponent(lab.labId)}/board`, class: "btn btn-small btn-primary", testid: "lab-board" }, "Open board"),
          h("a", { href: `/lab/${encodeURIComponent(lab.labId)}/record`, class: "btn btn-small", testid: "lab-record" }, "Record"),
          menu,
        ),
        h("div", { class: "home-actions-manage" }, endBtn, deleteBtn),
      ),
    );
  };

  const emptyState = () =>
    h(
      "li",
      { class: "card stack home-empty", testid: "labs-empty" },
      h("h2", { class: "card-title" }, "No labs here yet"),
      h("p", {}, "Labs you create or open as facilitator on this device show up here."),
      h(
        "div",
        { class: "home-actions" },
        h("a", { href: "/", class: "btn btn-small" }, "Join a lab"),
        h("a", { href: "/new", class: "btn btn-small" }, "Create a lab"),
      ),
    );

  let loading = 0;
  /** Set once the server refused this device's organizer token. */
  let organizerRefused = false;
  async function load(): Promise<void> {
    const mine = ++loading;
    const current = () => mine === loading && isAlive();
    const listing = chooseListing(store.organizerToken(), store.recentLabs());
    let entries: Entry[];
    if (listing.kind === "organizer") {
      tagline.textContent = "Every lab on this server.";
      newLab.hidden = false;
      try {
        const labs = await api.listLabs(listing.token);
        entries = labs.map((lab) => ({ kind: "lab", lab, token: listing.token }));
      } catch (e) {
        if (!current()) return;
        if (e instanceof ApiError && e.status === 401) {
          // Not this server's organizer token (any more): list this device's labs instead.
          store.clearOrganizerToken();
          organizerRefused = true;
          return load();
        }
        status.textContent = e instanceof ApiError ? e.message : "Something went wrong. Try again.";
        markReady();
        return;
      }
    } else {
      tagline.textContent = "The labs you run from this device.";
      newLab.hidden = true;
      entries = await Promise.all(listing.labs.map(facilitatorEntry));
      entries.sort((a, b) => (b.kind === "lab" ? b.lab.createdAt : 0) - (a.kind === "lab" ? a.lab.createdAt : 0));
    }
    if (!current()) return;
    const count = entries.filter((e) => e.kind === "lab").length;
    status.textContent = [
      organizerRefused ? "The server no longer accepts this device's organizer link, so only the labs you signed in to here are listed." : "",
      entries.length === 0 ? "" : `${plural(count, "lab", "labs")}.`,
    ]
      .filter(Boolean)
      .join(" ");
    replace(list, ...(entries.length ? entries.map(card) : [emptyState()]));
    markReady();
  }

  // An open Export menu closes on a click elsewhere and on Escape, like any menu.
  const closeMenus = (keep?: Element | null) => {
    for (const open of main.querySelectorAll<HTMLDetailsElement>("details.home-export[open]")) {
      if (open !== keep) open.open = false;
    }
  };
  const onClick = (e: MouseEvent) => closeMenus((e.target as Element | null)?.closest?.("details.home-export"));
  const onKey = (e: KeyboardEvent) => {
    if (e.key !== "Escape" || dialog.element.open) return;
    const open = main.querySelector<HTMLDetailsElement>("details.home-export[open]");
    if (!open) return;
    open.open = false;
    open.querySelector("summary")?.focus();
  };
  document.addEventListener("click", onClick);
  document.addEventListener("keydown", onKey);

  void load();
  return () => {
    loading++;
    document.removeEventListener("click", onClick);
    document.removeEventListener("keydown", onKey);
    if (dialog.element.open) dialog.element.close();
  };
}
