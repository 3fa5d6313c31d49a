// The app's routes. The server answers every one of these paths with index.html, and the client
// picks the page from `location.pathname`.

export type Route =
  | { page: "join"; code?: string }
  | { page: "new" }
  | { page: "labs" }
  | { page: "observer"; labId: string }
  | { page: "board"; labId: string }
  | { page: "record"; labId: string }
  | { page: "not-found" };

const LAB_ID = /^[a-z0-9]{1,64}$/;

/** The route for a path such as `/lab/3vonzeprz5c5/board`; trailing slashes are ignored. */
export function parseRoute(pathname: string): Route {
  let path: string;
  try {
    path = decodeURIComponent(pathname);
  } catch {
    return { page: "not-found" };
  }
  const parts = path.split("/").filter((p) => p !== "");
  if (parts.length === 0) return { page: "join" };
  const [first, second, third] = parts;
  if (first === "j" && parts.length === 2) return { page: "join", code: second };
  if (first === "new" && parts.length === 1) return { page: "new" };
  if (first === "labs" && parts.length === 1) return { page: "labs" };
  if (first === "lab" && second !== undefined && LAB_ID.test(second)) {
    if (parts.length === 2) return { page: "observer", labId: second };
    if (parts.length === 3 && third === "board") return { page: "board", labId: second };
    if (parts.length === 3 && third === "record") return { page: "record", labId: second };
  }
  return { page: "not-found" };
}

export function pathFor(route: Route): string {
  switch (route.page) {
    case "join":
      return route.code ? `/j/${encodeURIComponent(route.code)}` : "/";
    case "new":
      return "/new";
    case "labs":
      return "/labs";
    case "observer":
      return `/lab/${encodeURIComponent(route.labId)}`;
    case "board":
      return `/lab/${encodeURIComponent(route.labId)}/board`;
    case "record":
      return `/lab/${encodeURIComponent(route.labId)}/record`;
    case "not-found":
      return "/";
  }
}

/** The organizer token from a URL fragment like `#organizer=<token>`, if there is one. */
export function organizerFromHash(hash: string): string | undefined {
  const params = new URLSearchParams(hash.replace(/^#/, ""));
  const token = params.get("organizer")?.trim();
  return token ? token : undefined;
}

/**
 * The sync socket's URL on the page's own origin (`wss` when the page is https). It names the
 * lab, so that a proxy in front of several servers can send all phones of a lab to one of them.
 */
export function syncUrl(labId: string, token: string, loc: { protocol: string; host: string } = location): string {
  const scheme = loc.protocol === "https:" ? "wss" : "ws";
  return `${scheme}://${loc.host}/sync?lab=${encodeURIComponent(labId)}&token=${encodeURIComponent(token)}`;
}
