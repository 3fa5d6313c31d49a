// The lab's record (`/lab/{labId}/record`), for the facilitator or the organizer: the server
// writes it as one self-contained HTML page (the `html` export); this page fetches it with the
// stored credentials, shows it in place of the app's own styles, and offers Print and Download.
// The bar with those buttons is left out of print. The app's own stylesheets are off meanwhile.

import { ApiError, UNREACHABLE } from "../api";
import { h, markReady, replace } from "../dom";
import { exportPath, filenameFromDisposition, saveBlob } from "../download";
import type { PageContext } from "../main";
import { renewFacilitator } from "../renew";
import { store } from "../store";

/** The reader's time zone as minutes east of UTC, as the export's `utcOffset` takes it. */
export function utcOffsetMinutes(date = new Date()): number {
  const offset = -date.getTimezoneOffset();
  return offset === 0 ? 0 : offset;
}

/** What to say when the record could not be fetched. */
export function recordErrorText(status: number, message: string): string {
  switch (status) {
    case 0:
      return UNREACHABLE;
    case 401:
      return "Your facilitator sign-in for this lab has ended. Open the lab's board and sign in again with the facilitator key.";
    case 403:
      return "Only the lab's facilitator (or the organizer) can open its record.";
    case 404:
      return "There is no such lab: it may have been deleted.";
    default:
      return message;
  }
}

/** The record's one `<style>` element's text, and the page without it. */
export function splitStyle(page: string): { css: string; html: string } {
  const open = page.indexOf("<style>");
  const close = page.indexOf("</style>", open);
  if (open < 0 || close < 0) return { css: "", html: page };
  return { css: page.slice(open + "<style>".length, close), html: page.slice(0, open) + page.slice(close + "</style>".length) };
}

interface Fetched {
  html: string;
  fileName: string;
}

async function fetchRecord(labId: string, token: string): Promise<Fetched> {
  const path = exportPath(labId, "html", undefined, utcOffsetMinutes());
  let res: Response;
  try {
    res = await fetch(path, { headers: { Authorization: `Bearer ${token}` }, cache: "no-store", credentials: "omit" });
  } catch {
    throw new ApiError(UNREACHABLE, 0);
  }
  const text = await res.text().catch(() => "");
  if (!res.ok) {
    let message = `The server answered ${res.status}. Try again.`;
    try {
      const err = (JSON.parse(text) as { error?: unknown }).error;
      if (typeof err === "string" && err) message = err;
    } catch {
      /* not JSON: keep the generic words */
    }
    throw new ApiError(message, res.status);
  }
  return { html: text, fileName: filenameFromDisposition(res.headers.get("Content-Disposition"), `lab-${labId}-record.html`) };
}


/** The record with this device's facilitator token for the lab, renewed once if it expired, or the organizer's. */
async function loadRecord(labId: string): Promise<Fetched> {
  const access = store.lab(labId);
  const organizer = store.organizerToken();
  if (access?.role === "facilitator") {
    let token = access.token ?? (await renewFacilitator(access))?.token;
    if (token) {
      try {
        return await fetchRecord(labId, token);
      } catch (e) {
        if (!(e instanceof ApiError && e.status === 401)) throw e;
        store.dropToken(labId);
        token = (await renewFacilitator(access))?.token;
        if (token) return await fetchRecord(labId, token);
        if (!organizer) throw e;
      }
    }
  }
  if (organizer) return fetchRecord(labId, organizer);
  throw new ApiError("", 403);
}

const BAR_STYLE = `
.record-bar { position: sticky; top: 0; z-index: 1; display: flex; flex-wrap: wrap; gap: .5rem; align-items: center;
  padding: .6rem 1rem; background: #16181d; color: #fff; font: 600 1rem/1.2 system-ui, sans-serif; }
.record-bar .spacer { flex: 1; }
.record-bar a, .record-bar button { font: inherit; min-height: 44px; padding: .55rem 1rem; border-radius: 8px;
  border: 2px solid #fff; background: transparent; color: #fff; text-decoration: none; cursor: pointer; display: inline-flex; align-items: center; }
.record-bar button.primary { background: #fff; color: #16181d; }
.record-bar a:focus-visible, .record-bar button:focus-visible { outline: 3px solid #ffd54a; outline-offset: 2px; }
.record-message { max-width: 40rem; margin: 3rem auto; padding: 0 1.5rem; font: 1.1rem/1.5 system-ui, sans-serif; }
@media (max-width: 30rem) {
  .record-bar { position: static; gap: .4rem; padding: .5rem .6rem; font-size: .95rem; }
  .record-bar a, .record-bar button { padding: .5rem .65rem; }
  .record-bar .spacer { display: none; }
}
@media print { .record-bar { display: none !important; } }
`;

/** Turns the app's own stylesheets off while the record shows, and back on when it goes. */
function isolateStyles(): () => void {
  const sheets = [...document.querySelectorAll<HTMLLinkElement | HTMLStyleElement>('link[rel="stylesheet"], style')].filter((el) => !el.disabled);
  for (const el of sheets) el.disabled = true;
  const theme = document.documentElement.dataset.theme;
  delete document.documentElement.dataset.theme;
  return () => {
    for (const el of sheets) el.disabled = false;
    if (theme !== undefined) document.documentElement.dataset.theme = theme;
  };
}

export async function mountRecord(ctx: PageContext, labId: string, isAlive: () => boolean): Promise<() => void> {
  document.title = "Lab record · Labboard";
  const restore = isolateStyles();
  // Constructed sheets: the page's Content-Security-Policy allows no inline <style>, and the
  // record's style comes with it, from the server.
  const sheets: CSSStyleSheet[] = [];
  const addStyle = (css: string) => {
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(css);
    sheets.push(sheet);
    document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];
  };
  addStyle(BAR_STYLE);
  const cleanup = () => {
    document.adoptedStyleSheets = document.adoptedStyleSheets.filter((s) => !sheets.includes(s));
    restore();
  };
  const boardLink = h("a", { href: `/lab/${encodeURIComponent(labId)}/board` }, "Board");
  replace(ctx.root, h("p", { class: "record-message", role: "status" }, "Loading the record…"));

  let fetched: Fetched;
  try {
    fetched = await loadRecord(labId);
  } catch (e) {
    if (!isAlive()) return cleanup;
    const status = e instanceof ApiError ? e.status : 500;
    const message = e instanceof Error ? e.message : String(e);
    replace(
      ctx.root,
      h("nav", { class: "record-bar", "aria-label": "Record" }, boardLink),
      h(
        "main",
        { class: "record-message" },
        h("h1", {}, "The record could not be opened"),
        h("p", { class: "error", testid: "record-error" }, recordErrorText(status, message)),
      ),
    );
    markReady();
    return cleanup;
  }
  if (!isAlive()) return cleanup;

  // The style is taken out before the page is parsed, so that no inline <style> meets the
  // page's Content-Security-Policy; every text of the board in the page is escaped.
  const { css, html } = splitStyle(fetched.html);
  addStyle(css);
  const doc = new DOMParser().parseFromString(html, "text/html");
  document.title = doc.title || document.title;
  const record = doc.querySelector("main.record");

  const print = h("button", { type: "button", class: "primary", testid: "record-print" }, "Print");
  print.addEventListener("click", () => window.print());
  const download = h("button", { type: "button", testid: "record-download" }, "Download");
  download.addEventListener("click", () => saveBlob(new Blob([fetched.html], { type: "text/html;charset=utf-8" }), fetched.fileName));
  const bar = h(
    "nav",
    { class: "record-bar", "aria-label": "Record" },
    boardLink,
    h("a", { href: "/labs" }, "Your labs"),
    h("span", { class: "spacer" }),
    download,
    print,
  );
  replace(ctx.root, bar, record ? document.importNode(record, true) : h("main", { class: "record-message" }, "The record is empty."));
  markReady();
  return cleanup;
}
