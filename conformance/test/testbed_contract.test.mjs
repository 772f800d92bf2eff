// The testbed program itself (shared CONTRACT.md, "Starting it"): the listening line, flags,
// bad settings, signals. Runs against the testbed selected by TESTBED like every other file.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { testbedCommand, freePort, REPO_ROOT, HOST, request, pollingHandshake, wsHandshake, sleep } from "./harness.mjs";

/** Spawn the testbed with raw arguments and environment (PORT/HOST not forced). */
function run(profile, { env = {}, args = [] } = {}) {
  const [cmd, baseArgs] = testbedCommand(profile);
  const clean = { ...process.env };
  for (const k of ["PORT", "HOST", "PING_INTERVAL", "PING_TIMEOUT", "MAX_PAYLOAD", "TRANSPORTS", "REDIS_URL"]) delete clean[k];
  const child = spawn(cmd, [...baseArgs, ...args], {
    cwd: REPO_ROOT,
    env: { ...clean, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const out = { stdout: "", stderr: "" };
  child.stdout.on("data", (d) => (out.stdout += d));
  child.stderr.on("data", (d) => (out.stderr += d));
  const exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal, ...out })));
  const listening = (timeout = 10000) =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no listening line; stderr: ${out.stderr}`)), timeout);
      const check = () => {
        const m = /listening on (\S+):(\d+)\n/.exec(out.stdout);
        if (m) {
          clearTimeout(timer);
          resolve({ line: m[0], host: m[1], port: Number(m[2]) });
        }
      };
      child.stdout.on("data", check);
      check();
      exited.then(() => {
        clearTimeout(timer);
        reject(new Error(`exited before listening; stderr: ${out.stderr}`));
      });
    });
  return { child, exited, listening, out };
}

/** Wait for exit within `ms`, else kill and fail. */
async function exitWithin(proc, ms) {
  let timer;
  const killed = new Promise((_, reject) => {
    timer = setTimeout(() => {
      proc.child.kill("SIGKILL");
      reject(new Error(`testbed did not exit within ${ms} ms; stderr: ${proc.out.stderr}`));
    }, ms);
  });
  try {
    return await Promise.race([proc.exited, killed]);
  } finally {
    clearTimeout(timer);
  }
}

function assertBadSetting(result) {
  assert.equal(result.code, 2, `exit code ${result.code}; stderr: ${result.stderr}`);
  const lines = result.stderr.trim().split("\n");
  assert.equal(lines.length, 1, `one-line error expected, got: ${result.stderr}`);
  assert.ok(lines[0].length > 0);
  assert.ok(!/listening on/.test(result.stdout));
}

describe("testbed contract", () => {
  test("prints `listening on HOST:PORT` with the PORT setting", async () => {
    const port = await freePort();
    const proc = run("engineio", { env: { PORT: String(port) } });
    const { line, host, port: printed } = await proc.listening();
    assert.equal(line, `listening on ${HOST}:${port}\n`);
    assert.equal(host, HOST);
    assert.equal(printed, port);
    const res = await request(`http://${HOST}:${port}/engine.io/?EIO=4&transport=polling`);
    assert.equal(res.status, 200);
    proc.child.kill("SIGTERM");
    assert.equal((await exitWithin(proc, 5000)).code, 0);
  });

  test("accepts `--port N` as a flag", async () => {
    const port = await freePort();
    const proc = run("socketio", { args: ["--port", String(port)] });
    const { port: printed } = await proc.listening();
    assert.equal(printed, port);
    const res = await request(`http://${HOST}:${port}/socket.io/?EIO=4&transport=polling`);
    assert.equal(res.status, 200);
    proc.child.kill("SIGTERM");
    assert.equal((await exitWithin(proc, 5000)).code, 0);
  });

  test("SIGTERM with open polling and WebSocket sessions → exit 0 within 5 s", async () => {
    const port = await freePort();
    const proc = run("engineio", { env: { PORT: String(port) } });
    await proc.listening();
    const tb = { profile: "engineio", url: `http://${HOST}:${port}`, wsUrl: `ws://${HOST}:${port}`, port };
    await pollingHandshake(tb);
    const { ws } = await wsHandshake(tb);
    const pending = request(`${tb.url}/engine.io/?EIO=4&transport=polling&sid=${(await pollingHandshake(tb)).sid}`).catch(
      (e) => e,
    );
    await sleep(50);
    const started = Date.now();
    proc.child.kill("SIGTERM");
    const result = await exitWithin(proc, 5000);
    assert.equal(result.code, 0, `stderr: ${result.stderr}`);
    assert.ok(Date.now() - started < 5000);
    await ws.waitClosed(2000);
    await pending;
  });

  test("SIGINT → exit 0", async () => {
    const port = await freePort();
    const proc = run("app", { env: { PORT: String(port) } });
    await proc.listening();
    proc.child.kill("SIGINT");
    assert.equal((await exitWithin(proc, 5000)).code, 0);
  });

  test("unknown profile → exit 2 with a one-line error", async () => {
    assertBadSetting(await exitWithin(run("nope"), 5000));
  });

  for (const [name, value] of [
    ["PORT", "abc"],
    ["PING_INTERVAL", "abc"],
    ["PING_TIMEOUT", "1x"],
    ["MAX_PAYLOAD", "lots"],
  ]) {
    test(`unparsable ${name}=${value} → exit 2`, async () => {
      assertBadSetting(await exitWithin(run("engineio", { env: { PORT: "0", [name]: value } }), 5000));
    });
  }

  test("unparsable RECOVERY_MS → exit 2 (app)", async () => {
    assertBadSetting(await exitWithin(run("app", { env: { PORT: "0", RECOVERY_MS: "soon" } }), 5000));
  });

  test("unreachable Redis at start → exit 2 (app)", async () => {
    const port = await freePort(); // nothing listens there
    const result = await exitWithin(
      run("app", { env: { PORT: String(await freePort()), REDIS_URL: `redis://${HOST}:${port}` } }),
      10000,
    );
    assertBadSetting(result);
  });
});
