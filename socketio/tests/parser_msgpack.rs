//! The msgpack parser (`config.parser = ParserKind::Msgpack`): every Socket.IO packet is one
//! msgpack map in one binary WebSocket message, binary values are native `bin`, no attachment
//! frames. Frames are decoded with rmpv here, independently of the crate's codec.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Client, Log, serve};
use socketio::{ConnectError, ParserKind, SocketIo, Value};

fn msgpack_io() -> SocketIo {
    let mut config = common::config();
    config.parser = ParserKind::Msgpack;
    SocketIo::new(config)
}

fn s(text: &str) -> Value {
    Value::from(text)
}

fn map(entries: Vec<(&str, Value)>) -> Value {
    Value::Map(entries.into_iter().map(|(k, v)| (s(k), v)).collect())
}

fn encode(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    rmpv::encode::write_value(&mut out, value).unwrap();
    out
}

/// Decodes one packet, checking the frame holds exactly one msgpack value; returns its keys in
/// order and the map.
fn decode(frame: &[u8]) -> (Vec<String>, Value) {
    let mut cursor = frame;
    let value = rmpv::decode::read_value(&mut cursor).unwrap();
    assert!(cursor.is_empty(), "trailing bytes after the packet");
    let keys = value
        .as_map()
        .unwrap()
        .iter()
        .map(|(k, _)| k.as_str().unwrap().to_owned())
        .collect();
    (keys, value)
}

fn get<'a>(packet: &'a Value, key: &str) -> &'a Value {
    socketio::map_get(packet, key).unwrap_or_else(|| panic!("no {key} in {packet:?}"))
}

async fn recv_packet(client: &mut Client) -> (Vec<String>, Value) {
    decode(&client.recv_binary().await)
}

/// CONNECT over msgpack; returns the socket id.
async fn join(client: &mut Client, nsp: &str, auth: Option<Value>) -> String {
    let mut fields = vec![("type", Value::from(0)), ("nsp", s(nsp))];
    if let Some(auth) = auth {
        fields.push(("data", auth));
    }
    client.send_binary(&encode(&map(fields))).await;
    let (keys, reply) = recv_packet(client).await;
    assert_eq!(keys, ["type", "data", "nsp"]);
    assert_eq!(get(&reply, "type"), &Value::from(0));
    assert_eq!(get(&reply, "nsp"), &s(nsp));
    let data = get(&reply, "data");
    assert_eq!(data.as_map().unwrap().len(), 1, "only sid: {data:?}");
    get(data, "sid").as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_event_with_ack_and_binary_payloads() {
    let io = msgpack_io();
    let auths = Log::new();
    let a = auths.clone();
    io.of("/admin")
        .on_connection(move |socket| a.push(socket.handshake().auth.clone()));
    io.of("/")
        .on("echo", |_, args, ack| ack.unwrap().send(args));
    let server = serve(io).await;
    let mut client = server.client().await;

    let sid = join(&mut client, "/", None).await;
    assert_ne!(sid, client.eio_sid);
    let admin_sid = join(&mut client, "/admin", Some(map(vec![("token", s("t"))]))).await;
    assert_eq!(auths.wait_len(1).await, [map(vec![("token", s("t"))])]);

    // An event with an ack id and binary inside: the ack comes back as one binary message.
    let args = vec![
        Value::from(1),
        Value::Binary(vec![1, 2, 3]),
        map(vec![("nested", Value::Binary(vec![]))]),
        Value::Nil,
        Value::from(-2.5),
    ];
    let mut data = vec![s("echo")];
    data.extend(args.clone());
    client
        .send_binary(&encode(&map(vec![
            ("type", Value::from(2)),
            ("nsp", s("/")),
            ("data", Value::Array(data)),
            ("id", Value::from(5)),
        ])))
        .await;
    let (keys, ack) = recv_packet(&mut client).await;
    assert_eq!(keys, ["id", "type", "data", "nsp"]);
    assert_eq!(get(&ack, "id"), &Value::from(5));
    assert_eq!(get(&ack, "type"), &Value::from(3));
    assert_eq!(get(&ack, "nsp"), &s("/"));
    assert_eq!(get(&ack, "data"), &Value::Array(args));

    // A server emit with binary: one message, native bin, no placeholder, no attachment.
    let admin = server.socket("/admin", &admin_sid);
    admin
        .emit("file", vec![Value::Binary(vec![9; 300]), s("name")])
        .unwrap();
    let (keys, event) = recv_packet(&mut client).await;
    assert_eq!(keys, ["type", "data", "nsp"]);
    assert_eq!(get(&event, "type"), &Value::from(2));
    assert_eq!(get(&event, "nsp"), &s("/admin"));
    assert_eq!(
        get(&event, "data"),
        &Value::Array(vec![s("file"), Value::Binary(vec![9; 300]), s("name")])
    );
    client.expect_silence(Duration::from_millis(30)).await;

    // Server → client ack.
    let socket = server.socket("/", &sid);
    let pending =
        tokio::spawn(socket.emit_with_ack("q", vec![Value::from(true)], Duration::from_secs(2)));
    let (keys, question) = recv_packet(&mut client).await;
    assert_eq!(keys, ["type", "data", "id", "nsp"]);
    let id = get(&question, "id").clone();
    assert_eq!(
        get(&question, "data"),
        &Value::Array(vec![s("q"), Value::from(true)])
    );
    client
        .send_binary(&encode(&map(vec![
            ("type", Value::from(3)),
            ("nsp", s("/")),
            ("id", id),
            ("data", Value::Array(vec![Value::Binary(vec![4])])),
        ])))
        .await;
    assert_eq!(pending.await.unwrap().unwrap(), [Value::Binary(vec![4])]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_connect_error_and_disconnect() {
    let io = msgpack_io();
    io.of("/private").use_middleware(|_| {
        Err(ConnectError::new("not authorized").with_data(map(vec![("code", Value::from(401))])))
    });
    let server = serve(io).await;
    let mut a = server.client().await;
    let mut b = server.client().await;
    let sid_a = join(&mut a, "/", None).await;
    join(&mut b, "/", None).await;

    let ns = server.io.of("/");
    let before = ns.local().broadcast_encodes();
    server
        .io
        .emit("all", vec![Value::Binary(vec![0xff])])
        .unwrap();
    assert_eq!(ns.local().broadcast_encodes(), before + 1);
    let frame_a = a.recv_binary().await;
    assert_eq!(
        frame_a,
        b.recv_binary().await,
        "the same bytes for everyone"
    );
    assert_eq!(
        get(&decode(&frame_a).1, "data"),
        &Value::Array(vec![s("all"), Value::Binary(vec![0xff])])
    );

    a.send_binary(&encode(&map(vec![
        ("type", Value::from(0)),
        ("nsp", s("/private")),
    ])))
    .await;
    let (keys, refusal) = recv_packet(&mut a).await;
    assert_eq!(keys, ["type", "data", "nsp"]);
    assert_eq!(get(&refusal, "type"), &Value::from(4));
    assert_eq!(get(&refusal, "nsp"), &s("/private"));
    assert_eq!(
        get(&refusal, "data"),
        &map(vec![
            ("message", s("not authorized")),
            ("data", map(vec![("code", Value::from(401))]))
        ])
    );

    server.socket("/", &sid_a).disconnect(false);
    let (keys, bye) = recv_packet(&mut a).await;
    assert_eq!(keys, ["type", "nsp"]);
    assert_eq!(get(&bye, "type"), &Value::from(1));
    assert_eq!(get(&bye, "nsp"), &s("/"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_frames_and_malformed_packets_close_the_connection() {
    let server = serve(msgpack_io()).await;
    let bad: Vec<Vec<u8>> = vec![
        // A text packet is not a msgpack packet.
        Vec::new(),
        // Type 5 does not exist in the msgpack parser.
        encode(&map(vec![
            ("type", Value::from(5)),
            ("nsp", s("/")),
            ("data", Value::Array(vec![s("x")])),
        ])),
        // Trailing bytes.
        {
            let mut v = encode(&map(vec![
                ("type", Value::from(2)),
                ("nsp", s("/")),
                ("data", Value::Array(vec![s("x")])),
            ]));
            v.push(0xc0);
            v
        },
        // Event data that is not an array.
        encode(&map(vec![
            ("type", Value::from(2)),
            ("nsp", s("/")),
            ("data", s("x")),
        ])),
    ];
    for (i, frame) in bad.into_iter().enumerate() {
        let mut client = server.client().await;
        join(&mut client, "/", None).await;
        if i == 0 {
            client.send(r#"42["x"]"#).await;
        } else {
            client.send_binary(&frame).await;
        }
        assert!(client.expect_closed().await.is_empty(), "case {i}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_state_recovery_over_msgpack() {
    let mut config = common::config();
    config.parser = ParserKind::Msgpack;
    config.recovery = Some(socketio::RecoveryConfig::default());
    let io = SocketIo::new(config);
    let gone = Log::new();
    let g = gone.clone();
    io.of("/").on_disconnect(move |_, reason| g.push(reason));
    let server = serve(io).await;

    let mut client = server.client().await;
    client
        .send_binary(&encode(&map(vec![
            ("type", Value::from(0)),
            ("nsp", s("/")),
        ])))
        .await;
    let (_, reply) = recv_packet(&mut client).await;
    let data = get(&reply, "data");
    let mut keys: Vec<&str> = data
        .as_map()
        .unwrap()
        .iter()
        .map(|(k, _)| k.as_str().unwrap())
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, ["pid", "sid"]);
    let sid = get(data, "sid").as_str().unwrap().to_owned();
    let pid = get(data, "pid").as_str().unwrap().to_owned();

    // The offset is the last element of the event's data, after a native binary.
    server
        .socket("/", &sid)
        .emit("e", vec![Value::Binary(vec![1])])
        .unwrap();
    let (_, event) = recv_packet(&mut client).await;
    let items = get(&event, "data").as_array().unwrap().clone();
    assert_eq!(items.len(), 3);
    assert_eq!(items[1], Value::Binary(vec![1]));
    let offset = items[2].as_str().unwrap().to_owned();
    client.drop_tcp();
    gone.wait_len(1).await;

    server.io.emit("missed", vec![Value::from(7)]).unwrap();
    let mut back = server.client().await;
    back.send_binary(&encode(&map(vec![
        ("type", Value::from(0)),
        ("nsp", s("/")),
        ("data", map(vec![("pid", s(&pid)), ("offset", s(&offset))])),
    ])))
    .await;
    let (_, missed) = recv_packet(&mut back).await;
    let items = get(&missed, "data").as_array().unwrap().clone();
    assert_eq!(items[..2], [s("missed"), Value::from(7)]);
    let (_, reply) = recv_packet(&mut back).await;
    assert_eq!(get(&reply, "type"), &Value::from(0));
    assert_eq!(get(get(&reply, "data"), "sid"), &s(&sid));
    assert_eq!(get(get(&reply, "data"), "pid"), &s(&pid));
    assert!(server.socket("/", &sid).recovered());
}
