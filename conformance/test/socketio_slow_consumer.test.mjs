// A slow consumer: a client that completes the handshake and then stops reading (its TCP socket
// paused, so the server's writes back up) while broadcasts to its namespace continue.
//
// What a user of the server cares about, checked from outside only (no assumption about how the
// writer is built):
// - volatile broadcasts to it are dropped, not queued: it stays connected, and when it reads
//   again it gets the next regular packet, having missed most of the volatile ones;
// - regular broadcasts are never dropped in silence: it is disconnected (its socket leaves
//   `fetchSockets`, its connection is closed), but only after the configured outbound limit
//   (engineio `max_buffered_bytes`, 16 MiB by default) has been sent its way;
// - the other clients keep receiving every broadcast, in order, with low latency;
// - the server's memory stays bounded while the slow client's backlog would grow without end.
//
// The Node reference testbed has no outbound byte limit (engine.io keeps a writeBuffer without
// bound), so the disconnect and memory assertions are skipped for TESTBED=node.

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync, readlinkSync } from "node:fs";
import {
  TESTBED,
  startTestbed,
  sioConnect,
  sioRawWs,
  parseConnectReply,
  op,
  closeSioClients,
  assertSioHealthy,
  sleep,
} from "./harness.mjs";

const MiB = 1024 * 1024;
/** engineio's default `max_buffered_bytes`. */
const OUTBOUND_LIMIT = 16 * MiB;
/** One broadcast: a binary attachment of this size (well under MAX_PAYLOAD, 1 MB). */
const CHUNK = 256 * 1024;
/** Volatile broadcasts sent while the slow client does not read: 40 MiB, far past the limit. */
const VOLATILE = 160;
/** Regular broadcasts at most: 64 MiB, four times the limit. */
const REGULAR_MAX = 256;
/** Node keeps everything: send it less (the assertions that need more are skipped). */
const REGULAR_NODE = 64;
/** Generous on a shared 2-core machine; a fast client blocked behind the slow one waits seconds. */
const MAX_LATENCY_MS = 1500;
/**
 * RSS the server may gain while flooding: the limit for the slow client (16 MiB), what is in
 * flight to the fast ones, and allocator slack. Without a bound it would gain the ~60 MiB sent.
 */
const MAX_RSS_GROWTH = 32 * MiB;

after(closeSioClients);

/** The pid of the process listening on 127.0.0.1:`port` (from /proc: the harness keeps it). */
function pidListeningOn(port) {
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
  const inodes = new Set();
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let lines = [];
    try {
      lines = readFileSync(file, "utf8").split("\n").slice(1);
    } catch {
      continue;
    }
    for (const line of lines) {
      const f = line.trim().split(/\s+/);
      // f[1] local address, f[3] state (0A = LISTEN), f[9] inode
      if (f.length > 9 && f[1].endsWith(`:${hexPort}`) && f[3] === "0A") inodes.add(`socket:[${f[9]}]`);
    }
  }
  for (const pid of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    try {
      for (const fd of readdirSync(`/proc/${pid}/fd`)) {
        if (inodes.has(readlinkSync(`/proc/${pid}/fd/${fd}`))) return pid;
      }
    } catch {
      // not ours, or gone
    }
  }
  return null;
}

/** VmRSS of `pid` in bytes. */
function rss(pid) {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return Number(m[1]) * 1024;
}

/** A fast client: records every `bcast` with its arrival time. */
async function fastClient(tb) {
  const socket = await sioConnect(tb, "/", { transports: ["websocket"] });
  const got = [];
  socket.on("bcast", (meta) => got.push({ ...meta, at: Date.now() }));
  return { socket, got };
}

async function socketIds(publisher) {
  const { sockets } = await op(publisher, { op: "fetchSockets" });
  return sockets.map((s) => s.id);
}

/** Count the slow client's frames until a `bcast` whose meta has `kind` `mark` (text frames). */
async function readUntilMark(ws, mark, timeout = 10000) {
  const deadline = Date.now() + timeout;
  const kinds = {};
  for (;;) {
    const m = await ws.next(Math.max(1, deadline - Date.now()));
    if (m.isBinary) continue;
    if (m.data === "2") {
      ws.send("3");
      continue;
    }
    const k = /"kind":"([^"]*)"/.exec(m.data)?.[1];
    if (k) kinds[k] = (kinds[k] ?? 0) + 1;
    if (k === mark) return kinds;
  }
}

test("a client that stops reading is cut after the outbound limit; others are unaffected", { timeout: 60000 }, async () => {
  const tb = await startTestbed("app");
  try {
    const pid = pidListeningOn(tb.port);
    assert.ok(pid, "testbed process not found from its port");

    const fast = [await fastClient(tb), await fastClient(tb)];
    const publisher = fast[0].socket;
    const slow = await sioRawWs(tb);
    const slowId = parseConnectReply(slow.reply).data.sid;
    // Stop reading: the kernel buffers fill, then the server's writes to it stall.
    const tcp = slow.ws.ws._socket;
    tcp.pause();

    const chunk = Buffer.alloc(CHUNK, 0x61);
    const emit = (meta, volatile = false) =>
      op(publisher, { op: "emit", event: "bcast", args: [meta, chunk], volatile });
    const baseline = rss(pid);
    let peak = baseline;
    const sample = () => (peak = Math.max(peak, rss(pid)));

    // 1. Volatile: dropped for the client that does not read, so it is never cut for them.
    for (let i = 0; i < VOLATILE; i++) {
      await emit({ kind: "v", seq: i }, true);
      sample();
    }
    await op(publisher, { op: "emit", event: "bcast", args: [{ kind: "mark1" }] });
    assert.ok((await socketIds(publisher)).includes(slowId), "slow client cut for volatile packets");
    tcp.resume();
    const seen = await readUntilMark(slow.ws, "mark1");
    const volatileSeen = seen.v ?? 0;
    assert.ok(
      volatileSeen < VOLATILE / 2,
      `the slow client got ${volatileSeen} of ${VOLATILE} volatile packets: they were queued, not dropped`,
    );
    const volatileGrowth = peak - baseline;

    // 2. Regular broadcasts: never dropped, so the slow client is cut once the limit is reached.
    tcp.pause();
    const before = Date.now();
    const regularMax = TESTBED === "node" ? REGULAR_NODE : REGULAR_MAX;
    let sent = 0;
    let cutAfter = null;
    while (sent < regularMax) {
      await emit({ kind: "n", seq: sent, t: Date.now() });
      sent++;
      sample();
      // Checked after every emit, so `cutAfter` is exact to one broadcast.
      if (!(await socketIds(publisher)).includes(slowId)) {
        cutAfter = sent * CHUNK;
        break;
      }
    }
    await op(publisher, { op: "emit", event: "bcast", args: [{ kind: "end" }] });
    const floodMs = Date.now() - before;

    // Every fast client got every regular broadcast, in order, promptly.
    for (const [i, f] of fast.entries()) {
      const deadline = Date.now() + 10000;
      while (!f.got.some((m) => m.kind === "end") && Date.now() < deadline) await sleep(20);
      assert.ok(f.got.some((m) => m.kind === "end"), `fast client ${i} did not get the last broadcast`);
      const regular = f.got.filter((m) => m.kind === "n");
      assert.deepEqual(
        regular.map((m) => m.seq),
        [...Array(sent).keys()],
        `fast client ${i} missed or reordered regular broadcasts`,
      );
      const worst = Math.max(...regular.map((m) => m.at - m.t));
      assert.ok(worst < MAX_LATENCY_MS, `fast client ${i}: a broadcast took ${worst} ms (flood of ${floodMs} ms)`);
    }
    assert.ok(fast.every((f) => f.socket.connected), "a fast client was disconnected");

    const growth = peak - baseline;
    console.log(
      `slow consumer (${TESTBED}): volatile seen ${volatileSeen}/${VOLATILE}; regular sent ${sent} ` +
        `(${((sent * CHUNK) / MiB).toFixed(0)} MiB) in ${floodMs} ms; cut after ` +
        `${cutAfter === null ? "-" : (cutAfter / MiB).toFixed(1) + " MiB"}; RSS baseline ` +
        `${(baseline / MiB).toFixed(1)} MiB, +${(volatileGrowth / MiB).toFixed(1)} MiB (volatile), ` +
        `+${(growth / MiB).toFixed(1)} MiB peak`,
    );

    if (TESTBED === "node") {
      // Node: no outbound byte limit, the slow client is never cut and its backlog sits in memory.
      return;
    }
    assert.ok(cutAfter !== null, `the slow client was not cut after ${(sent * CHUNK) / MiB} MiB`);
    assert.ok(
      cutAfter >= OUTBOUND_LIMIT,
      `the slow client was cut after ${cutAfter / MiB} MiB, before the ${OUTBOUND_LIMIT / MiB} MiB limit`,
    );
    assert.ok(growth < MAX_RSS_GROWTH, `server RSS grew by ${(growth / MiB).toFixed(1)} MiB`);
    // Its connection is closed: reading again, it gets what was in flight, then the close.
    tcp.resume();
    await slow.ws.waitClosed(10000);
    await sleep(100);
    await assertSioHealthy(tb);
  } finally {
    closeSioClients();
    await tb.stop();
  }
});
