// Engine.IO v4: CORS (notes 1.10; CVE-2020-28481: no CORS headers unless configured).

import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import {
  startTestbed,
  request,
  eioUrl,
  pollingHandshake,
  pollPost,
  assertError,
  ERRORS,
  wsHandshake,
  assertHealthy,
} from "./harness.mjs";

const ORIGIN = "http://example.com";

describe("engineio CORS off (default)", () => {
  let tb;
  before(async () => {
    tb = await startTestbed("engineio");
  });
  after(() => tb?.stop());

  test("handshake GET with an Origin: no Access-Control-* headers", async () => {
    const res = await request(eioUrl(tb), { headers: { origin: "http://evil.example" } });
    assert.equal(res.status, 200);
    for (const [name] of res.headers) assert.ok(!name.startsWith("access-control-"), name);
  });

  test("POST with an Origin: no Access-Control-* headers", async () => {
    const { sid } = await pollingHandshake(tb);
    const res = await pollPost(tb, sid, "4x", { headers: { origin: "http://evil.example" } });
    assert.equal(res.status, 200);
    for (const [name] of res.headers) assert.ok(!name.startsWith("access-control-"), name);
  });

  test("error response with an Origin: no Access-Control-* headers", async () => {
    const res = await request(eioUrl(tb, { transport: "abc" }), { headers: { origin: "http://evil.example" } });
    assert.equal(res.status, 400);
    assert.equal(res.headers.get("access-control-allow-origin"), null);
  });

  test("preflight OPTIONS → 400 code 2 (no CORS middleware)", async () => {
    const res = await request(eioUrl(tb), {
      method: "OPTIONS",
      headers: { origin: "http://evil.example", "access-control-request-method": "POST" },
    });
    assertError(res, 2, ERRORS[2]);
    assert.equal(res.headers.get("access-control-allow-origin"), null);
  });
});

describe("engineio CORS_ORIGIN set", () => {
  let tb;
  before(async () => {
    tb = await startTestbed("engineio", { CORS_ORIGIN: ORIGIN });
  });
  after(() => tb?.stop());

  test("handshake GET: Access-Control-Allow-Origin and Vary: Origin", async () => {
    const res = await request(eioUrl(tb), { headers: { origin: ORIGIN } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("access-control-allow-origin"), ORIGIN);
    assert.match(res.headers.get("vary") ?? "", /Origin/);
  });

  test("POST and GET on a session carry the CORS headers", async () => {
    const { sid } = await pollingHandshake(tb);
    const post = await pollPost(tb, sid, "4x", { headers: { origin: ORIGIN } });
    assert.equal(post.status, 200);
    assert.equal(post.headers.get("access-control-allow-origin"), ORIGIN);
    const get = await request(eioUrl(tb, { sid }), { headers: { origin: ORIGIN } });
    assert.equal(get.status, 200);
    assert.equal(get.headers.get("access-control-allow-origin"), ORIGIN);
  });

  test("error responses carry the CORS headers", async () => {
    const res = await request(eioUrl(tb, { transport: "abc" }), { headers: { origin: ORIGIN } });
    assertError(res, 0, ERRORS[0]);
    assert.equal(res.headers.get("access-control-allow-origin"), ORIGIN);
  });

  test("fixed origin: the configured origin is sent whatever the request's Origin", async () => {
    // `cors` npm semantics with a string origin: the header always names the configured origin
    const res = await request(eioUrl(tb), { headers: { origin: "http://other.example" } });
    assert.equal(res.headers.get("access-control-allow-origin"), ORIGIN);
  });

  test("preflight OPTIONS → 204 with allowed methods and reflected headers", async () => {
    const res = await request(eioUrl(tb), {
      method: "OPTIONS",
      headers: {
        origin: ORIGIN,
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type,x-custom",
      },
    });
    assert.equal(res.status, 204);
    assert.equal(res.headers.get("access-control-allow-origin"), ORIGIN);
    assert.equal(res.headers.get("access-control-allow-methods"), "GET,HEAD,PUT,PATCH,POST,DELETE");
    assert.equal(res.headers.get("access-control-allow-headers"), "content-type,x-custom");
  });

  test("preflight OPTIONS on an existing session → 204", async () => {
    const { sid } = await pollingHandshake(tb);
    const res = await request(eioUrl(tb, { sid }), {
      method: "OPTIONS",
      headers: { origin: ORIGIN, "access-control-request-method": "POST" },
    });
    assert.equal(res.status, 204);
    assert.equal(res.headers.get("access-control-allow-origin"), ORIGIN);
  });

  test("WebSocket upgrades are not subject to CORS", async () => {
    const { ws } = await wsHandshake(tb);
    ws.close();
  });

  test("server still healthy", async () => {
    await assertHealthy(tb);
  });
});

describe("engineio CORS_ORIGIN=*", () => {
  let tb;
  before(async () => {
    tb = await startTestbed("engineio", { CORS_ORIGIN: "*" });
  });
  after(() => tb?.stop());

  test("Access-Control-Allow-Origin: *", async () => {
    const res = await request(eioUrl(tb), { headers: { origin: ORIGIN } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("access-control-allow-origin"), "*");
  });

  test("preflight OPTIONS → 204 with Access-Control-Allow-Origin: *", async () => {
    const res = await request(eioUrl(tb), {
      method: "OPTIONS",
      headers: { origin: ORIGIN, "access-control-request-method": "POST" },
    });
    assert.equal(res.status, 204);
    assert.equal(res.headers.get("access-control-allow-origin"), "*");
  });
});
