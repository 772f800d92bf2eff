// Socket.IO v5 raw-frame cases of the official protocol suite (notes Part 3.2, Socket.IO part),
// against the `socketio` profile, each followed by a health check. Plus the Engine.IO basics on
// the /socket.io/ path.

import { describe, test, before, after, afterEach } from "node:test";
import assert from "node:assert/strict";
import {
  startTestbed,
  wsHandshake,
  pollingHandshake,
  request,
  eioUrl,
  assertSessionClosed,
  sioRawWs,
  sioRawConnect,
  parseConnectReply,
  assertWsClosedByServer,
  assertWsQuiet,
  assertSioHealthy,
  closeSioClients,
  placeholder,
  sioConnect,
  sioClient,
  connected,
  ack,
  once,
  sleep,
  CLIENT_TRANSPORTS,
  notepack,
  PING_INTERVAL,
  PING_TIMEOUT,
  MAX_PAYLOAD,
} from "./harness.mjs";

const ph0 = JSON.stringify(placeholder(0));
const ph1 = JSON.stringify(placeholder(1));

/** Next non-ping text frame. */
async function nextText(ws, timeout = 2000) {
  const m = await ws.nextNonPing(timeout);
  assert.equal(m.isBinary, false, `expected a text frame, got <bin ${m.isBinary ? m.data.toString("hex") : ""}>`);
  return m.data;
}

async function nextBinary(ws, timeout = 2000) {
  const m = await ws.nextNonPing(timeout);
  assert.equal(m.isBinary, true, `expected a binary frame, got ${JSON.stringify(m.data)}`);
  return m.data;
}

describe("socketio protocol suite cases (socketio profile)", () => {
  let tb;
  const opened = [];
  before(async () => {
    tb = await startTestbed("socketio");
  });
  after(() => tb?.stop());
  afterEach(async () => {
    for (const ws of opened.splice(0)) ws.close();
    closeSioClients();
    await assertSioHealthy(tb);
  });

  const raw = async (opts) => {
    const r = await sioRawWs(tb, opts);
    opened.push(r.ws);
    return r;
  };

  test("Engine.IO handshake on /socket.io/ (polling and WebSocket) advertises the settings", async () => {
    const { open } = await pollingHandshake(tb);
    assert.deepEqual(Object.keys(open).sort(), ["maxPayload", "pingInterval", "pingTimeout", "sid", "upgrades"]);
    assert.deepEqual(open.upgrades, ["websocket"]);
    assert.equal(open.pingInterval, PING_INTERVAL);
    assert.equal(open.pingTimeout, PING_TIMEOUT);
    assert.equal(open.maxPayload, MAX_PAYLOAD);
    const { ws, open: wsOpen } = await wsHandshake(tb);
    opened.push(ws);
    assert.deepEqual(wsOpen.upgrades, []);
    const bad = await request(eioUrl(tb, { EIO: "3" }));
    assert.equal(bad.status, 400);
  });

  test("connect to the main namespace: reply exactly {sid}, then auth {}", async () => {
    const { ws, sid, reply } = await raw();
    const { nsp, data } = parseConnectReply(reply);
    assert.equal(nsp, "/");
    assert.deepEqual(Object.keys(data), ["sid"]);
    assert.equal(typeof data.sid, "string");
    assert.notEqual(data.sid, sid, "Socket.IO id must differ from the Engine.IO sid");
    assert.equal(await nextText(ws), '42["auth",{}]');
  });

  test("connect to the main namespace with a payload", async () => {
    const { ws, reply } = await raw({ auth: { token: "123" } });
    assert.deepEqual(Object.keys(parseConnectReply(reply).data), ["sid"]);
    assert.equal(await nextText(ws), '42["auth",{"token":"123"}]');
  });

  test("connect to a custom namespace", async () => {
    const { ws, reply } = await raw({ nsp: "/custom" });
    const { nsp, data } = parseConnectReply(reply);
    assert.equal(nsp, "/custom");
    assert.match(reply, /^40\/custom,\{"sid":"[^"]+"\}$/);
    assert.deepEqual(Object.keys(data), ["sid"]);
    assert.equal(await nextText(ws), '42/custom,["auth",{}]');
  });

  test("connect to a custom namespace with a payload", async () => {
    const { ws } = await raw({ nsp: "/custom", auth: { token: "abc" } });
    assert.equal(await nextText(ws), '42/custom,["auth",{"token":"abc"}]');
  });

  test("unknown namespace: exact Invalid namespace CONNECT_ERROR, connection stays open", async () => {
    const { ws } = await raw({ nsp: null });
    ws.send("40/random");
    assert.equal(await nextText(ws), '44/random,{"message":"Invalid namespace"}');
    await assertWsQuiet(ws, 400);
    // still usable
    const reply = await sioRawConnect(ws, "/");
    assert.match(reply, /^40\{"sid":"[^"]+"\}$/);
    assert.equal(await nextText(ws), '42["auth",{}]');
  });

  test("invalid handshake (4abc) closes the connection", async () => {
    const { ws } = await raw({ nsp: null });
    ws.send("4abc");
    await assertWsClosedByServer(ws);
  });

  test("no CONNECT at all: the connection is closed", async () => {
    const { ws } = await raw({ nsp: null });
    // connectTimeout 1000 in Node; a closing ping timeout also satisfies the official suite
    await assertWsClosedByServer(ws, 2500);
  });

  test("disconnect from the main namespace: next frame is a ping", async () => {
    const { ws } = await raw();
    assert.equal(await nextText(ws), '42["auth",{}]');
    ws.send("41");
    const m = await ws.next(PING_INTERVAL + 500);
    assert.deepEqual(m, { data: "2", isBinary: false });
  });

  test("connect then disconnect from a custom namespace (no trailing comma)", async () => {
    const { ws } = await raw();
    assert.equal(await nextText(ws), '42["auth",{}]');
    ws.send("40/custom");
    assert.match(await nextText(ws), /^40\/custom,\{"sid":"[^"]+"\}$/);
    assert.equal(await nextText(ws), '42/custom,["auth",{}]');
    ws.send("41/custom");
    ws.send('42["message","message to main namespace"]');
    assert.equal(await nextText(ws), '42["message-back","message to main namespace"]');
  });

  test("plain-text event", async () => {
    const { ws } = await raw();
    assert.equal(await nextText(ws), '42["auth",{}]');
    ws.send('42["message",1,"2",{"3":[true]}]');
    assert.equal(await nextText(ws), '42["message-back",1,"2",{"3":[true]}]');
  });

  test("event with binary attachments", async () => {
    const { ws } = await raw();
    assert.equal(await nextText(ws), '42["auth",{}]');
    ws.send(`452-["message",${ph0},${ph1}]`);
    ws.send(Buffer.from([1, 2, 3]));
    ws.send(Buffer.from([4, 5, 6]));
    assert.equal(await nextText(ws), `452-["message-back",${ph0},${ph1}]`);
    assert.deepEqual([...(await nextBinary(ws))], [1, 2, 3]);
    assert.deepEqual([...(await nextBinary(ws))], [4, 5, 6]);
  });

  test("plain-text event with an ack", async () => {
    const { ws } = await raw();
    assert.equal(await nextText(ws), '42["auth",{}]');
    ws.send('42456["message-with-ack",1,"2",{"3":[false]}]');
    assert.equal(await nextText(ws), '43456[1,"2",{"3":[false]}]');
  });

  test("binary event with an ack: BINARY_ACK 462-789", async () => {
    const { ws } = await raw();
    assert.equal(await nextText(ws), '42["auth",{}]');
    ws.send(`452-789["message-with-ack",${ph0},${ph1}]`);
    ws.send(Buffer.from([1, 2, 3]));
    ws.send(Buffer.from([4, 5, 6]));
    assert.equal(await nextText(ws), `462-789[${ph0},${ph1}]`);
    assert.deepEqual([...(await nextBinary(ws))], [1, 2, 3]);
    assert.deepEqual([...(await nextBinary(ws))], [4, 5, 6]);
  });

  for (const [name, frame] of [
    ["unknown packet type (4abc)", "4abc"],
    ["invalid payload format (42{})", "42{}"],
    ["invalid ack id (42abc[...])", '42abc["message-with-ack",1,"2",{"3":[false]}]'],
  ]) {
    test(`invalid format after CONNECT closes the connection: ${name}`, async () => {
      const { ws } = await raw();
      assert.equal(await nextText(ws), '42["auth",{}]');
      ws.send(frame);
      await assertWsClosedByServer(ws);
    });
  }

  test("polling: CONNECT, auth and an echo over long-polling", async () => {
    const { sid } = await pollingHandshake(tb);
    const post = (body) =>
      request(eioUrl(tb, { sid }), { method: "POST", headers: { "content-type": "text/plain" }, body });
    assert.equal((await post("40/custom,")).text, "ok");
    const got = [];
    while (got.length < 2) {
      const res = await request(eioUrl(tb, { sid }));
      assert.equal(res.status, 200);
      got.push(...res.text.split("\x1e").filter((p) => p !== "2"));
    }
    assert.match(got[0], /^40\/custom,\{"sid":"[^"]+"\}$/);
    assert.equal(got[1], '42/custom,["auth",{}]');
    assert.equal((await post("41/custom,")).text, "ok");
    assert.equal((await post("1")).text, "ok");
    await assertSessionClosed(tb, sid);
  });
});

describe("socketio profile with the official client", () => {
  for (const parser of ["json", "msgpack"]) {
    describe(`${parser} parser`, () => {
      let tb;
      before(async () => {
        tb = await startTestbed("socketio", parser === "msgpack" ? { PARSER: "msgpack" } : {});
      });
      after(() => tb?.stop());
      afterEach(() => closeSioClients());

      for (const [variant, opts] of Object.entries(CLIENT_TRANSPORTS)) {
        test(`${variant}: auth event with the CONNECT payload, message-back and message-with-ack`, async () => {
          const s = await sioClient(tb, "/", { ...opts, auth: { token: "t", n: [1, 2] } });
          const auth = once(s, "auth");
          await connected(s);
          assert.deepEqual(await auth, [{ token: "t", n: [1, 2] }]);
          const back = once(s, "message-back");
          s.emit("message", 1, "2", { 3: [true] }, Buffer.from([1, 2, 3]));
          const got = await back;
          assert.deepEqual(got.slice(0, 3), [1, "2", { 3: [true] }]);
          assert.deepEqual([...new Uint8Array(got[3])], [1, 2, 3]);
          const res = await ack(s, "message-with-ack", { a: Buffer.from([9]) }, "x");
          assert.deepEqual([...new Uint8Array(res[0].a)], [9]);
          assert.equal(res[1], "x");
        });
      }

      test("/custom gets auth {} without payload; /chat is an invalid namespace here", async () => {
        const s = await sioClient(tb, "/custom", { transports: ["websocket"] });
        const auth = once(s, "auth");
        await connected(s);
        assert.deepEqual(await auth, [{}]);
        const bad = await sioClient(tb, "/chat", { transports: ["websocket"] });
        const [err] = await once(bad, "connect_error");
        assert.equal(err.message, "Invalid namespace");
      });

      test("the auth event is emitted before the answer to an event sent right after connecting", async () => {
        // the connection handler runs (and emits) before the socket's first event is handled
        for (let i = 0; i < 10; i++) {
          const s = await sioClient(tb, "/", CLIENT_TRANSPORTS[i % 2 ? "websocket" : "polling"]);
          const order = [];
          s.onAny((event) => order.push(event));
          s.on("connect", () => s.emit("message", i));
          await connected(s);
          const deadline = Date.now() + 2000;
          while (order.length < 2 && Date.now() < deadline) await sleep(5);
          assert.deepEqual(order, ["auth", "message-back"], `attempt ${i}`);
          s.disconnect();
        }
      });
    });
  }

  test("msgpack on the wire: CONNECT reply and auth are binary msgpack frames", async () => {
    const tb = await startTestbed("socketio", { PARSER: "msgpack" });
    try {
      const { ws } = await sioRawWs(tb, { nsp: null });
      ws.send(notepack.encode({ type: 0, nsp: "/custom", data: { token: "abc" } }));
      const reply = await ws.nextNonPing();
      assert.equal(reply.isBinary, true);
      const r = notepack.decode(reply.data);
      assert.deepEqual([r.type, r.nsp, typeof r.data.sid, r.data.pid], [0, "/custom", "string", undefined]);
      const auth = notepack.decode((await ws.nextNonPing()).data);
      assert.deepEqual([auth.type, auth.nsp, auth.data], [2, "/custom", ["auth", { token: "abc" }]]);
      ws.send(notepack.encode({ type: 0, nsp: "/random" }));
      const err = notepack.decode((await ws.nextNonPing()).data);
      assert.deepEqual([err.type, err.nsp, err.data], [4, "/random", { message: "Invalid namespace" }]);
      ws.close();
    } finally {
      await tb.stop();
    }
  });
});
