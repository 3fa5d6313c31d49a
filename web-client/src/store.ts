// What this device remembers, in localStorage: the credentials for each lab, the display name,
// the organizer token, the device id and the board theme. A reload keeps you in your lab.

import { randomUuid } from "./ids";

export type Role = "observer" | "facilitator";

export interface LabAccess {
  labId: string;
  docUrl: string;
  title: string;
  role: Role;
  name: string;
  /** Missing once the server has refused it (expired or revoked). */
  token?: string;
  expiresAt?: number;
  joinCode?: string;
  joinUrl?: string;
  /** Kept for facilitators so an expired sign-in can be renewed without asking. */
  facilitatorKey?: string;
  /** What the server says this device's notes, reactions and time-outs carry in this lab. */
  authorId?: string;
  updatedAt: number;
}

/** The answer of `POST /api/join` and `POST /api/labs/{id}/facilitate`. */
export interface AccessResponse {
  token: string;
  docUrl: string;
  labId: string;
  title: string;
  role: Role;
  name: string;
  authorId?: string;
  expiresAt: number;
  joinCode?: string;
  joinUrl?: string;
}

const K = {
  device: "lb.device",
  deviceKey: "lb.deviceKey",
  name: "lb.name",
  organizer: "lb.organizer",
  labs: "lb.labs",
  theme: "lb.theme",
  flash: "lb.flash",
  category: (labId: string) => `lb.category.${labId}`,
  heads: (docId: string) => `lb.heads.${docId}`,
};

export type KV = Pick<Storage, "getItem" | "setItem" | "removeItem">;

/** A Storage that never throws (private mode, quota, disabled storage). */
class SafeStorage implements KV {
  #mem = new Map<string, string>();
  constructor(private readonly inner: KV | undefined) {}
  getItem(key: string): string | null {
    try {
      const v = this.inner?.getItem(key);
      if (v !== undefined && v !== null) return v;
    } catch {
      /* fall through to memory */
    }
    return this.#mem.get(key) ?? null;
  }
  setItem(key: string, value: string): void {
    this.#mem.set(key, value);
    try {
      this.inner?.setItem(key, value);
    } catch {
      /* memory keeps it for this page */
    }
  }
  removeItem(key: string): void {
    this.#mem.delete(key);
    try {
      this.inner?.removeItem(key);
    } catch {
      /* ignore */
    }
  }
}

export class Store {
  readonly #kv: KV;
  readonly #session: KV;

  constructor(local?: KV, session?: KV) {
    this.#kv = new SafeStorage(local);
    this.#session = new SafeStorage(session);
  }

  /**
   * This browser's secret, sent only when joining: the server derives the browser's author id in
   * a lab from it, so the same phone keeps its notes across sign-ins and nobody can claim them.
   */
  deviceKey(): string {
    let key = this.#kv.getItem(K.deviceKey);
    if (!key) {
      key = `${randomUuid()}${randomUuid()}`.replace(/-/g, "");
      this.#kv.setItem(K.deviceKey, key);
    }
    return key;
  }

  /** This browser's stable presence id (its author id in a lab comes from the server). */
  deviceId(): string {
    let id = this.#kv.getItem(K.device);
    if (!id) {
      id = randomUuid();
      this.#kv.setItem(K.device, id);
    }
    return id;
  }

  lastName(): string {
    return this.#kv.getItem(K.name) ?? "";
  }
  setLastName(name: string): void {
    this.#kv.setItem(K.name, name);
  }

  organizerToken(): string | undefined {
    return this.#kv.getItem(K.organizer) ?? undefined;
  }
  setOrganizerToken(token: string): void {
    this.#kv.setItem(K.organizer, token);
  }
  clearOrganizerToken(): void {
    this.#kv.removeItem(K.organizer);
  }

  labs(): Record<string, LabAccess> {
    try {
      const parsed = JSON.parse(this.#kv.getItem(K.labs) ?? "{}") as unknown;
      return parsed && typeof parsed === "object" ? (parsed as Record<string, LabAccess>) : {};
    } catch {
      return {};
    }
  }
  lab(labId: string): LabAccess | undefined {
    return this.labs()[labId];
  }
  /** Labs this device has been in, most recent first. */
  recentLabs(): LabAccess[] {
    return Object.values(this.labs()).sort((a, b) => b.updatedAt - a.updatedAt);
  }
  putLab(access: LabAccess): void {
    const all = this.labs();
    all[access.labId] = access;
    this.#kv.setItem(K.labs, JSON.stringify(all));
  }
  /** Remembers a granted access, keeping what we knew about the lab (code, key). */
  saveAccess(res: AccessResponse, extra: Partial<LabAccess> = {}, now = Date.now()): LabAccess {
    const before = this.lab(res.labId);
    // A facilitator sign-in is not downgraded by joining the same lab as an observer later.
    const keepFacilitator = before?.role === "facilitator" && res.role === "observer" && before.token;
    const access: LabAccess = keepFacilitator
      ? { ...before, name: res.name, updatedAt: now }
      : {
          ...before,
          labId: res.labId,
          docUrl: res.docUrl,
          title: res.title,
          role: res.role,
          name: res.name,
          authorId: res.authorId,
          token: res.token,
          expiresAt: res.expiresAt,
          updatedAt: now,
        };
    if (res.joinCode) access.joinCode = res.joinCode;
    if (res.joinUrl) access.joinUrl = res.joinUrl;
    Object.assign(access, extra);
    this.putLab(access);
    return access;
  }
  /** Forgets a lab altogether (it was deleted). */
  forgetLab(labId: string): void {
    const all = this.labs();
    if (!(labId in all)) return;
    delete all[labId];
    this.#kv.setItem(K.labs, JSON.stringify(all));
  }
  /** Forgets a lab's token (the server refused it), keeping the rest for re-joining. */
  dropToken(labId: string): void {
    const lab = this.lab(labId);
    if (!lab) return;
    delete lab.token;
    delete lab.expiresAt;
    this.putLab(lab);
  }

  lastCategory(labId: string): string | undefined {
    return this.#kv.getItem(K.category(labId)) ?? undefined;
  }
  setLastCategory(labId: string, category: string): void {
    this.#kv.setItem(K.category(labId), category);
  }

  /** The server's last acknowledged heads for a document (hex), and whose they are. */
  serverHeads(docId: string): { storageId: string; heads: string[] } | undefined {
    try {
      const v = JSON.parse(this.#kv.getItem(K.heads(docId)) ?? "null") as unknown;
      if (v && typeof v === "object" && Array.isArray((v as { heads?: unknown }).heads)) {
        return v as { storageId: string; heads: string[] };
      }
    } catch {
      /* ignore */
    }
    return undefined;
  }
  setServerHeads(docId: string, storageId: string, heads: string[]): void {
    this.#kv.setItem(K.heads(docId), JSON.stringify({ storageId, heads }));
  }

  theme(): "light" | "dark" | undefined {
    const t = this.#kv.getItem(K.theme);
    return t === "light" || t === "dark" ? t : undefined;
  }
  setTheme(theme: "light" | "dark"): void {
    this.#kv.setItem(K.theme, theme);
  }

  /** A one-time message for the next page (e.g. "your session expired"). */
  setFlash(message: string): void {
    this.#session.setItem(K.flash, message);
  }
  takeFlash(): string | undefined {
    const m = this.#session.getItem(K.flash) ?? undefined;
    this.#session.removeItem(K.flash);
    return m;
  }
}

function browserStorage(name: "localStorage" | "sessionStorage"): KV | undefined {
  try {
    return typeof window !== "undefined" ? window[name] : undefined;
  } catch {
    return undefined;
  }
}

export const store = new Store(browserStorage("localStorage"), browserStorage("sessionStorage"));
