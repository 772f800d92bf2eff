// A Rust node and a Node node with the sharded adapter, in each subscription mode, on a local
// Redis Cluster of 3 masters (each node enters through a different master; SSUBSCRIBE and
// SPUBLISH go to the master owning each channel's slot), running every cluster operation of the
// `app` profile both ways with WebSocket and polling clients on both nodes.

import { test, after, afterEach, before, describe } from "node:test";
import assert from "node:assert/strict";

import { closeSioClients, sleep } from "./harness.mjs";
import { Cluster, SKIP_UNDER_NODE, clusterOpTests, redisCommand, shardNumsub, startRedisCluster } from "./cluster_support.mjs";

describe("sharded adapter on a Redis Cluster", { skip: SKIP_UNDER_NODE }, () => {
  let redis;
  before(async () => {
    redis = await startRedisCluster();
  });
  after(() => redis?.stop());

  for (const [m, mode] of ["static", "dynamic", "dynamic-private"].entries()) {
    // the parsers swap sides from one mode to the next
    const parsers = m % 2 === 1 ? ["msgpack", "json"] : ["json", "msgpack"];
    describe(`sharded ${mode}: A=rust/${parsers[0]} + B=node/${parsers[1]}`, () => {
      const ctx = {};
      const key = `rc-${mode}`;
      before(async () => {
        ctx.cluster = await new Cluster({
          redis,
          impls: ["rust", "node"],
          parsers,
          adapter: "sharded",
          mode,
          key,
        }).start();
      });
      afterEach(async () => {
        closeSioClients();
        await sleep(100);
      });
      after(() => ctx.cluster?.stop());

      test("the main channels live on their masters, subscribed by both nodes", async () => {
        for (const nsp of ["/", "/chat"]) {
          const channel = `${key}#${nsp}#`;
          assert.equal(await shardNumsub(redis, channel), 2, channel);
          const slot = await redisCommand(redis.ports[0], ["CLUSTER", "KEYSLOT", channel]);
          // exactly one master holds the subscriptions: the owner of the slot
          const counts = await Promise.all(redis.ports.map((p) => redisCommand(p, ["PUBSUB", "SHARDNUMSUB", channel])));
          const holders = redis.ports.filter((_, i) => counts[i][1] > 0);
          assert.equal(holders.length, 1, `${channel} (slot ${slot})`);
        }
      });

      clusterOpTests(ctx);
    });
  }
});
