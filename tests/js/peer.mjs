#!/usr/bin/env node
// Driver for ONE automerge-repo JS peer (the official client, 2.5.6), used by the Rust
// integration tests (tests/src/js.rs) to check interop with the labboard sync server.
//
//   node peer.mjs --url ws://127.0.0.1:PORT/sync [--peer-id NAME] [--retry-ms 5000]
//
// Protocol: one JSON object per line on stdin (commands), one JSON object per line on stdout
// (replies and events); logs go to stderr.
//   command: {"id": <any>, "cmd": "<name>", ...args}
//   reply:   {"id": <same>, "ok": true, ...result}  or  {"id": <same>, "ok": false, "error": "..."}
//   event:   {"event": "<name>", ...}   ("ready", "ephemeral", "fatal")
// Commands are documented at `commands` below. Uncaught errors print {"event":"fatal",...} and
// exit with code 1. EOF on stdin (the test process went away) exits with code 0.

import { createInterface } from "node:readline";
import { isDeepStrictEqual } from "node:util";
import * as A from "@automerge/automerge";
import { Repo, isValidAutomergeUrl, parseAutomergeUrl } from "@automerge/automerge-repo";
import { WebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket";

// ---------------------------------------------------------------- output

function emit(obj) {
  // On Linux, writes to a pipe are synchronous in Node, so lines are never lost on exit.
  process.stdout.write(JSON.stringify(obj) + "\n");
}

function log(...args) {
  process.stderr.write(`[js-peer ${peerId ?? "?"}] ${args.join(" ")}\n`);
}

function errorText(err) {
  if (err instanceof Error) return err.message || String(err);
  if (typeof err === "string") return err;
  try {
    return JSON.stringify(err);
  } catch {
    return String(err);
  }
}

let exiting = false;
function fatal(err) {
  if (exiting) return;
  exiting = true;
  try {
    emit({ event: "fatal", error: errorText(err) });
    process.stderr.write(`[js-peer] fatal: ${err?.stack ?? errorText(err)}\n`);
  } finally {
    process.exit(1);
  }
}

// Registered before anything else can fail. The websocket client adapter re-throws every socket
// error except ECONNREFUSED from inside an event listener (e.g. "Unexpected server response:
// 401" when the upgrade is refused), which lands here.
process.on("uncaughtException", fatal);
process.on("unhandledRejection", fatal);

// ---------------------------------------------------------------- arguments

function parseArgs(argv) {
  const out = { url: undefined, peerId: undefined, retryMs: 5000 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`missing value for ${a}`);
      return argv[++i];
    };
    if (a === "--url") out.url = next();
    else if (a === "--peer-id") out.peerId = next();
    else if (a === "--retry-ms") out.retryMs = Number(next());
    else throw new Error(`unknown argument ${a}`);
  }
  if (!out.url) throw new Error("--url ws://HOST:PORT/sync is required");
  if (!Number.isFinite(out.retryMs) || out.retryMs <= 0) throw new Error("--retry-ms must be > 0");
  if (!out.peerId) out.peerId = `js-${Math.random().toString(36).slice(2, 10)}`;
  return out;
}

let peerId;
const args = parseArgs(process.argv.slice(2));
peerId = args.peerId;

// ---------------------------------------------------------------- JSON conversion

// Plain JSON of an Automerge value: Counter/ImmutableString/Date use their toJSON, bytes
// become {"$bytes": "<base64>"}, bigints become numbers.
function toJson(value) {
  if (value === undefined) return null;
  return JSON.parse(
    JSON.stringify(value, (_key, v) => {
      if (v instanceof Uint8Array) return { $bytes: Buffer.from(v).toString("base64") };
      if (typeof v === "bigint") return Number(v);
      return v;
    }),
  );
}

// ---------------------------------------------------------------- repo and network

let currentUrl = args.url;
let adapter = null; // the current WebSocketClientAdapter, null while disconnected

function makeAdapter(url) {
  return new WebSocketClientAdapter(url, args.retryMs);
}

adapter = makeAdapter(currentUrl);
const repo = new Repo({ network: [adapter], peerId });

// Remote peers the network subsystem currently reports as connected.
const connectedPeers = new Set();
const peerWaiters = new Set();
repo.networkSubsystem.on("peer", ({ peerId: remote }) => {
  log(`peer connected: ${remote}`);
  connectedPeers.add(remote);
  for (const w of peerWaiters) w();
});
repo.networkSubsystem.on("peer-disconnected", ({ peerId: remote }) => {
  log(`peer disconnected: ${remote}`);
  connectedPeers.delete(remote);
});

// Latest sync state per document per remote peer, for waitSynced.
const syncStates = new Map(); // documentId -> Map(peerId -> syncState)
const syncWaiters = new Set();
repo.synchronizer.on("sync-state", ({ peerId: remote, documentId, syncState }) => {
  let m = syncStates.get(documentId);
  if (!m) syncStates.set(documentId, (m = new Map()));
  m.set(remote, syncState);
  for (const w of syncWaiters) w();
});

/** Take the network away: remove the adapter from the repo and close its socket. */
function disconnect() {
  if (!adapter) return false;
  const old = adapter;
  adapter = null;
  // The adapter may still call connect() later: its peerMetadata promise may not have resolved
  // yet (then connect() has not run) or a close already scheduled a retry with setTimeout, which
  // disconnect() does not cancel. Make any such late connect() a no-op on this dead adapter.
  const hadConnected = Boolean(old.peerId && old.socket);
  old.connect = () => {};
  // disconnect() removes the socket's listeners and then closes it; closing a socket that is
  // still CONNECTING makes ws emit "error" ("WebSocket was closed before the connection was
  // established"), which with no listener left would crash the process. Swallow it.
  old.socket?.on?.("error", e => log(`old socket error after disconnect: ${errorText(e)}`));
  if (hadConnected) {
    // NetworkSubsystem.removeNetworkAdapter drops it from the adapter list and calls
    // adapter.disconnect(): removes socket listeners, closes the socket, clears the retry
    // interval and emits peer-disconnected (so the synchronizer drops the server peer).
    repo.networkSubsystem.removeNetworkAdapter(old);
  } else {
    repo.networkSubsystem.adapters = repo.networkSubsystem.adapters.filter(a => a !== old);
  }
  return true;
}

/** Add a fresh WebSocketClientAdapter; the repo connects, sends join and re-syncs open docs. */
function reconnect(url) {
  const replaced = disconnect();
  if (url) currentUrl = url;
  adapter = makeAdapter(currentUrl);
  repo.networkSubsystem.addNetworkAdapter(adapter);
  return replaced;
}

// ---------------------------------------------------------------- documents

const handles = new Map(); // documentId -> DocHandle (ready)

function docIdOf(url) {
  if (typeof url !== "string" || !isValidAutomergeUrl(url)) {
    throw new Error(`not a valid automerge URL: ${JSON.stringify(url)}`);
  }
  return parseAutomergeUrl(url).documentId;
}

function track(handle) {
  if (handles.has(handle.documentId)) return handle;
  handles.set(handle.documentId, handle);
  handle.on("ephemeral-message", ({ senderId, message }) => {
    emit({ event: "ephemeral", url: handle.url, message: toJson(message), senderId });
  });
  return handle;
}

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timeout after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function timeoutOf(cmd, dflt = 10000) {
  const t = cmd.timeoutMs ?? dflt;
  if (typeof t !== "number" || !(t > 0)) throw new Error("timeoutMs must be a positive number");
  return t;
}

/** The ready handle for `url`: from this process's cache, else via repo.find. */
async function handleFor(url, timeoutMs) {
  const id = docIdOf(url);
  const known = handles.get(id);
  if (known) return known;
  const handle = await withTimeout(repo.find(url), timeoutMs, `find ${url}`);
  return track(handle);
}

function heads(handle) {
  const doc = handle.doc();
  return A.getHeads(doc);
}

/** Resolve once `check(doc)` is true, re-checking on every change of the handle. */
function waitForDoc(handle, check, timeoutMs, what) {
  return new Promise((resolve, reject) => {
    let done = false;
    const finish = (fn, v) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      handle.off("change", onChange);
      fn(v);
    };
    const onChange = () => {
      try {
        const doc = handle.doc();
        if (check(doc)) finish(resolve, doc);
      } catch (e) {
        finish(reject, e);
      }
    };
    const timer = setTimeout(() => {
      let current;
      try {
        current = JSON.stringify(toJson(handle.doc()));
      } catch {
        current = "?";
      }
      finish(reject, new Error(`timeout after ${timeoutMs} ms: ${what}; doc is ${current}`));
    }, timeoutMs);
    handle.on("change", onChange);
    onChange();
  });
}

function sameHeads(a, b) {
  if (!a || !b || a.length !== b.length) return false;
  const s = new Set(a);
  return b.every(h => s.has(h));
}

// ---------------------------------------------------------------- commands

const commands = {
  // {"cmd":"create","doc":{...}} -> {"url":"automerge:..."}
  async create(cmd) {
    const init = cmd.doc ?? {};
    if (init === null || typeof init !== "object" || Array.isArray(init)) {
      throw new Error("doc must be a JSON object");
    }
    const handle = track(repo.create(init));
    return { url: handle.url };
  },

  // {"cmd":"find","url":..,"timeoutMs":..} -> {"doc":{...}}; error "Document ... is unavailable"
  async find(cmd) {
    const handle = await handleFor(cmd.url, timeoutOf(cmd));
    return { doc: toJson(handle.doc()) };
  },

  // {"cmd":"load","bytes":<base64>} -> {"doc":{...},"heads":[hex..]}: a saved document (as
  // `Automerge::save` writes it) loaded on its own by the JS Automerge library, not the repo.
  async load(cmd) {
    const doc = A.load(new Uint8Array(Buffer.from(cmd.bytes, "base64")));
    return { doc: toJson(doc), heads: A.getHeads(doc) };
  },

  // {"cmd":"get","url":..} -> {"doc":{...},"heads":[hex..],"urlHeads":[bs58..]}
  async get(cmd) {
    const handle = await handleFor(cmd.url, timeoutOf(cmd));
    return { doc: toJson(handle.doc()), heads: heads(handle), urlHeads: handle.heads() };
  },

  // {"cmd":"set","url":..,"key":..,"value":<json>,"in"?:[key..]} -> {"heads":[hex..]}
  // Sets doc[key], or doc[in[0]][in[1]]..[key] when `in` names a map already there.
  async set(cmd) {
    if (typeof cmd.key !== "string") throw new Error("key must be a string");
    if (cmd.value === undefined) throw new Error("value is required");
    const path = cmd.in ?? [];
    if (!Array.isArray(path) || !path.every(k => typeof k === "string")) throw new Error("in must be a list of keys");
    const handle = await handleFor(cmd.url, timeoutOf(cmd));
    handle.change(d => {
      let target = d;
      for (const k of path) {
        target = target[k];
        if (target === null || typeof target !== "object") throw new Error(`doc.${path.join(".")} is not a map`);
      }
      target[cmd.key] = cmd.value;
    });
    return { heads: heads(handle) };
  },

  // {"cmd":"push","url":..,"key":..,"value":<json>} -> {"length":n,"heads":[hex..]}
  async push(cmd) {
    if (typeof cmd.key !== "string") throw new Error("key must be a string");
    if (cmd.value === undefined) throw new Error("value is required");
    const handle = await handleFor(cmd.url, timeoutOf(cmd));
    let length = 0;
    handle.change(d => {
      if (d[cmd.key] === undefined || d[cmd.key] === null) d[cmd.key] = [];
      if (!Array.isArray(d[cmd.key])) throw new Error(`doc.${cmd.key} is not a list`);
      d[cmd.key].push(cmd.value);
      length = d[cmd.key].length;
    });
    return { length, heads: heads(handle) };
  },

  // {"cmd":"waitFor","url":..,"key":..,"value":<json>,"timeoutMs":..} -> {"doc":{...}}
  async waitFor(cmd) {
    const timeoutMs = timeoutOf(cmd);
    const handle = await handleFor(cmd.url, timeoutMs);
    const doc = await waitForDoc(
      handle,
      d => isDeepStrictEqual(toJson(d[cmd.key]), cmd.value ?? null),
      timeoutMs,
      `waiting for doc.${cmd.key} == ${JSON.stringify(cmd.value)}`,
    );
    return { doc: toJson(doc) };
  },

  // {"cmd":"waitForLength","url":..,"key":..,"length":n,"timeoutMs":..} -> {"doc":{...}}
  // Resolves when doc[key] is a list of at least `length` items.
  async waitForLength(cmd) {
    const timeoutMs = timeoutOf(cmd);
    const handle = await handleFor(cmd.url, timeoutMs);
    const doc = await waitForDoc(
      handle,
      d => Array.isArray(d[cmd.key]) && d[cmd.key].length >= cmd.length,
      timeoutMs,
      `waiting for doc.${cmd.key}.length >= ${cmd.length}`,
    );
    return { doc: toJson(doc) };
  },

  // {"cmd":"waitSynced","url":..,"timeoutMs":..} -> {"peerId":..,"heads":[hex..]}
  // Resolves once a connected remote peer has acknowledged our current heads (its last sync
  // message reported exactly our heads), i.e. the server holds everything we have.
  async waitSynced(cmd) {
    const timeoutMs = timeoutOf(cmd);
    const handle = await handleFor(cmd.url, timeoutMs);
    const check = () => {
      const ours = heads(handle);
      const states = syncStates.get(handle.documentId);
      if (!states) return null;
      for (const [remote, st] of states) {
        if (connectedPeers.has(remote) && sameHeads(st.theirHeads, ours)) {
          return { peerId: remote, heads: ours };
        }
      }
      return null;
    };
    return withTimeout(
      new Promise(resolve => {
        const w = () => {
          const r = check();
          if (r) {
            syncWaiters.delete(w);
            handle.off("heads-changed", w);
            resolve(r);
          }
        };
        syncWaiters.add(w);
        handle.on("heads-changed", w);
        w();
      }),
      timeoutMs,
      `waiting for a peer to acknowledge ${cmd.url}`,
    );
  },

  // {"cmd":"peers"} -> {"attached":bool,"peers":[peerId..],"url":..}
  // attached: a network adapter is in place (false after disconnect); peers: remote peers that
  // answered our join and have not disconnected since.
  async peers() {
    return { attached: adapter !== null, peers: [...connectedPeers], url: currentUrl };
  },

  // {"cmd":"waitConnected","timeoutMs":..} -> {"peers":[peerId..]}
  // Resolves once the server answered our join with a peer message.
  async waitConnected(cmd) {
    const timeoutMs = timeoutOf(cmd);
    if (!adapter) throw new Error("disconnected (send reconnect first)");
    return withTimeout(
      new Promise(resolve => {
        const w = () => {
          if (connectedPeers.size > 0) {
            peerWaiters.delete(w);
            resolve({ peers: [...connectedPeers] });
          }
        };
        peerWaiters.add(w);
        w();
      }),
      timeoutMs,
      "waiting for a connection to the sync server",
    );
  },

  // {"cmd":"disconnect"} -> {"wasAttached":bool}  (false: already disconnected, a no-op)
  async disconnect() {
    return { wasAttached: disconnect() };
  },

  // {"cmd":"reconnect","url"?:..} -> {"replaced":bool}  (replaced: an adapter was still active)
  async reconnect(cmd) {
    if (cmd.url !== undefined && typeof cmd.url !== "string") throw new Error("url must be a string");
    return { replaced: reconnect(cmd.url) };
  },

  // {"cmd":"broadcast","url":..,"message":<json>} -> {}
  async broadcast(cmd) {
    const handle = await handleFor(cmd.url, timeoutOf(cmd));
    handle.broadcast(cmd.message ?? null);
    return {};
  },

  // {"cmd":"exit"} -> {} then exit code 0
  async exit() {
    setImmediate(shutdown);
    return {};
  },
};

function shutdown() {
  if (exiting) return;
  exiting = true;
  try {
    disconnect();
  } catch (e) {
    log(`error while disconnecting: ${errorText(e)}`);
  }
  process.exit(0);
}

async function dispatch(line) {
  let cmd;
  try {
    cmd = JSON.parse(line);
  } catch (e) {
    emit({ id: null, ok: false, error: `invalid JSON command: ${errorText(e)}` });
    return;
  }
  const id = cmd?.id ?? null;
  const fn = cmd && typeof cmd.cmd === "string" && Object.hasOwn(commands, cmd.cmd) ? commands[cmd.cmd] : null;
  if (!fn) {
    emit({ id, ok: false, error: `unknown command: ${JSON.stringify(cmd?.cmd)}` });
    return;
  }
  try {
    const result = await fn(cmd);
    if (!exiting || cmd.cmd === "exit") emit({ id, ok: true, ...result });
  } catch (e) {
    emit({ id, ok: false, error: errorText(e) });
  }
}

const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
rl.on("line", line => {
  if (line.trim() === "") return;
  void dispatch(line);
});
rl.on("close", () => {
  log("stdin closed, exiting");
  shutdown();
});

log(`repo started, peer id ${peerId}, server ${currentUrl}, retry ${args.retryMs} ms`);
emit({ event: "ready", peerId, url: currentUrl });
