// Sharded clusters (@socket.io/redis-adapter `createShardedAdapter`, Redis 7 sharded pub/sub) on
// one private redis-server, in each subscription mode: two Rust nodes, and a Rust node with a
// Node node (the parsers swap sides from one mode to the next), running every cluster operation
// of the `app` profile both ways with WebSocket and polling clients on both nodes.

import { test, after, afterEach, before, describe } from "node:test";
import assert from "node:assert/strict";

import { closeSioClients, sleep } from "./harness.mjs";
import { Cluster, SKIP_UNDER_NODE, clusterOpTests, shardNumsub, startRedis } from "./cluster_support.mjs";

const MODES = ["static", "dynamic", "dynamic-private"];

describe("sharded adapter clusters", { skip: SKIP_UNDER_NODE }, () => {
  let redis;
  before(async () => {
    redis = await startRedis();
  });
  after(() => redis?.stop());

  for (const [m, mode] of MODES.entries()) {
    const swap = m % 2 === 1;
    const pairs = [
      { impls: ["rust", "rust"], parsers: ["json", "msgpack"] },
      { impls: ["rust", "node"], parsers: swap ? ["msgpack", "json"] : ["json", "msgpack"] },
    ];
    for (const [i, pair] of pairs.entries()) {
      const name = `A=${pair.impls[0]}/${pair.parsers[0]} + B=${pair.impls[1]}/${pair.parsers[1]}`;
      describe(`sharded ${mode}: ${name}`, () => {
        const ctx = {};
        const key = `sharded-${mode}-${i}`;
        before(async () => {
          ctx.cluster = await new Cluster({ redis, ...pair, adapter: "sharded", mode, key }).start();
        });
        afterEach(async () => {
          closeSioClients();
          // let both nodes see the disconnections (and drop their room channels)
          await sleep(100);
        });
        after(() => ctx.cluster?.stop());

        test("each node subscribes each namespace's main channel once", async () => {
          for (const nsp of ["/", "/chat"]) assert.equal(await shardNumsub(redis, `${key}#${nsp}#`), 2, nsp);
        });

        clusterOpTests(ctx);
      });
    }
  }
});
