//! The sharded adapter on a real Redis Cluster (three masters started by the test): each node
//! connects to a different cluster node, and `SSUBSCRIBE` / `SPUBLISH` reach the node owning
//! each channel's slot (wire notes 5.5). Broadcasts, room channels, fetchSockets and counting
//! work across the masters; after a slot migration the subscription follows its slot and a
//! redirected (`MOVED`) publish is sent again to the new owner.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use socketio::Value;
use socketio_redis::{ShardedConfig, SubscriptionMode};
use support::cluster::{Node, within};
use support::redis_server::{RedisCluster, RedisServer};

fn shard_numsub(node: &RedisServer, channel: &str) -> u64 {
    let reply = node.command(&["PUBSUB", "SHARDNUMSUB", channel]);
    reply
        .rsplit("\r\n")
        .find_map(|l| l.strip_prefix(':'))
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcasts_and_fetch_sockets_across_the_masters() {
    let cluster = RedisCluster::start();
    let url = |i: usize| format!("redis://127.0.0.1:{}", cluster.nodes[i].port);
    let config = ShardedConfig::new("socket.io", SubscriptionMode::Dynamic);
    // Each node starts from a different cluster node.
    let a = Node::start_sharded("A", &url(0), config.clone()).await;
    let b = Node::start_sharded("B", &url(2), config).await;
    assert!(a.cluster.is_redis_cluster() && b.cluster.is_redis_cluster());
    let (mut ca, sa) = a.client("/", r#"{"rooms":["ra"],"name":"a1"}"#).await;
    let (mut cb, sb) = b.client("/", r#"{"rooms":["rb"],"name":"b1"}"#).await;
    a.cluster.ready().await.unwrap();
    b.cluster.ready().await.unwrap();

    // The channels live on the masters owning their slots, not on the node connected to.
    let channels = [
        "socket.io#/#",
        "socket.io#/#ra#",
        "socket.io#/#rb#",
        "socket.io#/chat#",
    ];
    let mut owners = BTreeSet::new();
    for channel in channels {
        let owner = cluster.owner(cluster.slot(channel));
        owners.insert(owner.port);
        let subscribers = if channel.ends_with("#ra#") || channel.ends_with("#rb#") {
            1
        } else {
            2
        };
        assert_eq!(
            shard_numsub(owner, channel),
            subscribers,
            "{channel} on {}",
            owner.port
        );
    }
    assert!(
        owners.len() >= 2,
        "the test channels should span masters: {owners:?}"
    );
    assert_eq!(a.io.of("/").adapter().server_count().await, 2);
    assert_eq!(b.io.of("/").adapter().server_count().await, 2);

    a.io.emit("hello", vec![Value::from(1)]).unwrap();
    assert_eq!(ca.recv().await, r#"42["hello",1]"#);
    assert_eq!(cb.recv().await, r#"42["hello",1]"#);
    a.io.to(["rb"]).emit("room", vec![]).unwrap();
    assert_eq!(cb.recv().await, r#"42["room"]"#);
    b.io.to(["ra"])
        .emit("room", vec![Value::Binary(vec![7])])
        .unwrap();
    assert_eq!(
        ca.recv().await,
        r#"451-["room",{"_placeholder":true,"num":0}]"#
    );
    assert_eq!(ca.recv().await, "<binary b\"\\x07\">");
    let (mut chat_a, _) = a.client("/chat", "{}").await;
    b.io.of("/chat").emit("chat", vec![]).unwrap();
    assert_eq!(chat_a.recv().await, r#"42/chat,["chat"]"#);

    let ns = a.io.of("/");
    let sockets = within("fetchSockets", ns.broadcast().fetch_sockets())
        .await
        .unwrap();
    let ids: BTreeSet<&str> = sockets.iter().map(|s| s.id()).collect();
    assert_eq!(ids, [sa.as_str(), sb.as_str()].into());
    let acked = within(
        "serverSideEmitWithAck",
        b.io.of("/")
            .server_side_emit_with_ack("ping", vec![], Duration::from_secs(3)),
    )
    .await
    .unwrap();
    assert_eq!(acked.responses, vec![vec![Value::from("A")]]);

    // Move the slot of B's room channel to another master: the old owner drops B's
    // subscription (an unsolicited sunsubscribe), B subscribes on the new owner; A's map is
    // stale, its SPUBLISH gets MOVED and is sent again to the new owner.
    let slot = cluster.slot("socket.io#/#rb#");
    let old = cluster.owner(slot).port;
    let target = cluster.nodes.iter().find(|n| n.port != old).unwrap();
    cluster.move_slot(slot, target);
    within("B subscribed on the new owner", async {
        while shard_numsub(target, "socket.io#/#rb#") != 1 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    a.io.to(["rb"]).emit("moved", vec![]).unwrap();
    assert_eq!(cb.recv().await, r#"42["moved"]"#);
    assert_eq!(shard_numsub(cluster.node(old), "socket.io#/#rb#"), 0);
    assert!(a.cluster.stats().subscribed && b.cluster.stats().subscribed);
}
