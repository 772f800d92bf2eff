// Engine.IO v4: WebSocket transport (notes 1.4, 1.6).

import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import {
  startTestbed,
  wsHandshake,
  rawExchange,
  httpHead,
  eioTarget,
  upgradeHeaders,
  wsFrame,
  assertSessionClosed,
  assertHealthy,
  sleep,
} from "./harness.mjs";

describe("engineio websocket", () => {
  let tb;
  before(async () => {
    tb = await startTestbed("engineio");
  });
  after(() => tb?.stop());

  test("text packet is echoed as a text frame", async () => {
    const { ws } = await wsHandshake(tb);
    ws.send("4hello");
    assert.deepEqual(await ws.nextNonPing(), { data: "4hello", isBinary: false });
    ws.close();
  });

  test("binary frame (no type byte) is echoed as a binary frame with the same bytes", async () => {
    const { ws } = await wsHandshake(tb);
    ws.send(Buffer.from([1, 2, 3, 4]));
    const m = await ws.nextNonPing();
    assert.equal(m.isBinary, true);
    assert.deepEqual([...m.data], [1, 2, 3, 4]);
    ws.close();
  });

  test("binary frame starting with a digit byte is still a binary message", async () => {
    const { ws } = await wsHandshake(tb);
    const bytes = Buffer.from("4hello");
    ws.send(bytes);
    const m = await ws.nextNonPing();
    assert.equal(m.isBinary, true);
    assert.equal(Buffer.compare(m.data, bytes), 0);
    ws.close();
  });

  test("empty binary frame and empty text message are echoed", async () => {
    const { ws } = await wsHandshake(tb);
    ws.send(Buffer.alloc(0));
    const m1 = await ws.nextNonPing();
    assert.equal(m1.isBinary, true);
    assert.equal(m1.data.length, 0);
    ws.send("4");
    assert.deepEqual(await ws.nextNonPing(), { data: "4", isBinary: false });
    ws.close();
  });

  test("every packet is its own frame (no batching)", async () => {
    const { ws } = await wsHandshake(tb);
    for (const m of ["4a", "4b", "4c"]) ws.send(m);
    ws.send(Buffer.from([9]));
    const got = [];
    for (let i = 0; i < 4; i++) got.push(await ws.nextNonPing());
    assert.deepEqual(got.slice(0, 3), [
      { data: "4a", isBinary: false },
      { data: "4b", isBinary: false },
      { data: "4c", isBinary: false },
    ]);
    assert.equal(got[3].isBinary, true);
    assert.deepEqual([...got[3].data], [9]);
    ws.close();
  });

  test("text frame b+base64 is a binary message (echoed as a binary frame)", async () => {
    const { ws } = await wsHandshake(tb);
    ws.send("bAQIDBA==");
    const m = await ws.nextNonPing();
    assert.equal(m.isBinary, true);
    assert.deepEqual([...m.data], [1, 2, 3, 4]);
    ws.close();
  });

  test("b64=1: binary messages are sent as b+base64 text frames", async () => {
    const { ws } = await wsHandshake(tb, { b64: "1" });
    ws.send(Buffer.from([1, 2, 3, 4]));
    assert.deepEqual(await ws.nextNonPing(), { data: "bAQIDBA==", isBinary: false });
    ws.close();
  });

  test("large message (500 kB) under MAX_PAYLOAD is echoed", async () => {
    const { ws } = await wsHandshake(tb);
    const big = "4" + "z".repeat(500000);
    ws.send(big);
    const m = await ws.nextNonPing(5000);
    assert.equal(m.data, big);
    ws.close();
  });

  test("fragmented message is reassembled", async () => {
    const { ws } = await wsHandshake(tb);
    const sock = ws.ws._socket;
    sock.write(wsFrame(0x1, "4fr", { fin: false }));
    sock.write(wsFrame(0x0, "ag", { fin: false }));
    sock.write(wsFrame(0x0, "ment", { fin: true }));
    assert.deepEqual(await ws.nextNonPing(), { data: "4fragment", isBinary: false });
    ws.close();
  });

  test("invalid packet (abc) → server closes the WebSocket and the session", async () => {
    const { ws, sid } = await wsHandshake(tb);
    ws.send("abc");
    await ws.waitClosed();
    await assertSessionClosed(tb, sid);
  });

  test("empty text frame → closed", async () => {
    const { ws } = await wsHandshake(tb);
    ws.send("");
    await ws.waitClosed();
  });

  test("client ping 2 → closed", async () => {
    const { ws, sid } = await wsHandshake(tb);
    ws.send("2");
    await ws.waitClosed();
    await assertSessionClosed(tb, sid);
  });

  test("2probe on a WebSocket-only session → closed", async () => {
    const { ws } = await wsHandshake(tb);
    ws.send("2probe");
    await ws.waitClosed();
  });

  test("client close 1 → WebSocket closed", async () => {
    // Node ignores a `1` received over WebSocket: the session ends by ping timeout
    // (PING_INTERVAL + PING_TIMEOUT = 500 ms). Closing at once is fine too.
    const { ws } = await wsHandshake(tb);
    ws.send("1");
    await ws.waitClosed(2000);
  });

  test("client closing the WebSocket ends the session", async () => {
    const { ws, sid } = await wsHandshake(tb);
    ws.ws.close(1000);
    await ws.waitClosed();
    await sleep(50);
    await assertSessionClosed(tb, sid);
  });

  test("invalid UTF-8 in a text frame → close 1007", async () => {
    const { ws } = await wsHandshake(tb);
    ws.ws._socket.write(wsFrame(0x1, Buffer.from([0x34, 0xff, 0xfe, 0x80])));
    const { code } = await ws.waitClosed();
    assert.equal(code, 1007);
  });

  test("invalid UTF-8: the server's close frame carries 1007", async () => {
    // raw socket: read the server's close frame ourselves
    const key = "dGhlIHNhbXBsZSBub25jZQ==";
    const head = httpHead("GET", eioTarget(tb, { transport: "websocket" }), upgradeHeaders({ "Sec-WebSocket-Key": key }));
    const res = await rawExchange(tb.port, [head, wsFrame(0x1, Buffer.from([0x34, 0xc3, 0x28]))], {
      delayBetween: 100,
    });
    assert.equal(res.status, 101);
    const code = closeCodeOf(res.data);
    assert.equal(code, 1007);
  });

  test("server still healthy", async () => {
    await assertHealthy(tb);
  });
});

describe("engineio websocket, MAX_PAYLOAD=1000", () => {
  let tb;
  before(async () => {
    tb = await startTestbed("engineio", { MAX_PAYLOAD: "1000" });
  });
  after(() => tb?.stop());

  test("message of exactly MAX_PAYLOAD bytes is echoed", async () => {
    const { ws } = await wsHandshake(tb);
    const msg = "4" + "x".repeat(999);
    ws.send(msg);
    assert.deepEqual(await ws.nextNonPing(), { data: msg, isBinary: false });
    ws.close();
  });

  test("text message over MAX_PAYLOAD → close 1009, session closed", async () => {
    const { ws, sid } = await wsHandshake(tb);
    ws.send("4" + "x".repeat(1000));
    const { code } = await ws.waitClosed();
    assert.equal(code, 1009);
    await assertSessionClosed(tb, sid);
  });

  test("binary message over MAX_PAYLOAD → close 1009", async () => {
    const { ws } = await wsHandshake(tb);
    ws.send(Buffer.alloc(1001, 7));
    const { code } = await ws.waitClosed();
    assert.equal(code, 1009);
  });

  test("fragmented message over MAX_PAYLOAD in total → close 1009", async () => {
    const { ws } = await wsHandshake(tb);
    const sock = ws.ws._socket;
    sock.write(wsFrame(0x1, "4" + "a".repeat(599), { fin: false }));
    sock.write(wsFrame(0x0, "b".repeat(600), { fin: true }));
    const { code } = await ws.waitClosed();
    assert.equal(code, 1009);
  });

  test("server still healthy", async () => {
    await assertHealthy(tb);
  });
});

/** Close code of the first close frame (opcode 8) sent by the server after the 101 response. */
function closeCodeOf(data) {
  let i = data.indexOf("\r\n\r\n");
  if (i < 0) return undefined;
  i += 4;
  while (i + 2 <= data.length) {
    const opcode = data[i] & 0x0f;
    let len = data[i + 1] & 0x7f;
    let off = i + 2;
    if (len === 126) {
      len = data.readUInt16BE(off);
      off += 2;
    } else if (len === 127) {
      len = Number(data.readBigUInt64BE(off));
      off += 8;
    }
    if (opcode === 8) return len >= 2 ? data.readUInt16BE(off) : 1005;
    i = off + len;
  }
  return undefined;
}
