// Mixed sharded cluster: one Rust testbed and one Node testbed (@socket.io/redis-adapter 8.x
// `createShardedAdapter`, Redis ≥ 7 sharded pub/sub) on the same real Redis, started here on a
// free port, in each subscription mode (static, dynamic, dynamic-private; each mode with its
// own KEY, so the clusters do not see each other). Whatever TESTBED says, this file always runs
// one node of each implementation: the point is that they interoperate.
//
// Needs `redis-server` ≥ 7 on PATH (Debian: redis-server) and the Rust testbed (see harness.mjs).

import { after, afterEach, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import net from "node:net";

import { closeSioClients, freePort, once, op, sioConnect, sleep, startTestbed } from "./harness.mjs";

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
    port,
    stop: () => {
      child.kill("SIGKILL");
    },
  };
}

/** One raw command on a fresh connection; resolves with the raw RESP reply. */
function redisCommand(port, args) {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, "127.0.0.1");
    let out = "";
    s.once("connect", () => s.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join("")}`));
    s.on("data", (d) => {
      out += d;
      // the replies used here end with an integer line
      if (/:\d+\r\n$/.test(out)) {
        s.destroy();
        resolve(out);
      }
    });
    s.once("error", reject);
    setTimeout(() => {
      s.destroy();
      resolve(out);
    }, 1000);
  });
}

/** `PUBSUB SHARDNUMSUB channel`. */
async function shardNumsub(port, channel) {
  const reply = await redisCommand(port, ["PUBSUB", "SHARDNUMSUB", channel]);
  return Number(reply.trim().split("\r\n").pop().slice(1));
}

let redis;

before(async () => {
  redis = await startRedis();
});

after(() => {
  redis?.stop();
});

for (const mode of ["static", "dynamic", "dynamic-private"]) {
  describe(`sharded cluster (${mode}): Rust node + Node node`, () => {
    const key = `sio-${mode}`;
    let rust;
    let node;

    before(async () => {
      const env = { REDIS_URL: redis.url, ADAPTER: "sharded", SUBSCRIPTION_MODE: mode, KEY: key };
      [rust, node] = await Promise.all([
        startTestbed("app", { ...env, NODE_NAME: "rust" }, "rust"),
        startTestbed("app", { ...env, NODE_NAME: "node" }, "node"),
      ]);
    });

    afterEach(async () => {
      closeSioClients();
      // let both nodes see the disconnections (and drop their room channels)
      await sleep(100);
    });

    after(async () => {
      closeSioClients();
      await Promise.allSettled([rust?.stop(), node?.stop()]);
    });

    /** Connects one client to each node; waits until their rooms' channels are subscribed. */
    const clients = async (roomsR = [], roomsN = []) => {
      const r = await sioConnect(rust, "/", { transports: ["websocket"], auth: { rooms: roomsR, name: "r" } });
      const n = await sioConnect(node, "/", { transports: ["websocket"], auth: { rooms: roomsN, name: "n" } });
      if (mode !== "static") {
        for (const room of [...roomsR, ...roomsN]) {
          const want = roomsR.includes(room) + roomsN.includes(room);
          const deadline = Date.now() + 3000;
          while ((await shardNumsub(redis.port, `${key}#/#${room}#`)) !== want) {
            assert.ok(Date.now() < deadline, `room channel ${room} not subscribed`);
            await sleep(20);
          }
        }
      }
      return { r, n };
    };

    test("both nodes subscribe the main channel once (serverCount)", async () => {
      assert.equal(await shardNumsub(redis.port, `${key}#/#`), 2);
      const { r, n } = await clients();
      assert.deepEqual(await op(r, { op: "serverCount" }), { count: 2 });
      assert.deepEqual(await op(n, { op: "serverCount" }), { count: 2 });
    });

    test("broadcasts cross in both directions, binary included", async () => {
      const { r, n } = await clients();
      let got = [once(n, "bcast"), once(r, "bcast")];
      r.emit("broadcast", { from: "rust" });
      assert.deepEqual(await Promise.all(got), [[{ from: "rust" }], [{ from: "rust" }]]);
      got = [once(r, "bcast"), once(n, "bcast")];
      n.emit("broadcast", { from: "node", bin: Buffer.from([1, 2, 3]) });
      const [[payload]] = await Promise.all(got);
      assert.equal(payload.from, "node");
      assert.deepEqual([...payload.bin], [1, 2, 3]);
      // Rust → Node with binary (msgpack message on the wire)
      got = [once(n, "bcast"), once(r, "bcast")];
      r.emit("broadcast", { from: "rust", bin: Buffer.from([4, 5]) });
      const [[fromRust]] = await Promise.all(got);
      assert.deepEqual([...fromRust.bin], [4, 5]);
    });

    test("a room and a socket id on the other node", async () => {
      const { r, n } = await clients(["rr"], ["nn"]);
      let got = once(n, "bcast");
      r.emit("to", "nn", "to nn");
      assert.deepEqual(await got, ["to nn"]);
      got = once(r, "bcast");
      n.emit("to", "rr", "to rr");
      assert.deepEqual(await got, ["to rr"]);
      // a socket id: the main channel in dynamic mode, the socket's channel in dynamic-private
      got = once(n, "bcast");
      r.emit("to", n.id, "to n");
      assert.deepEqual(await got, ["to n"]);
      got = once(r, "bcast");
      n.emit("to", r.id, "to r");
      assert.deepEqual(await got, ["to r"]);
    });

    test("fetchSockets sees both nodes", async () => {
      const { r, n } = await clients(["rr"], ["nn"]);
      for (const s of [r, n]) {
        const { sockets } = await op(s, { op: "fetchSockets" });
        const ids = sockets.map((x) => x.id);
        assert.ok(ids.includes(r.id) && ids.includes(n.id), JSON.stringify(sockets));
        const remote = sockets.find((x) => x.id === (s === r ? n.id : r.id));
        assert.deepEqual(remote.data.rooms, s === r ? ["nn"] : ["rr"]);
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
      // a node with no matching client still answers (client count 0)
      const res = await op(r, { op: "emit", event: "ackme", args: [2], rooms: [r.id], timeout: 3000 });
      assert.deepEqual(res, { err: null, responses: ["from-r"] });
    });

    test("socketsJoin and disconnectSockets cross nodes", async () => {
      const { r, n } = await clients();
      await op(r, { op: "socketsJoin", room: "joined" });
      if (mode !== "static") {
        // the room appeared on both nodes: both subscribe its channel
        const deadline = Date.now() + 3000;
        while ((await shardNumsub(redis.port, `${key}#/#joined#`)) !== 2) {
          assert.ok(Date.now() < deadline, "joined channel not subscribed by both nodes");
          await sleep(20);
        }
      } else {
        await sleep(200);
      }
      const gotR = once(r, "bcast");
      const gotN = once(n, "bcast");
      n.emit("to", "joined", "j");
      assert.deepEqual(await gotR, ["j"]);
      assert.deepEqual(await gotN, ["j"]);
      await op(n, { op: "socketsLeave", room: "joined" });
      if (mode !== "static") {
        const deadline = Date.now() + 3000;
        while ((await shardNumsub(redis.port, `${key}#/#joined#`)) !== 0) {
          assert.ok(Date.now() < deadline, "joined channel not dropped");
          await sleep(20);
        }
      }
      const gone = once(r, "disconnect");
      await op(n, { op: "disconnectSockets", rooms: [r.id] });
      assert.deepEqual(await gone, ["io server disconnect", undefined]);
      const r2 = await sioConnect(rust, "/", { transports: ["websocket"], auth: { rooms: [], name: "r2" } });
      const goneN = once(n, "disconnect");
      await op(r2, { op: "disconnectSockets", rooms: [n.id] });
      assert.deepEqual(await goneN, ["io server disconnect", undefined]);
    });
  });
}
