// Engine.IO v4: handshake over both transports and request validation (notes 1.1–1.3).

import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import {
  startTestbed,
  request,
  eioUrl,
  pollingHandshake,
  wsHandshake,
  WsClient,
  wsUrl,
  assertError,
  ERRORS,
  decodePayload,
  postOk,
  pollUntil,
  PING_INTERVAL,
  PING_TIMEOUT,
  MAX_PAYLOAD,
  assertHealthy,
} from "./harness.mjs";

const OPEN_KEYS = ["maxPayload", "pingInterval", "pingTimeout", "sid", "upgrades"];
const SID_RE = /^[A-Za-z0-9_-]+$/;

describe("engineio handshake", () => {
  let tb;
  before(async () => {
    tb = await startTestbed("engineio");
  });
  after(() => tb?.stop());

  describe("HTTP long-polling", () => {
    test("opens a session: open packet with exactly the five keys", async () => {
      const res = await request(eioUrl(tb));
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("content-type"), "text/plain; charset=UTF-8");
      const packets = decodePayload(res.text);
      assert.equal(packets.length, 1, "the handshake response holds only the open packet");
      assert.equal(packets[0][0], "0");
      const open = JSON.parse(packets[0].slice(1));
      assert.deepEqual(Object.keys(open).sort(), OPEN_KEYS);
      assert.deepEqual(open.upgrades, ["websocket"]);
      assert.equal(open.pingInterval, PING_INTERVAL);
      assert.equal(open.pingTimeout, PING_TIMEOUT);
      assert.equal(open.maxPayload, MAX_PAYLOAD);
      assert.equal(typeof open.sid, "string");
      assert.match(open.sid, SID_RE);
    });

    test("open packet JSON is compact", async () => {
      const res = await request(eioUrl(tb));
      assert.ok(!/[ \n]/.test(res.text), `not compact: ${res.text}`);
    });

    test("ignores the cache buster and other query parameters", async () => {
      const res = await request(eioUrl(tb, { t: "PdJIQyv", foo: "bar" }));
      assert.equal(res.status, 200);
      assert.equal(decodePayload(res.text)[0][0], "0");
    });

    test("session ids are distinct, URL-safe and not sequential", async () => {
      const sids = [];
      for (let i = 0; i < 20; i++) sids.push((await pollingHandshake(tb)).sid);
      assert.equal(new Set(sids).size, sids.length, "sids must be distinct");
      for (const sid of sids) {
        assert.match(sid, SID_RE);
        assert.ok(sid.length >= 16, `sid too short to be unguessable: ${sid}`);
      }
      // Node's ids are 12 random bytes + a counter: the leading part differs from id to id.
      const prefixes = new Set(sids.map((s) => s.slice(0, 8)));
      assert.equal(prefixes.size, sids.length, "sid prefixes repeat: ids look predictable");
    });

    test("the new session is usable right after the handshake", async () => {
      const { sid } = await pollingHandshake(tb);
      await postOk(tb, sid, "4hi");
      assert.deepEqual(await pollUntil(tb, sid), ["4hi"]);
    });
  });

  describe("HTTP error responses", () => {
    const cases = [
      ["missing EIO", { EIO: undefined }, 5],
      ["EIO=abc", { EIO: "abc" }, 5],
      ["EIO=3 (no allowEIO3)", { EIO: "3" }, 5],
      ["EIO=5", { EIO: "5" }, 5],
      ["empty EIO", { EIO: "" }, 5],
      ["missing transport", { transport: undefined }, 0],
      ["transport=abc", { transport: "abc" }, 0],
      ["transport=__proto__", { transport: "__proto__" }, 0],
      ["transport=constructor", { transport: "constructor" }, 0],
      ["transport=webtransport", { transport: "webtransport" }, 0],
      ["unknown sid", { sid: "nope" }, 1],
      ["sid=__proto__", { sid: "__proto__" }, 1],
      ["sid=constructor", { sid: "constructor" }, 1],
      ["transport=websocket via plain GET", { transport: "websocket" }, 3],
    ];
    for (const [name, query, code] of cases) {
      test(`GET with ${name} → 400 code ${code}`, async () => {
        const res = await request(eioUrl(tb, query));
        assertError(res, code, ERRORS[code]);
      });
    }

    for (const method of ["POST", "PUT", "OPTIONS", "DELETE"]) {
      test(`${method} handshake → 400 code 2`, async () => {
        const res = await request(eioUrl(tb), { method, body: method === "OPTIONS" ? undefined : "" });
        assertError(res, 2, ERRORS[2]);
      });
    }

    test("error body is compact JSON", async () => {
      const res = await request(eioUrl(tb, { transport: "abc" }));
      assert.equal(res.text, '{"code":0,"message":"Transport unknown"}');
    });

    // Validation order (notes 1.2): transport, then sid, then method / websocket-without-upgrade,
    // and EIO only when a session is created.
    test("order: unknown transport is reported before a bad EIO", async () => {
      assertError(await request(eioUrl(tb, { transport: "abc", EIO: "abc" })), 0, ERRORS[0]);
    });
    test("order: unknown sid is reported before a bad EIO", async () => {
      assertError(await request(eioUrl(tb, { sid: "nope", EIO: undefined })), 1, ERRORS[1]);
    });
    test("order: unknown transport is reported before an unknown sid", async () => {
      assertError(await request(eioUrl(tb, { sid: "nope", transport: "abc" })), 0, ERRORS[0]);
    });
    test("order: bad handshake method is reported before a bad EIO", async () => {
      assertError(await request(eioUrl(tb, { EIO: "abc" }), { method: "POST", body: "" }), 2, ERRORS[2]);
    });
    test("order: websocket via plain GET is reported before a bad EIO", async () => {
      assertError(await request(eioUrl(tb, { transport: "websocket", EIO: undefined })), 3, ERRORS[3]);
    });

    test("sid of a closed session → 400 code 1", async () => {
      const { sid } = await pollingHandshake(tb);
      await postOk(tb, sid, "1");
      assertError(await request(eioUrl(tb, { sid })), 1, ERRORS[1]);
    });

    test("a request for another path is not handled by the engine", async () => {
      const res = await request(`${tb.url}/other/?EIO=4&transport=polling`);
      assert.notEqual(res.status, 200);
    });
  });

  describe("WebSocket", () => {
    test("opens a session: first frame is the open packet, upgrades []", async () => {
      const { ws, open } = await wsHandshake(tb);
      try {
        assert.deepEqual(Object.keys(open).sort(), OPEN_KEYS);
        assert.deepEqual(open.upgrades, []);
        assert.equal(open.pingInterval, PING_INTERVAL);
        assert.equal(open.pingTimeout, PING_TIMEOUT);
        assert.equal(open.maxPayload, MAX_PAYLOAD);
        assert.match(open.sid, SID_RE);
      } finally {
        ws.close();
      }
    });

    test("WebSocket and polling sids are distinct", async () => {
      const a = await wsHandshake(tb);
      const b = await wsHandshake(tb);
      const c = await pollingHandshake(tb);
      a.ws.close();
      b.ws.close();
      assert.equal(new Set([a.sid, b.sid, c.sid]).size, 3);
    });

    // Node detects a bad EIO only after the 101 and then destroys the socket; rejecting before
    // the upgrade is fine too. Either way: no open packet, connection closed.
    for (const [name, query] of [
      ["missing EIO", { EIO: undefined }],
      ["EIO=abc", { EIO: "abc" }],
      ["EIO=3", { EIO: "3" }],
    ]) {
      test(`${name} → closed without an open packet`, async () => {
        const ws = new WsClient(wsUrl(tb, query));
        await ws.waitClosed(3000);
        assert.ok(
          !ws.queue.some((m) => !m.isBinary && m.data.startsWith("0")),
          "no open packet may be sent",
        );
      });
    }

    for (const [name, query] of [
      ["missing transport", { transport: undefined }],
      ["transport=abc", { transport: "abc" }],
      ["transport=polling", { transport: "polling" }],
    ]) {
      test(`${name} → upgrade refused`, async () => {
        const ws = new WsClient(wsUrl(tb, query));
        await ws.waitClosed(3000);
        assert.equal(ws.queue.length, 0);
        // Node: unknown transport → raw `HTTP/1.1 400` before any 101. For transport=polling,
        // Node completes the 101 and closes at once (polling does not handle upgrades).
        if (query.transport !== "polling") assert.equal(ws.unexpectedResponse?.status, 400);
      });
    }

    test("unknown sid → 400 before the upgrade", async () => {
      const ws = new WsClient(wsUrl(tb, { sid: "nope" }));
      await ws.waitClosed(3000);
      assert.equal(ws.unexpectedResponse?.status, 400);
    });

    test("server still healthy", async () => {
      await assertHealthy(tb);
    });
  });
});

describe("engineio handshake, TRANSPORTS=websocket", () => {
  let tb;
  before(async () => {
    tb = await startTestbed("engineio", { TRANSPORTS: "websocket" });
  });
  after(() => tb?.stop());

  test("polling handshake → 400 code 0", async () => {
    assertError(await request(eioUrl(tb)), 0, ERRORS[0]);
  });

  test("WebSocket handshake works, upgrades []", async () => {
    const { ws, open } = await wsHandshake(tb);
    ws.send("4x");
    assert.deepEqual(await ws.nextNonPing(), { data: "4x", isBinary: false });
    ws.close();
    assert.deepEqual(open.upgrades, []);
  });
});

describe("engineio handshake, TRANSPORTS=polling", () => {
  let tb;
  before(async () => {
    tb = await startTestbed("engineio", { TRANSPORTS: "polling" });
  });
  after(() => tb?.stop());

  test("polling handshake advertises no upgrade", async () => {
    const { open } = await pollingHandshake(tb);
    assert.deepEqual(open.upgrades, []);
  });

  test("WebSocket connection refused", async () => {
    const ws = new WsClient(wsUrl(tb));
    await ws.waitClosed(3000);
    assert.equal(ws.queue.length, 0);
  });

  test("WebSocket upgrade of a polling session refused; session keeps working", async () => {
    const { sid } = await pollingHandshake(tb);
    const ws = new WsClient(wsUrl(tb, { sid }));
    await ws.waitClosed(3000);
    assert.equal(ws.queue.length, 0);
    await postOk(tb, sid, "4still");
    assert.deepEqual(await pollUntil(tb, sid), ["4still"]);
  });
});

describe("engineio handshake, custom PING_INTERVAL / PING_TIMEOUT / MAX_PAYLOAD", () => {
  let tb;
  before(async () => {
    tb = await startTestbed("engineio", { PING_INTERVAL: "4000", PING_TIMEOUT: "3000", MAX_PAYLOAD: "12345" });
  });
  after(() => tb?.stop());

  test("open packet reflects the settings", async () => {
    const { open } = await pollingHandshake(tb);
    assert.equal(open.pingInterval, 4000);
    assert.equal(open.pingTimeout, 3000);
    assert.equal(open.maxPayload, 12345);
  });
});
