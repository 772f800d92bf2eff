// Mixed classic cluster: one Rust testbed and one Node testbed (@socket.io/redis-adapter 8.x
// `createAdapter`) on the same real Redis, started here on a free port. Whatever TESTBED says,
// this file always runs one node of each implementation: the point is that they interoperate.
//
// Needs `redis-server` on PATH (Debian: redis-server) and the Rust testbed (see harness.mjs).

import { after, afterEach, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import net from "node:net";

import { closeSioClients, freePort, once, op, sioConnect, sleep, startTestbed } from "./harness.mjs";

const require = createRequire(import.meta.url);

/** A private redis-server; fails loudly when it is not installed. */
async function startRedis() {
  const port = await freePort();
  const child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], {
    stdio: "ignore",
  });
  const failed = new Promise((_, reject) =>
    child.once("error", (e) => reject(new Error(`cannot start redis-server (install redis-server): ${e.message}`))),
  );
  const deadline = Date.now() + 10000;
  for (;;) {
    const up = await Promise.race([
      failed,
      new Promise((resolve) => {
        const s = net.connect(port, "127.0.0.1");
        s.once("connect", () => {
          s.write("PING\r\n");
          s.once("data", (d) => {
            s.destroy();
            resolve(d.toString().startsWith("+PONG"));
          });
        });
        s.once("error", () => resolve(false));
      }),
    ]);
    if (up) break;
    if (Date.now() > deadline) throw new Error(`redis-server did not start on port ${port}`);
    await sleep(20);
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    stop: () => {
      child.kill("SIGKILL");
    },
  };
}

describe("classic cluster: Rust node + Node node", () => {
  let redis;
  let rust;
  let node;

  before(async () => {
    redis = await startRedis();
    const env = { REDIS_URL: redis.url, ADAPTER: "classic" };
    [rust, node] = await Promise.all([
      startTestbed("app", { ...env, NODE_NAME: "rust" }, "rust"),
      startTestbed("app", { ...env, NODE_NAME: "node" }, "node"),
    ]);
  });

  afterEach(async () => {
    closeSioClients();
    // let both nodes see the disconnections before the next test counts sockets
    await sleep(100);
  });

  after(async () => {
    closeSioClients();
    await Promise.allSettled([rust?.stop(), node?.stop()]);
    redis?.stop();
  });

  const clients = async (roomsR = [], roomsN = []) => {
    const r = await sioConnect(rust, "/", { transports: ["websocket"], auth: { rooms: roomsR, name: "r" } });
    const n = await sioConnect(node, "/", { transports: ["websocket"], auth: { rooms: roomsN, name: "n" } });
    return { r, n };
  };

  test("broadcasts cross in both directions, binary included", async () => {
    const { r, n } = await clients();
    // `broadcast` reaches the sender too: wait for both copies before the next step
    let got = [once(n, "bcast"), once(r, "bcast")];
    r.emit("broadcast", { from: "rust" });
    assert.deepEqual(await Promise.all(got), [[{ from: "rust" }], [{ from: "rust" }]]);
    got = [once(r, "bcast"), once(n, "bcast")];
    n.emit("broadcast", { from: "node", bin: Buffer.from([1, 2, 3]) });
    const [[payload]] = await Promise.all(got);
    assert.equal(payload.from, "node");
    assert.deepEqual([...payload.bin], [1, 2, 3]);
  });

  test("a room on the other node", async () => {
    const { r, n } = await clients(["rr"], ["nn"]);
    let got = once(n, "bcast");
    r.emit("to", "nn", "to nn");
    assert.deepEqual(await got, ["to nn"]);
    got = once(r, "bcast");
    n.emit("to", "rr", "to rr");
    assert.deepEqual(await got, ["to rr"]);
  });

  test("serverCount, fetchSockets and allRooms see both nodes", async () => {
    const { r, n } = await clients(["rr"], ["nn"]);
    for (const s of [r, n]) {
      assert.deepEqual(await op(s, { op: "serverCount" }), { count: 2 });
      const { sockets } = await op(s, { op: "fetchSockets" });
      const ids = sockets.map((x) => x.id);
      assert.ok(ids.includes(r.id) && ids.includes(n.id), JSON.stringify(sockets));
      const remote = sockets.find((x) => x.id === (s === r ? n.id : r.id));
      assert.deepEqual(remote.data.rooms, s === r ? ["nn"] : ["rr"]);
      const { rooms } = await op(s, { op: "allRooms" });
      assert.ok(rooms.includes("rr") && rooms.includes("nn"), JSON.stringify(rooms));
    }
    const inRoom = await op(n, { op: "fetchSockets", rooms: ["rr"] });
    assert.deepEqual(
      inRoom.sockets.map((x) => x.id),
      [r.id],
    );
  });

  test("serverSideEmit with ack gets the other node's answer", async () => {
    const { r, n } = await clients();
    assert.deepEqual(await op(r, { op: "serverSideEmit", event: "ping", args: [1], timeout: 3000 }), {
      err: null,
      responses: ["node"],
    });
    assert.deepEqual(await op(n, { op: "serverSideEmit", event: "ping", args: [2], timeout: 3000 }), {
      err: null,
      responses: ["rust"],
    });
    const onNode = await op(n, { op: "received" });
    assert.ok(onNode.events.some((e) => e.event === "ping" && e.args[0] === 1), JSON.stringify(onNode));
    const onRust = await op(r, { op: "received" });
    assert.ok(onRust.events.some((e) => e.event === "ping" && e.args[0] === 2), JSON.stringify(onRust));
  });

  test("broadcast with acks collects both nodes' clients", async () => {
    const { r, n } = await clients(["acks"], ["acks"]);
    r.on("ackme", (_x, cb) => cb("from-r"));
    n.on("ackme", (_x, cb) => cb("from-n"));
    for (const s of [r, n]) {
      const res = await op(s, { op: "emit", event: "ackme", args: [1], rooms: ["acks"], timeout: 3000 });
      assert.equal(res.err, null, JSON.stringify(res));
      assert.deepEqual([...res.responses].sort(), ["from-n", "from-r"]);
    }
  });

  test("socketsJoin and disconnectSockets cross nodes", async () => {
    const { r, n } = await clients();
    await op(r, { op: "socketsJoin", room: "joined" });
    await sleep(200);
    const gotR = once(r, "bcast");
    const gotN = once(n, "bcast");
    n.emit("to", "joined", "j");
    assert.deepEqual(await gotR, ["j"]);
    assert.deepEqual(await gotN, ["j"]);
    const gone = once(r, "disconnect");
    await op(n, { op: "disconnectSockets", rooms: [r.id] });
    assert.deepEqual(await gone, ["io server disconnect", undefined]);
  });

  test("@socket.io/redis-emitter reaches the Rust node", async () => {
    const { r } = await clients(["em"]);
    const { createClient } = require("redis");
    const { Emitter } = require("@socket.io/redis-emitter");
    const client = createClient({ url: redis.url });
    await client.connect();
    try {
      const emitter = new Emitter(client);
      const got = once(r, "from-emitter");
      emitter.to("em").emit("from-emitter", 1, Buffer.from([9]), new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 678)));
      const [one, bin, date] = await got;
      assert.equal(one, 1);
      assert.deepEqual([...bin], [9]);
      assert.equal(date, "2024-01-02T03:04:05.678Z");
    } finally {
      await client.disconnect();
    }
  });
});
