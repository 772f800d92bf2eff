// Socket.IO hostile input (notes 2.2, 2.3, 2.9, Part 5): raw frames that must close the
// connection (or be ignored), never crash the server or leak into other connections. Every test is
// followed by a health check: a fresh official client connects and gets an echo.

import { describe, test, before, after, afterEach } from "node:test";
import assert from "node:assert/strict";
import {
  startTestbed,
  sioRawWs,
  sioRawConnect,
  assertWsClosedByServer,
  assertWsQuiet,
  assertSioHealthy,
  closeSioClients,
  pollingHandshake,
  pollGet,
  postOk,
  pollPost,
  placeholder,
  notepack,
  sleep,
  MAX_PAYLOAD,
} from "./harness.mjs";

const ph = (n) => JSON.stringify(placeholder(n));

/**
 * After `frames`, either the server closed the connection, or it stayed open and an echo with
 * ack still works. Returns "closed" or "open".
 */
async function closedOrIgnored(ws, echoFrame = '42777["echo","alive"]', echoReply = '43777["alive"]') {
  if (!ws.isClosed) {
    try {
      ws.send(echoFrame);
    } catch {
      // closing
    }
  }
  const deadline = Date.now() + 1500;
  while (Date.now() < deadline) {
    let m;
    try {
      m = await ws.next(Math.max(1, deadline - Date.now()));
    } catch {
      if (ws.isClosed) return "closed";
      break;
    }
    if (!m.isBinary && m.data === "2") ws.send("3");
    else if (!m.isBinary && m.data === echoReply) return "open";
  }
  if (ws.isClosed) return "closed";
  assert.fail("connection neither closed nor answering");
}

describe("socketio hostile input (json parser)", () => {
  let tb;
  const opened = [];
  before(async () => {
    tb = await startTestbed("app");
  });
  after(() => tb?.stop());
  afterEach(async () => {
    for (const ws of opened.splice(0)) ws.close();
    closeSioClients();
    await assertSioHealthy(tb);
  });

  /** Raw WebSocket connected to `/` (or to nothing when `nsp` is null). */
  const raw = async (nsp = "/") => {
    const r = await sioRawWs(tb, { nsp });
    opened.push(r.ws);
    return r.ws;
  };
  /** Send `frames` (strings are text frames, Buffers binary) and expect the server to close. */
  const mustClose = async (frames, nsp = "/") => {
    const ws = await raw(nsp);
    for (const f of frames) ws.send(f);
    await assertWsClosedByServer(ws, 2000);
  };

  // CVE-2022-2421 and friends: placeholder `num` must be an integer in [0, count)
  for (const [name, num] of [
    ["splice (CVE-2022-2421)", '"splice"'],
    ["out of range", "1"],
    ["negative", "-1"],
    ["null", "null"],
    ["a numeric string", '"0"'],
    ["an array", "[0]"],
    ["an object", '{"valueOf":0}'],
  ]) {
    test(`placeholder num ${name} closes the connection`, async () => {
      await mustClose([`451-["hello",{"_placeholder":true,"num":${num}}]`, Buffer.from([1, 2])]);
    });
  }

  test("placeholder without num closes the connection", async () => {
    await mustClose([`451-["echo",{"_placeholder":true}]`, Buffer.from([1])]);
  });

  test("placeholder num 0.5: closed or ignored, never delivered as binary", async () => {
    const ws = await raw();
    ws.send(`451-5["echo",{"_placeholder":true,"num":0.5}]`);
    ws.send(Buffer.from([1]));
    // Node ignores it (no ack for a missing buffer); a strict server closes
    await closedOrIgnored(ws);
  });

  test("binary packet declaring 0 attachments (450-) closes the connection", async () => {
    const ws = await raw();
    ws.send('450-["echo","x"]');
    ws.send(Buffer.from([1]));
    ws.send(Buffer.from([2]));
    await assertWsClosedByServer(ws);
  });

  test("binary ack declaring 0 attachments (460-) closes the connection", async () => {
    await mustClose(["460-1[]"]);
  });

  test("attachment count 11 (> maxAttachments 10) closes the connection", async () => {
    const args = Array.from({ length: 11 }, (_, i) => ph(i)).join(",");
    const frames = [`4511-["echo",${args}]`];
    for (let i = 0; i < 11; i++) frames.push(Buffer.from([i]));
    await mustClose(frames);
  });

  test("attachment count 10 is accepted: BINARY_ACK with 10 attachments", async () => {
    const ws = await raw();
    const args = Array.from({ length: 10 }, (_, i) => ph(i)).join(",");
    ws.send(`4510-3["echo",${args}]`);
    for (let i = 0; i < 10; i++) ws.send(Buffer.from([i]));
    assert.deepEqual(await ws.nextNonPing(), { data: `4610-3[${args}]`, isBinary: false });
    for (let i = 0; i < 10; i++) {
      const m = await ws.nextNonPing();
      assert.equal(m.isBinary, true);
      assert.deepEqual([...m.data], [i]);
    }
  });

  test("absurd attachment counts and malformed counts close the connection", async () => {
    for (const head of ["4599999999999999999999-[\"echo\"]", '45a-["echo"]', '451["echo"]', '45-["echo"]', "45"]) {
      await mustClose([head]);
    }
  });

  test("event name {toString} (CVE-2023-32695) closes the connection", async () => {
    await mustClose(['42[{"toString":"foo"}]']);
  });

  test("invalid event payloads close the connection: {} [] null true [[..]] string", async () => {
    for (const f of ["42{}", "42[]", "42[null]", "42[true]", '42[["x"]]', '42"echo"', "421{}", "42abc", '42["echo"', "4abc", "4", "47[]", "49"]) {
      await mustClose([f]);
    }
  });

  for (const name of ["disconnect", "connect", "connect_error", "disconnecting", "newListener", "removeListener"]) {
    test(`reserved event name ${name} from a client closes the connection`, async () => {
      await mustClose([`42["${name}","x"]`]);
    });
  }

  test("event names error, __proto__, constructor, toString are harmless (no crash, stays open)", async () => {
    const ws = await raw();
    for (const name of ["error", "__proto__", "constructor", "toString", "hasOwnProperty", "prototype"]) {
      ws.send(`42["${name}",1]`);
      ws.send(`421["${name}"]`);
    }
    ws.send('429["echo","alive"]');
    assert.deepEqual(await ws.nextNonPing(), { data: '439["alive"]', isBinary: false });
  });

  test("ACK without id and packets without payload (42, 43) are ignored", async () => {
    const ws = await raw();
    ws.send('43["x"]');
    ws.send("42");
    ws.send("43");
    await assertWsQuiet(ws, 200);
    ws.send('421["echo","alive"]');
    assert.deepEqual(await ws.nextNonPing(), { data: '431["alive"]', isBinary: false });
  });

  test("invalid ack ids close the connection (43abc, 42abc)", async () => {
    await mustClose(["43abc[1]"]);
    await mustClose(['42abc["echo",1]']);
  });

  test("ack id beyond 2^53 (closed, or answered; never crashes)", async () => {
    const ws = await raw();
    ws.send('42123456789012345678901["echo",1]');
    ws.send('429007199254740993["echo",2]');
    // Node answers with a rounded id (43123456789012345680000[1]); rejecting is the safer choice
    const deadline = Date.now() + 1000;
    const seen = [];
    while (!ws.isClosed && Date.now() < deadline) {
      try {
        const m = await ws.nextNonPing(Math.max(1, deadline - Date.now()));
        seen.push(m.data);
      } catch {
        break;
      }
    }
    for (const f of seen) assert.match(String(f), /^43\d+\[[12]\]$/);
  });

  test("CONNECT with a non-object payload closes the connection: 40[1] 40null 40\"s\" 40/chat,[1]", async () => {
    for (const f of ["40[1]", "40null", '40"s"', "40/chat,[1]", "40/chat,true", "40{"]) {
      await mustClose([f], null);
    }
    // also when another namespace is already joined
    await mustClose(["40/chat,null"], "/");
  });

  test("DISCONNECT with a payload (41{}) closes the connection", async () => {
    await mustClose(["41{}"]);
    await mustClose(["41/chat,{}"], "/chat");
  });

  test("CONNECT_ERROR from a client closes the connection", async () => {
    await mustClose(['44{"message":"x"}']);
    await mustClose(['44"x"'], null);
  });

  test("text frame while waiting for attachments closes the connection", async () => {
    await mustClose([`452-1["echo",${ph(0)},${ph(1)}]`, Buffer.from([1]), '421["echo","x"]']);
    await mustClose([`451-["echo",${ph(0)}]`, "2"]);
  });

  test("binary frame with no pending header closes the connection", async () => {
    await mustClose([Buffer.from([1, 2, 3])]);
    // one attachment too many
    await mustClose([`451-1["echo",${ph(0)}]`, Buffer.from([1]), Buffer.from([2])]);
  });

  test("binary frame before any CONNECT closes the connection", async () => {
    await mustClose([Buffer.from([0xff])], null);
  });

  test("deep nesting: 10 000 balanced [ without ack (closed or ignored), unbalanced closes", async () => {
    const ws = await raw();
    ws.send(`42["echo",${"[".repeat(10000)}${"]".repeat(10000)}]`);
    await closedOrIgnored(ws);
    await mustClose([`42["echo",${"[".repeat(10000)}]`]);
    await mustClose([`42["echo",${'{"a":'.repeat(10000)}1]`]);
  });

  test("moderate nesting (100 levels) is echoed exactly", async () => {
    const ws = await raw();
    const deep = `${"[".repeat(50)}${'{"k":'.repeat(50)}1${"}".repeat(50)}${"]".repeat(50)}`;
    ws.send(`421["echo",${deep}]`);
    assert.deepEqual(await ws.nextNonPing(), { data: `431[${deep}]`, isBinary: false });
  });

  test("huge packet just under MAX_PAYLOAD is echoed; over it the connection is closed", async () => {
    const ws = await raw();
    const head = '421["echo","';
    const fill = "x".repeat(MAX_PAYLOAD - head.length - 2);
    ws.send(`${head}${fill}"]`); // exactly MAX_PAYLOAD bytes
    const m = await ws.nextNonPing(5000);
    assert.equal(m.isBinary, false);
    assert.equal(m.data, `431["${fill}"]`);
    await mustClose([`${head}${fill}x"]`]);
  });

  test("many escapes in a large string are decoded in linear time", async () => {
    const ws = await raw();
    const n = 100000;
    const t0 = Date.now();
    ws.send(`421["echo","${"\\u00e9\\n".repeat(n)}"]`);
    const m = await ws.nextNonPing(5000);
    assert.equal(m.data, `431["${"é\\n".repeat(n)}"]`);
    assert.ok(Date.now() - t0 < 4000);
  });

  test("huge unknown namespace names: Invalid namespace or closed, never a crash", async () => {
    for (const len of [1000, 500000]) {
      const ws = await raw(null);
      const nsp = "/" + "a".repeat(len);
      ws.send(`40${nsp},`);
      const m = await ws.next(3000).catch(() => null);
      if (m) assert.equal(m.data, `44${nsp},{"message":"Invalid namespace"}`);
      else assert.ok(ws.isClosed, "no answer and still open");
    }
    await mustClose([`42/${"b".repeat(500000)},["echo"]`]);
  });

  test("a flood of CONNECTs to distinct unknown namespaces is answered one by one", async () => {
    const ws = await raw(null);
    for (let i = 0; i < 300; i++) ws.send(`40/flood-${i},`);
    for (let i = 0; i < 300; i++) {
      const m = await ws.nextNonPing(3000);
      assert.equal(m.data, `44/flood-${i},{"message":"Invalid namespace"}`);
    }
    assert.match(await sioRawConnect(ws, "/chat"), /^40\/chat,\{"sid":/);
  });

  test("a hostile connection does not disturb another one", async () => {
    const good = await raw("/chat");
    await mustClose(['42[{"toString":"foo"}]'], "/chat");
    good.send('42/chat,1["echo","fine"]');
    assert.deepEqual(await good.nextNonPing(), { data: '43/chat,1["fine"]', isBinary: false });
  });

  test("polling: a decode error in a payload closes the session; later packets are not processed", async () => {
    const { sid } = await pollingHandshake(tb);
    await postOk(tb, sid, "40");
    const first = await pollGet(tb, sid);
    assert.match(first.text, /^40\{"sid":/);
    await pollPost(tb, sid, '421["echo",1]\x1e42{}\x1e422["echo",2]');
    const seen = [];
    const deadline = Date.now() + 2000;
    let gone = false;
    while (Date.now() < deadline) {
      const res = await pollGet(tb, sid);
      if (res.status === 400) {
        gone = true;
        break;
      }
      seen.push(...res.text.split("\x1e"));
    }
    assert.ok(gone, `session still open; got ${JSON.stringify(seen)}`);
    assert.ok(!seen.includes('432[2]'), "the packet after the bad one must not be processed");
  });

  test("polling: a binary attachment (b64) with no pending header closes the session", async () => {
    const { sid } = await pollingHandshake(tb);
    await postOk(tb, sid, "40");
    await pollGet(tb, sid);
    await pollPost(tb, sid, "bAQID");
    const deadline = Date.now() + 2000;
    let gone = false;
    while (Date.now() < deadline) {
      const res = await pollGet(tb, sid);
      if (res.status === 400) {
        gone = true;
        break;
      }
      await sleep(20);
    }
    assert.ok(gone, "session still open");
  });
});

// ------------------------------------------------------------------------------------------------

describe("socketio hostile input (msgpack parser)", () => {
  let tb;
  const opened = [];
  before(async () => {
    tb = await startTestbed("app", { PARSER: "msgpack" });
  });
  after(() => tb?.stop());
  afterEach(async () => {
    for (const ws of opened.splice(0)) ws.close();
    closeSioClients();
    await assertSioHealthy(tb);
  });

  const E = (packet) => Buffer.from(notepack.encode(packet));
  const ECHO = E({ type: 2, nsp: "/", data: ["echo", "alive"], id: 777 });

  /** Raw WebSocket with a msgpack CONNECT to `/` done (unless `connect` is false). */
  const raw = async (connect = true) => {
    const { ws } = await sioRawWs(tb, { nsp: null });
    opened.push(ws);
    if (connect) {
      ws.send(E({ type: 0, nsp: "/" }));
      const m = await ws.nextNonPing();
      assert.equal(m.isBinary, true);
      assert.equal(notepack.decode(m.data).type, 0);
    }
    return ws;
  };
  const mustClose = async (frames, connect = true) => {
    const ws = await raw(connect);
    for (const f of frames) ws.send(f);
    await assertWsClosedByServer(ws, 2000);
  };
  /** Closed, or still answering an echo (msgpack). */
  const closedOrIgnored = async (ws) => {
    if (!ws.isClosed) ws.send(ECHO);
    const deadline = Date.now() + 1500;
    while (Date.now() < deadline) {
      let m;
      try {
        m = await ws.next(Math.max(1, deadline - Date.now()));
      } catch {
        if (ws.isClosed) return "closed";
        break;
      }
      if (!m.isBinary && m.data === "2") ws.send("3");
      else if (m.isBinary) {
        const p = notepack.decode(m.data);
        if (p.type === 3 && p.id === 777) return "open";
      }
    }
    if (ws.isClosed) return "closed";
    assert.fail("connection neither closed nor answering");
  };

  test("trailing bytes after the packet close the connection", async () => {
    await mustClose([Buffer.concat([ECHO, Buffer.from([0x00])])]);
  });

  test("a text frame with the msgpack parser closes the connection", async () => {
    await mustClose(['42["echo","x"]']);
    await mustClose(["40"], false);
  });

  test("types 5 and 6 are rejected", async () => {
    await mustClose([E({ type: 5, nsp: "/", data: ["echo", Buffer.from([1])], id: 1 })]);
    await mustClose([E({ type: 6, nsp: "/", data: [1], id: 1 })]);
  });

  test("truncated map closes the connection", async () => {
    await mustClose([ECHO.subarray(0, ECHO.length - 4)]);
    await mustClose([ECHO.subarray(0, 1)]);
  });

  test("malformed packets close the connection", async () => {
    for (const f of [
      E({ type: 2, nsp: "/", data: { a: 1 } }), // data not an array
      E({ type: 2, data: ["echo"] }), // nsp missing
      E({ type: 2, nsp: 1, data: ["echo"] }),
      E({ type: 2, nsp: "/", data: ["echo"], id: "1" }),
      E({ type: 2, nsp: "/", data: ["echo"], id: 1.5 }),
      E({ type: 7, nsp: "/", data: [] }),
      E({ type: "2", nsp: "/", data: ["echo"] }),
      E([1, 2, 3]),
      E("just a string"),
      Buffer.from([0xc1]),
      Buffer.alloc(0),
      Buffer.from([0xd4, 0x00, 0x00]),
      E({ type: 1, nsp: "/", data: {} }),
      E({ type: 0, nsp: "/chat", data: [1] }),
      E({ type: 0, nsp: "/" }), // CONNECT twice
      E({ type: 4, nsp: "/", data: { message: "x" } }),
      E({ type: 2, nsp: "/chat", data: ["echo"] }), // namespace not joined
    ]) {
      await mustClose([f]);
    }
  });

  test("length headers far beyond the frame close the connection", async () => {
    const prefix = Buffer.concat([
      Buffer.from([0x83, 0xa4]),
      Buffer.from("type"),
      Buffer.from([0x02, 0xa3]),
      Buffer.from("nsp"),
      Buffer.from([0xa1, 0x2f, 0xa4]),
      Buffer.from("data"),
    ]);
    await mustClose([Buffer.concat([prefix, Buffer.from([0xdd, 0xff, 0xff, 0xff, 0xff])])]); // array32
    await mustClose([Buffer.concat([prefix, Buffer.from([0x91, 0xdb, 0xff, 0xff, 0xff, 0xff])])]); // str32
    await mustClose([Buffer.concat([prefix, Buffer.from([0x91, 0xc6, 0xff, 0xff, 0xff, 0xff])])]); // bin32
    await mustClose([Buffer.from([0xdf, 0xff, 0xff, 0xff, 0xff])]); // map32
  });

  test("deep nesting (10 000 arrays) closes the connection", async () => {
    const prefix = Buffer.concat([
      Buffer.from([0x83, 0xa4]),
      Buffer.from("type"),
      Buffer.from([0x02, 0xa3]),
      Buffer.from("nsp"),
      Buffer.from([0xa1, 0x2f, 0xa4]),
      Buffer.from("data"),
      Buffer.from([0x92, 0xa4]),
      Buffer.from("echo"),
    ]);
    await mustClose([Buffer.concat([prefix, Buffer.alloc(10000, 0x91), Buffer.from([0xc0])])]);
  });

  test("empty event array, reserved names, odd ack ids: closed or ignored, never a crash", async () => {
    for (const f of [
      E({ type: 2, nsp: "/", data: [] }),
      E({ type: 2, nsp: "/", data: ["disconnect"] }),
      E({ type: 2, nsp: "/", data: ["echo", 1], id: 2 ** 60 }),
      E({ type: 2, nsp: "/", data: ["echo", 1], id: -1 }),
    ]) {
      const ws = await raw();
      ws.send(f);
      await closedOrIgnored(ws);
    }
  });

  test("numeric event name, extra keys and unknown ack ids are accepted", async () => {
    const ws = await raw();
    ws.send(E({ type: 2, nsp: "/", data: [7, 1] }));
    ws.send(E({ type: 3, nsp: "/", data: ["x"], id: 12345 }));
    ws.send(E({ type: 2, nsp: "/", data: ["echo", 1], id: 1, extra: true }));
    const m = await ws.nextNonPing();
    const p = notepack.decode(m.data);
    assert.deepEqual([p.type, p.id, p.nsp, p.data], [3, 1, "/", [1]]);
  });

  test("polling: a text packet with the msgpack parser closes the session", async () => {
    const { sid } = await pollingHandshake(tb);
    await postOk(tb, sid, "b" + E({ type: 0, nsp: "/" }).toString("base64"));
    await pollGet(tb, sid);
    await pollPost(tb, sid, '42["echo"]');
    const deadline = Date.now() + 2000;
    let gone = false;
    while (Date.now() < deadline) {
      const res = await pollGet(tb, sid);
      if (res.status === 400) {
        gone = true;
        break;
      }
    }
    assert.ok(gone, "session still open");
  });
});
