// Connection state recovery (notes 2.10) with RECOVERY_MS: pid in the CONNECT reply, offsets on
// emitted events, recovery after a forced transport close with the official client and on raw
// frames, and the cases where no recovery may happen.

import { describe, test, before, after, afterEach } from "node:test";
import assert from "node:assert/strict";
import {
  startTestbed,
  sioRawWs,
  sioRawConnect,
  parseConnectReply,
  assertSioHealthy,
  closeSioClients,
  sioConnect,
  sioClient,
  connected,
  ack,
  op,
  once,
  sleep,
  placeholder,
} from "./harness.mjs";

const RECOVERY_MS = 1000;

async function until(cond, timeout = 3000, what = "condition") {
  const deadline = Date.now() + timeout;
  while (!(await cond())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${typeof what === "function" ? what() : what}`);
    await sleep(10);
  }
}

/** Collect the arguments of every `event` (with CSR the offset is the last one). */
function collect(socket, event = "bcast") {
  const got = [];
  socket.on(event, (...args) => got.push(args));
  return got;
}

/** Close the client's transport abruptly (WebSocket terminated / polling engine closed). */
function killTransport(socket) {
  const t = socket.io.engine.transport;
  if (t.name === "websocket" && t.ws?.terminate) t.ws.terminate();
  else socket.io.engine.close();
}

for (const parser of ["json", "msgpack"]) {
  describe(`socketio connection state recovery with the official client (${parser})`, () => {
    let tb;
    before(async () => {
      tb = await startTestbed("app", { RECOVERY_MS: String(RECOVERY_MS), ...(parser === "msgpack" ? { PARSER: "msgpack" } : {}) });
    });
    after(() => tb?.stop());
    afterEach(() => closeSioClients());

    /** Wait until the server no longer lists `id` in the namespace. */
    const gone = (watcher, id) =>
      until(async () => !(await op(watcher, { op: "fetchSockets" })).sockets.some((s) => s.id === id), 3000, `${id} to leave`);

    for (const transport of ["websocket", "polling"]) {
      test(`${transport}: forced transport close → recovered, same id, missed events in order, rooms and data`, async () => {
        const auth = { rooms: ["csr"], user: "ana" };
        const a = await sioConnect(tb, "/chat", { transports: [transport], auth });
        const b = await sioConnect(tb, "/chat", { transports: ["websocket"] });
        await ack(a, "join", "extra");
        const got = collect(a);
        await ack(b, "to", "csr", "before");
        await until(() => got.length === 1, 3000, "first event");
        // the client sees the offset as an extra string argument
        assert.equal(got[0][0], "before");
        assert.equal(got[0].length, 2);
        assert.equal(typeof got[0][1], "string");
        const id = a.id;
        const before = (await op(b, { op: "fetchSockets", rooms: [id] })).sockets;
        a.io.reconnection(false);
        const d = once(a, "disconnect");
        killTransport(a);
        const [reason] = await d;
        assert.ok(["transport close", "forced close", "transport error"].includes(reason), reason);
        await gone(b, id);
        // missed while away: to its rooms (in order), to a room it is not in, and a namespace broadcast
        await ack(b, "to", "csr", "m1");
        await ack(b, "to", "elsewhere", "not for a");
        await ack(b, "to", "extra", "m2");
        await ack(b, "broadcast", "m3");
        await op(b, { op: "emit", rooms: ["csr"], except: ["extra"], event: "bcast", args: ["excluded"] });
        await op(b, { op: "emit", rooms: [id], event: "bcast", args: [{ m: 4, bin: Buffer.from([4]) }] });
        a.connect();
        await connected(a);
        assert.equal(a.recovered, true, "socket.recovered");
        assert.equal(a.id, id, "same socket id");
        await until(() => got.length === 5, 3000, () => `missed events; got ${JSON.stringify(got)}`);
        await sleep(100);
        const payloads = got.slice(1).map((args) => args[0]);
        assert.deepEqual(payloads.slice(0, 3), ["m1", "m2", "m3"]);
        assert.equal(payloads[3].m, 4);
        assert.deepEqual([...new Uint8Array(payloads[3].bin)], [4]);
        assert.equal(got.length, 5, "nothing else replayed");
        const offsets = got.map((args) => args[args.length - 1]);
        assert.equal(new Set(offsets).size, 5, "distinct offsets");
        const after = (await op(b, { op: "fetchSockets", rooms: [id] })).sockets;
        assert.deepEqual(after, before);
        assert.deepEqual(after[0].rooms, ["csr", "extra", id].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y))));
        assert.deepEqual(after[0].data, auth);
        // and it works as before
        assert.deepEqual(await ack(a, "echo", "back"), ["back"]);
        const live = once(a, "bcast");
        await ack(b, "to", "extra", "live");
        assert.equal((await live)[0], "live");
      });
    }

    test("automatic reconnection after the WebSocket is killed recovers the session", async () => {
      const a = await sioConnect(tb, "/", {
        transports: ["websocket"],
        reconnection: true,
        reconnectionDelay: 100,
        reconnectionDelayMax: 100,
        randomizationFactor: 0,
      });
      const b = await sioConnect(tb, "/", { transports: ["websocket"] });
      const got = collect(a);
      await ack(b, "broadcast", "x0");
      await until(() => got.length === 1);
      const id = a.id;
      const reconnected = once(a, "connect", 4000);
      killTransport(a);
      await reconnected;
      assert.equal(a.recovered, true);
      assert.equal(a.id, id);
      assert.deepEqual(await ack(a, "echo", 1), [1]);
    });

    test("no recovery after a client namespace disconnect (socket.disconnect())", async () => {
      const a = await sioConnect(tb, "/", { transports: ["websocket"], auth: { rooms: ["r"] } });
      const b = await sioConnect(tb, "/", { transports: ["websocket"] });
      const got = collect(a);
      await ack(b, "to", "r", "x");
      await until(() => got.length === 1);
      const id = a.id;
      a.disconnect();
      await gone(b, id);
      await ack(b, "to", "r", "missed");
      a.connect();
      await connected(a);
      assert.equal(a.recovered, false);
      assert.notEqual(a.id, id);
      await sleep(100);
      assert.equal(got.length, 1, "nothing replayed");
      // a fresh socket: data = the new CONNECT payload (the client adds pid and offset to it),
      // rooms joined from it
      const [s] = (await op(b, { op: "fetchSockets", rooms: [a.id] })).sockets;
      assert.deepEqual(s.data.rooms, ["r"]);
      assert.ok(s.rooms.includes("r"));
    });

    test("no recovery once RECOVERY_MS has expired", async () => {
      const a = await sioConnect(tb, "/", { transports: ["websocket"] });
      const b = await sioConnect(tb, "/", { transports: ["websocket"] });
      const got = collect(a);
      await ack(b, "broadcast", "x");
      await until(() => got.length === 1);
      const id = a.id;
      a.io.reconnection(false);
      killTransport(a);
      await gone(b, id);
      await sleep(RECOVERY_MS + 300);
      a.connect();
      await connected(a);
      assert.equal(a.recovered, false);
      assert.notEqual(a.id, id);
    });

    test("no recovery after a server disconnect (disconnectSockets)", async () => {
      const a = await sioConnect(tb, "/", { transports: ["websocket"] });
      const b = await sioConnect(tb, "/", { transports: ["websocket"] });
      const got = collect(a);
      await ack(b, "broadcast", "x");
      await until(() => got.length === 1);
      const id = a.id;
      const d = once(a, "disconnect");
      await op(b, { op: "disconnectSockets", rooms: [id] });
      assert.equal((await d)[0], "io server disconnect");
      a.connect();
      await connected(a);
      assert.equal(a.recovered, false);
      assert.notEqual(a.id, id);
    });
  });
}

// ------------------------------------------------------------------------------------------------

describe("socketio connection state recovery on raw frames", () => {
  let tb;
  const opened = [];
  before(async () => {
    tb = await startTestbed("app", { RECOVERY_MS: String(RECOVERY_MS) });
  });
  after(() => tb?.stop());
  afterEach(async () => {
    for (const ws of opened.splice(0)) ws.close();
    closeSioClients();
    await assertSioHealthy(tb);
  });

  const raw = async (nsp = "/", auth) => {
    const r = await sioRawWs(tb, { nsp, auth });
    opened.push(r.ws);
    return r;
  };
  const text = async (ws) => {
    const m = await ws.nextNonPing();
    assert.equal(m.isBinary, false, "expected a text frame");
    return m.data;
  };
  /** `42["ev",...args,"<offset>"]` → { args, offset } */
  const withOffset = (frame, prefix, event) => {
    assert.ok(frame.startsWith(prefix), `expected ${prefix}..., got ${frame}`);
    const arr = JSON.parse(frame.slice(prefix.length));
    assert.equal(arr[0], event);
    const offset = arr[arr.length - 1];
    assert.equal(typeof offset, "string", `last element must be the offset string: ${frame}`);
    assert.ok(offset.length > 0);
    return { args: arr.slice(1, -1), offset };
  };

  test("CONNECT reply carries sid then pid", async () => {
    for (const nsp of ["/", "/chat"]) {
      const { reply, sid } = await raw(nsp);
      const { data } = parseConnectReply(reply);
      assert.deepEqual(Object.keys(data), ["sid", "pid"]);
      assert.equal(typeof data.pid, "string");
      assert.ok(data.pid.length > 0);
      assert.notEqual(data.pid, data.sid);
      assert.notEqual(data.sid, sid);
    }
  });

  test("offsets: appended to broadcasts, room emits, remote emits and binary events; distinct", async () => {
    const { ws, reply } = await raw("/", { rooms: ["r"] });
    const id = parseConnectReply(reply).data.sid;
    const b = await sioConnect(tb, "/", { transports: ["websocket"] });
    await ack(b, "broadcast", "one");
    const o1 = withOffset(await text(ws), "42", "bcast");
    assert.deepEqual(o1.args, ["one"]);
    await ack(b, "to", "r", { two: 2 });
    const o2 = withOffset(await text(ws), "42", "bcast");
    assert.deepEqual(o2.args, [{ two: 2 }]);
    await op(b, { op: "remote", id, action: "emit", event: "direct", args: [3] });
    const o3 = withOffset(await text(ws), "42", "direct");
    assert.deepEqual(o3.args, [3]);
    await op(b, { op: "emit", rooms: [id], event: "bin", args: [Buffer.from([7])] });
    const o4 = withOffset(await text(ws), "451-", "bin");
    assert.deepEqual(o4.args, [placeholder(0)]);
    const att = await ws.nextNonPing();
    assert.equal(att.isBinary, true);
    assert.deepEqual([...att.data], [7]);
    assert.equal(new Set([o1.offset, o2.offset, o3.offset, o4.offset]).size, 4);
  });

  test("no offset on acks and on emits that expect an ack", async () => {
    const { ws, reply } = await raw("/");
    const id = parseConnectReply(reply).data.sid;
    ws.send('421["echo","x"]');
    assert.equal(await text(ws), '431["x"]');
    const b = await sioConnect(tb, "/", { transports: ["websocket"] });
    const res = op(b, { op: "emit", rooms: [id], event: "ask", args: [1], timeout: 1000 });
    const m = /^42(\d+)\["ask",1\]$/.exec(await text(ws));
    assert.ok(m, "an emit with ack has no offset");
    ws.send(`43${m[1]}["ok"]`);
    assert.deepEqual(await res, { err: null, responses: ["ok"] });
  });

  test("reconnect with pid and offset: same sid and pid, missed events in order with their offsets", async () => {
    const { ws, reply } = await raw("/chat", { rooms: ["r"], k: "v" });
    const { sid, pid } = parseConnectReply(reply).data;
    const b = await sioConnect(tb, "/chat", { transports: ["websocket"] });
    await ack(b, "to", "r", "seen");
    const { offset } = withOffset(await text(ws), "42/chat,", "bcast");
    ws.close();
    await until(async () => !(await op(b, { op: "fetchSockets" })).sockets.some((s) => s.id === sid));
    for (let i = 0; i < 5; i++) await ack(b, "to", "r", `missed-${i}`);
    await ack(b, "to", "other", "not-mine");
    const { ws: ws2 } = await raw(null);
    ws2.send(`40/chat,${JSON.stringify({ rooms: ["ignored"], pid, offset })}`);
    const frames = [];
    for (let i = 0; i < 6; i++) frames.push(await text(ws2));
    const connectAt = frames.findIndex((f) => f.startsWith("40/chat,"));
    assert.ok(connectAt >= 0, `no CONNECT reply in ${JSON.stringify(frames)}`);
    // Node writes the missed events before the CONNECT reply; after it is acceptable as well
    assert.ok(connectAt === 0 || connectAt === 5, `CONNECT reply in the middle of the missed events: ${frames}`);
    assert.deepEqual(parseConnectReply(frames[connectAt]).data, { sid, pid });
    const events = frames.filter((_, i) => i !== connectAt).map((f) => withOffset(f, "42/chat,", "bcast"));
    assert.deepEqual(
      events.map((e) => e.args[0]),
      [0, 1, 2, 3, 4].map((i) => `missed-${i}`),
    );
    assert.equal(new Set(events.map((e) => e.offset)).size, 5);
    // restored rooms and data (the new CONNECT payload does not replace them)
    const [s] = (await op(b, { op: "fetchSockets", rooms: [sid] })).sockets;
    assert.deepEqual(s, { id: sid, rooms: ["r", sid].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y))), data: { rooms: ["r"], k: "v" } });
  });

  test("pid without offset, unknown pid, or unknown offset: a new session", async () => {
    const { ws, reply } = await raw("/");
    const { sid, pid } = parseConnectReply(reply).data;
    const b = await sioConnect(tb, "/", { transports: ["websocket"] });
    await ack(b, "broadcast", "x");
    const { offset } = withOffset(await text(ws), "42", "bcast");
    ws.close();
    await until(async () => !(await op(b, { op: "fetchSockets" })).sockets.some((s) => s.id === sid));
    for (const auth of [{ pid }, { pid: "unknown-pid", offset }, { pid, offset: "no-such-offset" }, { pid: 1, offset }]) {
      const { ws: w } = await raw(null);
      const r = parseConnectReply(await sioRawConnect(w, "/", auth)).data;
      assert.notEqual(r.sid, sid, `recovered with ${JSON.stringify(auth)}`);
      assert.notEqual(r.pid, pid);
      w.close();
    }
  });
});
