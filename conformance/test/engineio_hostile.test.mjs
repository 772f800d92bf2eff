// Engine.IO / WebSocket hostile inputs (notes Part 5). After every test the server must still be
// healthy: a fresh client handshakes and echoes on both transports.

import { describe, test, before, after, afterEach } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import {
  startTestbed,
  rawExchange,
  httpHead,
  eioTarget,
  upgradeHeaders,
  wsFrame,
  wsHandshake,
  pollingHandshake,
  pollPost,
  postOk,
  pollUntil,
  request,
  eioUrl,
  assertError,
  ERRORS,
  assertHealthy,
  sleep,
  HOST,
} from "./harness.mjs";

/** Status of the response: `undefined` when the server closed without answering. */
const statusOf = (res) => res.status;

describe("engineio hostile input", () => {
  let tb;
  before(async () => {
    tb = await startTestbed("engineio");
  });
  after(() => tb?.stop());
  afterEach(async () => {
    await assertHealthy(tb);
  });

  // CVE-2022-21676: a WebSocket upgrade request immediately followed by garbage (an invalid
  // frame with RSV bits set) in the same TCP segment.
  test("garbage bytes right after a WebSocket upgrade request", async () => {
    const head = httpHead("GET", eioTarget(tb, { transport: "websocket" }), upgradeHeaders());
    const garbage = Buffer.from([0xff, 0xff, 0xff, 0xff, 0x00, 0x01, 0x02, 0x03, 0xde, 0xad, 0xbe, 0xef]);
    const res = await rawExchange(tb.port, Buffer.concat([Buffer.from(head), garbage]));
    // Node: 101, then the open packet, then the connection is closed for the protocol error
    assert.ok(res.closed, "connection must be closed");
  });

  test("garbage bytes right after an upgrade of an existing polling session", async () => {
    const { sid } = await pollingHandshake(tb);
    const head = httpHead("GET", eioTarget(tb, { transport: "websocket", sid }), upgradeHeaders());
    const res = await rawExchange(tb.port, Buffer.concat([Buffer.from(head), Buffer.alloc(64, 0xff)]));
    assert.ok(res.closed);
    // the polling session is unaffected
    await postOk(tb, sid, "4ok");
    assert.deepEqual(await pollUntil(tb, sid), ["4ok"]);
  });

  // CVE-2022-41940: an upgrade the engine does not handle (Upgrade: h2c), then a TCP reset.
  for (const [name, target] of [
    ["outside the engine path", "/elsewhere"],
    ["on the engine path", null],
  ]) {
    test(`Upgrade: h2c ${name}, then TCP reset`, async () => {
      const path = target ?? eioTarget(tb);
      const head = httpHead("GET", path, {
        Connection: "Upgrade, HTTP2-Settings",
        Upgrade: "h2c",
        "HTTP2-Settings": "AAMAAABkAARAAAAAAAIAAAAA",
      });
      // one reset at once, one while the server is about to destroy the socket (Node: 1 s)
      await Promise.all([
        rawExchange(tb.port, head, { reset: true }),
        (async () => {
          const s = net.connect(tb.port, HOST);
          s.on("error", () => {});
          s.write(head);
          await sleep(1000);
          s.resetAndDestroy();
        })(),
      ]);
    });
  }

  test("Upgrade: h2c without reset is not answered with 101", async () => {
    const head = httpHead("GET", "/elsewhere", { Connection: "Upgrade", Upgrade: "h2c" });
    const res = await rawExchange(tb.port, head, { timeout: 1500 });
    assert.notEqual(statusOf(res), 101);
  });

  // CVE-2023-31125: unknown transport on a WebSocket upgrade.
  for (const transport of ["__proto__", "constructor", "hasOwnProperty", "toString", "webtransport", "polling "]) {
    test(`WebSocket upgrade with transport=${JSON.stringify(transport)} → 400 before any 101`, async () => {
      const head = httpHead("GET", eioTarget(tb, { transport }), upgradeHeaders());
      const res = await rawExchange(tb.port, head);
      assert.equal(statusOf(res), 400);
      assert.ok(!res.text.includes("101 Switching"), "no 101");
    });
  }

  // CVE-2026-102599: upgrade of an existing session with another or no EIO, then a heartbeat.
  for (const [name, EIO] of [
    ["EIO=3", "3"],
    ["missing EIO", undefined],
    ["EIO=abc", "abc"],
  ]) {
    test(`upgrade of an existing session with ${name} → 400; the session keeps working`, async () => {
      const { sid } = await pollingHandshake(tb);
      const head = httpHead("GET", eioTarget(tb, { transport: "websocket", sid, EIO }), upgradeHeaders());
      const res = await rawExchange(tb.port, head);
      assert.equal(statusOf(res), 400);
      // heartbeat and messages on the original session still work
      await postOk(tb, sid, "4still");
      const got = await pollUntil(tb, sid, (p) => p.includes("4still"));
      assert.ok(got.includes("4still"));
    });
  }

  // Node checks the EIO of every request that carries a sid (not only upgrades, as the notes
  // say): another or missing EIO → 400 code 3, and the session is left alone.
  for (const [name, EIO] of [
    ["EIO=3", "3"],
    ["missing EIO", undefined],
  ]) {
    test(`polling GET and POST with ${name} on an existing session → 400 code 3; session kept`, async () => {
      const { sid } = await pollingHandshake(tb);
      assertError(await request(eioUrl(tb, { sid, EIO })), 3, ERRORS[3]);
      assertError(await request(eioUrl(tb, { sid, EIO }), { method: "POST", body: "4x" }), 3, ERRORS[3]);
      await postOk(tb, sid, "4kept");
      assert.deepEqual(await pollUntil(tb, sid), ["4kept"]);
    });
  }

  // CVE-2024-37890 and friends: broken handshake headers.
  test("missing Sec-WebSocket-Key → 400", async () => {
    const headers = upgradeHeaders();
    delete headers["Sec-WebSocket-Key"];
    const res = await rawExchange(tb.port, httpHead("GET", eioTarget(tb, { transport: "websocket" }), headers));
    assert.equal(statusOf(res), 400);
  });

  test("invalid Sec-WebSocket-Key → 400", async () => {
    const res = await rawExchange(
      tb.port,
      httpHead("GET", eioTarget(tb, { transport: "websocket" }), upgradeHeaders({ "Sec-WebSocket-Key": "short" })),
    );
    assert.equal(statusOf(res), 400);
  });

  test("unsupported Sec-WebSocket-Version → 400", async () => {
    const res = await rawExchange(
      tb.port,
      httpHead("GET", eioTarget(tb, { transport: "websocket" }), upgradeHeaders({ "Sec-WebSocket-Version": "12" })),
    );
    assert.equal(statusOf(res), 400);
  });

  test("missing Sec-WebSocket-Version → 400", async () => {
    const headers = upgradeHeaders();
    delete headers["Sec-WebSocket-Version"];
    const res = await rawExchange(tb.port, httpHead("GET", eioTarget(tb, { transport: "websocket" }), headers));
    assert.equal(statusOf(res), 400);
  });

  test("upgrade request with more headers than the server keeps → refused, no 101", async () => {
    // 2100 tiny headers before the handshake headers (Node keeps 2000, so the key is dropped)
    const filler = {};
    for (let i = 0; i < 2100; i++) filler[`x${i}`] = "a";
    const head = httpHead("GET", eioTarget(tb, { transport: "websocket" }), { ...filler, ...upgradeHeaders() });
    const res = await rawExchange(tb.port, head);
    assert.ok(res.status === undefined || (res.status >= 400 && res.status < 500), `status ${res.status}`);
  });

  // CVE-2021-32640: ReDoS in Sec-WebSocket-Protocol parsing.
  test("huge Sec-WebSocket-Protocol made of spaces is answered quickly", async () => {
    const started = Date.now();
    const head = httpHead(
      "GET",
      eioTarget(tb, { transport: "websocket" }),
      upgradeHeaders({ "Sec-WebSocket-Protocol": "a" + " ".repeat(12000) + "b" }),
    );
    const res = await rawExchange(tb.port, head, { timeout: 1500 });
    assert.ok(Date.now() - started < 1500, "answer within 1.5 s");
    assert.ok([101, 400].includes(statusOf(res)), `status ${res.status}`);
  });

  // GHSA-5v72-xg48-5rpm: prototype names in Sec-WebSocket-Extensions.
  for (const ext of ["constructor", "__proto__", "__proto__; a=1, constructor", "permessage-deflate; __proto__=1", "hasOwnProperty"]) {
    test(`Sec-WebSocket-Extensions: ${ext}`, async () => {
      const head = httpHead(
        "GET",
        eioTarget(tb, { transport: "websocket" }),
        upgradeHeaders({ "Sec-WebSocket-Extensions": ext }),
      );
      const res = await rawExchange(tb.port, head, { timeout: 500 });
      // Node (perMessageDeflate off) ignores the header and upgrades
      assert.ok([101, 400].includes(statusOf(res)), `status ${res.status}`);
      if (statusOf(res) === 101) {
        assert.ok(!/sec-websocket-extensions/i.test(res.text.split("\r\n\r\n")[0]), "no extension accepted");
      }
    });
  }

  // Origin header with control characters → 400 (engine.io checks it; Node's HTTP parser may
  // already refuse the request).
  for (const [name, origin] of [
    ["\\x01", "http://a\x01b.example"],
    ["\\x7f", "http://a\x7fb.example"],
    ["\\x1f", "\x1fhttp://a.example"],
  ]) {
    test(`Origin with control character ${name} → 400 (polling handshake)`, async () => {
      const res = await rawExchange(tb.port, httpHead("GET", eioTarget(tb), { Origin: origin, Connection: "close" }));
      assert.equal(statusOf(res), 400);
    });
    test(`Origin with control character ${name} → 400 (WebSocket upgrade)`, async () => {
      const head = httpHead("GET", eioTarget(tb, { transport: "websocket" }), upgradeHeaders({ Origin: origin }));
      const res = await rawExchange(tb.port, head);
      assert.equal(statusOf(res), 400);
    });
  }

  // CVE-2026-48779 / CVE-2026-62389: floods of tiny fragments without FIN.
  test("flood of tiny WebSocket fragments without FIN", async () => {
    const { ws } = await wsHandshake(tb);
    const sock = ws.ws._socket;
    const frames = [wsFrame(0x1, "4", { fin: false })];
    for (let i = 0; i < 20000; i++) frames.push(wsFrame(0x0, "x", { fin: false }));
    sock.write(Buffer.concat(frames));
    // either the server closes the connection, or it keeps working
    const outcome = await Promise.race([ws.closed.then(() => "closed"), sleep(1500).then(() => "open")]);
    if (outcome === "open") {
      sock.write(wsFrame(0x0, "", { fin: true }));
      const m = await ws.nextNonPing(3000);
      assert.equal(m.data, "4" + "x".repeat(20000));
    }
    ws.close();
  });

  test("flood of empty continuation frames without FIN", async () => {
    const { ws } = await wsHandshake(tb);
    const sock = ws.ws._socket;
    const frames = [wsFrame(0x2, Buffer.from([1]), { fin: false })];
    const empty = wsFrame(0x0, Buffer.alloc(0), { fin: false });
    for (let i = 0; i < 50000; i++) frames.push(empty);
    sock.write(Buffer.concat(frames));
    const outcome = await Promise.race([ws.closed.then(() => "closed"), sleep(1500).then(() => "open")]);
    if (outcome === "open") {
      sock.write(wsFrame(0x0, Buffer.from([2]), { fin: true }));
      const m = await ws.nextNonPing(3000);
      assert.deepEqual([...m.data], [1, 2]);
    }
    ws.close();
  });

  test("a message trickled one byte per TCP write is still echoed", async () => {
    const { ws } = await wsHandshake(tb);
    const sock = ws.ws._socket;
    sock.setNoDelay(true);
    const frame = wsFrame(0x1, "4trickle");
    for (const byte of frame) {
      sock.write(Buffer.from([byte]));
      await sleep(2);
    }
    assert.deepEqual(await ws.nextNonPing(), { data: "4trickle", isBinary: false });
    ws.close();
  });

  // WebSocket protocol violations on an open session.
  for (const [name, frame] of [
    ["RSV1 set without an extension", () => wsFrame(0x1, "4x", { rsv: 4 })],
    ["unknown opcode 0x3", () => wsFrame(0x3, "4x")],
    ["continuation without a start", () => wsFrame(0x0, "4x")],
    ["ping control frame over 125 bytes", () => wsFrame(0x9, Buffer.alloc(200))],
    ["fragmented control frame", () => wsFrame(0x9, "p", { fin: false })],
    [
      "unmasked client frame",
      () => Buffer.from([0x81, 0x02, 0x34, 0x78]), // text "4x" without mask
    ],
    [
      "length field announcing 2^62 bytes",
      () => {
        const h = Buffer.alloc(14);
        h[0] = 0x82;
        h[1] = 0x80 | 127;
        h.writeBigUInt64BE(1n << 62n, 2);
        return h;
      },
    ],
  ]) {
    test(`WebSocket protocol error: ${name} → connection closed`, async () => {
      const { ws, sid } = await wsHandshake(tb);
      ws.ws._socket.write(frame());
      await ws.waitClosed();
      await sleep(20);
      const res = await request(eioUrl(tb, { sid }));
      assert.equal(res.status, 400, "the session is gone");
    });
  }

  test("new text frame while a fragmented message is in progress → closed", async () => {
    const { ws } = await wsHandshake(tb);
    ws.ws._socket.write(Buffer.concat([wsFrame(0x1, "4a", { fin: false }), wsFrame(0x1, "4b")]));
    await ws.waitClosed();
  });

  // Plain HTTP garbage.
  test("random bytes instead of an HTTP request", async () => {
    const res = await rawExchange(tb.port, Buffer.from([0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03]));
    assert.ok(res.closed || res.status === 400);
  });

  test("HTTP request line with a huge URL", async () => {
    const res = await rawExchange(tb.port, httpHead("GET", eioTarget(tb) + "&x=" + "a".repeat(100000), {}));
    assert.ok(res.closed || (res.status >= 400 && res.status < 500), `status ${res.status}`);
  });

  test("POST body with invalid UTF-8", async () => {
    const { sid } = await pollingHandshake(tb);
    const res = await pollPost(tb, sid, Buffer.from([0x34, 0xff, 0xfe, 0xc3]));
    // Node decodes with replacement characters and echoes; rejecting is acceptable too
    assert.ok([200, 400].includes(res.status));
  });

  test("percent-encoded garbage in the query string", async () => {
    const res = await rawExchange(
      tb.port,
      httpHead("GET", `${eioTarget(tb)}&sid=%ff%fe%00&%zz=1`, { Connection: "close" }),
    );
    assert.equal(statusOf(res), 400);
  });

  test("many sessions opened and abandoned", async () => {
    const sids = [];
    for (let i = 0; i < 50; i++) sids.push(pollingHandshake(tb));
    assert.equal(new Set((await Promise.all(sids)).map((s) => s.sid)).size, 50);
  });
});
