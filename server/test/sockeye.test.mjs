// End to end with the official client (socket.io-client from npm) against the real `sockeye`
// binary: auth outcomes, search / model / cancel with the example worker, invalid payloads,
// rate limit, tab sync, presence, the served client bundle, SIGTERM.
//
//   cargo build -p sockeye && (cd server && npm ci && npm test)
//
// SOCKEYE_BIN overrides the binary (default: target/debug/sockeye of the workspace).

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { SECRET, b64, client, connect, next, now, sign, sleep, startServer, tokenFor, within } from "./support.mjs";

const here = dirname(fileURLToPath(import.meta.url));

/** The connect_error of a refused client (no `auth` unless `opts` has one). */
async function refused(url, opts) {
  const socket = client(url, undefined, { auth: undefined, ...opts });
  const err = await within("connect_error", new Promise((resolve, reject) => {
    socket.once("connect_error", resolve);
    socket.once("connect", () => reject(new Error("connected")));
  }));
  socket.disconnect();
  return err;
}

const server = await startServer([], { JWT_SECRET: SECRET, EXAMPLE_WORKER: "1", EXAMPLE_WORKER_DELAY_MS: "20", RATE_LIMIT_BURST: "4" });

test("every auth outcome, over polling and websocket", async () => {
  for (const transports of [["polling"], ["websocket"]]) {
    const ok = await connect(server.url, tokenFor("alice"), { transports });
    assert.ok(ok.id);
    ok.disconnect();
    const cases = [
      [{}, "missing_token"],
      [{ auth: { token: "nope" } }, "invalid_token"],
      [{ auth: { token: sign({ sub: "a", exp: now() - 10 }) } }, "token_expired"],
      [{ auth: { token: sign({ sub: "a", exp: now() + 60 }, "another-secret-another-secret-another") } }, "invalid_token"],
      [{ auth: { token: `${b64({ alg: "none" })}.${b64({ sub: "a", exp: now() + 60 })}.` } }, "invalid_token"],
    ];
    for (const [opts, code] of cases) {
      const err = await refused(server.url, { transports, ...opts });
      assert.equal(err.message, "unauthorized");
      assert.deepEqual(err.data, { code });
    }
  }
  // Node clients may send the token as a header.
  const viaHeader = await connect(server.url, undefined, {
    transports: ["websocket"], auth: {}, extraHeaders: { authorization: `Bearer ${tokenFor("alice")}` },
  });
  viaHeader.disconnect();
});

test("search and model answer stream in; cancel stops a job", async () => {
  const alice = await connect(server.url, tokenFor("alice"));
  const tab2 = await connect(server.url, tokenFor("alice"), { transports: ["polling"] });
  const results = [];
  alice.on("search:result:v1", (p) => results.push(p));
  const ack = await alice.emitWithAck("search:start", { query: "official client" });
  assert.equal(ack.ok, true);
  // Both tabs get the completion at about the same time: listen on both before waiting.
  const tab2Complete = next(tab2, "search:complete:v1", (p) => p.jobId === ack.jobId);
  const complete = await next(alice, "search:complete:v1", (p) => p.jobId === ack.jobId);
  assert.equal(complete.total, 5);
  assert.equal(results.length, 5);
  assert.ok(results.every((r, i) => r.index === i && r.jobId === ack.jobId && typeof r.eventId === "string"));
  assert.equal(new Set(results.map((r) => r.eventId)).size, 5);
  await tab2Complete;

  const model = await alice.emitWithAck("model:start", { prompt: "stream please" });
  const chunks = [];
  alice.on("model:chunk:v1", (p) => p.jobId === model.jobId && chunks.push(p.chunk));
  const done = await next(alice, "model:complete:v1", (p) => p.jobId === model.jobId);
  assert.equal(chunks.join(""), done.text);

  const long = await alice.emitWithAck("model:start", { prompt: "to cancel" });
  await next(alice, "model:chunk:v1", (p) => p.jobId === long.jobId);
  const bob = await connect(server.url, tokenFor("bob"));
  assert.deepEqual((await bob.emitWithAck("task:cancel", { jobId: long.jobId })).error.code, "forbidden");
  // The worker's task:cancelled:v1 may arrive before the ack: listen first.
  const cancelled = next(alice, "task:cancelled:v1", (p) => p.jobId === long.jobId);
  assert.deepEqual(await alice.emitWithAck("task:cancel", { jobId: long.jobId }), { ok: true });
  assert.equal((await cancelled).jobId, long.jobId);
  for (const s of [alice, tab2, bob]) s.disconnect();
});

test("invalid payloads and the rate limit", async () => {
  const carol = await connect(server.url, tokenFor("carol"));
  for (const [event, payload] of [
    ["search:start", { query: 1 }],
    ["search:start", { query: "a", extra: true }],
    ["model:start", "a string"],
    ["task:cancel", {}],
    ["presence:subscribe", { userIds: "x" }],
  ]) {
    const ack = await carol.emitWithAck(event, payload);
    assert.equal(ack.ok, false);
    assert.equal(ack.error.code, "invalid_payload", `${event} ${JSON.stringify(payload)}`);
  }
  const codes = [];
  for (let i = 0; i < 5; i++) codes.push((await carol.emitWithAck("search:start", { query: "q" + i })).error?.code ?? "ok");
  assert.deepEqual(codes, ["ok", "ok", "ok", "ok", "rate_limited"]);
  carol.disconnect();
});

test("tab sync and presence", async () => {
  const watcher = await connect(server.url, tokenFor("watcher"));
  const snapshot = await watcher.emitWithAck("presence:subscribe", { userIds: ["dave"] });
  assert.deepEqual(snapshot, { ok: true, users: [{ userId: "dave", online: false }] });
  const online = next(watcher, "user:presence:v1");
  const dave1 = await connect(server.url, tokenFor("dave"));
  assert.equal((await online).online, true);
  const dave2 = await connect(server.url, tokenFor("dave"), { transports: ["polling"] });
  const relayed = next(dave2, "tab:update:v1");
  let echoed = false;
  dave1.on("tab:update:v1", () => { echoed = true; });
  dave1.emit("tab:update", { tabId: "t1", state: { page: 3 } });
  const got = await relayed;
  assert.equal(got.tabId, "t1");
  assert.deepEqual(got.state, { page: 3 });
  await sleep(100);
  assert.equal(echoed, false, "the sender's own tab got its update back");
  const offline = next(watcher, "user:presence:v1", (p) => p.online === false);
  dave1.disconnect();
  dave2.disconnect();
  assert.equal((await offline).userId, "dave");
  watcher.disconnect();
});

test("the demo page and the official client bundle, served like serveClient", async () => {
  const page = await (await fetch(server.url + "/")).text();
  assert.match(page, /<script src="\/socket.io\/socket.io.min.js"><\/script>/);
  const served = Buffer.from(await (await fetch(server.url + "/socket.io/socket.io.min.js")).arrayBuffer());
  const installed = readFileSync(join(here, "..", "node_modules", "socket.io-client", "dist", "socket.io.min.js"));
  assert.ok(served.equals(installed));
});

test("SIGTERM: clients are disconnected and try to reconnect; exit 0", async () => {
  // A grace well inside the test's wait: a session still draining cannot hold the exit past it.
  const dev = await startServer(["--dev", "--example-worker-delay-ms", "10"], { SHUTDOWN_GRACE_MS: "1500" });
  assert.ok(dev.log.some((l) => l.includes("DEV MODE")));
  const { token } = await (await fetch(dev.url + "/api/dev/token?user=erin")).json();
  const socket = client(dev.url, token, { reconnection: true, reconnectionDelay: 50, reconnectionDelayMax: 100 });
  await within("connect", new Promise((r) => socket.once("connect", r)));
  // Upgraded first: a polling client between two GETs would see its next GET refused by a
  // node that is gone ("transport error"), which is a reconnect too but not the case tested.
  if (socket.io.engine.transport.name !== "websocket") {
    await within("upgrade", new Promise((r) => socket.io.engine.once("upgrade", r)));
  }
  const disconnected = within("disconnect", new Promise((r) => socket.once("disconnect", r)));
  const exited = within("exit", new Promise((r) => dev.child.once("exit", (code) => r(code))), 10000);
  dev.child.kill("SIGTERM");
  assert.equal(await disconnected, "transport close");
  assert.equal(await exited, 0);
  assert.equal(socket.active, true, "the client keeps trying to reconnect (to another node)");
  socket.disconnect();
});
