// Socket.IO namespaces, CONNECT and the per-connection state machine (notes 2.4, 2.6, 2.8), with
// the official socket.io-client on every transport variant and raw WebSocket frames where the
// exact bytes matter. `app` profile.

import { describe, test, before, after, afterEach } from "node:test";
import assert from "node:assert/strict";
import { Manager } from "socket.io-client";
import {
  startTestbed,
  sioRawWs,
  sioRawConnect,
  parseConnectReply,
  assertWsClosedByServer,
  assertWsQuiet,
  assertSioHealthy,
  closeSioClients,
  sioConnect,
  sioClient,
  connected,
  CLIENT_TRANSPORTS,
  ack,
  op,
  once,
  sleep,
} from "./harness.mjs";

describe("socketio connect (app profile)", () => {
  let tb;
  const opened = [];
  before(async () => {
    tb = await startTestbed("app");
  });
  after(() => tb?.stop());
  afterEach(async () => {
    for (const ws of opened.splice(0)) ws.close();
    closeSioClients();
  });

  const raw = async (opts) => {
    const r = await sioRawWs(tb, opts);
    opened.push(r.ws);
    return r;
  };

  for (const [variant, opts] of Object.entries(CLIENT_TRANSPORTS)) {
    for (const nsp of ["/", "/chat"]) {
      test(`official client (${variant}) connects to ${nsp}; socket id differs from the Engine.IO id`, async () => {
        const socket = await sioConnect(tb, nsp, { ...opts, waitUpgrade: true });
        assert.equal(socket.connected, true);
        assert.equal(typeof socket.id, "string");
        assert.ok(socket.id.length > 0);
        assert.notEqual(socket.id, socket.io.engine.id);
        if (variant === "upgrade") assert.equal(socket.io.engine.transport.name, "websocket");
        else assert.equal(socket.io.engine.transport.name, opts.transports[0]);
        assert.deepEqual(await ack(socket, "echo", "hi", nsp), ["hi", nsp]);
        // the socket is in the namespace it asked for, in its own room only
        const { sockets } = await op(socket, { op: "fetchSockets", rooms: [socket.id] });
        assert.deepEqual(sockets, [{ id: socket.id, rooms: [socket.id], data: {} }]);
      });
    }
  }

  test("raw CONNECT replies are exactly {sid} for / and /chat, ids distinct", async () => {
    const { ws, sid, reply } = await raw();
    assert.match(reply, /^40\{"sid":"[A-Za-z0-9_-]+"\}$/);
    const main = parseConnectReply(reply).data.sid;
    const chatReply = await sioRawConnect(ws, "/chat");
    assert.match(chatReply, /^40\/chat,\{"sid":"[A-Za-z0-9_-]+"\}$/);
    const chat = parseConnectReply(chatReply).data.sid;
    assert.equal(new Set([sid, main, chat]).size, 3, "engine sid and both socket ids must differ");
    // nothing is emitted by the app profile on connection
    await assertWsQuiet(ws, 200);
  });

  test("unknown namespace: exact CONNECT_ERROR bytes, connection stays open and usable", async () => {
    const { ws } = await raw({ nsp: null });
    ws.send("40/nope,");
    assert.deepEqual(await ws.nextNonPing(), { data: '44/nope,{"message":"Invalid namespace"}', isBinary: false });
    ws.send('40/nope,{"token":"x"}');
    assert.deepEqual(await ws.nextNonPing(), { data: '44/nope,{"message":"Invalid namespace"}', isBinary: false });
    await assertWsQuiet(ws, 300);
    assert.match(await sioRawConnect(ws, "/chat"), /^40\/chat,\{"sid":"[^"]+"\}$/);
    ws.send('42/chat,1["echo","still here"]');
    assert.deepEqual(await ws.nextNonPing(), { data: '43/chat,1["still here"]', isBinary: false });
  });

  test("unknown namespace with the official client: connect_error Invalid namespace", async () => {
    const socket = await sioClient(tb, "/nope", { transports: ["websocket"] });
    const [err] = await once(socket, "connect_error");
    assert.equal(err.message, "Invalid namespace");
    assert.equal(socket.connected, false);
  });

  test("trailing comma is optional on input: 40/chat, 40/chat with payload keeps its data", async () => {
    const { ws } = await raw({ nsp: null });
    ws.send("40/chat");
    const reply = (await ws.nextNonPing()).data;
    assert.match(reply, /^40\/chat,\{"sid":"[^"]+"\}$/);
    ws.send('42/chat,5["op",{"op":"fetchSockets"}]');
    const m = /^43\/chat,5\[(.*)\]$/.exec((await ws.nextNonPing()).data);
    assert.ok(m);
    const { sockets } = JSON.parse(m[1]);
    assert.deepEqual(sockets.map((s) => s.id), [parseConnectReply(reply).data.sid]);
    ws.send("41/chat");
    await sleep(50); // Node removes the socket asynchronously: an immediate re-CONNECT is a "CONNECT twice"
    ws.send("40/chat,");
    assert.match((await ws.nextNonPing()).data, /^40\/chat,\{"sid":"[^"]+"\}$/);
  });

  test("namespace without comma but with data is one namespace name (Invalid namespace)", async () => {
    const { ws } = await raw({ nsp: null });
    ws.send('40/chat{"a":1}');
    assert.deepEqual(await ws.nextNonPing(), {
      data: '44/chat{"a":1},{"message":"Invalid namespace"}',
      isBinary: false,
    });
    await assertWsQuiet(ws, 200);
  });

  test("CONNECT twice for the same namespace closes the connection", async () => {
    const { ws } = await raw();
    ws.send("40");
    await assertWsClosedByServer(ws);
    await assertSioHealthy(tb);
  });

  test("CONNECT twice for /chat closes the connection", async () => {
    const { ws } = await raw({ nsp: "/chat" });
    ws.send("40/chat,");
    await assertWsClosedByServer(ws);
    await assertSioHealthy(tb);
  });

  test("EVENT before CONNECT closes the connection", async () => {
    const { ws } = await raw({ nsp: null });
    ws.send('42["echo","x"]');
    await assertWsClosedByServer(ws);
    await assertSioHealthy(tb);
  });

  test("EVENT for a namespace not joined closes the connection", async () => {
    const { ws } = await raw();
    ws.send('42/chat,["echo","x"]');
    await assertWsClosedByServer(ws);
    await assertSioHealthy(tb);
  });

  test("ACK for a namespace not joined closes the connection", async () => {
    const { ws } = await raw();
    ws.send("43/chat,0[]");
    await assertWsClosedByServer(ws);
    await assertSioHealthy(tb);
  });

  test("41 for a namespace not joined closes the connection", async () => {
    const { ws } = await raw();
    ws.send("41/chat,");
    await assertWsClosedByServer(ws);
    await assertSioHealthy(tb);
  });

  test("41 before any CONNECT closes the connection", async () => {
    const { ws } = await raw({ nsp: null });
    ws.send("41");
    await assertWsClosedByServer(ws);
  });

  test("CONNECT_ERROR sent by a client closes the connection", async () => {
    const { ws } = await raw();
    ws.send('44{"message":"nope"}');
    await assertWsClosedByServer(ws);
    await assertSioHealthy(tb);
  });

  test("CONNECT_ERROR sent by a client before any CONNECT closes the connection", async () => {
    const { ws } = await raw({ nsp: null });
    ws.send('44/chat,{"message":"nope"}');
    await assertWsClosedByServer(ws);
  });

  test("a decode error on one namespace closes every namespace of the connection", async () => {
    const manager = new Manager(tb.url, { forceNew: true, reconnection: false, transports: ["websocket"] });
    const main = manager.socket("/");
    const chat = manager.socket("/chat");
    await Promise.all([connected(main), connected(chat)]);
    const reasons = Promise.all([once(main, "disconnect"), once(chat, "disconnect")]);
    manager.engine.write("42/chat,{}");
    const [[r1], [r2]] = await reasons;
    assert.equal(r1, "transport close");
    assert.equal(r2, "transport close");
    manager.engine?.close();
  });

  test("socket.data is the CONNECT payload ({} without one); rooms in the payload are joined", async () => {
    const plain = await sioConnect(tb, "/", { transports: ["websocket"] });
    const auth = { name: "ana", n: 3, nested: { z: 1, a: [true, null] }, rooms: ["r1", "r0", "r1"] };
    const withRooms = await sioConnect(tb, "/", { transports: ["polling"], auth });
    const { sockets } = await op(plain, { op: "fetchSockets", rooms: [plain.id, withRooms.id] });
    const expected = [
      { id: plain.id, rooms: [plain.id], data: {} },
      { id: withRooms.id, rooms: ["r0", "r1", withRooms.id].sort(), data: auth },
    ].sort((a, b) => Buffer.compare(Buffer.from(a.id), Buffer.from(b.id)));
    assert.deepEqual(sockets, expected);
    // key order of the stored data is kept
    const raw = sockets.find((s) => s.id === withRooms.id).data;
    assert.deepEqual(Object.keys(raw), ["name", "n", "nested", "rooms"]);
    assert.deepEqual(Object.keys(raw.nested), ["z", "a"]);
    // the rooms are really joined: a room emit reaches the socket
    const got = once(withRooms, "bcast");
    await ack(plain, "to", "r0", "via r0");
    assert.deepEqual(await got, ["via r0"]);
  });

  test("a `rooms` field that is not an array of strings joins nothing but is kept in data", async () => {
    const auth = { rooms: "r1" };
    const s = await sioConnect(tb, "/chat", { transports: ["websocket"], auth });
    const { sockets } = await op(s, { op: "fetchSockets", rooms: [s.id] });
    assert.deepEqual(sockets, [{ id: s.id, rooms: [s.id], data: auth }]);
  });

  test("the CONNECT payload is per namespace", async () => {
    const manager = new Manager(tb.url, { forceNew: true, reconnection: false, transports: ["websocket"] });
    const main = manager.socket("/", { auth: { who: "main" } });
    const chat = manager.socket("/chat", { auth: { who: "chat", rooms: ["c"] } });
    await Promise.all([connected(main), connected(chat)]);
    const a = await op(main, { op: "fetchSockets" });
    const c = await op(chat, { op: "fetchSockets", rooms: ["c"] });
    assert.deepEqual(a.sockets.find((s) => s.id === main.id).data, { who: "main" });
    assert.deepEqual(c.sockets, [{ id: chat.id, rooms: ["c", chat.id].sort(), data: { who: "chat", rooms: ["c"] } }]);
    manager.engine?.close();
  });

  describe("disconnect reasons seen by the client", () => {
    test("server disconnectSockets → io server disconnect, no reconnection", async () => {
      const a = await sioConnect(tb, "/", { transports: ["websocket"], reconnection: true, reconnectionDelay: 50 });
      const b = await sioConnect(tb, "/", { transports: ["websocket"] });
      const d = once(a, "disconnect");
      assert.deepEqual(await op(b, { op: "disconnectSockets", rooms: [a.id] }), {});
      assert.deepEqual(await d, ["io server disconnect", undefined]);
      await sleep(200);
      assert.equal(a.connected, false, "no automatic reconnection after io server disconnect");
      assert.equal(b.connected, true);
    });

    test("server disconnectSockets(close) → io server disconnect and the transport is closed", async () => {
      const a = await sioConnect(tb, "/", { transports: ["polling"] });
      const b = await sioConnect(tb, "/", { transports: ["websocket"] });
      const d = once(a, "disconnect");
      const engineClosed = once(a.io.engine, "close");
      assert.deepEqual(await op(b, { op: "disconnectSockets", rooms: [a.id], close: true }), {});
      assert.deepEqual(await d, ["io server disconnect", undefined]);
      await engineClosed;
      assert.equal(b.connected, true);
    });

    test("server disconnect of /chat only (remote disconnect) leaves / connected on the same connection", async () => {
      const manager = new Manager(tb.url, { forceNew: true, reconnection: false, transports: ["websocket"] });
      const main = manager.socket("/");
      const chat = manager.socket("/chat");
      const other = await sioConnect(tb, "/chat", { transports: ["polling"] });
      await Promise.all([connected(main), connected(chat)]);
      const d = once(chat, "disconnect");
      assert.deepEqual(await op(other, { op: "remote", id: chat.id, action: "disconnect" }), { found: true });
      assert.deepEqual(await d, ["io server disconnect", undefined]);
      assert.deepEqual(await ack(main, "echo", "main alive"), ["main alive"]);
      manager.engine?.close();
    });

    test("client socket.disconnect() → io client disconnect; the server forgets the socket", async () => {
      const a = await sioConnect(tb, "/", { transports: ["websocket"] });
      const b = await sioConnect(tb, "/", { transports: ["websocket"] });
      const id = a.id;
      const d = once(a, "disconnect");
      a.disconnect();
      assert.deepEqual(await d, ["io client disconnect", undefined]);
      await sleep(100);
      assert.deepEqual((await op(b, { op: "fetchSockets", rooms: [id] })).sockets, []);
    });

    test("a server-side transport close (decode error) → transport close", async () => {
      const a = await sioConnect(tb, "/", { transports: ["polling"] });
      const d = once(a, "disconnect");
      a.io.engine.write("42{}");
      const [reason, details] = await d;
      assert.equal(reason, "transport close");
      assert.equal(details?.description, "transport closed by the server");
    });

    test("the server stopping → transport close", async () => {
      const tb2 = await startTestbed("app");
      try {
        const a = await sioConnect(tb2, "/", { transports: ["websocket"] });
        const d = once(a, "disconnect");
        await tb2.stop();
        const [reason] = await d;
        assert.equal(reason, "transport close");
      } finally {
        await tb2.stop();
      }
    });
  });

  describe("multiplexing", () => {
    for (const [variant, opts] of Object.entries(CLIENT_TRANSPORTS)) {
      test(`/ and /chat share one connection (${variant}); leaving one keeps the other`, async () => {
        const manager = new Manager(tb.url, { forceNew: true, reconnection: false, ...opts });
        const main = manager.socket("/");
        const chat = manager.socket("/chat");
        await Promise.all([connected(main), connected(chat)]);
        assert.equal(main.io, chat.io);
        assert.notEqual(main.id, chat.id);
        // namespaces are independent: a broadcast on / is not seen on /chat
        const chatBcast = [];
        chat.on("bcast", (x) => chatBcast.push(x));
        const mainGot = once(main, "bcast");
        await ack(main, "broadcast", "to main");
        assert.deepEqual(await mainGot, ["to main"]);
        const [inMain, inChat] = await Promise.all([
          ack(main, "echo", "m", { n: 1 }),
          ack(chat, "echo", "c", { n: 2 }),
        ]);
        assert.deepEqual(inMain, ["m", { n: 1 }]);
        assert.deepEqual(inChat, ["c", { n: 2 }]);
        assert.deepEqual(chatBcast, []);
        // each namespace sees only its own sockets
        const ids = (await op(chat, { op: "fetchSockets" })).sockets.map((s) => s.id);
        assert.ok(ids.includes(chat.id));
        assert.ok(!ids.includes(main.id));
        // leave / : /chat keeps working on the same engine connection
        const engineId = manager.engine.id;
        main.disconnect();
        await sleep(100);
        assert.deepEqual(await ack(chat, "echo", "after leaving /"), ["after leaving /"]);
        assert.equal(manager.engine.id, engineId);
        // and join / again on that connection
        main.connect();
        await connected(main);
        assert.equal(manager.engine.id, engineId);
        chat.disconnect();
        await sleep(100);
        assert.deepEqual(await ack(main, "echo", "after leaving /chat"), ["after leaving /chat"]);
        manager.engine?.close();
      });
    }

    test("raw: leaving every namespace keeps the Engine.IO connection open", async () => {
      const { ws } = await raw();
      assert.match(await sioRawConnect(ws, "/chat"), /^40\/chat,/);
      ws.send("41");
      ws.send('42/chat,7["echo",1]');
      assert.deepEqual(await ws.nextNonPing(), { data: "43/chat,7[1]", isBinary: false });
      ws.send("41/chat,");
      await assertWsQuiet(ws, 300);
      assert.match(await sioRawConnect(ws, "/"), /^40\{"sid":/);
    });
  });
});
