// Engine.IO v4: heartbeat, server → client pings (notes 1.8). PING_INTERVAL 300, PING_TIMEOUT 200.

import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import {
  startTestbed,
  pollingHandshake,
  pollGet,
  postOk,
  wsHandshake,
  assertSessionClosed,
  sleep,
  PING_INTERVAL,
  PING_TIMEOUT,
  assertHealthy,
} from "./harness.mjs";

// scheduling slack for timing assertions
const SLACK = 80;

describe("engineio heartbeat", () => {
  let tb;
  before(async () => {
    tb = await startTestbed("engineio");
  });
  after(() => tb?.stop());

  describe("HTTP long-polling", () => {
    test("sends ping/pong packets (3 rounds)", async () => {
      const { sid } = await pollingHandshake(tb);
      for (let i = 0; i < 3; i++) {
        const res = await pollGet(tb, sid);
        assert.equal(res.status, 200);
        assert.equal(res.text, "2");
        await postOk(tb, sid, "3");
      }
    });

    test("first ping comes about PING_INTERVAL after the handshake", async () => {
      const started = Date.now();
      const { sid } = await pollingHandshake(tb);
      const res = await pollGet(tb, sid);
      const elapsed = Date.now() - started;
      assert.equal(res.text, "2");
      assert.ok(elapsed >= PING_INTERVAL - SLACK, `ping after ${elapsed} ms`);
      assert.ok(elapsed <= PING_INTERVAL + 2 * SLACK + 100, `ping after ${elapsed} ms`);
      await postOk(tb, sid, "3");
    });

    test("closes the session upon ping timeout", async () => {
      const { sid } = await pollingHandshake(tb);
      await sleep(PING_INTERVAL + PING_TIMEOUT + 100);
      await assertSessionClosed(tb, sid);
    });

    test("closes the session if the ping is fetched but never answered", async () => {
      const { sid } = await pollingHandshake(tb);
      assert.equal((await pollGet(tb, sid)).text, "2");
      await sleep(PING_TIMEOUT + 100);
      await assertSessionClosed(tb, sid);
    });
  });

  describe("WebSocket", () => {
    test("sends ping/pong packets (3 rounds)", async () => {
      const { ws } = await wsHandshake(tb);
      for (let i = 0; i < 3; i++) {
        assert.deepEqual(await ws.next(1000), { data: "2", isBinary: false });
        ws.send("3");
      }
      ws.close();
    });

    test("closes the WebSocket upon ping timeout (server closes actively)", async () => {
      const { ws, sid } = await wsHandshake(tb);
      const started = Date.now();
      assert.deepEqual(await ws.next(1000), { data: "2", isBinary: false });
      await ws.waitClosed(PING_INTERVAL + PING_TIMEOUT + 1000);
      const elapsed = Date.now() - started;
      assert.ok(elapsed >= PING_INTERVAL + PING_TIMEOUT - SLACK, `closed after ${elapsed} ms`);
      await assertSessionClosed(tb, sid);
    });

    test("the next ping comes PING_INTERVAL after the pong, not on a fixed clock", async () => {
      const { ws } = await wsHandshake(tb);
      assert.deepEqual(await ws.next(1000), { data: "2", isBinary: false });
      const firstPing = Date.now();
      await sleep(150); // answer late, but within PING_TIMEOUT
      const pongAt = Date.now();
      ws.send("3");
      assert.deepEqual(await ws.next(1000), { data: "2", isBinary: false });
      const secondPing = Date.now();
      assert.ok(
        secondPing - pongAt >= PING_INTERVAL - SLACK,
        `second ping ${secondPing - pongAt} ms after the pong (${secondPing - firstPing} ms after the first ping)`,
      );
      ws.close();
    });

    test("a pong before any ping does not break the session", async () => {
      // Node ignores a pong while no ping is outstanding
      const { ws } = await wsHandshake(tb);
      ws.send("3");
      ws.send("4after-pong");
      assert.deepEqual(await ws.nextNonPing(), { data: "4after-pong", isBinary: false });
      ws.close();
    });

    test("messages alone do not keep the session alive", async () => {
      const { ws } = await wsHandshake(tb);
      const started = Date.now();
      const timer = setInterval(() => {
        if (!ws.isClosed) ws.send("4data");
      }, 50);
      try {
        await ws.waitClosed(PING_INTERVAL + 2 * PING_TIMEOUT + 1000);
      } finally {
        clearInterval(timer);
      }
      // engine.io ≥ 6.6.13 refreshes the ping timeout once on the first non-pong packet received
      // while waiting for the pong, so the close can come up to one PING_TIMEOUT later
      const elapsed = Date.now() - started;
      assert.ok(elapsed <= PING_INTERVAL + 2 * PING_TIMEOUT + 300, `closed after ${elapsed} ms`);
    });

    test("a pong queued behind a message is still accepted (ping timeout refreshed once)", async () => {
      // engine.io ≥ 6.6.13: the first non-pong packet while waiting for the pong restarts the
      // ping timeout once.
      const { ws } = await wsHandshake(tb);
      assert.deepEqual(await ws.next(1000), { data: "2", isBinary: false });
      await sleep(PING_TIMEOUT - 60);
      ws.send("4msg");
      await sleep(130); // now past the original deadline, within the refreshed one
      ws.send("3");
      assert.deepEqual(await ws.next(1000), { data: "4msg", isBinary: false });
      ws.send("4alive");
      assert.deepEqual(await ws.nextNonPing(), { data: "4alive", isBinary: false });
      ws.close();
    });
  });

  test("server still healthy", async () => {
    await assertHealthy(tb);
  });
});
