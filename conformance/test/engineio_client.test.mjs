// Engine.IO v4 with the official engine.io-client: polling-only, WebSocket-only, and upgrade.

import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Socket } from "engine.io-client";
import { startTestbed, assertSessionClosed, sleep } from "./harness.mjs";

const toBytes = (data) =>
  data instanceof ArrayBuffer ? [...new Uint8Array(data)] : [...new Uint8Array(data.buffer, data.byteOffset, data.byteLength)];

function connect(tb, opts) {
  const socket = new Socket(tb.url, { path: "/engine.io/", ...opts });
  const messages = [];
  const waiters = [];
  socket.on("message", (m) => {
    const w = waiters.shift();
    if (w) w(m);
    else messages.push(m);
  });
  const nextMessage = (timeout = 3000) =>
    messages.length
      ? Promise.resolve(messages.shift())
      : new Promise((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error("no message")), timeout);
          waiters.push((m) => {
            clearTimeout(timer);
            resolve(m);
          });
        });
  const opened = new Promise((resolve, reject) => {
    socket.once("open", resolve);
    socket.once("error", reject);
  });
  return { socket, nextMessage, opened };
}

async function echoRoundTrip(client) {
  client.socket.send("hello");
  assert.equal(await client.nextMessage(), "hello");
  client.socket.send("€ and 😀");
  assert.equal(await client.nextMessage(), "€ and 😀");
  client.socket.send(Uint8Array.from([1, 2, 3, 4]));
  const bin = await client.nextMessage();
  assert.notEqual(typeof bin, "string", "binary must come back as binary");
  assert.deepEqual(toBytes(bin), [1, 2, 3, 4]);
}

describe("engineio official client", () => {
  let tb;
  before(async () => {
    tb = await startTestbed("engineio");
  });
  after(() => tb?.stop());

  test("polling only: connects and echoes text and binary", async () => {
    const c = connect(tb, { transports: ["polling"] });
    await c.opened;
    assert.equal(c.socket.transport.name, "polling");
    await echoRoundTrip(c);
    // still alive after a few heartbeats (PING_INTERVAL 300)
    await new Promise((r) => setTimeout(r, 800));
    assert.equal(c.socket.readyState, "open");
    await echoRoundTrip(c);
    c.socket.close();
  });

  test("WebSocket only: connects and echoes text and binary", async () => {
    const c = connect(tb, { transports: ["websocket"] });
    await c.opened;
    assert.equal(c.socket.transport.name, "websocket");
    await echoRoundTrip(c);
    await new Promise((r) => setTimeout(r, 800));
    assert.equal(c.socket.readyState, "open");
    await echoRoundTrip(c);
    c.socket.close();
  });

  test("polling then upgrade to WebSocket; echoes before and after", async () => {
    const c = connect(tb, {});
    await c.opened;
    const upgraded = new Promise((resolve) => c.socket.once("upgrade", resolve));
    assert.equal(c.socket.transport.name, "polling");
    c.socket.send("before");
    assert.equal(await c.nextMessage(), "before");
    await upgraded;
    assert.equal(c.socket.transport.name, "websocket");
    await echoRoundTrip(c);
    c.socket.close();
  });

  test("many messages in both directions keep their order", async () => {
    const c = connect(tb, { transports: ["polling"] });
    await c.opened;
    for (let i = 0; i < 50; i++) c.socket.send(`m${i}`);
    for (let i = 0; i < 50; i++) assert.equal(await c.nextMessage(), `m${i}`);
    c.socket.close();
  });

  for (const transport of ["polling", "websocket"]) {
    test(`client close over ${transport} ends the session on the server`, async () => {
      const c = connect(tb, { transports: [transport] });
      await c.opened;
      const sid = c.socket.id;
      c.socket.close();
      await sleep(100);
      await assertSessionClosed(tb, sid);
    });
  }
});
