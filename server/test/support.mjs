// Helpers of the end-to-end tests: real `sockeye` processes (server and worker), a private
// `redis-server` on a free port, HS256 tokens, official clients, bounded waits. Every process
// a test starts is killed when the test file ends.
//
// SOCKEYE_BIN overrides the binary (default: target/debug/sockeye of the workspace).

import { after } from "node:test";
import { spawn } from "node:child_process";
import { createHmac } from "node:crypto";
import { existsSync } from "node:fs";
import { createServer, connect as tcpConnect } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { io } from "socket.io-client";

const here = dirname(fileURLToPath(import.meta.url));
export const BIN = process.env.SOCKEYE_BIN ?? join(here, "..", "..", "target", "debug", "sockeye");
export const SECRET = "node-e2e-secret-node-e2e-secret-node-e2e";
export const WAIT = 5000;

if (!existsSync(BIN)) {
  throw new Error(`sockeye binary not found at ${BIN}: run cargo build -p sockeye first`);
}

const children = new Set();
const sockets = new Set();
after(() => {
  for (const s of sockets) s.disconnect();
  for (const c of children) c.kill("SIGKILL");
});

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function within(what, promise, ms = WAIT) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => { timer = setTimeout(() => reject(new Error("timed out: " + what)), ms); }),
  ]).finally(() => clearTimeout(timer));
}

/** Polls `check` (sync or async) until it returns a truthy value, which it resolves with. */
export async function eventually(what, check, ms = WAIT) {
  const deadline = Date.now() + ms;
  for (;;) {
    let value;
    try { value = await check(); } catch { value = undefined; }
    if (value) return value;
    if (Date.now() > deadline) throw new Error("never happened: " + what);
    await sleep(50);
  }
}

/** Spawns `args` of the sockeye binary and resolves once a stderr line matches `ready`. */
function spawnSockeye(args, env, ready, name, wait = WAIT) {
  return new Promise((resolve, reject) => {
    const child = spawn(BIN, args, {
      env: { PATH: process.env.PATH, LOG_LEVEL: "info", ...env },
      stdio: ["ignore", "ignore", "pipe"],
    });
    children.add(child);
    const log = [];
    let buffered = "";
    let started = false;
    const timer = setTimeout(() => reject(new Error(`${name} did not start: ${log.join("\n")}`)), wait);
    child.stderr.on("data", (data) => {
      buffered += data;
      let nl;
      while ((nl = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        log.push(line);
        const m = line.match(ready);
        if (m && !started) { started = true; clearTimeout(timer); resolve({ match: m, child, log }); }
      }
    });
    child.on("exit", (code) => {
      children.delete(child);
      if (!started) { clearTimeout(timer); reject(new Error(`${name} exited ${code}: ${log.join("\n")}`)); }
    });
  });
}

/**
 * Starts a sockeye node; resolves with { url, child, log } once it listens (within `wait` ms).
 * It is killed when the test file ends.
 */
export async function startServer(args = [], env = {}, { wait = WAIT } = {}) {
  const { match, child, log } = await spawnSockeye(
    ["--host", "127.0.0.1", "--port", "0", ...args], env, /listening on (http:\/\/[\d.:]+)/, "sockeye", wait);
  return { url: match[1], child, log };
}

/** Starts `sockeye worker --example`; resolves with { child, log } once it takes jobs. */
export async function startWorker(env = {}) {
  const { child, log } = await spawnSockeye(["worker", "--example"], env, /taking jobs from the Redis stream/, "sockeye worker");
  return { child, log };
}

/** Resolves with the exit code of `child` (after `signal`, if given). */
export function stop(child, signal = "SIGTERM") {
  const exited = within("exit", new Promise((r) => child.once("exit", (code, sig) => r(code ?? sig))));
  child.kill(signal);
  return exited;
}

async function freePort() {
  const server = createServer();
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address();
  await new Promise((r) => server.close(r));
  return port;
}

function ping(port) {
  return new Promise((resolve) => {
    const s = tcpConnect(port, "127.0.0.1");
    s.setTimeout(500, () => { s.destroy(); resolve(false); });
    s.on("error", () => resolve(false));
    s.on("connect", () => s.write("PING\r\n"));
    s.on("data", (d) => { s.destroy(); resolve(d.toString().startsWith("+PONG")); });
  });
}

/** A private redis-server on a free port: { url, port, kill(), restart() }. */
export async function startRedis() {
  const port = await freePort();
  const redis = { port, url: `redis://127.0.0.1:${port}`, child: null };
  redis.restart = async () => {
    const child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], {
      stdio: "ignore",
    });
    children.add(child);
    child.on("exit", () => children.delete(child));
    let failed = null;
    child.on("error", (e) => { failed = e; });
    redis.child = child;
    await eventually("redis-server answers PING", () => ping(port));
    if (failed) throw new Error(`cannot start redis-server (${failed.message}): these tests need a real Redis`);
  };
  redis.kill = () => stop(redis.child, "SIGKILL");
  await redis.restart();
  return redis;
}

export const b64 = (obj) => Buffer.from(JSON.stringify(obj)).toString("base64url");
export function sign(claims, secret = SECRET, header = { alg: "HS256", typ: "JWT" }) {
  const body = `${b64(header)}.${b64(claims)}`;
  return `${body}.${createHmac("sha256", secret).update(body).digest("base64url")}`;
}
export const now = () => Math.floor(Date.now() / 1000);
export const tokenFor = (sub) => sign({ sub, exp: now() + 3600 });

/** An official client, not connected yet (closed when the test file ends). */
export function client(url, token, opts = {}) {
  const socket = io(url, { auth: { token }, reconnection: false, ...opts });
  sockets.add(socket);
  return socket;
}

/** A connected official client. */
export async function connect(url, token, opts = {}) {
  const socket = client(url, token, opts);
  await within("connect", new Promise((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("connect_error", reject);
  }));
  return socket;
}

/** The next `event` on `socket` whose payload passes `filter`. */
export const next = (socket, event, filter = () => true, ms = WAIT) =>
  within(event, new Promise((resolve) => {
    const handler = (payload) => { if (filter(payload)) { socket.off(event, handler); resolve(payload); } };
    socket.on(event, handler);
  }), ms);

/** Every `event` payload on `socket` from now on, with `jobId` if given. */
export function collect(socket, event, jobId) {
  const got = [];
  socket.on(event, (p) => { if (jobId === undefined || p.jobId === jobId) got.push(p); });
  return got;
}
