#!/usr/bin/env node
// Node reference testbed: implements the testbed contract (shared CONTRACT.md) with the official
// `engine.io`, `socket.io` and `@socket.io/redis-adapter` packages, so every conformance scenario
// can run against a Node node, a Rust node, or a mix of both.
//
//   node conformance/node/testbed.mjs <engineio|socketio|app> [--port 3001] [--ping_interval 300] ...
//
// Settings come from the environment; flags named like the variables in lower case (`--port`,
// `--ping_interval` or `--ping-interval`, `--port=3001`) override them.

import http from "node:http";
import process from "node:process";

const PROFILES = new Set(["engineio", "socketio", "app"]);

const SETTINGS = [
  "PORT",
  "HOST",
  "PING_INTERVAL",
  "PING_TIMEOUT",
  "MAX_PAYLOAD",
  "TRANSPORTS",
  "PARSER",
  "RECOVERY_MS",
  "REDIS_URL",
  "ADAPTER",
  "SUBSCRIPTION_MODE",
  "KEY",
  "NODE_NAME",
  "CORS_ORIGIN",
];

class ConfigError extends Error {}

function fail(message) {
  process.stderr.write(`testbed: ${message.replace(/\s+/g, " ")}\n`);
  process.exit(2);
}

function parseArgs(argv) {
  const values = {};
  let profile;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg.startsWith("--")) {
      let name = arg.slice(2);
      let value;
      const eq = name.indexOf("=");
      if (eq >= 0) {
        value = name.slice(eq + 1);
        name = name.slice(0, eq);
      } else {
        if (i + 1 >= argv.length) throw new ConfigError(`flag --${name} needs a value`);
        value = argv[++i];
      }
      const key = name.toUpperCase().replace(/-/g, "_");
      if (!SETTINGS.includes(key)) throw new ConfigError(`unknown flag --${name}`);
      values[key] = value;
    } else if (profile === undefined) {
      profile = arg;
    } else {
      throw new ConfigError(`unexpected argument ${JSON.stringify(arg)}`);
    }
  }
  return { profile, values };
}

function integer(name, raw, { min = 0, max = Number.MAX_SAFE_INTEGER } = {}) {
  if (!/^\d+$/.test(raw)) throw new ConfigError(`${name} must be a non-negative integer, got ${JSON.stringify(raw)}`);
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new ConfigError(`${name} out of range: ${raw}`);
  }
  return n;
}

function oneOf(name, raw, allowed) {
  if (!allowed.includes(raw)) {
    throw new ConfigError(`${name} must be one of ${allowed.join(", ")}, got ${JSON.stringify(raw)}`);
  }
  return raw;
}

function loadConfig(argv, env) {
  const { profile, values } = parseArgs(argv);
  if (profile === undefined) throw new ConfigError("missing profile (engineio, socketio or app)");
  if (!PROFILES.has(profile)) throw new ConfigError(`unknown profile ${JSON.stringify(profile)}`);
  const get = (key) => {
    if (values[key] !== undefined) return values[key];
    const v = env[key];
    return v === undefined || v === "" ? undefined : v;
  };
  const fast = profile !== "app";
  const port = integer("PORT", get("PORT") ?? "3000", { max: 65535 });
  const transportsRaw = get("TRANSPORTS") ?? "polling,websocket";
  const transports = transportsRaw.split(",").map((t) => t.trim());
  for (const t of transports) oneOf("TRANSPORTS", t, ["polling", "websocket"]);
  const cfg = {
    profile,
    port,
    host: get("HOST") ?? "127.0.0.1",
    pingInterval: integer("PING_INTERVAL", get("PING_INTERVAL") ?? (fast ? "300" : "25000")),
    pingTimeout: integer("PING_TIMEOUT", get("PING_TIMEOUT") ?? (fast ? "200" : "20000")),
    maxPayload: integer("MAX_PAYLOAD", get("MAX_PAYLOAD") ?? "1000000"),
    transports: [...new Set(transports)],
    parser: oneOf("PARSER", get("PARSER") ?? "json", ["json", "msgpack"]),
    recoveryMs: get("RECOVERY_MS") === undefined ? undefined : integer("RECOVERY_MS", get("RECOVERY_MS")),
    redisUrl: get("REDIS_URL"),
    adapter: oneOf("ADAPTER", get("ADAPTER") ?? "classic", ["classic", "sharded"]),
    subscriptionMode: oneOf("SUBSCRIPTION_MODE", get("SUBSCRIPTION_MODE") ?? "dynamic", [
      "static",
      "dynamic",
      "dynamic-private",
    ]),
    key: get("KEY") ?? "socket.io",
    nodeName: get("NODE_NAME") ?? `node-${port}`,
    corsOrigin: get("CORS_ORIGIN"),
  };
  return cfg;
}

let cfg;
try {
  cfg = loadConfig(process.argv.slice(2), process.env);
} catch (e) {
  if (e instanceof ConfigError) fail(e.message);
  throw e;
}

const closers = [];
let shuttingDown = false;

function engineOptions() {
  const opts = {
    pingInterval: cfg.pingInterval,
    pingTimeout: cfg.pingTimeout,
    maxHttpBufferSize: cfg.maxPayload,
    transports: cfg.transports,
  };
  if (cfg.corsOrigin !== undefined) opts.cors = { origin: cfg.corsOrigin };
  return opts;
}

// Requests outside the Engine.IO / Socket.IO path get a plain 404 (engine.io forwards them to the
// http server's other "request" listeners; with none they would hang).
const httpServer = http.createServer((req, res) => {
  res.writeHead(404, { "Content-Type": "text/plain" });
  res.end("not found");
});

// ---------------------------------------------------------------------------------------------
// Profile engineio: plain Engine.IO echo at /engine.io/.

async function startEngineio() {
  const { Server } = await import("engine.io");
  const engine = new Server(engineOptions());
  engine.attach(httpServer, { path: "/engine.io" });
  engine.on("connection", (socket) => {
    // text comes back as text, binary (a Buffer) as binary
    socket.on("message", (data) => socket.send(data));
  });
  closers.push(() => engine.close());
}

// ---------------------------------------------------------------------------------------------
// Socket.IO profiles.

async function socketioOptions() {
  const opts = { ...engineOptions() };
  if (cfg.parser === "msgpack") {
    opts.parser = (await import("socket.io-msgpack-parser")).default;
  }
  return opts;
}

async function startSocketio() {
  const { Server } = await import("socket.io");
  // connectTimeout 1000: what the official Socket.IO protocol suite assumes.
  const io = new Server(httpServer, { ...(await socketioOptions()), connectTimeout: 1000 });
  const onConnection = (socket) => {
    socket.emit("auth", socket.handshake.auth ?? {});
  };
  io.of("/").on("connection", (socket) => {
    onConnection(socket);
    socket.on("message", (...args) => socket.emit("message-back", ...args));
    socket.on("message-with-ack", (...args) => {
      const ack = args.pop();
      if (typeof ack === "function") ack(...args);
    });
  });
  io.of("/custom").on("connection", onConnection);
  closers.push(() => io.close());
}

// --- app profile helpers -------------------------------------------------------------------------

const byteOrder = (a, b) => Buffer.compare(Buffer.from(String(a)), Buffer.from(String(b)));
const sorted = (list) => [...list].sort(byteOrder);

const isStringArray = (v) => Array.isArray(v) && v.every((x) => typeof x === "string");
const isPlainObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v) && !Buffer.isBuffer(v);

class SpecError extends Error {}

function optionalRooms(spec, field) {
  const v = spec[field];
  if (v === undefined || v === null) return [];
  if (!isStringArray(v)) throw new SpecError(`"${field}" must be an array of strings`);
  return v;
}

function optionalBool(spec, field) {
  const v = spec[field];
  if (v === undefined || v === null) return false;
  if (typeof v !== "boolean") throw new SpecError(`"${field}" must be a boolean`);
  return v;
}

function requiredString(spec, field) {
  const v = spec[field];
  if (typeof v !== "string") throw new SpecError(`"${field}" must be a string`);
  return v;
}

function argsOf(spec) {
  const v = spec.args;
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new SpecError(`"args" must be an array`);
  return v;
}

function optionalTimeout(spec) {
  const v = spec.timeout;
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isFinite(v) || v < 0) throw new SpecError(`"timeout" must be a non-negative number`);
  return v;
}

/** `io.of(nsp).to(rooms).except(except).local.volatile`, as selected by the spec. */
function targets(nsp, spec) {
  let op = nsp.to(optionalRooms(spec, "rooms")).except(optionalRooms(spec, "except"));
  if (optionalBool(spec, "local")) op = op.local;
  if (optionalBool(spec, "volatile")) op = op.volatile;
  return op;
}

const RESERVED_SERVER_SIDE_EVENTS = ["connect", "connection", "new_namespace"];

const timeoutResult = (err, responses) => ({ err: err ? "timeout" : null, responses: responses ?? [] });

async function startApp() {
  const { Server } = await import("socket.io");
  const opts = await socketioOptions();
  if (cfg.recoveryMs !== undefined) {
    opts.connectionStateRecovery = { maxDisconnectionDuration: cfg.recoveryMs };
  }

  let clustered = false;
  const subscriptions = [];
  let stopCollecting = () => {};
  if (cfg.redisUrl !== undefined) {
    const { createClient, createCluster } = await import("redis");
    const { createAdapter, createShardedAdapter } = await import("@socket.io/redis-adapter");
    let started = false;
    const socketOptions = {
      // fail fast while starting (→ exit 2); reconnect with a short backoff afterwards
      reconnectStrategy: (retries, cause) =>
        started ? Math.min(50 * (retries + 1), 1000) : new Error(`cannot reach Redis: ${cause?.message ?? cause}`),
      connectTimeout: 3000,
    };
    // REDIS_URL may name one node of a Redis Cluster (as the Rust testbed, detect it): then
    // both clients are cluster clients, which route (S)SUBSCRIBE / SPUBLISH by slot.
    let clusterMode = false;
    {
      const probe = createClient({ url: cfg.redisUrl, socket: socketOptions });
      probe.on("error", () => {});
      try {
        await probe.connect();
        clusterMode = /^cluster_enabled:1/m.test(await probe.info("cluster"));
        await probe.disconnect();
      } catch (e) {
        fail(`cannot connect to Redis at ${cfg.redisUrl}: ${e.message}`);
      }
    }
    const makeClient = () => {
      const client = clusterMode
        ? createCluster({ rootNodes: [{ url: cfg.redisUrl }], defaults: { socket: socketOptions } })
        : createClient({ url: cfg.redisUrl, socket: socketOptions });
      client.on("error", (e) => {
        if (started && !shuttingDown) process.stderr.write(`testbed: redis error: ${e.message}\n`);
      });
      return client;
    };
    const pubClient = makeClient();
    const subClient = makeClient();
    try {
      await Promise.all([pubClient.connect(), subClient.connect()]);
    } catch (e) {
      fail(`cannot connect to Redis at ${cfg.redisUrl}: ${e.message}`);
    }
    started = true;
    // Collect the subscription promises the adapters start, to print "listening" only once
    // they are all acknowledged by Redis.
    const originals = {};
    for (const method of ["subscribe", "pSubscribe", "sSubscribe"]) {
      const original = (originals[method] = subClient[method]);
      subClient[method] = (...a) => {
        const p = original.apply(subClient, a);
        subscriptions.push(p);
        return p;
      };
    }
    stopCollecting = () => {
      // back to the original methods (later room subscriptions need no tracking)
      Object.assign(subClient, originals);
    };
    opts.adapter =
      cfg.adapter === "sharded"
        ? createShardedAdapter(pubClient, subClient, {
            channelPrefix: cfg.key,
            subscriptionMode: cfg.subscriptionMode,
          })
        : createAdapter(pubClient, subClient, { key: cfg.key });
    clustered = true;
    closers.push(async () => {
      await Promise.allSettled([pubClient.disconnect(), subClient.disconnect()]);
    });
  }

  const io = new Server(httpServer, opts);
  closers.unshift(() => io.close());

  for (const name of ["/", "/chat"]) {
    setupAppNamespace(io.of(name), clustered);
  }
  stopCollecting();
  await Promise.all(subscriptions);
}

function setupAppNamespace(nsp, clustered) {
  const received = [];

  // Server-side events from other nodes: record them, answer acks with our NODE_NAME.
  nsp._onServerSideEmit = (packet) => {
    const args = [...packet];
    const event = args.shift();
    const ack = typeof args[args.length - 1] === "function" ? args.pop() : undefined;
    received.push({ event, args });
    if (ack) ack(cfg.nodeName);
    // no listeners are registered for server-side events, so the regular dispatch is skipped
    // (emitting "error" on the namespace without a listener would throw)
  };

  const serverSideEmit = (spec) =>
    new Promise((resolve) => {
      const event = requiredString(spec, "event");
      const args = argsOf(spec);
      const timeout = optionalTimeout(spec);
      if (RESERVED_SERVER_SIDE_EVENTS.includes(event)) {
        // same message as Namespace#serverSideEmit
        throw new Error(`"${event}" is a reserved event name`);
      }
      if (!clustered) {
        // the in-memory adapter only prints a warning on serverSideEmit: nothing to send on a
        // single node, and serverSideEmitWithAck would get no responses
        return resolve(timeout === undefined ? {} : { err: null, responses: [] });
      }
      if (timeout === undefined) {
        nsp.serverSideEmit(event, ...args);
        return resolve({});
      }
      // The adapters have their own fixed request timeout (5 s); enforce the requested one by
      // settling early with the responses collected so far (read from the adapter's request table).
      let done = false;
      let timer;
      const callback = (err, responses) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        resolve(timeoutResult(err, responses));
      };
      nsp.serverSideEmit(event, ...args, callback);
      timer = setTimeout(() => {
        if (done) return;
        let responses = [];
        for (const [id, request] of nsp.adapter.requests ?? []) {
          if (request.resolve === callback) {
            responses = request.responses ?? [];
            clearTimeout(request.timeout);
            nsp.adapter.requests.delete(id);
            break;
          }
        }
        done = true;
        resolve({ err: "timeout", responses });
      }, timeout);
    });

  const ops = {
    async emit(spec) {
      const event = requiredString(spec, "event");
      const args = argsOf(spec);
      const timeout = optionalTimeout(spec);
      const op = targets(nsp, spec);
      if (timeout === undefined) {
        op.emit(event, ...args);
        return {};
      }
      return new Promise((resolve) => {
        op.timeout(timeout).emit(event, ...args, (err, responses) => resolve(timeoutResult(err, responses)));
      });
    },
    async fetchSockets(spec) {
      const sockets = await targets(nsp, spec).fetchSockets();
      return {
        sockets: sockets
          .map((s) => ({ id: s.id, rooms: sorted(s.rooms), data: s.data }))
          .sort((a, b) => byteOrder(a.id, b.id)),
      };
    },
    async socketsJoin(spec) {
      const room = requiredString(spec, "room");
      targets(nsp, spec).socketsJoin(room);
      return {};
    },
    async socketsLeave(spec) {
      const room = requiredString(spec, "room");
      targets(nsp, spec).socketsLeave(room);
      return {};
    },
    async disconnectSockets(spec) {
      const close = optionalBool(spec, "close");
      targets(nsp, spec).disconnectSockets(close);
      return {};
    },
    serverSideEmit,
    async serverCount() {
      return { count: await nsp.adapter.serverCount() };
    },
    async allRooms() {
      // rooms exist only while they hold sockets, so the union of every socket's rooms across the
      // cluster is the set of all rooms (works the same for every adapter)
      const sockets = await nsp.fetchSockets();
      const rooms = new Set();
      for (const s of sockets) for (const r of s.rooms) rooms.add(r);
      return { rooms: sorted(rooms) };
    },
    async remote(spec) {
      const id = requiredString(spec, "id");
      const action = requiredString(spec, "action");
      let run;
      switch (action) {
        case "emit": {
          const event = requiredString(spec, "event");
          const args = argsOf(spec);
          run = (s) => s.emit(event, ...args);
          break;
        }
        case "join": {
          const room = requiredString(spec, "room");
          run = (s) => s.join(room);
          break;
        }
        case "leave": {
          const room = requiredString(spec, "room");
          run = (s) => s.leave(room);
          break;
        }
        case "disconnect":
          run = (s) => s.disconnect();
          break;
        default:
          throw new SpecError(`unknown remote action ${JSON.stringify(action)}`);
      }
      const sockets = await nsp.in(id).fetchSockets();
      const socket = sockets.find((s) => s.id === id);
      if (!socket) return { found: false };
      await run(socket);
      return { found: true };
    },
    async received() {
      return { events: received.slice() };
    },
  };

  const runOp = async (spec) => {
    try {
      if (!isPlainObject(spec)) throw new SpecError("op spec must be an object");
      const name = spec.op;
      if (typeof name !== "string" || !Object.hasOwn(ops, name)) {
        throw new SpecError(`unknown op ${JSON.stringify(name ?? null)}`);
      }
      return await ops[name](spec);
    } catch (e) {
      return { error: String(e?.message ?? e) };
    }
  };

  nsp.on("connection", (socket) => {
    if (!socket.recovered) {
      // a restored socket keeps the data and rooms it had
      const auth = socket.handshake.auth;
      socket.data = auth ?? {};
      if (isPlainObject(auth) && isStringArray(auth.rooms)) socket.join(auth.rooms);
    }

    const ackOf = (args) => (typeof args[args.length - 1] === "function" ? args.pop() : undefined);

    socket.on("echo", (...args) => {
      const ack = ackOf(args);
      if (ack) ack(...args);
    });
    socket.on("broadcast", (...args) => {
      const ack = ackOf(args);
      nsp.emit("bcast", args[0]);
      if (ack) ack();
    });
    socket.on("to", (...args) => {
      const ack = ackOf(args);
      if (typeof args[0] === "string") nsp.to(args[0]).emit("bcast", args[1]);
      if (ack) ack();
    });
    socket.on("join", async (...args) => {
      const ack = ackOf(args);
      if (typeof args[0] === "string" || isStringArray(args[0])) await socket.join(args[0]);
      if (ack) ack();
    });
    socket.on("leave", async (...args) => {
      const ack = ackOf(args);
      if (typeof args[0] === "string") await socket.leave(args[0]);
      if (ack) ack();
    });
    socket.on("op", async (...args) => {
      const ack = ackOf(args);
      const result = await runOp(args[0]);
      if (ack) ack(result);
    });
  });
}

// ---------------------------------------------------------------------------------------------

async function shutdown() {
  if (shuttingDown) return;
  shuttingDown = true;
  // hard deadline: the contract promises an exit within 5 s
  setTimeout(() => process.exit(0), 3000).unref();
  for (const close of closers) {
    try {
      await close();
    } catch {
      // ignore: we are exiting anyway
    }
  }
  httpServer.closeAllConnections?.();
  await new Promise((resolve) => httpServer.close(() => resolve()));
  process.exit(0);
}

process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);

try {
  if (cfg.profile === "engineio") await startEngineio();
  else if (cfg.profile === "socketio") await startSocketio();
  else await startApp();
} catch (e) {
  if (e instanceof ConfigError) fail(e.message);
  throw e;
}

httpServer.on("error", (e) => fail(`cannot listen on ${cfg.host}:${cfg.port}: ${e.message}`));
httpServer.listen(cfg.port, cfg.host, () => {
  const { port } = httpServer.address();
  process.stdout.write(`listening on ${cfg.host}:${port}\n`);
});
