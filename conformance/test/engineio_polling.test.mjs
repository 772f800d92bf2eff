// Engine.IO v4: HTTP long-polling transport (notes 1.4, 1.5).

import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import zlib from "node:zlib";
import {
  startTestbed,
  request,
  eioUrl,
  eioTarget,
  pollingHandshake,
  pollGet,
  pollPost,
  postOk,
  pollUntil,
  assertError,
  assertSessionClosed,
  ERRORS,
  decodePayload,
  b64,
  sleep,
  rawExchange,
  httpHead,
  assertHealthy,
  SEP,
} from "./harness.mjs";

describe("engineio polling", () => {
  let tb;
  before(async () => {
    tb = await startTestbed("engineio");
  });
  after(() => tb?.stop());

  describe("payload framing", () => {
    test("one text packet: POST → ok, GET → the echo", async () => {
      const { sid } = await pollingHandshake(tb);
      const post = await pollPost(tb, sid, "4hello");
      assert.equal(post.status, 200);
      assert.equal(post.text, "ok");
      assert.deepEqual(await pollUntil(tb, sid), ["4hello"]);
    });

    test("several text packets joined by \\x1e come back in one payload", async () => {
      const { sid } = await pollingHandshake(tb);
      await postOk(tb, sid, ["4hello", "4€uro", "4world"].join(SEP));
      const res = await pollGet(tb, sid);
      assert.equal(res.status, 200);
      assert.equal(res.text, ["4hello", "4€uro", "4world"].join(SEP));
    });

    test("text and binary packets: binary is b+base64 without a type digit", async () => {
      const { sid } = await pollingHandshake(tb);
      await postOk(tb, sid, `4hello${SEP}bAQIDBA==`);
      const res = await pollGet(tb, sid);
      assert.equal(res.text, `4hello${SEP}bAQIDBA==`);
    });

    test("empty binary message and empty text message", async () => {
      const { sid } = await pollingHandshake(tb);
      await postOk(tb, sid, `b${SEP}4`);
      const res = await pollGet(tb, sid);
      assert.equal(res.text, `b${SEP}4`);
    });

    test("binary with all byte values round-trips", async () => {
      const { sid } = await pollingHandshake(tb);
      const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
      await postOk(tb, sid, b64(bytes));
      const [packet] = await pollUntil(tb, sid);
      assert.equal(packet, b64(bytes));
    });

    test("text with \\n, quotes and non-BMP characters round-trips", async () => {
      const { sid } = await pollingHandshake(tb);
      const msg = '4line1\nline2 "q" \\ 😀 \u2028';
      await postOk(tb, sid, msg);
      assert.deepEqual(await pollUntil(tb, sid), [msg]);
    });

    test("a GET with nothing queued is held until a packet is queued", async () => {
      const { sid } = await pollingHandshake(tb);
      const started = Date.now();
      const pending = pollGet(tb, sid);
      await sleep(100);
      await postOk(tb, sid, "4late");
      const res = await pending;
      assert.equal(res.status, 200);
      assert.ok(Date.now() - started >= 90);
      // the ping may have been queued meanwhile (PING_INTERVAL 300)
      assert.ok(decodePayload(res.text).includes("4late"), res.text);
    });

    test("packets queued before the GET are all flushed at once", async () => {
      const { sid } = await pollingHandshake(tb);
      await postOk(tb, sid, "4a");
      await postOk(tb, sid, "4b");
      await postOk(tb, sid, `4c${SEP}4d`);
      const res = await pollGet(tb, sid);
      assert.deepEqual(decodePayload(res.text), ["4a", "4b", "4c", "4d"]);
    });
  });

  describe("headers", () => {
    test("GET: text/plain; charset=UTF-8, Content-Length, cache-control no-store", async () => {
      const { sid } = await pollingHandshake(tb);
      await postOk(tb, sid, "4x");
      const res = await pollGet(tb, sid);
      assert.equal(res.headers.get("content-type"), "text/plain; charset=UTF-8");
      assert.equal(res.headers.get("content-length"), String(Buffer.byteLength(res.text)));
      assert.equal(res.headers.get("cache-control"), "no-store");
    });

    test("handshake GET carries the same headers", async () => {
      const res = await request(eioUrl(tb));
      assert.equal(res.headers.get("content-type"), "text/plain; charset=UTF-8");
      assert.equal(res.headers.get("cache-control"), "no-store");
    });

    test("POST: 200, text/html, Content-Length 2, body ok", async () => {
      const { sid } = await pollingHandshake(tb);
      const res = await pollPost(tb, sid, "4x");
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("content-type"), "text/html");
      assert.equal(res.headers.get("content-length"), "2");
      assert.equal(res.text, "ok");
    });

    test("POST with any content type except octet-stream is accepted", async () => {
      const { sid } = await pollingHandshake(tb);
      for (const ct of ["text/plain", "application/json", "application/x-www-form-urlencoded", "foo/bar"]) {
        const res = await pollPost(tb, sid, "4" + ct, { headers: { "content-type": ct } });
        assert.equal(res.status, 200, ct);
      }
      const packets = [];
      while (packets.length < 4) packets.push(...(await pollUntil(tb, sid)));
      assert.deepEqual(packets, ["4text/plain", "4application/json", "4application/x-www-form-urlencoded", "4foo/bar"]);
    });

    test("large payload is gzip-compressed when the client accepts it", async () => {
      const { sid } = await pollingHandshake(tb);
      const big = "4" + "a".repeat(2000);
      await postOk(tb, sid, big);
      const { headers, body } = await new Promise((resolve, reject) => {
        http
          .get(eioUrl(tb, { sid }), { headers: { "accept-encoding": "gzip" } }, (res) => {
            const parts = [];
            res.on("data", (d) => parts.push(d));
            res.on("end", () => resolve({ headers: res.headers, body: Buffer.concat(parts) }));
          })
          .on("error", reject);
      });
      assert.equal(headers["content-encoding"], "gzip");
      assert.equal(zlib.gunzipSync(body).toString(), big);
    });

    test("large payload is not compressed without Accept-Encoding", async () => {
      const { sid } = await pollingHandshake(tb);
      const big = "4" + "b".repeat(2000);
      await postOk(tb, sid, big);
      const res = await rawExchange(tb.port, httpHead("GET", eioTarget(tb, { sid }), { Connection: "close" }));
      assert.equal(res.status, 200);
      assert.ok(!/content-encoding/i.test(res.text.split("\r\n\r\n")[0]));
      assert.ok(res.text.endsWith(big));
    });
  });

  describe("session errors", () => {
    test("duplicate GET: pending GET gets 1, the second 400, session closed", async () => {
      const { sid } = await pollingHandshake(tb);
      const first = pollGet(tb, sid);
      await sleep(50);
      const second = await pollGet(tb, sid);
      // official suite: 400 (or 500) for the newcomer
      assert.equal(second.status, 400);
      const r1 = await first;
      assert.equal(r1.status, 200);
      assert.equal(r1.text, "1");
      await assertSessionClosed(tb, sid);
    });

    test("aborted GET closes the session", async () => {
      const { sid } = await pollingHandshake(tb);
      const ctl = new AbortController();
      const pending = pollGet(tb, sid, { signal: ctl.signal }).catch((e) => e);
      await sleep(50);
      ctl.abort();
      await pending;
      await sleep(50);
      await assertSessionClosed(tb, sid);
    });

    test("POST with Content-Type application/octet-stream → 400, session closed", async () => {
      const { sid } = await pollingHandshake(tb);
      const res = await pollPost(tb, sid, "4hello", { headers: { "content-type": "application/octet-stream" } });
      assert.equal(res.status, 400);
      await assertSessionClosed(tb, sid);
    });

    test("concurrent POST while one is in flight → 400, session closed", async () => {
      const { sid } = await pollingHandshake(tb);
      // first POST: headers and half of the body, then hold
      const head = httpHead("POST", eioTarget(tb, { sid }), {
        "Content-Type": "text/plain",
        "Content-Length": "10",
      });
      const slow = rawExchange(tb.port, [head + "4hel"], { timeout: 1500 });
      await sleep(100);
      const second = await pollPost(tb, sid, "4x");
      assert.equal(second.status, 400);
      await slow;
      await assertSessionClosed(tb, sid);
    });

    test("PUT with a valid sid → 500 (session kept)", async () => {
      const { sid } = await pollingHandshake(tb);
      const res = await request(eioUrl(tb, { sid }), { method: "PUT", body: "4x" });
      assert.equal(res.status, 500);
      await postOk(tb, sid, "4still");
      assert.deepEqual(await pollUntil(tb, sid), ["4still"]);
    });

    for (const [name, body] of [
      ["unknown packet type (abc)", "abc"],
      ["trailing \\x1e", `4hello${SEP}`],
      ["empty packet in the middle", `4a${SEP}${SEP}4b`],
      ["empty body", ""],
      ["unknown type digit (9hello)", "9hello"],
    ]) {
      test(`invalid payload: ${name} → session closed`, async () => {
        const { sid } = await pollingHandshake(tb);
        // Node answers this POST 200 ok (the official suite does not check the status)
        await pollPost(tb, sid, body);
        await assertSessionClosed(tb, sid);
      });
    }

    test("packets before an invalid one are still delivered", async () => {
      const { sid } = await pollingHandshake(tb);
      const pending = pollGet(tb, sid);
      await sleep(50);
      await pollPost(tb, sid, `4first${SEP}abc`);
      // the echo of 4first reaches the pending GET (Node: alone; a close packet may follow)
      const get = await pending;
      assert.equal(get.status, 200);
      assert.equal(decodePayload(get.text)[0], "4first");
      await assertSessionClosed(tb, sid);
    });

    test("client ping 2 over polling → session closed", async () => {
      const { sid } = await pollingHandshake(tb);
      // Node still answers this POST with 200 ok
      await pollPost(tb, sid, "2");
      await assertSessionClosed(tb, sid);
    });

    test("client close 1: pending GET gets noop 6, later requests 400", async () => {
      const { sid } = await pollingHandshake(tb);
      const pending = pollGet(tb, sid);
      await sleep(50);
      const post = await pollPost(tb, sid, "1");
      assert.equal(post.status, 200);
      const get = await pending;
      assert.equal(get.status, 200);
      assert.equal(get.text, "6");
      await assertSessionClosed(tb, sid);
      assertError(await pollPost(tb, sid, "4x"), 1, ERRORS[1]);
    });

    test("client close 1 without a pending GET: session closed", async () => {
      const { sid } = await pollingHandshake(tb);
      await pollPost(tb, sid, "1");
      await assertSessionClosed(tb, sid);
    });

    test("server still healthy", async () => {
      await assertHealthy(tb);
    });
  });
});

describe("engineio polling, MAX_PAYLOAD=1000", () => {
  let tb;
  before(async () => {
    tb = await startTestbed("engineio", { MAX_PAYLOAD: "1000" });
  });
  after(() => tb?.stop());

  test("open packet advertises maxPayload 1000", async () => {
    const { open } = await pollingHandshake(tb);
    assert.equal(open.maxPayload, 1000);
  });

  test("POST of exactly MAX_PAYLOAD bytes is accepted", async () => {
    const { sid } = await pollingHandshake(tb);
    const body = "4" + "x".repeat(999);
    await postOk(tb, sid, body);
    assert.deepEqual(await pollUntil(tb, sid), [body]);
  });

  test("POST larger than MAX_PAYLOAD → 413, session closed", async () => {
    const { sid } = await pollingHandshake(tb);
    const body = "4" + "x".repeat(1000);
    const head = httpHead("POST", eioTarget(tb, { sid }), {
      "Content-Type": "text/plain",
      "Content-Length": String(body.length),
    });
    const res = await rawExchange(tb.port, head + body);
    assert.equal(res.status, 413);
    await assertSessionClosed(tb, sid);
  });

  test("huge POST (announced 100 MB) → 413 without reading it all, session closed", async () => {
    const { sid } = await pollingHandshake(tb);
    const head = httpHead("POST", eioTarget(tb, { sid }), {
      "Content-Type": "text/plain",
      "Content-Length": String(100 * 1024 * 1024),
    });
    const res = await rawExchange(tb.port, [head, "4" + "x".repeat(5000)]);
    assert.equal(res.status, 413);
    await assertSessionClosed(tb, sid);
  });

  test("server still healthy", async () => {
    await assertHealthy(tb);
  });
});
