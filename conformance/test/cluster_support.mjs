// Shared parts of the cluster tests (cluster_*.test.mjs): private redis-server processes (one
// standalone server, or a 3-master Redis Cluster), two testbed nodes of chosen implementations
// and parsers on them, clients on every node over both transports, the Rust and Node emitters,
// and the test list that runs every cluster-relevant `app` operation of CONTRACT.md from each
// node to the other.
//
// Needs `redis-server` ≥ 7 and `redis-cli` on PATH (Debian: redis-server, redis-tools), the Rust
// testbed (see harness.mjs) and cargo for the Rust emitter (built on first use).

import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";

import {
  REPO_ROOT,
  TESTBED,
  ack,
  closeSioClients,
  connected,
  freePort,
  op,
  sioConnect,
  sleep,
  startTestbed,
} from "./harness.mjs";

const require = createRequire(import.meta.url);
const run = promisify(execFile);

/**
 * These files start one node of each implementation whatever TESTBED says, so they run once, in
 * the TESTBED=rust pass of the suite (value for `describe`'s `skip`).
 */
export const SKIP_UNDER_NODE =
  TESTBED === "node" ? "cluster tests start both implementations themselves: they run under TESTBED=rust" : false;

// ------------------------------------------------------------------------------------------------
// Redis.

/** One command on a fresh connection; resolves with the decoded RESP reply. */
export function redisCommand(port, args, timeout = 2000) {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, "127.0.0.1");
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`redis ${args.join(" ")} on ${port}: no reply within ${timeout} ms`));
    }, timeout);
    s.once("connect", () =>
      s.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join("")}`),
    );
    s.on("data", (d) => {
      buf = Buffer.concat([buf, d]);
      const parsed = parseResp(buf, 0);
      if (parsed) {
        clearTimeout(timer);
        s.destroy();
        if (parsed.value instanceof Error) reject(parsed.value);
        else resolve(parsed.value);
      }
    });
    s.once("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

/** `{ value, end }` for the RESP2 reply at `at`, or null while incomplete. */
function parseResp(buf, at) {
  const eol = buf.indexOf("\r\n", at);
  if (eol < 0) return null;
  const line = buf.toString("utf8", at + 1, eol);
  switch (String.fromCharCode(buf[at])) {
    case "+":
      return { value: line, end: eol + 2 };
    case "-":
      return { value: new Error(line), end: eol + 2 };
    case ":":
      return { value: Number(line), end: eol + 2 };
    case "$": {
      const n = Number(line);
      if (n < 0) return { value: null, end: eol + 2 };
      if (buf.length < eol + 2 + n + 2) return null;
      return { value: buf.toString("utf8", eol + 2, eol + 2 + n), end: eol + 2 + n + 2 };
    }
    case "*": {
      const n = Number(line);
      const items = [];
      let pos = eol + 2;
      for (let i = 0; i < n; i++) {
        const item = parseResp(buf, pos);
        if (!item) return null;
        items.push(item.value);
        pos = item.end;
      }
      return { value: items, end: pos };
    }
    default:
      return { value: new Error(`unexpected RESP ${line}`), end: eol + 2 };
  }
}

/**
 * A private redis-server on a free port (`extra`: more arguments, or a function of the port that
 * returns them); fails loudly when it is not installed.
 */
export async function startRedis(extra = []) {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const args = typeof extra === "function" ? await extra(port) : extra;
    const child = spawn(
      "redis-server",
      ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", ...args],
      { stdio: "ignore" },
    );
    let spawnError;
    let exited = false;
    child.once("error", (e) => {
      spawnError = e;
    });
    child.once("exit", () => {
      exited = true;
    });
    const deadline = Date.now() + 10000;
    for (;;) {
      if (spawnError) throw new Error(`cannot start redis-server (install redis-server): ${spawnError.message}`);
      if ((await redisCommand(port, ["PING"], 500).catch(() => null)) === "PONG") {
        return {
          port,
          ports: [port],
          url: `redis://127.0.0.1:${port}`,
          urlOf: () => `redis://127.0.0.1:${port}`,
          isCluster: false,
          stop() {
            child.kill("SIGKILL");
          },
        };
      }
      // the port was taken between freePort() and bind: another one
      if (exited && attempt < 3) break;
      if (exited || Date.now() > deadline) throw new Error(`redis-server did not start on port ${port}`);
      await sleep(20);
    }
  }
}

/** A Redis Cluster of 3 masters (no replicas) on free ports, made with `redis-cli --cluster create`. */
export async function startRedisCluster() {
  const dir = mkdtempSync(path.join(os.tmpdir(), "sockeye-conformance-cluster-"));
  const nodes = [];
  try {
    for (let i = 0; i < 3; i++) {
      nodes.push(
        await startRedis(async (port) => [
          "--cluster-enabled",
          "yes",
          // the default bus port, port + 10000, does not exist above 55535
          "--cluster-port",
          String(await freePort()),
          "--cluster-config-file",
          `nodes-${port}.conf`,
          "--cluster-node-timeout",
          "5000",
          "--dir",
          dir,
        ]),
      );
    }
    await run(
      "redis-cli",
      ["--cluster", "create", ...nodes.map((n) => `127.0.0.1:${n.port}`), "--cluster-replicas", "0", "--cluster-yes"],
      { timeout: 30000 },
    ).catch((e) => {
      throw new Error(`redis-cli --cluster create failed (install redis-tools): ${e.message}\n${e.stdout ?? ""}`);
    });
    const deadline = Date.now() + 15000;
    for (;;) {
      const infos = await Promise.all(nodes.map((n) => redisCommand(n.port, ["CLUSTER", "INFO"]).catch(() => "")));
      if (infos.every((i) => i.includes("cluster_state:ok"))) break;
      if (Date.now() > deadline) throw new Error("the Redis Cluster did not become ok");
      await sleep(50);
    }
  } catch (e) {
    for (const n of nodes) n.stop();
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return {
    nodes,
    ports: nodes.map((n) => n.port),
    url: nodes[0].url,
    urlOf: (i) => nodes[i % nodes.length].url,
    isCluster: true,
    stop() {
      for (const n of nodes) n.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Subscribers of a sharded channel, summed over every server (a Redis Cluster counts per master). */
export async function shardNumsub(redis, channel) {
  const replies = await Promise.all(redis.ports.map((p) => redisCommand(p, ["PUBSUB", "SHARDNUMSUB", channel])));
  return replies.reduce((sum, [, n]) => sum + n, 0);
}

// ------------------------------------------------------------------------------------------------
// Waiting.

/** Retry `fn` (which asserts) until it passes or `timeout` ms are over; the last failure is thrown. */
export async function eventually(fn, timeout = 4000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    try {
      return await fn();
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await sleep(25);
    }
  }
}

/** Binary values (Buffer, Uint8Array, ArrayBuffer) as `{ bin: [bytes] }`, recursively: parsers differ. */
export function norm(v) {
  // a Date reaches JSON clients as its ISO string, msgpack clients as a timestamp
  if (v instanceof Date) return v.toISOString();
  if (v instanceof ArrayBuffer) return { bin: [...new Uint8Array(v)] };
  if (ArrayBuffer.isView(v)) return { bin: [...new Uint8Array(v.buffer, v.byteOffset, v.byteLength)] };
  if (Array.isArray(v)) return v.map(norm);
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, norm(x)]));
  return v;
}

// ------------------------------------------------------------------------------------------------
// Nodes and clients.

/**
 * One two-node cluster: `impls` (["rust", "node"] ...), `parsers` (PARSER of each node), on
 * `redis` (node i connects to `redis.urlOf(i)`, so on a Redis Cluster the nodes enter through
 * different masters).
 */
export class Cluster {
  constructor({ redis, impls, parsers, adapter, mode, key }) {
    Object.assign(this, { redis, impls, parsers, adapter, mode, key });
    this.labels = ["A", "B"];
  }

  get describe() {
    return this.labels.map((l, i) => `${l}=${this.impls[i]}/${this.parsers[i]}`).join(" + ");
  }

  /** Whether room channels are (un)subscribed as rooms come and go (sharded dynamic modes). */
  get dynamicRooms() {
    return this.adapter === "sharded" && this.mode !== "static";
  }

  nameOf(label) {
    return `${label}-${this.impls[this.labels.indexOf(label)]}`;
  }

  async start() {
    this.nodes = await Promise.all(
      this.labels.map((label, i) =>
        startTestbed(
          "app",
          {
            REDIS_URL: this.redis.urlOf(i * 2),
            ADAPTER: this.adapter,
            ...(this.mode ? { SUBSCRIPTION_MODE: this.mode } : {}),
            KEY: this.key,
            PARSER: this.parsers[i],
            NODE_NAME: this.nameOf(label),
          },
          this.impls[i],
        ),
      ),
    );
    return this;
  }

  async stop() {
    closeSioClients();
    await Promise.allSettled((this.nodes ?? []).map((n) => n.stop()));
  }

  node(label) {
    return this.nodes[this.labels.indexOf(label)];
  }

  /**
   * Four clients of namespace `nsp`: `A_ws`, `A_poll`, `B_ws`, `B_poll` (WebSocket only and
   * polling only on each node, with that node's parser). Each joins `<tag>-all`,
   * `<tag>-<node>`, `<tag>-<ws|poll>` through its auth (also kept as its `data`) and records
   * every event it receives. Returns once room channels are subscribed (sharded dynamic modes).
   */
  async clients(tag, nsp = "/") {
    const list = [];
    for (const label of this.labels) {
      for (const [tr, transports] of [
        ["ws", ["websocket"]],
        ["poll", ["polling"]],
      ]) {
        const name = `${label}_${tr}`;
        const auth = { tag, name, rooms: [`${tag}-all`, `${tag}-${label}`, `${tag}-${tr}`] };
        const socket = await sioConnect(this.node(label), nsp, { transports, auth });
        list.push(new Client(name, label, socket, auth));
      }
    }
    const set = new Clients(this, tag, nsp, list);
    await set.waitRoomChannels();
    return set;
  }
}

/** A client socket with the log of every event it received. */
class Client {
  constructor(name, node, socket, auth) {
    Object.assign(this, { name, node, socket, auth, id: socket.id, log: [] });
    socket.onAny((event, ...args) => this.log.push({ event, args }));
    this.disconnected = new Promise((resolve) => socket.on("disconnect", (reason) => resolve(reason)));
  }

  /** Entries of `event` whose first argument is `id` or has `.id === id`. */
  got(event, id) {
    return this.log.filter((e) => e.event === event && idOf(e.args) === id);
  }
}

const idOf = (args) => (typeof args[0] === "string" ? args[0] : args[0]?.id);

let markers = 0;

/** The four clients of one test. */
class Clients {
  constructor(cluster, tag, nsp, list) {
    Object.assign(this, { cluster, tag, nsp, list });
    for (const c of list) this[c.name] = c;
  }

  /**
   * The client that runs ops on node `label` (A: polling, B: WebSocket, so both transports
   * carry ops), or another one of that node once it is gone.
   */
  on(label) {
    const first = label === "A" ? this.A_poll : this.B_ws;
    if (first.socket.connected) return first;
    const other = this.list.find((c) => c.node === label && c.socket.connected);
    assert.ok(other, `no connected client left on ${label}`);
    return other;
  }

  room(suffix) {
    return `${this.tag}-${suffix}`;
  }

  /**
   * Sharded dynamic modes: waits until each room of the given members (default: the rooms of the
   * auth of every connected client, plus socket ids in dynamic-private) has its channel
   * subscribed by exactly the nodes that hold it.
   */
  async waitRoomChannels(rooms) {
    const { cluster } = this;
    if (!cluster.dynamicRooms) return;
    if (!rooms) {
      rooms = {};
      for (const c of this.list) {
        if (!c.socket.connected) continue;
        const own = [...c.auth.rooms, ...(cluster.mode === "dynamic-private" ? [c.id] : [])];
        for (const r of own) (rooms[r] ??= new Set()).add(c.node);
      }
    }
    for (const [room, nodes] of Object.entries(rooms)) {
      const want = nodes instanceof Set ? nodes.size : nodes;
      const channel = `${cluster.key}#${this.nsp}#${room}#`;
      await eventually(async () => assert.equal(await shardNumsub(cluster.redis, channel), want, `subscribers of ${channel}`));
    }
  }

  /**
   * Every client has seen a marker emitted from each node after the operation under test: what
   * that operation sent has arrived by then (Redis keeps the publish order; a Redis Cluster
   * spreads channels over masters, so there a short pause is added).
   */
  async settle() {
    const id = `marker-${++markers}`;
    const live = this.list.filter((c) => c.socket.connected);
    for (const label of this.cluster.labels) {
      const from = live.find((c) => c.node === label);
      if (from) await op(from.socket, { op: "emit", event: "marker", args: [`${id}-${label}`], rooms: [this.room("all")] });
    }
    await eventually(() => {
      for (const c of live)
        for (const label of this.cluster.labels)
          if (live.some((x) => x.node === label)) assert.equal(c.got("marker", `${id}-${label}`).length, 1, `${c.name} marker`);
    });
    if (this.cluster.redis.isCluster) await sleep(100);
  }

  /**
   * Exactly the clients `names` get `event` with id `id`, once each; returns their arguments
   * (binary normalized) by client name.
   */
  async expect(event, id, names) {
    await eventually(() => {
      for (const n of names) assert.equal(this[n].got(event, id).length, 1, `${n} got ${event} ${id}`);
    });
    await this.settle();
    const who = this.list.filter((c) => c.got(event, id).length > 0).map((c) => c.name);
    assert.deepEqual(who.sort(), [...names].sort(), `receivers of ${event} ${id}`);
    for (const n of names) assert.equal(this[n].got(event, id).length, 1, `${n} got ${event} ${id} once`);
    return Object.fromEntries(names.map((n) => [n, norm(this[n].got(event, id)[0].args)]));
  }

  /** What fetchSockets must report for these clients: sorted by id, rooms sorted. */
  sockets(names) {
    return names
      .map((n) => this[n])
      .map((c) => ({ id: c.id, rooms: [c.id, ...c.auth.rooms], data: c.auth }))
      .map((s) => ({ ...s, rooms: byteSort(s.rooms) }))
      .sort((a, b) => Buffer.compare(Buffer.from(a.id), Buffer.from(b.id)));
  }

  /** fetchSockets through node `label`, keeping only this test's sockets. */
  async fetch(label, spec = {}) {
    const res = await op(this.on(label).socket, { op: "fetchSockets", ...spec });
    assert.ok(Array.isArray(res.sockets), JSON.stringify(res));
    return res.sockets.filter((s) => s.data?.tag === this.tag);
  }

  /** The ids of this test's sockets that fetchSockets through `label` finds in `rooms`. */
  async idsIn(label, rooms) {
    return (await this.fetch(label, { rooms })).map((s) => s.id);
  }

  idsOf(names) {
    return byteSort(names.map((n) => this[n].id));
  }
}

const byteSort = (list) => [...list].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));

// ------------------------------------------------------------------------------------------------
// Emitters.

/** The Node `@socket.io/redis-emitter` on its own Redis connection: `{ emitter, close() }`. */
export async function nodeEmitter(redisUrl, key) {
  const { createClient } = require("redis");
  const { Emitter } = require("@socket.io/redis-emitter");
  const client = createClient({ url: redisUrl });
  client.on("error", () => {});
  await client.connect();
  return { emitter: new Emitter(client, { key }), close: () => client.disconnect() };
}

let emitterBin;
/** Builds (once per run; a no-op when up to date) and returns the Rust `emitter` binary. */
async function rustEmitterBin() {
  if (process.env.EMITTER_BIN) return path.resolve(process.env.EMITTER_BIN);
  if (!emitterBin) {
    const bin = path.join(REPO_ROOT, "target", "release", "emitter");
    emitterBin = run("cargo", ["build", "--release", "--quiet", "-p", "conformance", "--bin", "emitter"], {
      cwd: REPO_ROOT,
      timeout: 600000,
    })
      .then(() => bin)
      .catch((e) => {
        if (existsSync(bin)) return bin;
        throw new Error(`cannot build the Rust emitter (cargo build -p conformance --bin emitter): ${e.message}`);
      });
  }
  return emitterBin;
}

/** Binary as the `emitter` binary's spec writes it. */
const binSpec = (v) => {
  if (ArrayBuffer.isView(v)) return { $bin: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("hex") };
  if (Array.isArray(v)) return v.map(binSpec);
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, binSpec(x)]));
  return v;
};

/** Runs one operation of the Rust emitter (conformance/src/bin/emitter.rs). */
export async function rustEmit(redisUrl, key, spec) {
  const bin = await rustEmitterBin();
  await run(bin, [JSON.stringify(binSpec(spec))], { env: { ...process.env, REDIS_URL: redisUrl, KEY: key }, timeout: 10000 });
}

/**
 * Both emitters behind one interface: `emit(nsp, {rooms, except}, event, ...args)`,
 * `socketsJoin`, `socketsLeave`, `disconnectSockets`, `serverSideEmit`.
 */
export async function emitters(redisUrl, key) {
  // build the Rust emitter here (in a `before` hook), not inside a timed test
  await rustEmitterBin();
  const node = await nodeEmitter(redisUrl, key);
  const sel = (nsp, { rooms = [], except = [] } = {}) => node.emitter.of(nsp).to(rooms).except(except);
  return {
    node: {
      emit: async (nsp, t, event, ...args) => void sel(nsp, t).emit(event, ...args),
      socketsJoin: async (nsp, t, room) => void sel(nsp, t).socketsJoin(room),
      socketsLeave: async (nsp, t, room) => void sel(nsp, t).socketsLeave(room),
      disconnectSockets: async (nsp, t, close) => void sel(nsp, t).disconnectSockets(close),
      serverSideEmit: async (nsp, event, ...args) => void node.emitter.of(nsp).serverSideEmit(event, ...args),
    },
    rust: {
      emit: (nsp, t, event, ...args) => rustEmit(redisUrl, key, { op: "emit", nsp, ...t, event, args }),
      socketsJoin: (nsp, t, room) => rustEmit(redisUrl, key, { op: "socketsJoin", nsp, ...t, room }),
      socketsLeave: (nsp, t, room) => rustEmit(redisUrl, key, { op: "socketsLeave", nsp, ...t, room }),
      disconnectSockets: (nsp, t, close) => rustEmit(redisUrl, key, { op: "disconnectSockets", nsp, ...t, close }),
      serverSideEmit: (nsp, event, ...args) => rustEmit(redisUrl, key, { op: "serverSideEmit", nsp, event, args }),
    },
    close: () => node.close(),
  };
}

// ------------------------------------------------------------------------------------------------
// The tests.

const TEST_TIMEOUT = { timeout: 30000 };

/**
 * Every cluster-relevant `app` operation, from node A to node B and from B to A, with clients of
 * both transports on both nodes. `ctx.cluster` is the running Cluster (set in `before`).
 * Call inside a `describe` whose `afterEach` closes the clients.
 */
export function clusterOpTests(ctx) {
  let n = 0;
  const fresh = (nsp) => ctx.cluster.clients(`t${++n}`, nsp);
  const other = (label) => (label === "A" ? "B" : "A");

  test("serverCount is 2 on both nodes", TEST_TIMEOUT, async () => {
    const cl = await fresh();
    for (const c of cl.list) assert.deepEqual(await op(c.socket, { op: "serverCount" }), { count: 2 }, c.name);
  });

  test("`broadcast` reaches every client of both nodes, binary included", TEST_TIMEOUT, async () => {
    const cl = await fresh();
    for (const from of ["A", "B"]) {
      const id = `bcast-${from}`;
      cl.on(from).socket.emit("broadcast", { id, bin: Buffer.from([0, 1, 255, from.charCodeAt(0)]), n: 1.5 });
      const got = await cl.expect("bcast", id, ["A_ws", "A_poll", "B_ws", "B_poll"]);
      for (const args of Object.values(got)) {
        assert.deepEqual(args, [{ id, bin: { bin: [0, 1, 255, from.charCodeAt(0)] }, n: 1.5 }]);
      }
    }
  });

  test("`to` a room and a socket id held by the other node", TEST_TIMEOUT, async () => {
    const cl = await fresh();
    for (const from of ["A", "B"]) {
      const to = other(from);
      cl.on(from).socket.emit("to", cl.room(to), { id: `room-${from}` });
      await cl.expect("bcast", `room-${from}`, [`${to}_ws`, `${to}_poll`]);
      cl.on(from).socket.emit("to", cl[`${to}_poll`].id, { id: `sid-${from}` });
      await cl.expect("bcast", `sid-${from}`, [`${to}_poll`]);
    }
  });

  test("op emit: rooms, except (room and socket id), local, several arguments with binary", TEST_TIMEOUT, async () => {
    const cl = await fresh();
    const args = (id) => [{ id, bin: Buffer.from([9, 8, 7]) }, 2, "x", null, [Buffer.from([1])]];
    const normArgs = (id) => norm(args(id));
    for (const from of ["A", "B"]) {
      const to = other(from);
      const s = cl.on(from).socket;
      // the other node's clients plus every ws client, but not the other node's polling client
      let id = `except-sid-${from}`;
      assert.deepEqual(
        await op(s, {
          op: "emit",
          event: "news",
          args: args(id),
          rooms: [cl.room(to), cl.room("ws")],
          except: [cl[`${to}_poll`].id],
        }),
        {},
      );
      let got = await cl.expect("news", id, [`${from}_ws`, `${to}_ws`]);
      for (const a of Object.values(got)) assert.deepEqual(a, normArgs(id));
      // rooms minus a room
      id = `except-room-${from}`;
      await op(s, { op: "emit", event: "news", args: args(id), rooms: [cl.room(to), cl.room("poll")], except: [cl.room(from)] });
      got = await cl.expect("news", id, [`${to}_ws`, `${to}_poll`]);
      for (const a of Object.values(got)) assert.deepEqual(a, normArgs(id));
      // local: this node only
      id = `local-${from}`;
      await op(s, { op: "emit", event: "news", args: [id], rooms: [cl.room("all")], local: true });
      await cl.expect("news", id, [`${from}_ws`, `${from}_poll`]);
    }
  });

  test("op emit with timeout: acks of both nodes' clients, and a timeout with what arrived", TEST_TIMEOUT, async () => {
    const cl = await fresh();
    for (const c of cl.list) {
      c.socket.on("ackme", (x, cb) => cb({ from: c.name, bin: Buffer.from([x]) }));
      // one client per node never answers "slow"
      c.socket.on("slow", (x, cb) => c.name !== "A_ws" && c.name !== "B_poll" && cb(c.name));
    }
    for (const [i, from] of ["A", "B"].entries()) {
      const s = cl.on(from).socket;
      const res = await op(s, { op: "emit", event: "ackme", args: [i + 1], rooms: [cl.room("all")], timeout: 4000 });
      assert.equal(res.err, null, JSON.stringify(res));
      assert.deepEqual(
        norm(res.responses).sort((a, b) => a.from.localeCompare(b.from)),
        ["A_poll", "A_ws", "B_poll", "B_ws"].map((name) => ({ from: name, bin: { bin: [i + 1] } })),
      );
      // only the other node's clients, minus one
      const only = await op(s, {
        op: "emit",
        event: "ackme",
        args: [7],
        rooms: [cl.room(other(from))],
        except: [cl[`${other(from)}_ws`].id],
        timeout: 4000,
      });
      assert.deepEqual(norm(only), { err: null, responses: [{ from: `${other(from)}_poll`, bin: { bin: [7] } }] });
      const slow = await op(s, { op: "emit", event: "slow", args: [0], rooms: [cl.room("all")], timeout: 1000 });
      assert.equal(slow.err, "timeout", JSON.stringify(slow));
      assert.deepEqual([...slow.responses].sort(), ["A_poll", "B_ws"]);
    }
  });

  test("fetchSockets: ids, rooms and data of both nodes' sockets, with rooms and except", TEST_TIMEOUT, async () => {
    const cl = await fresh();
    for (const from of ["A", "B"]) {
      const to = other(from);
      assert.deepEqual(await cl.fetch(from), cl.sockets(["A_ws", "A_poll", "B_ws", "B_poll"]));
      assert.deepEqual(await cl.fetch(from, { rooms: [cl.room("all")] }), cl.sockets(["A_ws", "A_poll", "B_ws", "B_poll"]));
      assert.deepEqual(await cl.fetch(from, { rooms: [cl.room(to)], except: [cl.room("ws")] }), cl.sockets([`${to}_poll`]));
      assert.deepEqual(
        await cl.fetch(from, { rooms: [cl.room("poll"), cl[`${to}_ws`].id], except: [cl[`${from}_poll`].id] }),
        cl.sockets([`${to}_ws`, `${to}_poll`]),
      );
      // local: this node only
      assert.deepEqual(
        await cl.fetch(from, { rooms: [cl.room("all")], local: true }),
        cl.sockets([`${from}_ws`, `${from}_poll`]),
      );
    }
  });

  test("allRooms lists both nodes' rooms; a room left on both nodes disappears", TEST_TIMEOUT, async () => {
    const cl = await fresh();
    const mine = (rooms) => rooms.filter((r) => r.startsWith(`${cl.tag}-`) || cl.list.some((c) => c.id === r));
    const all = byteSort([...["all", "A", "B", "ws", "poll"].map((r) => cl.room(r)), ...cl.list.map((c) => c.id)]);
    for (const from of ["A", "B"]) {
      const { rooms } = await op(cl.on(from).socket, { op: "allRooms" });
      assert.deepEqual(mine(rooms), all);
    }
    // `leave` on both nodes empties the "ws" room
    assert.deepEqual(await ack(cl.A_ws.socket, "leave", cl.room("ws")), []);
    assert.deepEqual(await ack(cl.B_ws.socket, "leave", cl.room("ws")), []);
    for (const from of ["A", "B"]) {
      const { rooms } = await op(cl.on(from).socket, { op: "allRooms" });
      assert.deepEqual(mine(rooms), all.filter((r) => r !== cl.room("ws")));
    }
  });

  test("socketsJoin and socketsLeave act on both nodes' sockets", TEST_TIMEOUT, async () => {
    const cl = await fresh();
    const j = cl.room("joined");
    // A makes the ws clients of both nodes join
    assert.deepEqual(await op(cl.on("A").socket, { op: "socketsJoin", room: j, rooms: [cl.room("ws")] }), {});
    await eventually(async () => assert.deepEqual(await cl.idsIn("B", [j]), cl.idsOf(["A_ws", "B_ws"])));
    await cl.waitRoomChannels({ [j]: 2 });
    cl.on("B").socket.emit("to", j, { id: "to-joined" });
    await cl.expect("bcast", "to-joined", ["A_ws", "B_ws"]);
    // B makes A's sockets leave; A makes B's polling socket join, then leave
    await op(cl.on("B").socket, { op: "socketsLeave", room: j, rooms: [cl.room("A")] });
    await eventually(async () => assert.deepEqual(await cl.idsIn("A", [j]), cl.idsOf(["B_ws"])));
    await op(cl.on("A").socket, { op: "socketsJoin", room: j, rooms: [cl.room("B")], except: [cl.room("ws")] });
    await eventually(async () => assert.deepEqual(await cl.idsIn("B", [j]), cl.idsOf(["B_ws", "B_poll"])));
    await op(cl.on("A").socket, { op: "socketsLeave", room: j, rooms: [cl.B_poll.id] });
    await eventually(async () => assert.deepEqual(await cl.idsIn("A", [j]), cl.idsOf(["B_ws"])));
    // the other rooms are untouched
    const expected = cl
      .sockets(["A_ws", "A_poll", "B_ws", "B_poll"])
      .map((s) => (s.id === cl.B_ws.id ? { ...s, rooms: byteSort([...s.rooms, j]) } : s));
    assert.deepEqual(await cl.fetch("A", { rooms: [cl.room("all")] }), expected);
  });

  test("disconnectSockets, with and without close, across nodes", TEST_TIMEOUT, async () => {
    const cl = await fresh();
    // A disconnects B's polling socket by id, B disconnects A's polling socket by room
    await op(cl.on("A").socket, { op: "disconnectSockets", rooms: [cl.B_poll.id] });
    assert.equal(await cl.B_poll.disconnected, "io server disconnect");
    await op(cl.on("B").socket, { op: "disconnectSockets", rooms: [cl.room("A")], except: [cl.room("ws")] });
    assert.equal(await cl.A_poll.disconnected, "io server disconnect");
    await eventually(async () => assert.deepEqual(await cl.idsIn("A", [cl.room("all")]), cl.idsOf(["A_ws", "B_ws"])));
    // close: the whole connection goes, so a /chat socket on the same connection goes too
    // (Manager#socket connects by itself: a second connect() would send a second CONNECT)
    const chatA = cl.A_ws.socket.io.socket("/chat");
    const chatB = cl.B_ws.socket.io.socket("/chat");
    await Promise.all([connected(chatA), connected(chatB)]);
    const chatGone = (s) => new Promise((resolve) => s.once("disconnect", resolve));
    const [goneA, goneB] = [chatGone(chatA), chatGone(chatB)];
    await op(cl.A_ws.socket, { op: "disconnectSockets", rooms: [cl.B_ws.id], close: true });
    assert.equal(await cl.B_ws.disconnected, "io server disconnect");
    assert.equal(await goneB, "io server disconnect");
    // a new client on B closes the connection of A's last socket
    const helper = await sioConnect(cl.cluster.node("B"), "/", { transports: ["websocket"], auth: { tag: "helper" } });
    await op(helper, { op: "disconnectSockets", rooms: [cl.A_ws.id], close: true });
    assert.equal(await cl.A_ws.disconnected, "io server disconnect");
    assert.equal(await goneA, "io server disconnect");
    await eventually(async () => {
      const { sockets } = await op(helper, { op: "fetchSockets" });
      assert.deepEqual(sockets.filter((s) => s.data?.tag === cl.tag), []);
    });
  });

  test("serverSideEmit reaches the other node; with a timeout it gets its answer", TEST_TIMEOUT, async () => {
    const cl = await fresh();
    const received = async (label) => (await op(cl.on(label).socket, { op: "received" })).events;
    for (const from of ["A", "B"]) {
      const to = other(from);
      const event = `sse-${cl.tag}-${from}`;
      const args = [{ n: 1, s: "é" }, "x", [true, null]];
      assert.deepEqual(await op(cl.on(from).socket, { op: "serverSideEmit", event, args }), {});
      await eventually(async () =>
        assert.deepEqual(
          (await received(to)).filter((e) => e.event === event),
          [{ event, args: [{ n: 1, s: "é" }, "x", [true, null]] }],
        ),
      );
      // a node does not receive its own server-side events
      assert.deepEqual((await received(from)).filter((e) => e.event === event), []);
      const res = await op(cl.on(from).socket, { op: "serverSideEmit", event: `${event}-ack`, args: [2], timeout: 4000 });
      assert.deepEqual(res, { err: null, responses: [cl.cluster.nameOf(to)] });
      assert.deepEqual(
        (await received(to)).filter((e) => e.event === `${event}-ack`),
        [{ event: `${event}-ack`, args: [2] }],
      );
    }
  });

  test("remote socket: emit, join, leave and disconnect a socket of the other node", TEST_TIMEOUT, async () => {
    const cl = await fresh();
    const r = cl.room("remote");
    for (const from of ["A", "B"]) {
      const to = other(from);
      const s = cl.on(from).socket;
      const target = cl[`${to}_ws`];
      const id = `remote-${from}`;
      assert.deepEqual(
        await op(s, { op: "remote", id: target.id, action: "emit", event: "direct", args: [{ id, bin: Buffer.from([5]) }] }),
        { found: true },
      );
      const got = await cl.expect("direct", id, [target.name]);
      assert.deepEqual(got[target.name], [{ id, bin: { bin: [5] } }]);
      assert.deepEqual(await op(s, { op: "remote", id: target.id, action: "join", room: r }), { found: true });
      await eventually(async () => assert.ok((await cl.idsIn(from, [r])).includes(target.id)));
      assert.deepEqual(await op(s, { op: "remote", id: target.id, action: "leave", room: r }), { found: true });
      await eventually(async () => assert.ok(!(await cl.idsIn(from, [r])).includes(target.id)));
    }
    assert.deepEqual(await op(cl.on("A").socket, { op: "remote", id: "AAAAAAAAAAAAAAAAAAAA", action: "disconnect" }), {
      found: false,
    });
    assert.deepEqual(await op(cl.on("A").socket, { op: "remote", id: cl.B_poll.id, action: "disconnect" }), { found: true });
    assert.equal(await cl.B_poll.disconnected, "io server disconnect");
    assert.deepEqual(await op(cl.on("B").socket, { op: "remote", id: cl.A_poll.id, action: "disconnect" }), { found: true });
    assert.equal(await cl.A_poll.disconnected, "io server disconnect");
  });

  test("namespace /chat: its own broadcasts, rooms, counts and sockets", TEST_TIMEOUT, async () => {
    const cl = await fresh("/chat");
    const root = await ctx.cluster.clients(`${cl.tag}r`, "/");
    for (const from of ["A", "B"]) {
      const to = other(from);
      cl.on(from).socket.emit("broadcast", { id: `chat-${from}` });
      await cl.expect("bcast", `chat-${from}`, ["A_ws", "A_poll", "B_ws", "B_poll"]);
      await op(cl.on(from).socket, { op: "emit", event: "news", args: [`chat-room-${from}`], rooms: [cl.room(to)] });
      await cl.expect("news", `chat-room-${from}`, [`${to}_ws`, `${to}_poll`]);
      assert.deepEqual(await op(cl.on(from).socket, { op: "serverCount" }), { count: 2 });
      assert.deepEqual(await cl.fetch(from), cl.sockets(["A_ws", "A_poll", "B_ws", "B_poll"]));
    }
    // nothing of that reached the clients of "/"
    await root.settle();
    for (const c of root.list) assert.deepEqual(c.log.filter((e) => e.event !== "marker"), [], c.name);
  });
}

/**
 * The Node and the Rust emitter reach clients on both nodes of a classic cluster. `ctx.cluster`
 * is the running Cluster, `ctx.emitters` the result of `emitters()`.
 */
export function emitterTests(ctx) {
  let n = 0;
  const fresh = (nsp) => ctx.cluster.clients(`e${++n}`, nsp);
  for (const kind of ["node", "rust"]) {
    test(`${kind} emitter: emit to rooms with except, binary, on /chat and /`, TEST_TIMEOUT, async () => {
      const em = ctx.emitters[kind];
      const cl = await fresh("/chat");
      const id = `${kind}-chat`;
      const targets = { rooms: [cl.room("A"), cl.room("B")], except: [cl.A_poll.id] };
      const args = [{ id, bin: Buffer.from([1, 2]) }, 3, [Buffer.from([255])]];
      const want = [{ id, bin: { bin: [1, 2] } }, 3, [{ bin: [255] }]];
      if (kind === "node") {
        // notepack's timestamp extension (the Rust emitter has no date type)
        args.push(new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 678)));
        want.push("2024-01-02T03:04:05.678Z");
      }
      await em.emit("/chat", targets, "news", ...args);
      const got = await cl.expect("news", id, ["A_ws", "B_ws", "B_poll"]);
      for (const a of Object.values(got)) assert.deepEqual(a, want);
      await em.emit("/chat", { except: [cl.room("ws")] }, "news", { id: `${id}-all` });
      await cl.expect("news", `${id}-all`, ["A_poll", "B_poll"]);
      const root = await ctx.cluster.clients(`${cl.tag}r`, "/");
      await em.emit("/", { rooms: [root.room("ws")] }, "news", { id: `${kind}-root`, bin: Buffer.from([3]) });
      await root.expect("news", `${kind}-root`, ["A_ws", "B_ws"]);
      // the /chat clients got nothing more
      const counts = Object.fromEntries(cl.list.map((c) => [c.name, c.log.filter((e) => e.event === "news").length]));
      assert.deepEqual(counts, { A_ws: 1, A_poll: 1, B_ws: 1, B_poll: 2 });
    });

    test(`${kind} emitter: socketsJoin, socketsLeave, disconnectSockets, serverSideEmit`, TEST_TIMEOUT, async () => {
      const em = ctx.emitters[kind];
      const cl = await fresh("/chat");
      const j = cl.room(`${kind}-joined`);
      await em.socketsJoin("/chat", { rooms: [cl.room("ws")] }, j);
      await eventually(async () => assert.deepEqual(await cl.idsIn("A", [j]), cl.idsOf(["A_ws", "B_ws"])));
      await em.socketsLeave("/chat", { rooms: [cl.room("A")] }, j);
      await eventually(async () => assert.deepEqual(await cl.idsIn("B", [j]), cl.idsOf(["B_ws"])));
      const event = `${kind}-sse-${cl.tag}`;
      await em.serverSideEmit("/chat", event, { n: 1 }, "x");
      for (const label of ["A", "B"]) {
        await eventually(async () => {
          const { events } = await op(cl.on(label).socket, { op: "received" });
          assert.deepEqual(events.filter((e) => e.event === event), [{ event, args: [{ n: 1 }, "x"] }]);
        });
      }
      await em.disconnectSockets("/chat", { rooms: [cl.room("poll")] }, false);
      assert.equal(await cl.A_poll.disconnected, "io server disconnect");
      assert.equal(await cl.B_poll.disconnected, "io server disconnect");
      await eventually(async () => assert.deepEqual(await cl.idsIn("A", [cl.room("all")]), cl.idsOf(["A_ws", "B_ws"])));
    });
  }
}
