// What the observer page and the projector board share: credentials, opening the board
// document, the connection, and what to do when the server no longer accepts our token.

import { api, ApiError, checkSession } from "../api";
import { renewFacilitator } from "../renew";
import type { PageContext } from "../main";
import { store, type LabAccess } from "../store";
import { LabConnection, loadAutomerge } from "../sync";

export interface LabUi {
  /** Redraw from `conn` (called at most once per animation frame). */
  render(): void;
  /** A non-blocking status line (undefined clears it). */
  status(message: string | undefined): void;
}

export interface OpenLab {
  conn: LabConnection;
  access: LabAccess;
  /** An API call was refused with 401: check the token (renew it, or send the person to join again). */
  checkToken(): void;
}

/** Where to send someone who must join (again), with the code prefilled when we know it. */
function joinPath(access: LabAccess | undefined): string {
  return access?.joinCode ? `/j/${access.joinCode}` : "/";
}


/**
 * Opens a lab for a page: checks credentials, loads Automerge, opens the document (from
 * IndexedDB when possible), and watches the token. Returns undefined when it navigated away.
 */
export async function openLab(ctx: PageContext, labId: string, ui: LabUi, isAlive: () => boolean): Promise<OpenLab | undefined> {
  let access = store.lab(labId);
  if (access && !access.token) access = await renewFacilitator(access);
  if (!access?.token) {
    const before = store.lab(labId);
    store.setFlash(
      before
        ? "Your session for this lab ended. Join again with the lab's code; notes you wrote are kept on this device."
        : "Join this lab with its code first.",
    );
    ctx.navigate(joinPath(before), { replace: true });
    return undefined;
  }
  if (!access.authorId) {
    // Joined before the server named author ids: ask it which one this token has.
    const token = access.token;
    try {
      const session = await api.session(token);
      access = store.saveAccess({ ...session, token });
    } catch {
      // Offline: notes wait on the phone and the next load asks again.
    }
  }

  let frame = 0;
  const scheduleRender = () => {
    if (frame) return;
    frame = requestAnimationFrame(() => {
      frame = 0;
      if (isAlive()) ui.render();
    });
  };

  let lastCheck = 0;
  let checking = false;
  let current = access;
  const conn: LabConnection = new LabConnection({
    labId,
    docUrl: access.docUrl,
    token: access.token!,
    // The id the server checks our notes, reactions and time-outs against.
    deviceId: access.authorId ?? store.deviceId(),
    name: access.name,
    role: access.role,
    store,
    onUpdate: scheduleRender,
    onFailure: () => void verifyToken(),
  });

  /** The socket keeps failing: ask the API whether our token is still good. */
  async function verifyToken(): Promise<void> {
    const now = Date.now();
    if (checking || !current.token || now - lastCheck < 10_000 || !navigator.onLine) return;
    checking = true;
    lastCheck = now;
    try {
      const result = await checkSession(current.token);
      if (result.state === "valid" && result.session.endedAt) conn.markEnded(result.session.endedAt);
      if (result.state !== "invalid" || !isAlive()) return;
      const renewed = await renewFacilitator(current);
      if (renewed?.token && isAlive()) {
        current = renewed;
        conn.setToken(renewed.token);
        return;
      }
      if (!isAlive()) return;
      store.dropToken(labId);
      store.setFlash(
        "Your session expired — join again. Notes you wrote are kept on this device and are sent once you re-join this lab.",
      );
      ctx.navigate(joinPath(current), { replace: true });
    } finally {
      checking = false;
    }
  }

  // Whether the lab has ended: then the board is read-only and the pages say so.
  void checkSession(access.token!).then((result) => {
    if (result.state === "valid" && result.session.endedAt) conn.markEnded(result.session.endedAt);
  });

  try {
    await loadAutomerge();
  } catch (e) {
    ui.status(`This browser could not start Labboard (${e instanceof Error ? e.message : String(e)}). Try reloading.`);
    throw e;
  }
  if (!isAlive()) {
    void conn.close();
    return undefined;
  }
  const state = await conn.open();
  if (!isAlive()) {
    void conn.close();
    return undefined;
  }
  if (state === "waiting") {
    ui.status(
      navigator.onLine
        ? "Loading the board from the server…"
        : "You are offline and this board is not on this device yet. It loads as soon as you are back on the Wi-Fi.",
    );
    const onOnline = () => ui.status("Loading the board from the server…");
    window.addEventListener("online", onOnline);
    await conn.whenAvailable();
    window.removeEventListener("online", onOnline);
    if (!isAlive()) {
      void conn.close();
      return undefined;
    }
    ui.status(undefined);
  }
  return { conn, access: current, checkToken: () => void verifyToken() };
}

export function apiErrorText(e: unknown): string {
  return e instanceof ApiError ? e.message : "Something went wrong. Try again.";
}
