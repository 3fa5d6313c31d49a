// Downloads of a lab's exports. They need the bearer token, so a plain link cannot fetch them:
// the file is fetched, held as a blob and saved through a temporary <a download>.

import { UNREACHABLE } from "./api";

export type ExportFormat = "json" | "csv" | "automerge" | "html" | "zip";

/** The export's URL on this origin. */
export function exportPath(labId: string, format: ExportFormat, table?: string, utcOffset?: number): string {
  const query = new URLSearchParams({ format });
  if (table) query.set("table", table);
  if (utcOffset !== undefined) query.set("utcOffset", String(utcOffset));
  return `/api/labs/${encodeURIComponent(labId)}/export?${query.toString()}`;
}

/**
 * The file name a `Content-Disposition` header gives (`filename*=UTF-8''…` before
 * `filename="…"`), reduced to a safe name; `fallback` when there is none.
 */
export function filenameFromDisposition(header: string | null, fallback: string): string {
  if (!header) return fallback;
  let name: string | undefined;
  const star = /filename\*\s*=\s*([^;]+)/i.exec(header);
  if (star) {
    const value = star[1].trim().replace(/^"(.*)"$/, "$1");
    const encoded = value.replace(/^[\w-]+'[^']*'/, "");
    try {
      name = decodeURIComponent(encoded);
    } catch {
      name = undefined;
    }
  }
  if (!name) {
    const plain = /filename\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;]+))/i.exec(header);
    if (plain) name = (plain[1] ?? plain[2] ?? "").replace(/\\(.)/g, "$1").trim();
  }
  // No folders, no hidden files, no control characters.
  const safe = (name ?? "").split(/[\\/]/).pop()?.replace(/[\u0000-\u001f\u007f]/g, "").replace(/^\.+/, "").trim() ?? "";
  return safe || fallback;
}

/** What to say when an export answered an error. */
async function failure(res: Response): Promise<Error> {
  let words = "";
  try {
    const json = (await res.json()) as { error?: unknown };
    if (typeof json.error === "string") words = json.error;
  } catch {
    /* not JSON */
  }
  if (res.status === 401) return new Error("Your sign-in for this lab has expired. Sign in again, then try once more.");
  if (res.status === 404) return new Error("This lab is no longer on the server.");
  return new Error(words ? `The server said: ${words}.` : `The server answered ${res.status}. Try again.`);
}

/** Fetches a lab's export with `token` and saves it under the name the server gives. */
export async function downloadExport(labId: string, token: string, format: ExportFormat, table?: string): Promise<void> {
  let res: Response;
  try {
    res = await fetch(exportPath(labId, format, table), {
      headers: { Authorization: `Bearer ${token}` },
      cache: "no-store",
      credentials: "omit",
    });
  } catch {
    throw new Error(UNREACHABLE);
  }
  if (!res.ok) throw await failure(res);
  let blob: Blob;
  try {
    blob = await res.blob();
  } catch {
    throw new Error("The download was cut off. Try again.");
  }
  const fallback = `${labId}-${table ?? format}.${format === "automerge" ? "automerge" : format}`;
  const name = filenameFromDisposition(res.headers.get("Content-Disposition"), fallback);
  saveBlob(blob, name);
}

/** Saves `blob` as a file named `name`, through a temporary <a download>. */
export function saveBlob(blob: Blob, name: string): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  a.hidden = true;
  document.body.append(a);
  a.click();
  a.remove();
  // Some browsers read the blob after click() returns.
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
