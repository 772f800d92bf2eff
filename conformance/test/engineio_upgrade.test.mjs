// Engine.IO v4: upgrade from HTTP long-polling to WebSocket (notes 1.7).

import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import {
  startTestbed,
  pollingHandshake,
  pollGet,
  pollPost,
  postOk,
  pollUntil,
  WsClient,
  wsUrl,
  assertError,
  assertSessionClosed,
  ERRORS,
  decodePayload,
  sleep,
  assertHealthy,
} from "./harness.mjs";

/** Open the upgrade WebSocket for `sid` and do the probe exchange. */
async function probe(tb, sid) {
  const ws = new WsClient(wsUrl(tb, { sid }));
  await ws.opened;
  ws.send("2probe");
  assert.deepEqual(await ws.next(), { data: "3probe", isBinary: false });
  return ws;
}

/** Full upgrade; returns the WebSocket that now carries the session. */
async function upgrade(tb, sid) {
  const ws = await probe(tb, sid);
  // a GET issued after the probe is answered with a noop (possibly after a ping)
  const packets = await pollUntil(tb, sid, (p) => p.includes("6"));
  assert.ok(packets.includes("6"));
  ws.send("5");
  return ws;
}

describe("engineio upgrade", () => {
  let tb;
  before(async () => {
    tb = await startTestbed("engineio");
  });
  after(() => tb?.stop());

  test("2probe → 3probe, GET issued after the probe gets 6, 5, then messages over WebSocket", async () => {
    const { sid } = await pollingHandshake(tb);
    const ws = await probe(tb, sid);
    const get = await pollGet(tb, sid);
    assert.equal(get.status, 200);
    // Node answers with the noop after up to ~100 ms (a ping could come first at 300 ms)
    assert.ok(decodePayload(get.text).includes("6"), get.text);
    ws.send("5");
    ws.send("4hello");
    assert.deepEqual(await ws.nextNonPing(), { data: "4hello", isBinary: false });
    ws.send(Buffer.from([1, 2, 3]));
    const bin = await ws.nextNonPing();
    assert.equal(bin.isBinary, true);
    assert.deepEqual([...bin.data], [1, 2, 3]);
    ws.close();
  });

  test("the probe frames are text frames, the noop comes quickly", async () => {
    const { sid } = await pollingHandshake(tb);
    const ws = await probe(tb, sid);
    const started = Date.now();
    const get = await pollGet(tb, sid);
    assert.equal(get.text, "6");
    assert.ok(Date.now() - started < 290, "noop before the next ping");
    ws.close();
  });

  test("a GET pending at probe time is completed with 6", async () => {
    const { sid } = await pollingHandshake(tb);
    const pending = pollGet(tb, sid);
    await sleep(30);
    const ws = await probe(tb, sid);
    const get = await pending;
    assert.equal(get.status, 200);
    assert.equal(get.text, "6");
    ws.send("5");
    ws.send("4after");
    assert.deepEqual(await ws.nextNonPing(), { data: "4after", isBinary: false });
    ws.close();
  });

  test("packets queued during the upgrade are flushed on the WebSocket after 5", async () => {
    const { sid } = await pollingHandshake(tb);
    const ws = await probe(tb, sid);
    assert.equal((await pollGet(tb, sid)).text, "6");
    // POSTs are still processed during the upgrade; the echo is queued (no GET pending)
    await postOk(tb, sid, `4queued1\x1e4queued2`);
    ws.send("5");
    assert.deepEqual(await ws.nextNonPing(), { data: "4queued1", isBinary: false });
    assert.deepEqual(await ws.nextNonPing(), { data: "4queued2", isBinary: false });
    ws.close();
  });

  test("after the upgrade, polling GET and POST get 400 code 3; WebSocket still echoes", async () => {
    const { sid } = await pollingHandshake(tb);
    const ws = await upgrade(tb, sid);
    await sleep(50);
    assertError(await pollGet(tb, sid), 3, ERRORS[3]);
    assertError(await pollPost(tb, sid, "4x"), 3, ERRORS[3]);
    ws.send("4still");
    assert.deepEqual(await ws.nextNonPing(), { data: "4still", isBinary: false });
    ws.close();
  });

  test("after the upgrade, a second WebSocket with the same sid is closed; the first still echoes", async () => {
    const { sid } = await pollingHandshake(tb);
    const ws = await upgrade(tb, sid);
    await sleep(50);
    const second = new WsClient(wsUrl(tb, { sid }));
    await second.waitClosed();
    assert.equal(second.queue.length, 0);
    ws.send("4first");
    assert.deepEqual(await ws.nextNonPing(), { data: "4first", isBinary: false });
    ws.close();
  });

  test("during an upgrade, a second WebSocket with the same sid is closed", async () => {
    const { sid } = await pollingHandshake(tb);
    const ws = await probe(tb, sid);
    const second = new WsClient(wsUrl(tb, { sid }));
    await second.waitClosed();
    // the first upgrade still completes
    assert.equal((await pollGet(tb, sid)).text, "6");
    ws.send("5");
    ws.send("4ok");
    assert.deepEqual(await ws.nextNonPing(), { data: "4ok", isBinary: false });
    ws.close();
  });

  test("a packet other than 5 on the probing WebSocket cancels the upgrade; polling continues", async () => {
    const { sid } = await pollingHandshake(tb);
    const ws = await probe(tb, sid);
    assert.equal((await pollGet(tb, sid)).text, "6");
    ws.send("4nope");
    await ws.waitClosed();
    // the session stays on polling
    await postOk(tb, sid, "4polling");
    assert.deepEqual(await pollUntil(tb, sid), ["4polling"]);
    // and can upgrade again
    const ws2 = await upgrade(tb, sid);
    ws2.send("4again");
    assert.deepEqual(await ws2.nextNonPing(), { data: "4again", isBinary: false });
    ws2.close();
  });

  test("closing the probing WebSocket keeps the polling session", async () => {
    const { sid } = await pollingHandshake(tb);
    const ws = await probe(tb, sid);
    ws.ws.close(1000);
    await ws.waitClosed();
    await postOk(tb, sid, "4alive");
    assert.deepEqual(await pollUntil(tb, sid), ["4alive"]);
  });

  test("heartbeat runs over the WebSocket after the upgrade", async () => {
    const { sid } = await pollingHandshake(tb);
    const ws = await upgrade(tb, sid);
    for (let i = 0; i < 2; i++) {
      assert.deepEqual(await ws.next(1000), { data: "2", isBinary: false });
      ws.send("3");
    }
    ws.close();
  });

  test("closing the upgraded WebSocket ends the session", async () => {
    const { sid } = await pollingHandshake(tb);
    const ws = await upgrade(tb, sid);
    ws.ws.close(1000);
    await ws.waitClosed();
    await sleep(50);
    await assertSessionClosed(tb, sid);
  });

  test("server still healthy", async () => {
    await assertHealthy(tb);
  });
});
