// Test harness for the conformance suite: starts a testbed (Rust or Node, chosen by the TESTBED
// environment variable) on a free port and offers small raw-protocol helpers.
//
//   TESTBED=rust (default)  → $TESTBED_BIN, or <repo>/target/release/testbed
//   TESTBED=node            → node conformance/node/testbed.mjs

import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import net from "node:net";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import assert from "node:assert/strict";
import WebSocket from "ws";

export { sleep };

export const CONFORMANCE_DIR = fileURLToPath(new URL("..", import.meta.url));
export const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));
const NODE_TESTBED = fileURLToPath(new URL("../node/testbed.mjs", import.meta.url));
const RUST_TESTBED = fileURLToPath(new URL("../../target/release/testbed", import.meta.url));

export const TESTBED = process.env.TESTBED || "rust";
export const HOST = "127.0.0.1";

/** Values the engineio / socketio profiles use unless overridden. */
export const PING_INTERVAL = 300;
export const PING_TIMEOUT = 200;
export const MAX_PAYLOAD = 1000000;

const START_TIMEOUT_MS = 10000;
const STOP_TIMEOUT_MS = 6000;

/** A TCP port that was free a moment ago. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, HOST, () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** `[command, args]` that starts the selected testbed (or implementation `impl`) with `profile`. */
export function testbedCommand(profile, impl = TESTBED) {
  if (impl === "node") return [process.execPath, [NODE_TESTBED, profile]];
  if (impl === "rust") {
    // a relative TESTBED_BIN is taken relative to the current directory
    const bin = process.env.TESTBED_BIN ? path.resolve(process.env.TESTBED_BIN) : RUST_TESTBED;
    if (!existsSync(bin)) {
      throw new Error(
        `Rust testbed not found at ${bin}: build it with ` +
          "`cargo build --release -p conformance --bin testbed`, set TESTBED_BIN, or run with TESTBED=node",
      );
    }
    return [bin, [profile]];
  }
  throw new Error(`TESTBED must be "rust" or "node", got ${JSON.stringify(impl)}`);
}

function spawnOnce(profile, env, port, impl = TESTBED) {
  const [cmd, args] = testbedCommand(profile, impl);
  const child = spawn(cmd, args, {
    cwd: REPO_ROOT,
    env: { ...process.env, HOST, ...env, PORT: String(port) },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8");
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (d) => {
    stderr += d;
    if (process.env.TESTBED_LOG) process.stderr.write(d);
  });
  const exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  const ready = new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(
        new Error(
          `testbed ${profile} (${impl}) did not print "listening on" within ${START_TIMEOUT_MS} ms\n` +
            `stdout: ${stdout}\nstderr: ${stderr}`,
        ),
      );
    }, START_TIMEOUT_MS);
    child.stdout.on("data", (d) => {
      stdout += d;
      if (/listening on \S+:\d+/.test(stdout)) {
        clearTimeout(timer);
        resolve();
      }
    });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      const err = new Error(
        `testbed ${profile} (${impl}) exited (code ${code}, signal ${signal}) before listening\n` +
          `stdout: ${stdout}\nstderr: ${stderr}`,
      );
      err.stderr = stderr;
      reject(err);
    });
    child.once("error", (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot spawn testbed ${cmd}: ${e.message}`));
    });
  });
  return { child, ready, exited, stderr: () => stderr };
}

/**
 * Start a testbed for `profile` with extra settings in `env` (e.g. `{ MAX_PAYLOAD: "1000" }`).
 * `impl` ("rust" or "node") overrides TESTBED, for mixed clusters.
 * Returns `{ port, url, wsUrl, profile, env, stop() }`.
 */
export async function startTestbed(profile, env = {}, impl = TESTBED) {
  let lastError;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const proc = spawnOnce(profile, env, port, impl);
    try {
      await proc.ready;
    } catch (e) {
      lastError = e;
      // another process grabbed the port between freePort() and bind: try another one
      if (/in use|EADDRINUSE/i.test(e.stderr ?? "")) continue;
      throw e;
    }
    let stopped;
    return {
      profile,
      env,
      port,
      url: `http://${HOST}:${port}`,
      wsUrl: `ws://${HOST}:${port}`,
      stderr: proc.stderr,
      /** true while the process runs */
      alive: () => proc.child.exitCode === null && proc.child.signalCode === null,
      stop() {
        if (stopped) return stopped;
        stopped = (async () => {
          if (proc.child.exitCode === null && proc.child.signalCode === null) proc.child.kill("SIGTERM");
          const timer = setTimeout(() => proc.child.kill("SIGKILL"), STOP_TIMEOUT_MS);
          const { code, signal } = await proc.exited;
          clearTimeout(timer);
          if (code !== 0) {
            throw new Error(
              `testbed ${profile} did not exit cleanly on SIGTERM (code ${code}, signal ${signal})\n` +
                `stderr: ${proc.stderr()}`,
            );
          }
        })();
        return stopped;
      },
    };
  }
  throw lastError;
}

// ------------------------------------------------------------------------------------------------
// Engine.IO over HTTP long-polling.

export const SEP = "\x1e";

/** Engine.IO path of a profile. */
export function eioPath(tb) {
  return tb.profile === "engineio" ? "/engine.io/" : "/socket.io/";
}

/**
 * URL for the engine path with the given query. `query` values of `undefined` are left out;
 * the default query is `EIO=4&transport=polling`.
 */
export function eioUrl(tb, query = {}, base = tb.url) {
  const q = { EIO: "4", transport: "polling", ...query };
  const params = Object.entries(q)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
    .join("&");
  return `${base}${eioPath(tb)}?${params}`;
}

/** fetch, returning `{ status, headers, text, body }` (body: Buffer). */
export async function request(url, { method = "GET", headers = {}, body, signal } = {}) {
  const res = await fetch(url, { method, headers, body, signal });
  const buf = Buffer.from(await res.arrayBuffer());
  return { status: res.status, headers: res.headers, body: buf, text: buf.toString("utf8") };
}

/** Split a polling payload into its packets. */
export function decodePayload(text) {
  return text.split(SEP);
}

/** Encode binary as a polling packet (`b` + base64). */
export const b64 = (bytes) => "b" + Buffer.from(bytes).toString("base64");

/** Parse an open packet (`0{...}`) and return its JSON. */
export function parseOpen(packet) {
  assert.equal(typeof packet, "string", "open packet must be text");
  assert.equal(packet[0], "0", `expected an open packet, got ${JSON.stringify(packet)}`);
  return JSON.parse(packet.slice(1));
}

/** Handshake over polling; returns `{ sid, open, res }`. */
export async function pollingHandshake(tb, query = {}) {
  const res = await request(eioUrl(tb, query));
  assert.equal(res.status, 200, `handshake failed: ${res.status} ${res.text}`);
  const packets = decodePayload(res.text);
  const open = parseOpen(packets[0]);
  return { sid: open.sid, open, res, packets };
}

export const pollGet = (tb, sid, opts = {}) => request(eioUrl(tb, { sid, ...(opts.query ?? {}) }), opts);

export const pollPost = (tb, sid, body, opts = {}) =>
  request(eioUrl(tb, { sid, ...(opts.query ?? {}) }), {
    method: "POST",
    headers: { "content-type": "text/plain;charset=UTF-8", ...(opts.headers ?? {}) },
    body,
    signal: opts.signal,
  });

/** POST that must succeed with `ok`. */
export async function postOk(tb, sid, body) {
  const res = await pollPost(tb, sid, body);
  assert.equal(res.status, 200, `POST failed: ${res.status} ${res.text}`);
  assert.equal(res.text, "ok");
  return res;
}

/** Expect an Engine.IO JSON error response. */
export function assertError(res, code, message, status = code === 4 ? 403 : 400) {
  assert.equal(res.status, status, `expected HTTP ${status}, got ${res.status} ${res.text}`);
  assert.match(res.headers.get("content-type") ?? "", /^application\/json/);
  assert.deepEqual(JSON.parse(res.text), { code, message });
}

export const ERRORS = {
  0: "Transport unknown",
  1: "Session ID unknown",
  2: "Bad handshake method",
  3: "Bad request",
  4: "Forbidden",
  5: "Unsupported protocol version",
};

/** Assert that the session is gone: a GET with its sid gets 400 (Session ID unknown). */
export async function assertSessionClosed(tb, sid) {
  const res = await pollGet(tb, sid);
  assertError(res, 1, ERRORS[1]);
}

/**
 * Poll until a GET returns something other than pings, answering pings with pongs. Returns the
 * non-ping packets of the first such payload.
 */
export async function pollUntil(tb, sid, predicate = () => true, { timeout = 3000 } = {}) {
  const deadline = Date.now() + timeout;
  while (Date.now() < deadline) {
    const res = await pollGet(tb, sid);
    assert.equal(res.status, 200, `GET failed: ${res.status} ${res.text}`);
    const packets = decodePayload(res.text);
    if (packets.includes("2")) await postOk(tb, sid, "3");
    const rest = packets.filter((p) => p !== "2");
    if (rest.length && predicate(rest)) return rest;
  }
  throw new Error("pollUntil: timed out");
}

// ------------------------------------------------------------------------------------------------
// WebSocket with a message queue.

/**
 * A `ws` client whose incoming messages are queued: `next()` returns the next
 * `{ data, isBinary, text }` (text frames are decoded to strings in `data`), `closed` resolves
 * with `{ code, reason }` once the connection is closed (for any reason, also before opening).
 */
export class WsClient {
  constructor(url, options = {}) {
    this.url = url;
    this.queue = [];
    this.waiters = [];
    this.ws = new WebSocket(url, options.protocols, { handshakeTimeout: 5000, ...options.ws });
    this.ws.binaryType = "nodebuffer";
    this.unexpectedResponse = null;
    this.error = null;
    this.opened = new Promise((resolve, reject) => {
      this.ws.once("open", resolve);
      this.ws.once("close", () => reject(new Error(`WebSocket closed before opening: ${url}`)));
    });
    this.opened.catch(() => {});
    this.ws.on("error", (e) => {
      this.error = e;
      // ws reports a refused upgrade as "Unexpected server response: <status>"
      const m = /Unexpected server response: (\d+)/.exec(e.message);
      if (m) this.unexpectedResponse = { status: Number(m[1]) };
    });
    this.closed = new Promise((resolve) => {
      this.ws.once("close", (code, reason) => {
        this.isClosed = true;
        resolve({ code, reason: reason.toString() });
        for (const w of this.waiters.splice(0)) w.reject(new Error(`WebSocket closed (code ${code})`));
      });
    });
    this.ws.on("message", (data, isBinary) => {
      const msg = isBinary ? { data, isBinary } : { data: data.toString("utf8"), isBinary };
      const w = this.waiters.shift();
      if (w) w.resolve(msg);
      else this.queue.push(msg);
    });
  }

  /** Next message; rejects on timeout or close. */
  next(timeout = 2000) {
    if (this.queue.length) return Promise.resolve(this.queue.shift());
    if (this.isClosed) return Promise.reject(new Error("WebSocket is closed"));
    return new Promise((resolve, reject) => {
      const entry = {
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(entry), 1);
        reject(new Error(`no WebSocket message within ${timeout} ms`));
      }, timeout);
      this.waiters.push(entry);
    });
  }

  /** Next message that is not a ping `2` (pings are answered with `3` when `pong` is true). */
  async nextNonPing(timeout = 2000, { pong = true } = {}) {
    const deadline = Date.now() + timeout;
    for (;;) {
      const m = await this.next(Math.max(1, deadline - Date.now()));
      if (!m.isBinary && m.data === "2") {
        if (pong) this.send("3");
        continue;
      }
      return m;
    }
  }

  send(data, options) {
    this.ws.send(data, options);
  }

  /** Wait for the close, failing after `timeout` ms. */
  async waitClosed(timeout = 2000) {
    let timer;
    const t = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`WebSocket not closed within ${timeout} ms`)), timeout);
    });
    try {
      return await Promise.race([this.closed, t]);
    } finally {
      clearTimeout(timer);
    }
  }

  close() {
    if (!this.isClosed) {
      try {
        this.ws.terminate();
      } catch {
        // already gone
      }
    }
  }
}

export function wsUrl(tb, query = {}) {
  return eioUrl(tb, { transport: "websocket", ...query }, tb.wsUrl);
}

/** Open a WebSocket-only session; returns `{ ws, sid, open }`. */
export async function wsHandshake(tb, query = {}) {
  const ws = new WsClient(wsUrl(tb, query));
  await ws.opened;
  const first = await ws.next();
  assert.equal(first.isBinary, false);
  const open = parseOpen(first.data);
  return { ws, sid: open.sid, open };
}

// ------------------------------------------------------------------------------------------------
// Raw TCP.

/**
 * Send raw bytes on a fresh TCP connection and collect what comes back until the server closes
 * the connection or `timeout` ms pass. Returns `{ data, text, closed, status }`.
 */
export function rawExchange(port, chunks, { timeout = 2000, reset = false, delayBetween = 0 } = {}) {
  return new Promise((resolve) => {
    const socket = net.connect(port, HOST);
    const parts = [];
    let closed = false;
    let settled = false;
    const finish = () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const data = Buffer.concat(parts);
      const text = data.toString("latin1");
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(text);
      socket.destroy();
      resolve({ data, text, closed, status: m ? Number(m[1]) : undefined });
    };
    const timer = setTimeout(finish, timeout);
    socket.on("data", (d) => parts.push(d));
    socket.on("error", () => {
      closed = true;
      finish();
    });
    socket.on("close", () => {
      closed = true;
      finish();
    });
    socket.on("connect", async () => {
      for (const c of Array.isArray(chunks) ? chunks : [chunks]) {
        if (socket.destroyed) break;
        socket.write(c);
        if (delayBetween) await sleep(delayBetween);
      }
      if (reset) {
        socket.resetAndDestroy();
        closed = true;
        finish();
      }
    });
  });
}

/** A raw HTTP/1.1 request head. */
export function httpHead(method, path, headers = {}) {
  const lines = [`${method} ${path} HTTP/1.1`, `Host: ${HOST}`];
  for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
  return lines.join("\r\n") + "\r\n\r\n";
}

/** Headers of a valid WebSocket upgrade request. */
export function upgradeHeaders(extra = {}) {
  return {
    Connection: "Upgrade",
    Upgrade: "websocket",
    "Sec-WebSocket-Version": "13",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    ...extra,
  };
}

/** Path + query of the engine endpoint (for raw requests). */
export function eioTarget(tb, query = {}) {
  return eioUrl(tb, query, "");
}

/** Build one client→server WebSocket frame (masked). */
export function wsFrame(opcode, payload = Buffer.alloc(0), { fin = true, rsv = 0 } = {}) {
  payload = Buffer.from(payload);
  const mask = Buffer.from([1, 2, 3, 4]);
  let header;
  if (payload.length < 126) {
    header = Buffer.from([(fin ? 0x80 : 0) | (rsv << 4) | opcode, 0x80 | payload.length]);
  } else if (payload.length < 65536) {
    header = Buffer.alloc(4);
    header[0] = (fin ? 0x80 : 0) | (rsv << 4) | opcode;
    header[1] = 0x80 | 126;
    header.writeUInt16BE(payload.length, 2);
  } else {
    header = Buffer.alloc(10);
    header[0] = (fin ? 0x80 : 0) | (rsv << 4) | opcode;
    header[1] = 0x80 | 127;
    header.writeBigUInt64BE(BigInt(payload.length), 2);
  }
  const masked = Buffer.alloc(payload.length);
  for (let i = 0; i < payload.length; i++) masked[i] = payload[i] ^ mask[i % 4];
  return Buffer.concat([header, mask, masked]);
}

// ------------------------------------------------------------------------------------------------
// Health.

/**
 * The server is still healthy: a fresh polling session handshakes and echoes, and a fresh
 * WebSocket session handshakes and echoes (echo only for the engineio profile).
 */
export async function assertHealthy(tb, { websocket = true, polling = true } = {}) {
  assert.ok(tb.alive(), `testbed process died; stderr: ${tb.stderr()}`);
  if (polling) {
    const { sid } = await pollingHandshake(tb);
    if (tb.profile === "engineio") {
      await postOk(tb, sid, "4health");
      const packets = await pollUntil(tb, sid);
      assert.deepEqual(packets, ["4health"]);
    }
    await pollPost(tb, sid, "1");
  }
  if (websocket) {
    const { ws } = await wsHandshake(tb);
    try {
      if (tb.profile === "engineio") {
        ws.send("4health-ws");
        const m = await ws.nextNonPing();
        assert.deepEqual(m, { data: "4health-ws", isBinary: false });
      }
    } finally {
      ws.close();
    }
  }
}

// ------------------------------------------------------------------------------------------------
// Socket.IO helpers (profiles `socketio` and `app`).

/** `{ "_placeholder": true, "num": n }` as the default parser writes it. */
export const placeholder = (num) => ({ _placeholder: true, num });

/** Client transport variants: polling only, WebSocket only, polling then upgrade. */
export const CLIENT_TRANSPORTS = {
  polling: { transports: ["polling"] },
  websocket: { transports: ["websocket"] },
  upgrade: { transports: ["polling", "websocket"] },
};

let sioModule;
let msgpackParserModule;
async function loadSio() {
  sioModule ??= await import("socket.io-client");
  return sioModule;
}
/** The `socket.io-msgpack-parser` module (for the client `parser` option). */
export async function msgpackParser() {
  msgpackParserModule ??= (await import("socket.io-msgpack-parser")).default;
  return msgpackParserModule;
}

/** Resolve with the arguments of the next `event` on `emitter`; reject after `timeout` ms. */
export function once(emitter, event, timeout = 3000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.off(event, handler);
      reject(new Error(`no "${event}" within ${timeout} ms`));
    }, timeout);
    const handler = (...args) => {
      clearTimeout(timer);
      resolve(args);
    };
    emitter.once(event, handler);
  });
}

/**
 * A `socket.io-client` socket (new Manager each time, reconnection off unless asked) for
 * namespace `nsp` of the testbed. `opts.parser` = "msgpack" selects socket.io-msgpack-parser.
 * Not connected yet when returned unless `autoConnect` is left on (default): await `connected()`.
 */
export async function sioClient(tb, nsp = "/", opts = {}) {
  const { io } = await loadSio();
  const o = { forceNew: true, reconnection: false, timeout: 5000, ...opts };
  if (o.parser === "msgpack") o.parser = await msgpackParser();
  else if (o.parser === undefined && tb.env?.PARSER === "msgpack") o.parser = await msgpackParser();
  else if (o.parser === "json") delete o.parser;
  const socket = io(tb.url + (nsp === "/" ? "" : nsp), o);
  sioClients.add(socket);
  return socket;
}

const sioClients = new Set();
/** Close every client made by `sioClient` (call in afterEach). */
export function closeSioClients() {
  for (const s of sioClients) {
    try {
      s.io.reconnection(false);
      s.io.engine?.close();
      s.disconnect();
    } catch {
      // already closed
    }
  }
  sioClients.clear();
}

/** Wait for `connect` (reject on `connect_error` or timeout). */
export function connected(socket, timeout = 4000) {
  if (socket.connected) return Promise.resolve(socket);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`socket did not connect within ${timeout} ms`));
    }, timeout);
    const onConnect = () => {
      cleanup();
      resolve(socket);
    };
    const onError = (err) => {
      cleanup();
      reject(new Error(`connect_error: ${err?.message ?? err}`));
    };
    const cleanup = () => {
      clearTimeout(timer);
      socket.off("connect", onConnect);
      socket.off("connect_error", onError);
    };
    socket.on("connect", onConnect);
    socket.on("connect_error", onError);
  });
}

/** A connected client; `upgrade` variants also wait for the WebSocket upgrade. */
export async function sioConnect(tb, nsp = "/", opts = {}) {
  const { waitUpgrade, ...rest } = opts;
  const socket = await sioClient(tb, nsp, rest);
  const upgraded =
    waitUpgrade && rest.transports?.includes("websocket") && rest.transports?.includes("polling")
      ? once(socket.io, "open", 4000).then(() => once(socket.io.engine, "upgrade", 4000))
      : null;
  upgraded?.catch(() => {});
  await connected(socket);
  if (upgraded && socket.io.engine.transport.name !== "websocket") await upgraded;
  return socket;
}

/** Emit with an ack (4 s timeout); resolves with the array of all ack arguments. */
export const ack = (socket, ...args) =>
  new Promise((resolve, reject) =>
    socket.timeout(4000).emit(...args, (err, ...res) => (err ? reject(err) : resolve(res))),
  );

/** Run an `op` on the app testbed through `socket` and return its result. */
export const op = async (socket, spec) => (await ack(socket, "op", spec))[0];

/**
 * The Socket.IO server is healthy: the process runs, and a fresh WebSocket client connects to `/`
 * and gets an echo (`app`: `echo` ack; `socketio`: `message-with-ack`).
 */
export async function assertSioHealthy(tb) {
  assert.ok(tb.alive(), `testbed process died; stderr: ${tb.stderr()}`);
  const socket = await sioClient(tb, "/", { transports: ["websocket"] });
  try {
    await connected(socket);
    const event = tb.profile === "socketio" ? "message-with-ack" : "echo";
    assert.deepEqual(await ack(socket, event, "health", 1), ["health", 1]);
  } finally {
    socket.disconnect();
    sioClients.delete(socket);
  }
}

/**
 * Raw Socket.IO over a WebSocket-only Engine.IO session: handshakes and, unless `nsp` is null,
 * sends CONNECT (`40`, `40/chat,` ...) with `auth` and waits for the reply. Returns
 * `{ ws, sid, open, reply }` (reply: the raw CONNECT reply text).
 */
export async function sioRawWs(tb, { nsp = "/", auth, query } = {}) {
  const { ws, sid, open } = await wsHandshake(tb, query);
  let reply;
  if (nsp !== null) {
    reply = await sioRawConnect(ws, nsp, auth);
  }
  return { ws, sid, open, reply };
}

/** Send a CONNECT for `nsp` on a raw WsClient and return the reply text (pings skipped). */
export async function sioRawConnect(ws, nsp = "/", auth) {
  const prefix = nsp === "/" ? "" : `${nsp},`;
  ws.send(`40${prefix}${auth === undefined ? "" : JSON.stringify(auth)}`);
  const m = await ws.nextNonPing();
  assert.equal(m.isBinary, false, "CONNECT reply must be a text frame");
  return m.data;
}

/** Parse `40{...}` / `40/nsp,{...}` into `{ nsp, data }`. */
export function parseConnectReply(text) {
  const m = /^40(\/[^,]*,)?(.*)$/s.exec(text);
  assert.ok(m, `expected a CONNECT reply, got ${JSON.stringify(text)}`);
  return { nsp: m[1] ? m[1].slice(0, -1) : "/", data: JSON.parse(m[2]) };
}

/** Assert that the raw WebSocket gets closed by the server within `timeout` (pings answered). */
export async function assertWsClosedByServer(ws, timeout = 2000) {
  const deadline = Date.now() + timeout;
  const seen = [];
  for (;;) {
    if (ws.isClosed) return seen;
    let m;
    try {
      m = await ws.next(Math.max(1, deadline - Date.now()));
    } catch (e) {
      if (ws.isClosed) return seen;
      throw new Error(`connection still open after ${timeout} ms; frames seen: ${JSON.stringify(seen)}`);
    }
    if (!m.isBinary && m.data === "2") ws.send("3");
    else seen.push(m.isBinary ? `<bin ${m.data.toString("hex")}>` : m.data);
  }
}

/** Assert that nothing but pings arrives on `ws` for `ms` and the connection stays open. */
export async function assertWsQuiet(ws, ms = 300) {
  const deadline = Date.now() + ms;
  for (;;) {
    const left = deadline - Date.now();
    if (left <= 0) break;
    let m;
    try {
      m = await ws.next(left);
    } catch (e) {
      if (ws.isClosed) assert.fail("connection closed by the server");
      break;
    }
    if (!m.isBinary && m.data === "2") {
      ws.send("3");
      continue;
    }
    assert.fail(`unexpected frame ${m.isBinary ? `<bin ${m.data.toString("hex")}>` : JSON.stringify(m.data)}`);
  }
  assert.ok(!ws.isClosed, "connection closed by the server");
}

/**
 * `notepack.io` (msgpack codec used by socket.io-msgpack-parser), loaded through the parser's own
 * dependency resolution: `{ encode, decode }` for raw msgpack frames.
 */
export const notepack = createRequire(createRequire(import.meta.url).resolve("socket.io-msgpack-parser"))(
  "notepack.io",
);
