// The labs HTTP API (see the server README). Every error answer is `{"error": "..."}`; its text
// is written for people, so it is shown as is.

import type { AccessResponse, Role } from "./store";

export class ApiError extends Error {
  constructor(
    message: string,
    /** HTTP status, or 0 when the server could not be reached. */
    readonly status: number,
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

export const UNREACHABLE =
  "Can't reach the Labboard server. Check that you are on the school Wi-Fi and try again.";

async function call<T>(method: string, path: string, body?: unknown, token?: string): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (token) headers.Authorization = `Bearer ${token}`;
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      credentials: "omit",
    });
  } catch {
    throw new ApiError(UNREACHABLE, 0);
  }
  const text = await res.text().catch(() => "");
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  if (!res.ok) {
    const err = json && typeof json === "object" ? (json as { error?: unknown }).error : undefined;
    const retry = Number(res.headers.get("Retry-After"));
    throw new ApiError(
      typeof err === "string" && err ? err : `The server answered ${res.status}. Try again.`,
      res.status,
      Number.isFinite(retry) && retry > 0 ? retry : undefined,
    );
  }
  return json as T;
}

export interface CreatedLab {
  labId: string;
  docUrl: string;
  joinCode: string;
  joinUrl: string;
  facilitatorKey: string;
}

export interface Session {
  authorId?: string;
  labId: string;
  docUrl: string;
  title: string;
  role: Role;
  name: string;
  expiresAt: number;
  /** When the lab ended (ms since the epoch); null while it runs. */
  endedAt?: number | null;
  joinCode?: string;
  joinUrl?: string;
}

/** A lab as `GET /api/labs` and `GET /api/labs/{labId}` summarise it. */
export interface LabSummary {
  labId: string;
  title: string;
  school: string;
  grade: string;
  /** `YYYY-MM-DD`, or "" when not given. */
  date: string;
  createdAt: number;
  endedAt: number | null;
  state: "active" | "ended";
  /** Devices that ever joined the lab or signed in to it. */
  phones: number;
  /** Notes on the board, hidden ones included; null when the board could not be read. */
  notes: number | null;
  hiddenNotes: number | null;
  /** When the server deletes the lab (ms since the epoch); null while it runs or without retention. */
  deleteAt: number | null;
}

export const api = {
  /** `deviceKey`: this device's secret, so the server gives it the same author id every time. */
  join: (code: string, name: string, deviceKey: string) =>
    call<AccessResponse>("POST", "/api/join", { code, name, deviceKey }),
  facilitate: (labId: string, key: string, name: string | undefined, deviceKey: string) =>
    call<AccessResponse>("POST", `/api/labs/${encodeURIComponent(labId)}/facilitate`, name ? { key, name, deviceKey } : { key, deviceKey }),
  createLab: (organizer: string, lab: { title: string; school?: string; grade?: string; date?: string }) =>
    call<CreatedLab>("POST", "/api/labs", lab, organizer),
  rotateJoinCode: (labId: string, token: string) =>
    call<{ joinCode: string; joinUrl: string }>("POST", `/api/labs/${encodeURIComponent(labId)}/join-code`, undefined, token),
  endLab: (labId: string, token: string) =>
    call<{ labId: string; endedAt: number }>("POST", `/api/labs/${encodeURIComponent(labId)}/end`, undefined, token),
  session: (token: string) => call<Session>("GET", "/api/session", undefined, token),
  /** Every lab on the server (organizer token). */
  listLabs: (organizer: string) => call<LabSummary[]>("GET", "/api/labs", undefined, organizer),
  /** One lab (its facilitator token, or the organizer token). */
  getLab: (labId: string, token: string) => call<LabSummary>("GET", `/api/labs/${encodeURIComponent(labId)}`, undefined, token),
  deleteLab: (labId: string, token: string) => call<void>("DELETE", `/api/labs/${encodeURIComponent(labId)}`, undefined, token),
};

/**
 * Whether the server still accepts `token`: "valid", "invalid" (401: expired or revoked) or
 * "unknown" (offline, or a server without `/api/session`).
 */
export async function checkSession(token: string): Promise<{ state: "valid"; session: Session } | { state: "invalid" | "unknown" }> {
  try {
    return { state: "valid", session: await api.session(token) };
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return { state: "invalid" };
    return { state: "unknown" };
  }
}
