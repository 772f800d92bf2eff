// Two (and for the crash case three) real `sockeye` processes sharing a private `redis-server`,
// driven with the official client: tab sync reaches the same user's tabs on the other node only,
// presence is cluster-wide (first socket anywhere → online once, last one anywhere → offline
// once, a crashed node's users go offline after the presence TTL), and the job-start rate limit
// is one bucket per user across nodes.
//
//   cargo build -p sockeye && (cd server && npm ci && npm test)
//
// SOCKEYE_BIN overrides the binary (default: target/debug/sockeye of the workspace). Needs
// Debian's redis-server on PATH; the test starts its own instance on a free port.

import { test, before } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  WAIT, collect, connect as connectWithToken, now, sign, sleep, startRedis, startServer,
} from "./support.mjs";

const SECRET = "presence-cluster-secret-presence-cluster";
// Short, so the crashed-node case finishes quickly; heartbeats run every TTL / 3.
const PRESENCE_TTL_MS = 1500;

if (spawnSync("redis-server", ["--version"]).status !== 0) {
  throw new Error("redis-server not found: install Debian's redis-server (these tests start their own)");
}

const tokenFor = (sub) => sign({ sub, exp: now() + 3600 }, SECRET);

/** A connected official client for `user`. */
const connect = (url, user, opts = {}) => connectWithToken(url, tokenFor(user), opts);

/** Waits until `list` has more than `n` entries, and returns entry `n`. */
async function nth(what, list, n, ms = WAIT) {
  const deadline = Date.now() + ms;
  while (list.length <= n) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what} (have ${JSON.stringify(list)})`);
    await sleep(10);
  }
  return list[n];
}

let redisUrl;
let a;
let b;
const nodeEnv = (id, extra = {}) => ({
  JWT_SECRET: SECRET,
  REDIS_URL: redisUrl,
  REDIS_KEY: "presence-cluster-test",
  NODE_ID: id,
  PRESENCE_TTL_MS: String(PRESENCE_TTL_MS),
  EXAMPLE_WORKER: "1",
  EXAMPLE_WORKER_DELAY_MS: "10",
  RATE_LIMIT_BURST: "3",
  // One token a minute: nothing refills while the test runs.
  RATE_LIMIT_PER_MINUTE: "1",
  ...extra,
});

before(async () => {
  redisUrl = (await startRedis()).url;
  [a, b] = await Promise.all([startServer([], nodeEnv("node-a")), startServer([], nodeEnv("node-b"))]);
});

test("tab:update reaches the same user's tabs on the other node, not the sender or other users", async () => {
  const sender = await connect(a.url, "tina");
  const otherTab1 = await connect(b.url, "tina");
  const otherTab2 = await connect(b.url, "tina", { transports: ["polling"] });
  const bobA = await connect(a.url, "bob");
  const bobB = await connect(b.url, "bob");
  const got = {
    sender: collect(sender, "tab:update:v1"),
    otherTab1: collect(otherTab1, "tab:update:v1"),
    otherTab2: collect(otherTab2, "tab:update:v1"),
    bobA: collect(bobA, "tab:update:v1"),
    bobB: collect(bobB, "tab:update:v1"),
  };
  const ack = await sender.emitWithAck("tab:update", { tabId: "tab-on-a", state: { draft: "hello", page: 2 } });
  assert.deepEqual(ack, { ok: true });
  for (const tab of ["otherTab1", "otherTab2"]) {
    const relayed = await nth(`${tab} gets the update`, got[tab], 0);
    assert.equal(relayed.tabId, "tab-on-a");
    assert.deepEqual(relayed.state, { draft: "hello", page: 2 });
    assert.equal(typeof relayed.eventId, "string");
  }
  // One publish through Redis: both tabs see the same envelope.
  assert.equal(got.otherTab1[0].eventId, got.otherTab2[0].eventId);
  await sleep(300);
  assert.deepEqual(got.sender, [], "the sender got its own update back");
  assert.deepEqual(got.bobA, [], "another user (same node as the sender) got the update");
  assert.deepEqual(got.bobB, [], "another user (other node) got the update");
  assert.equal(got.otherTab1.length, 1, "delivered more than once");
  for (const s of [sender, otherTab1, otherTab2, bobA, bobB]) s.disconnect();
});

test("presence is cluster-wide: online once on the first socket anywhere, offline once on the last", async () => {
  const watcher = await connect(b.url, "watcher");
  const events = collect(watcher, "user:presence:v1");
  const before = await watcher.emitWithAck("presence:subscribe", { userIds: ["pat"] });
  assert.deepEqual(before, { ok: true, users: [{ userId: "pat", online: false }] });

  // First socket, on the other node.
  const pat1 = await connect(a.url, "pat");
  const online = await nth("pat online", events, 0);
  assert.deepEqual([online.userId, online.online], ["pat", true]);

  // The ack is cluster-wide too: asked on b (and on a) while pat is only on a.
  const askedOnB = await watcher.emitWithAck("presence:subscribe", { userIds: ["pat", "nobody"] });
  assert.deepEqual(askedOnB.users, [{ userId: "pat", online: true }, { userId: "nobody", online: false }]);
  const watcherA = await connect(a.url, "watcher2");
  const eventsA = collect(watcherA, "user:presence:v1");
  const askedOnA = await watcherA.emitWithAck("presence:subscribe", { userIds: ["pat"] });
  assert.deepEqual(askedOnA.users, [{ userId: "pat", online: true }]);

  // A second socket, on b: no duplicate.
  const pat2 = await connect(b.url, "pat");
  await sleep(400);
  assert.equal(events.length, 1, `duplicate presence event: ${JSON.stringify(events)}`);

  // The first leaves: pat is still online through b.
  pat1.disconnect();
  await sleep(400);
  assert.equal(events.length, 1, `offline while a socket is left: ${JSON.stringify(events)}`);

  // The last leaves: offline, once, to followers on both nodes.
  pat2.disconnect();
  const offline = await nth("pat offline", events, 1);
  assert.deepEqual([offline.userId, offline.online], ["pat", false]);
  assert.deepEqual((await nth("pat offline on a", eventsA, 0)).online, false);
  await sleep(300);
  assert.equal(events.length, 2, `more presence events than online + offline: ${JSON.stringify(events)}`);
  assert.equal(eventsA.length, 1);
  const after = await watcher.emitWithAck("presence:subscribe", { userIds: ["pat"] });
  assert.deepEqual(after.users, [{ userId: "pat", online: false }]);
  watcher.disconnect();
  watcherA.disconnect();
});

test("a crashed node's users go offline after the presence TTL", async () => {
  const c = await startServer([], nodeEnv("node-c"));
  const watcher = await connect(b.url, "watcher3");
  const events = collect(watcher, "user:presence:v1");
  await watcher.emitWithAck("presence:subscribe", { userIds: ["quinn", "rita"] });
  await connect(c.url, "quinn");
  // rita also has a socket on a: the crash of c must not take her offline.
  await connect(c.url, "rita");
  const ritaOnA = await connect(a.url, "rita");
  await nth("both online", events, 1);
  assert.deepEqual(events.map((e) => [e.userId, e.online]).sort(), [["quinn", true], ["rita", true]]);

  const crashed = Date.now();
  c.child.kill("SIGKILL");
  const offline = await nth("quinn offline after the crash", events, 2, PRESENCE_TTL_MS * 3);
  assert.deepEqual([offline.userId, offline.online], ["quinn", false]);
  assert.ok(Date.now() - crashed >= PRESENCE_TTL_MS / 2, "offline before the node could have expired");
  await sleep(PRESENCE_TTL_MS / 2);
  assert.equal(events.length, 3, `rita went offline with a socket left on a: ${JSON.stringify(events)}`);
  const status = await watcher.emitWithAck("presence:subscribe", { userIds: ["quinn", "rita"] });
  assert.deepEqual(status.users, [{ userId: "quinn", online: false }, { userId: "rita", online: true }]);
  ritaOnA.disconnect();
  watcher.disconnect();
});

test("the job-start rate limit is one bucket per user across nodes", async () => {
  const onA = await connect(a.url, "rl-user");
  const onB = await connect(b.url, "rl-user");
  const other = await connect(b.url, "rl-other");
  const code = async (socket, event, payload) => (await socket.emitWithAck(event, payload)).error?.code ?? "ok";
  // Burst 3 shared: per-node buckets would allow 3 on each node.
  const codes = [
    await code(onA, "search:start", { query: "one" }),
    await code(onB, "model:start", { prompt: "two" }),
    await code(onA, "search:start", { query: "three" }),
    await code(onB, "search:start", { query: "four" }),
    await code(onA, "model:start", { prompt: "five" }),
  ];
  assert.deepEqual(codes, ["ok", "ok", "ok", "rate_limited", "rate_limited"]);
  // Another user's bucket is untouched.
  assert.equal(await code(other, "search:start", { query: "mine" }), "ok");
  for (const s of [onA, onB, other]) s.disconnect();
});
