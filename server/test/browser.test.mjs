// A real browser on the demo page: Debian's Chromium (/usr/bin/chromium) driven by
// playwright-core opens `GET /` of a `sockeye --dev` process, gets a dev token and connects with
// the official client bundle the server serves, runs a search and sees its results, starts a
// model answer, sees it stream, and cancels it.
//
//   apt-get install chromium && cargo build -p sockeye && (cd server && npm ci && npm test)
//
// SOCKEYE_BIN overrides the binary; CHROMIUM the browser (default /usr/bin/chromium).

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { startServer } from "./support.mjs";

const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const WAIT = 10000;

if (!existsSync(CHROMIUM)) {
  throw new Error(`Chromium not found at ${CHROMIUM}: apt-get install -y chromium (Debian's package)`);
}

// The sockeye process is killed by support.mjs when the file ends; these undo the rest.
const cleanups = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

test("the demo page in Chromium: connect, search, stream a model answer, cancel it", async () => {
  // Paced so that the model answer (over 20 chunks, one every 100 ms) is still running when
  // the test clicks Cancel.
  const server = await startServer(["--dev", "--example-worker-delay-ms", "200"], {}, { wait: WAIT });
  const userDataDir = mkdtempSync(join(tmpdir(), "sockeye-chromium-"));
  cleanups.push(() => rmSync(userDataDir, { recursive: true, force: true }));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
    timeout: WAIT,
  });
  cleanups.push(() => context.close());
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(WAIT);
  const pageErrors = [];
  page.on("pageerror", (err) => pageErrors.push(String(err)));
  // The demo alerts on a refused start (e.g. rate_limited): that must not happen here.
  const dialogs = [];
  page.on("dialog", (dialog) => { dialogs.push(dialog.message()); dialog.dismiss(); });

  const response = await page.goto(server.url + "/");
  assert.equal(response.status(), 200);
  assert.equal(await page.evaluate(() => typeof io), "function", "the official client bundle loaded");

  await page.fill("#user", "browser-user");
  await page.click("#connect");
  await page.waitForSelector("#status.connected");
  assert.equal(await page.textContent("#status"), "connected");
  assert.match(await page.textContent("#conninfo"), /^socket \S+ over (polling|websocket)$/);

  // A search: its results stream in, then it completes.
  await page.fill("#query", "rust websockets");
  await page.click("#search");
  const search = page.locator('.job[data-kind="search"]');
  await search.and(page.locator('[data-state="done"]')).waitFor();
  assert.equal(await search.locator(".hit").count(), 5);
  assert.match(await search.locator(".hit a").first().textContent(), /\S/);

  // A model answer: chunks arrive, then Cancel stops it before it completes.
  await page.click("#ask");
  const model = page.locator('.job[data-kind="model"]');
  await model.locator(".answer").waitFor();
  const partial = await model.locator(".answer").textContent();
  assert.ok(partial.length > 0);
  await model.locator("button.cancel").click();
  await model.and(page.locator('[data-state="cancelled"]')).waitFor();
  const stopped = await model.locator(".answer").textContent();
  // Nothing more streams after the cancel.
  await page.waitForTimeout(500);
  assert.equal(await model.locator(".answer").textContent(), stopped);
  assert.equal(await model.getAttribute("data-state"), "cancelled");
  assert.match(await page.textContent("#log"), /task:cancel → \{"ok":true\}/);

  assert.deepEqual(pageErrors, []);
  assert.deepEqual(dialogs, []);
});
