// The cluster end to end: real `sockeye` nodes and `sockeye worker --example` processes on a
// private redis-server, official clients. A job started on one node runs in the worker
// process and streams to the user's tabs on every node; cancel reaches the worker; a Node
// worker (the `redis` client on the job stream, `@socket.io/redis-emitter` to publish) reaches
// a Sockeye client; a killed worker's job runs again elsewhere; the sharded adapter; graceful
// shutdown with the client going to the other node; health follows Redis down and up.
//
//   cargo build -p sockeye && (cd server && npm ci && npm test)

import { test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { createClient } from "redis";
import { Emitter } from "@socket.io/redis-emitter";
import {
  SECRET, WAIT, client, collect, connect, eventually, next, sleep, startRedis, startServer,
  startWorker, stop, tokenFor, within,
} from "./support.mjs";

const redis = await startRedis();
const KEY = "e2e";
const nodeEnv = (key = KEY) => ({
  JWT_SECRET: SECRET, REDIS_URL: redis.url, REDIS_KEY: key, RATE_LIMIT_BURST: "100", SHUTDOWN_GRACE_MS: "1500",
});
// 80 ms between search results, 40 ms between model chunks (about 2 s per answer): long
// enough to kill, cancel or fail over in the middle.
const workerEnv = (key = KEY) => ({
  REDIS_URL: redis.url, REDIS_KEY: key, EXAMPLE_WORKER_DELAY_MS: "80", JOB_CLAIM_IDLE_MS: "1000", SHUTDOWN_GRACE_MS: "1000",
});

const a = await startServer([], { ...nodeEnv(), NODE_ID: "a" });
const b = await startServer([], { ...nodeEnv(), NODE_ID: "b" });
let worker = await startWorker({ ...workerEnv(), NODE_ID: "w1" });

/** Starts a job; a node refuses (`unavailable`) until it has seen a worker's heartbeat. */
async function startJob(socket, event, payload) {
  const deadline = Date.now() + WAIT;
  for (;;) {
    const ack = await socket.timeout(WAIT).emitWithAck(event, payload);
    if (ack.ok) return ack;
    assert.equal(ack.error.code, "unavailable", JSON.stringify(ack));
    assert.ok(Date.now() < deadline, "no worker seen: " + JSON.stringify(ack));
    await sleep(100);
  }
}

const cancelCode = async (socket, jobId) => {
  const ack = await socket.emitWithAck("task:cancel", { jobId });
  return ack.ok ? "ok" : ack.error.code;
};

test("search and model started on node A stream from the worker process to the tab on node B", async () => {
  const onA = await connect(a.url, tokenFor("alice"));
  const onB = await connect(b.url, tokenFor("alice"), { transports: ["polling"] });
  const bob = await connect(b.url, tokenFor("bob"));
  const bobGot = collect(bob, "search:result:v1");
  const started = collect(onB, "search:started");
  const results = collect(onB, "search:result:v1");
  const ack = await startJob(onA, "search:start", { query: "two nodes" });
  const complete = await next(onB, "search:complete:v1", (p) => p.jobId === ack.jobId);
  assert.equal(complete.total, 5);
  assert.deepEqual(started.filter((p) => p.jobId === ack.jobId).map((p) => p.query), ["two nodes"]);
  const mine = results.filter((p) => p.jobId === ack.jobId);
  assert.deepEqual(mine.map((r) => r.index), [0, 1, 2, 3, 4]);
  assert.ok(mine.every((r) => typeof r.eventId === "string" && typeof r.ts === "number" && r.result.title.includes("two nodes")));
  assert.equal(new Set(mine.map((r) => r.eventId)).size, 5);
  assert.equal(bobGot.length, 0, "another user got alice's results");

  const chunks = collect(onB, "model:chunk:v1");
  const model = await startJob(onA, "model:start", { prompt: "stream across nodes" });
  const done = await next(onB, "model:complete:v1", (p) => p.jobId === model.jobId);
  assert.equal(chunks.filter((c) => c.jobId === model.jobId).map((c) => c.chunk).join(""), done.text);
  assert.match(done.text, /stream across nodes/);
  // Node B counts the worker process, and the jobs that went through it.
  const metrics = await (await fetch(b.url + "/metrics")).text();
  assert.match(metrics, /\nsockeye_job_workers 1\n/);
  for (const s of [onA, onB, bob]) s.disconnect();
});

test("cancel on node A stops the job in the worker process; only the owner may", async () => {
  const onA = await connect(a.url, tokenFor("carol"));
  const onB = await connect(b.url, tokenFor("carol"));
  const mallory = await connect(b.url, tokenFor("mallory"));
  const job = await startJob(onA, "model:start", { prompt: "cancel me" });
  await next(onB, "model:chunk:v1", (p) => p.jobId === job.jobId);
  assert.equal(await cancelCode(mallory, job.jobId), "forbidden");
  const cancelled = next(onB, "task:cancelled:v1", (p) => p.jobId === job.jobId);
  assert.equal(await cancelCode(onA, job.jobId), "ok");
  await cancelled;
  // Nothing of the job after its cancellation: no chunk, no completion.
  const after = collect(onB, "model:chunk:v1", job.jobId);
  const completed = collect(onB, "model:complete:v1", job.jobId);
  await sleep(300);
  assert.equal(after.length + completed.length, 0, "the worker kept going after the cancel");
  // The worker's acknowledgement reaches every node: the job is over.
  await eventually("job over on node B", async () => (await cancelCode(onB, job.jobId)) === "not_found");
  for (const s of [onA, onB, mallory]) s.disconnect();
});

test("a Node worker takes a job from the stream and publishes with @socket.io/redis-emitter", async () => {
  // Its own cluster prefix, so the Rust worker does not take the job first.
  const key = "nodeworker";
  const c = await startServer([], { ...nodeEnv(key), NODE_ID: "c" });
  const r = createClient({ url: redis.url });
  await r.connect();
  try {
    const stream = `${key}:jobs`;
    // The heartbeat by which nodes know a worker takes jobs.
    await r.zAdd(`${key}:jobs:workers`, { score: Date.now(), value: "node-worker" });
    const dana = await connect(c.url, tokenFor("dana"));
    const ack = await startJob(dana, "search:start", { query: "from node" });
    const entry = await eventually("the job in the stream", async () => {
      const res = await r.xReadGroup("workers", "node-worker", { key: stream, id: ">" }, { COUNT: 1 });
      return res?.[0]?.messages?.[0];
    });
    const job = JSON.parse(entry.message.job);
    assert.deepEqual(
      { id: job.id, userId: job.userId, kind: job.kind },
      { id: ack.jobId, userId: "dana", kind: { type: "search", query: "from node" } },
    );
    assert.equal(typeof job.createdMs, "number");

    // Events in the catalogue envelope, to the user's room.
    const emitter = new Emitter(r, { key });
    const envelope = (payload) => ({ eventId: randomUUID(), ts: Date.now(), ...payload });
    const result = next(dana, "search:result:v1");
    const complete = next(dana, "search:complete:v1");
    const hit = { title: "from Node", url: "https://example.com/node", snippet: "published by Node", score: 1 };
    emitter.to(`user:${job.userId}`).emit("search:result:v1", envelope({ jobId: job.id, index: 0, result: hit }));
    emitter.to(`user:${job.userId}`).emit("search:complete:v1", envelope({ jobId: job.id, total: 1, durationMs: 3 }));
    const got = await result;
    assert.deepEqual({ ...got, eventId: undefined, ts: undefined }, { eventId: undefined, ts: undefined, jobId: job.id, index: 0, result: hit });
    assert.equal(typeof got.eventId, "string");
    assert.equal((await complete).total, 1);

    // Finished: acknowledge, forget, tell the nodes.
    await r.multi()
      .xAck(stream, "workers", entry.id)
      .xDel(stream, entry.id)
      .hDel(`${key}:jobs:live`, job.id)
      .publish(`${key}:jobs:events`, JSON.stringify({ op: "end", id: job.id }))
      .exec();
    await eventually("the node knows it is over", async () => (await cancelCode(dana, job.id)) === "not_found");
    dana.disconnect();
  } finally {
    await r.quit();
    await stop(c.child);
  }
});

test("a killed worker's job is run again by another worker (at-least-once)", async () => {
  const erin = await connect(b.url, tokenFor("erin"));
  const chunks = collect(erin, "model:chunk:v1");
  const job = await startJob(erin, "model:start", { prompt: "survive a crash" });
  await next(erin, "model:chunk:v1", (p) => p.jobId === job.jobId && p.index === 2);
  await stop(worker.child, "SIGKILL");
  worker = await startWorker({ ...workerEnv(), NODE_ID: "w2" });
  // Claimed once it has been idle for JOB_CLAIM_IDLE_MS (1 s), then run from the start.
  const done = await next(erin, "model:complete:v1", (p) => p.jobId === job.jobId, 10_000);
  const firsts = chunks.filter((c) => c.jobId === job.jobId && c.index === 0);
  assert.equal(firsts.length, 2, "the job ran twice: once cut short, once to the end");
  assert.match(done.text, /survive a crash/);
  erin.disconnect();
});

test("SIGTERM on node A: its client is disconnected and the app goes on on node B", async () => {
  const a2 = await startServer([], { ...nodeEnv(), NODE_ID: "a2" });
  // An app that knows both nodes: when a connection is lost, it connects to the next one.
  const urls = [a2.url, b.url];
  const reasons = [];
  const connected = [];
  const open = (i) => {
    const socket = client(urls[i % urls.length], tokenFor("gina"));
    socket.on("connect", () => connected.push({ url: urls[i % urls.length], socket }));
    socket.on("disconnect", (reason) => {
      reasons.push(reason);
      if (reason !== "io client disconnect") open(i + 1);
    });
  };
  open(0);
  const first = await eventually("connected to a2", () => connected[0]);
  assert.equal(first.url, a2.url);
  const job = await startJob(first.socket, "model:start", { prompt: "outlive the node" });
  await next(first.socket, "model:chunk:v1", (p) => p.jobId === job.jobId);

  assert.equal(await stop(a2.child), 0, "graceful exit");
  assert.ok(["transport close", "io server disconnect"].includes(reasons[0]), reasons[0]);
  const second = await eventually("reconnected to b", () => connected[1]);
  assert.equal(second.url, b.url);
  // The job lives in the worker, not in the node: it finishes on the tab's new connection.
  const done = await next(second.socket, "model:complete:v1", (p) => p.jobId === job.jobId);
  assert.match(done.text, /outlive the node/);
  const again = await startJob(second.socket, "search:start", { query: "after failover" });
  await next(second.socket, "search:complete:v1", (p) => p.jobId === again.jobId);
  second.socket.disconnect();
});

test("ADAPTER=sharded: the worker process publishes so that sharded nodes deliver", async () => {
  const key = "sharded";
  const env = { ...nodeEnv(key), ADAPTER: "sharded" };
  const s1 = await startServer([], { ...env, NODE_ID: "s1" });
  const s2 = await startServer([], { ...env, NODE_ID: "s2" });
  const w = await startWorker({ ...workerEnv(key), ADAPTER: "sharded", NODE_ID: "ws" });
  try {
    const on1 = await connect(s1.url, tokenFor("hank"));
    const on2 = await connect(s2.url, tokenFor("hank"));
    const results = collect(on2, "search:result:v1");
    const ack = await startJob(on1, "search:start", { query: "sharded" });
    await next(on2, "search:complete:v1", (p) => p.jobId === ack.jobId);
    assert.equal(results.filter((r) => r.jobId === ack.jobId).length, 5);
    // Tab sync between sharded nodes too.
    const relayed = next(on2, "tab:update:v1");
    on1.emit("tab:update", { tabId: "t", state: { n: 1 } });
    assert.equal((await relayed).tabId, "t");
    on1.disconnect();
    on2.disconnect();
  } finally {
    await Promise.all([stop(w.child), stop(s1.child), stop(s2.child)]);
  }
});

test("the worker process exits 0 on SIGTERM", async () => {
  assert.equal(await stop(worker.child), 0);
});

test("/api/health: redis down when Redis is killed, up when it is back", async () => {
  const own = await startRedis();
  const h = await startServer([], { ...nodeEnv(), REDIS_URL: own.url, NODE_ID: "h" });
  try {
    const health = async () => (await (await fetch(h.url + "/api/health")).json()).redis;
    assert.equal(await health(), "up");
    await own.kill();
    await eventually("redis down", async () => (await health()) === "down", 10_000);
    await own.restart();
    await eventually("redis up again", async () => (await health()) === "up", 15_000);
  } finally {
    await stop(h.child);
  }
});

test("teardown: the nodes exit 0", async () => {
  const codes = await within("exit", Promise.all([stop(a.child), stop(b.child)]));
  assert.deepEqual(codes, [0, 0]);
});
