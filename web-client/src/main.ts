// Labboard's web client: routes on `location.pathname`, navigates with the History API.
// The join and new-lab pages are in this chunk; the labs home page and the lab pages (with
// Automerge) load on demand.

import "./styles.css";
import wasmUrl from "@automerge/automerge/automerge.wasm?url";
import { h, markReady, replace } from "./dom";
import { mountJoin } from "./pages/join";
import { mountNewLab } from "./pages/newlab";
import { parseRoute } from "./routes";
import { applyTheme, initialTheme } from "./theme";

export interface PageContext {
  root: HTMLElement;
  navigate(path: string, opts?: { replace?: boolean }): void;
}

const root = document.getElementById("app") ?? document.body;
let cleanup: (() => void) | undefined;
let generation = 0;

const ctx: PageContext = {
  root,
  navigate(path, opts = {}) {
    if (opts.replace) history.replaceState(null, "", path);
    else history.pushState(null, "", path);
    void render();
  },
};

/** Starts downloading Automerge's WASM while the lab page's JavaScript loads. */
function preloadWasm(): void {
  if (document.querySelector("link[data-wasm]")) return;
  const link = h("link", { rel: "preload", href: wasmUrl, as: "fetch", crossorigin: "anonymous", "data-wasm": "1" });
  document.head.append(link);
}

async function render(): Promise<void> {
  const gen = ++generation;
  const isAlive = () => gen === generation;
  cleanup?.();
  cleanup = undefined;
  delete document.body.dataset.ready;
  const route = parseRoute(location.pathname);
  document.body.dataset.page = route.page;
  window.scrollTo(0, 0);
  try {
    switch (route.page) {
      case "join":
        mountJoin(ctx, route.code);
        return;
      case "new":
        mountNewLab(ctx);
        return;
      case "labs": {
        const { mountLabs } = await import("./pages/labs");
        if (!isAlive()) return;
        const done = mountLabs(ctx, isAlive);
        if (isAlive()) cleanup = done;
        else done();
        return;
      }
      case "observer": {
        preloadWasm();
        const { mountObserver } = await import("./pages/observer");
        if (!isAlive()) return;
        const done = await mountObserver(ctx, route.labId, isAlive);
        if (isAlive()) cleanup = done;
        else done();
        return;
      }
      case "board": {
        preloadWasm();
        const { mountBoard } = await import("./pages/board");
        if (!isAlive()) return;
        const done = await mountBoard(ctx, route.labId, isAlive);
        if (isAlive()) cleanup = done;
        else done();
        return;
      }
      case "record": {
        const { mountRecord } = await import("./pages/record");
        if (!isAlive()) return;
        const done = await mountRecord(ctx, route.labId, isAlive);
        if (isAlive()) cleanup = done;
        else done();
        return;
      }
      case "not-found":
        document.title = "Not found · Labboard";
        replace(
          root,
          h(
            "main",
            { class: "page page-narrow" },
            h("h1", {}, "Page not found"),
            h("p", {}, h("a", { href: "/" }, "Go to the start page")),
          ),
        );
        markReady();
        return;
    }
  } catch (e) {
    if (!isAlive()) return;
    console.error(e);
    replace(
      root,
      h(
        "main",
        { class: "page page-narrow" },
        h("h1", {}, "Something went wrong"),
        h("p", { class: "error" }, e instanceof Error ? e.message : String(e)),
        h("p", {}, "Your notes are kept on this device. ", h("a", { href: location.pathname }, "Reload the page")),
      ),
    );
  }
}

// In-app links: same-origin <a href="/..."> without a target or modifier keys.
document.addEventListener("click", (e) => {
  if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  const a = (e.target as Element | null)?.closest?.("a");
  if (!a || a.target || a.hasAttribute("download")) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || parseRoute(url.pathname).page === "not-found") return;
  e.preventDefault();
  if (url.pathname + url.search + url.hash !== location.pathname + location.search + location.hash) {
    ctx.navigate(url.pathname + url.search + url.hash);
  }
});

window.addEventListener("popstate", () => void render());

function registerServiceWorker(): void {
  if (!import.meta.env.PROD || !("serviceWorker" in navigator)) return;
  // After the page is up, so the worker's precache reuses what the page already downloaded.
  const go = () =>
    setTimeout(() => {
      navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch(() => undefined);
    }, 1000);
  if (document.readyState === "complete") go();
  else window.addEventListener("load", go, { once: true });
}

applyTheme(initialTheme());
void render();
registerServiceWorker();
