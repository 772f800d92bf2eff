// Rooms, broadcasts and the app profile's server operations (CONTRACT "Profile app", notes 2.7,
// 2.11) on a single node, with the official client and raw frames where ordering of frames matters.

import { describe, test, before, after, afterEach } from "node:test";
import assert from "node:assert/strict";
import {
  startTestbed,
  sioRawWs,
  closeSioClients,
  sioConnect,
  CLIENT_TRANSPORTS,
  ack,
  op,
  once,
  sleep,
  placeholder,
} from "./harness.mjs";

const byteSort = (list) => [...list].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));

/** Buffer view of a received binary value (Buffer or ArrayBuffer). */
const bytes = (x) => (x instanceof ArrayBuffer ? Buffer.from(new Uint8Array(x)) : Buffer.from(x));

/** Collect every `event` received by `socket`. */
function collect(socket, event = "bcast") {
  const got = [];
  socket.on(event, (...args) => got.push(args.length === 1 ? args[0] : args));
  return got;
}

/** Wait until `cond()` holds (polling every 10 ms) or fail after `timeout`. */
async function until(cond, timeout = 3000, what = "condition") {
  const deadline = Date.now() + timeout;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${typeof what === "function" ? what() : what}`);
    await sleep(10);
  }
}

/** A result object is exactly `{ error: <non-empty string> }`. */
function assertError(res) {
  assert.deepEqual(Object.keys(res), ["error"], `expected {error}, got ${JSON.stringify(res)}`);
  assert.equal(typeof res.error, "string");
  assert.ok(res.error.length > 0);
}

describe("socketio rooms and broadcast (app profile)", () => {
  let tb;
  const opened = [];
  before(async () => {
    tb = await startTestbed("app");
  });
  after(() => tb?.stop());
  afterEach(async () => {
    for (const ws of opened.splice(0)) ws.close();
    closeSioClients();
    await sleep(20); // let the server forget the sockets of the previous test
  });

  /** n connected clients on `nsp`, alternating transports. */
  const clients = async (n, nsp = "/", opts = {}) => {
    const variants = Object.values(CLIENT_TRANSPORTS);
    const list = [];
    for (let i = 0; i < n; i++) list.push(await sioConnect(tb, nsp, { ...variants[i % 2], ...opts }));
    return list;
  };

  test("every socket is in a room named after its own id", async () => {
    const [a, b] = await clients(2);
    const { rooms } = await op(a, { op: "allRooms" });
    assert.ok(rooms.includes(a.id) && rooms.includes(b.id));
    const { sockets } = await op(a, { op: "fetchSockets", rooms: [b.id] });
    assert.deepEqual(sockets, [{ id: b.id, rooms: [b.id], data: {} }]);
    const got = once(b, "direct");
    assert.deepEqual(await op(a, { op: "emit", rooms: [b.id], event: "direct", args: ["to b"] }), {});
    assert.deepEqual(await got, ["to b"]);
  });

  test("broadcast event reaches every socket of the namespace, sender included, not other namespaces", async () => {
    const [a, b, c] = await clients(3);
    const [chat] = await clients(1, "/chat");
    const got = [a, b, c, chat].map((s) => collect(s));
    assert.deepEqual(await ack(a, "broadcast", { hello: ["world", 1] }), []);
    await until(() => got.slice(0, 3).every((g) => g.length === 1), 3000, "three bcast");
    for (const g of got.slice(0, 3)) assert.deepEqual(g, [{ hello: ["world", 1] }]);
    await sleep(50);
    assert.deepEqual(got[3], []);
  });

  test("join / to / leave events", async () => {
    const [a, b, c] = await clients(3);
    const [ga, gb, gc] = [a, b, c].map((s) => collect(s));
    assert.deepEqual(await ack(a, "join", "room1"), []);
    assert.deepEqual(await ack(b, "join", "room1"), []);
    await ack(c, "to", "room1", "first");
    await until(() => ga.length === 1 && gb.length === 1, 3000, "room1 emit");
    assert.deepEqual(await ack(b, "leave", "room1"), []);
    await ack(c, "to", "room1", "second");
    await until(() => ga.length === 2);
    await sleep(50);
    assert.deepEqual(ga, ["first", "second"]);
    assert.deepEqual(gb, ["first"]);
    assert.deepEqual(gc, []);
    // leaving a room one is not in, and "to" a room nobody is in, are harmless
    assert.deepEqual(await ack(c, "leave", "never-joined"), []);
    assert.deepEqual(await ack(c, "to", "empty-room", "lost"), []);
  });

  test("a socket in several targeted rooms receives a broadcast once", async () => {
    const [a, b] = await clients(2, "/", { auth: { rooms: ["x", "y", "z"] } });
    const [c] = await clients(1, "/", { auth: { rooms: ["y"] } });
    const got = [a, b, c].map((s) => collect(s, "once"));
    await op(a, { op: "emit", rooms: ["x", "y", "z", a.id], event: "once", args: [1] });
    await op(a, { op: "emit", rooms: ["x", "y"], event: "once", args: [2] });
    await until(() => got[2].length === 2);
    await sleep(100);
    assert.deepEqual(got, [[1, 2], [1, 2], [1, 2]]);
  });

  test("op emit: no rooms = whole namespace; rooms union; except; local; volatile", async () => {
    const [a, b, c, d] = await clients(4, "/chat", { transports: ["websocket"] });
    await ack(a, "join", "r1");
    await ack(b, "join", "r1");
    await ack(b, "join", "r2");
    await ack(c, "join", "r2");
    await ack(c, "join", "ex");
    const got = [a, b, c, d].map((s) => collect(s, "ev"));
    const emit = async (spec) => assert.deepEqual(await op(a, { op: "emit", event: "ev", ...spec }), {});
    await emit({ args: ["all"] });
    await emit({ rooms: ["r1", "r2"], args: ["r1|r2"] });
    await emit({ rooms: ["r1", "r2"], except: ["ex"], args: ["r1|r2-ex"] });
    await emit({ except: ["r1"], args: ["all-r1"] });
    await emit({ rooms: ["r2"], local: true, args: ["local r2"] });
    await emit({ rooms: ["r1"], volatile: true, args: ["volatile r1"] });
    await emit({ rooms: ["r1"], except: ["r1"], args: ["nobody"] });
    await emit({ args: [] });
    await until(() => got[0].length === 5 && got[3].length === 3, 2000, () => `emits; got ${JSON.stringify(got)}`);
    await sleep(100);
    // an idle WebSocket is writable: the volatile emit is delivered
    assert.deepEqual(got[0], ["all", "r1|r2", "r1|r2-ex", "volatile r1", []]);
    assert.deepEqual(got[1], ["all", "r1|r2", "r1|r2-ex", "local r2", "volatile r1", []]);
    assert.deepEqual(got[2], ["all", "r1|r2", "all-r1", "local r2", []]);
    assert.deepEqual(got[3], ["all", "all-r1", []]);
  });

  test("fetchSockets: sorted by id, rooms sorted, data kept; targets honoured", async () => {
    const socks = await clients(4, "/", { auth: { rooms: ["zz", "aa", "Mm"], tag: "t" } });
    const ids = socks.map((s) => s.id);
    await ack(socks[0], "join", "only0");
    const all = await op(socks[0], { op: "fetchSockets", rooms: ["aa"] });
    assert.deepEqual(
      all.sockets.map((s) => s.id),
      byteSort(ids),
    );
    for (const s of all.sockets) {
      const expectedRooms = byteSort(["zz", "aa", "Mm", s.id, ...(s.id === ids[0] ? ["only0"] : [])]);
      assert.deepEqual(s.rooms, expectedRooms);
      assert.deepEqual(s.data, { rooms: ["zz", "aa", "Mm"], tag: "t" });
      assert.deepEqual(Object.keys(s), ["id", "rooms", "data"]);
    }
    const except = await op(socks[1], { op: "fetchSockets", rooms: ["aa"], except: ["only0"] });
    assert.deepEqual(except.sockets.map((s) => s.id), byteSort(ids.slice(1)));
    const none = await op(socks[1], { op: "fetchSockets", rooms: ["nothing"] });
    assert.deepEqual(none, { sockets: [] });
    const local = await op(socks[1], { op: "fetchSockets", rooms: ["only0"], local: true });
    assert.deepEqual(local.sockets.map((s) => s.id), [ids[0]]);
  });

  test("socketsJoin and socketsLeave with targets", async () => {
    const [a, b, c] = await clients(3, "/chat");
    await ack(a, "join", "src");
    await ack(b, "join", "src");
    await ack(b, "join", "no");
    assert.deepEqual(await op(c, { op: "socketsJoin", rooms: ["src"], except: ["no"], room: "dst" }), {});
    let r = await op(c, { op: "fetchSockets", rooms: ["dst"] });
    assert.deepEqual(r.sockets.map((s) => s.id), [a.id]);
    assert.deepEqual(await op(c, { op: "socketsJoin", room: "everyone" }), {});
    r = await op(c, { op: "fetchSockets", rooms: ["everyone"] });
    assert.deepEqual(r.sockets.map((s) => s.id), byteSort([a.id, b.id, c.id]));
    assert.deepEqual(await op(c, { op: "socketsLeave", rooms: ["src"], room: "everyone" }), {});
    r = await op(c, { op: "fetchSockets", rooms: ["everyone"] });
    assert.deepEqual(r.sockets.map((s) => s.id), [c.id]);
    // a joined room receives emits
    const got = once(a, "bcast");
    await ack(c, "to", "dst", "in dst");
    assert.deepEqual(await got, ["in dst"]);
  });

  test("allRooms: every room of the namespace, sorted, id rooms included, emptied rooms gone", async () => {
    const [a, b] = await clients(2, "/chat", { auth: { rooms: ["b-room", "a-room"] } });
    await ack(a, "join", "solo");
    let { rooms } = await op(a, { op: "allRooms" });
    assert.deepEqual(rooms, byteSort(["a-room", "b-room", "solo", a.id, b.id]));
    await ack(a, "leave", "solo");
    b.disconnect();
    await sleep(100);
    ({ rooms } = await op(a, { op: "allRooms" }));
    assert.deepEqual(rooms, byteSort(["a-room", "b-room", a.id]));
  });

  test("disconnectSockets with targets, with and without close", async () => {
    const [a, b, c, d] = await clients(4);
    await ack(b, "join", "kick");
    await ack(c, "join", "kick");
    await ack(c, "join", "spare");
    const db = once(b, "disconnect");
    assert.deepEqual(await op(a, { op: "disconnectSockets", rooms: ["kick"], except: ["spare"] }), {});
    assert.deepEqual(await db, ["io server disconnect", undefined]);
    await sleep(50);
    assert.equal(c.connected, true);
    const dc = once(c, "disconnect");
    const closed = once(c.io.engine, "close");
    assert.deepEqual(await op(a, { op: "disconnectSockets", rooms: ["spare"], close: true }), {});
    assert.deepEqual(await dc, ["io server disconnect", undefined]);
    await closed;
    const r = await op(a, { op: "fetchSockets" });
    assert.deepEqual(r.sockets.map((s) => s.id), byteSort([a.id, d.id]));
  });

  test("remote: emit, join, leave, disconnect; found false for an unknown id", async () => {
    const [a, b] = await clients(2);
    const got = once(b, "hey");
    assert.deepEqual(await op(a, { op: "remote", id: b.id, action: "emit", event: "hey", args: [1, { k: "v" }] }), {
      found: true,
    });
    assert.deepEqual(await got, [1, { k: "v" }]);
    assert.deepEqual(await op(a, { op: "remote", id: b.id, action: "join", room: "rj" }), { found: true });
    let r = await op(a, { op: "fetchSockets", rooms: ["rj"] });
    assert.deepEqual(r.sockets.map((s) => s.id), [b.id]);
    assert.deepEqual(await op(a, { op: "remote", id: b.id, action: "leave", room: "rj" }), { found: true });
    r = await op(a, { op: "fetchSockets", rooms: ["rj"] });
    assert.deepEqual(r.sockets, []);
    const d = once(b, "disconnect");
    assert.deepEqual(await op(a, { op: "remote", id: b.id, action: "disconnect" }), { found: true });
    assert.deepEqual(await d, ["io server disconnect", undefined]);
    for (const action of ["emit", "join", "leave", "disconnect"]) {
      const spec = { op: "remote", id: "no-such-socket-id", action, event: "x", room: "r" };
      assert.deepEqual(await op(a, spec), { found: false });
    }
    // a socket of another namespace is not found
    const [chat] = await clients(1, "/chat");
    assert.deepEqual(await op(a, { op: "remote", id: chat.id, action: "emit", event: "x" }), { found: false });
    // a room name that is not a socket id is not a socket
    await ack(a, "join", "room-not-socket");
    assert.deepEqual(await op(a, { op: "remote", id: "room-not-socket", action: "emit", event: "x" }), {
      found: false,
    });
  });

  test("serverCount is 1 on a single node", async () => {
    const [a] = await clients(1);
    assert.deepEqual(await op(a, { op: "serverCount" }), { count: 1 });
  });

  test("serverSideEmit on one node: {} without timeout, {err:null,responses:[]} with; received empty", async () => {
    const [a] = await clients(1, "/chat");
    assert.deepEqual(await op(a, { op: "serverSideEmit", event: "sse", args: [1, "x"] }), {});
    assert.deepEqual(await op(a, { op: "serverSideEmit", event: "sse", args: [], timeout: 200 }), {
      err: null,
      responses: [],
    });
    assert.deepEqual(await op(a, { op: "received" }), { events: [] });
  });

  test("reserved event names are refused with {error}", async () => {
    const [a] = await clients(1);
    const never = collect(a, "connect_error");
    for (const event of ["connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"]) {
      const res = await op(a, { op: "emit", event, args: [] });
      assertError(res);
      assert.ok(res.error.includes(event), res.error);
      assertError(await op(a, { op: "remote", id: a.id, action: "emit", event }));
    }
    for (const event of ["connect", "connection", "new_namespace"]) {
      assertError(await op(a, { op: "serverSideEmit", event }));
      assertError(await op(a, { op: "serverSideEmit", event, timeout: 50 }));
    }
    assert.equal(a.connected, true);
    assert.deepEqual(never, []);
  });

  test("unknown op and malformed specs → {error}", async () => {
    const [a] = await clients(1);
    for (const spec of [
      { op: "nope" },
      { op: "toString" },
      { op: "__proto__" },
      {},
      { op: 5 },
      { op: "emit" },
      { op: "emit", event: "x", rooms: "r" },
      { op: "emit", event: "x", args: 5 },
      { op: "emit", event: "x", timeout: -1 },
      { op: "emit", event: "x", local: "yes" },
      { op: "fetchSockets", except: [1] },
      { op: "socketsJoin" },
      { op: "socketsLeave", room: 3 },
      { op: "remote", action: "emit", event: "x" },
      { op: "remote", id: a.id, action: "fly" },
      { op: "remote", id: a.id, action: "join" },
      null,
      "emit",
      [{ op: "serverCount" }],
    ]) {
      assertError(await op(a, spec));
    }
    assert.deepEqual(await ack(a, "echo", "alive"), ["alive"]);
  });

  test("100 broadcasts from one client arrive in order at every receiver", async () => {
    const [sender, r1, r2] = await clients(3);
    const got = [sender, r1, r2].map((s) => collect(s));
    for (let i = 0; i < 100; i++) sender.emit("broadcast", i);
    await until(() => got.every((g) => g.length === 100), 5000, "100 broadcasts");
    const expected = Array.from({ length: 100 }, (_, i) => i);
    for (const g of got) assert.deepEqual(g, expected);
  });

  test("100 server emits to a room arrive in order (mixed text and binary)", async () => {
    const [a, b] = await clients(2, "/chat", { auth: { rooms: ["seq"] } });
    const got = [a, b].map((s) => collect(s, "seq"));
    await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        op(a, { op: "emit", rooms: ["seq"], event: "seq", args: [i % 3 === 0 ? Buffer.from([i]) : i] }),
      ),
    );
    await until(() => got.every((g) => g.length === 100), 5000, () => `100 emits; got ${got.map((g) => g.length)}`);
    // binary values shown as "b<n>", numbers as n
    const expected = Array.from({ length: 100 }, (_, i) => (i % 3 === 0 ? `b${i}` : i));
    for (const g of got) {
      assert.deepEqual(
        g.map((v) => (typeof v === "number" ? v : `b${bytes(v)[0]}`)),
        expected,
      );
    }
  });

  test("binary broadcasts sent concurrently never interleave attachments (raw WebSocket receiver)", async () => {
    const { ws } = await sioRawWs(tb, { nsp: "/" });
    opened.push(ws);
    const senders = await clients(5, "/", { transports: ["websocket"] });
    const PER = 20;
    await Promise.all(
      senders.map(async (s, k) => {
        for (let i = 0; i < PER; i++) {
          const tag = Buffer.from([k, i]);
          s.emit("broadcast", { k, i, a: Buffer.concat([tag, Buffer.alloc(300, k)]), b: [tag, Buffer.from("end")] });
        }
      }),
    );
    const seen = new Map();
    const total = senders.length * PER;
    for (let n = 0; n < total; n++) {
      const head = await ws.nextNonPing(5000);
      assert.equal(head.isBinary, false, "a binary frame arrived where a packet header was expected");
      const m = /^453-\["bcast",(.*)\]$/.exec(head.data);
      assert.ok(m, `unexpected header ${head.data.slice(0, 200)}`);
      const payload = JSON.parse(m[1]);
      assert.deepEqual(payload.a, placeholder(0));
      assert.deepEqual(payload.b, [placeholder(1), placeholder(2)]);
      const a = await ws.nextNonPing();
      const b0 = await ws.nextNonPing();
      const b1 = await ws.nextNonPing();
      for (const f of [a, b0, b1]) assert.equal(f.isBinary, true, `text frame ${f.data} between attachments`);
      assert.deepEqual([a.data[0], a.data[1], a.data.length], [payload.k, payload.i, 302]);
      assert.deepEqual([...b0.data], [payload.k, payload.i]);
      assert.equal(b1.data.toString(), "end");
      const last = seen.get(payload.k) ?? -1;
      assert.equal(payload.i, last + 1, "per-sender order");
      seen.set(payload.k, payload.i);
    }
  });

  test("binary broadcasts sent concurrently decode intact at official clients (polling and WebSocket)", async () => {
    const [r1, r2] = await clients(2, "/chat");
    const senders = await clients(4, "/chat");
    const got = [r1, r2].map((s) => collect(s));
    const PER = 15;
    senders.forEach((s, k) => {
      for (let i = 0; i < PER; i++) {
        s.emit("broadcast", { k, i, bins: [Buffer.alloc(64 + i, k), Buffer.from([i, k])] });
      }
    });
    const total = senders.length * PER;
    await until(() => got.every((g) => g.length === total), 8000, "all binary broadcasts");
    for (const g of got) {
      const last = new Map();
      for (const { k, i, bins } of g) {
        assert.ok(bytes(bins[0]).equals(Buffer.alloc(64 + i, k)), `payload of ${k}/${i}`);
        assert.ok(bytes(bins[1]).equals(Buffer.from([i, k])));
        assert.equal(i, (last.get(k) ?? -1) + 1);
        last.set(k, i);
      }
    }
  });
});
