// Classic clusters (@socket.io/redis-adapter `createAdapter`) on one private redis-server: two
// Rust nodes, and a Rust node with a Node node (each parser on each side), running every
// cluster operation of the `app` profile both ways with WebSocket and polling clients on both
// nodes; then the Node (@socket.io/redis-emitter) and Rust emitters reaching both nodes.

import { after, afterEach, before, describe } from "node:test";

import { closeSioClients, sleep } from "./harness.mjs";
import { Cluster, SKIP_UNDER_NODE, clusterOpTests, emitterTests, emitters, startRedis } from "./cluster_support.mjs";

const PAIRS = [
  { impls: ["rust", "rust"], parsers: ["json", "msgpack"] },
  { impls: ["rust", "node"], parsers: ["json", "msgpack"] },
  { impls: ["rust", "node"], parsers: ["msgpack", "json"] },
];

describe("classic adapter clusters", { skip: SKIP_UNDER_NODE }, () => {
  let redis;
  before(async () => {
    redis = await startRedis();
  });
  after(() => redis?.stop());

  for (const [i, pair] of PAIRS.entries()) {
    const name = `A=${pair.impls[0]}/${pair.parsers[0]} + B=${pair.impls[1]}/${pair.parsers[1]}`;
    describe(`classic: ${name}`, () => {
      const ctx = {};
      before(async () => {
        const key = `classic-${i}`;
        ctx.cluster = await new Cluster({ redis, ...pair, adapter: "classic", key }).start();
        ctx.emitters = await emitters(redis.url, key);
      });
      afterEach(async () => {
        closeSioClients();
        // let both nodes see the disconnections
        await sleep(100);
      });
      after(async () => {
        await ctx.emitters?.close();
        await ctx.cluster?.stop();
      });

      clusterOpTests(ctx);
      emitterTests(ctx);
    });
  }
});
