//! The event catalogue: every event name and payload type, in one place.
//!
//! Client-to-server payloads are checked on arrival ([`parse_client`]): exactly one argument, an
//! object with the listed fields of the listed types, no others, within the size limits of
//! [`Validate`]. Server-to-client payloads go out inside an envelope ([`envelope`]):
//! `{ eventId, ts, ...payload }`, `eventId` unique so clients can drop duplicates after a
//! reconnect.
//!
//! The TypeScript twin of this module, `server/events.ts`, is generated from it ([`typescript`],
//! `sockeye events-ts`) and a test checks that the committed file matches.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use socketio::Value;

/// Event names.
pub mod name {
    /// client → server: start a search (ack).
    pub const SEARCH_START: &str = "search:start";
    /// client → server: start a model answer (ack).
    pub const MODEL_START: &str = "model:start";
    /// client → server: cancel one of your jobs (ack).
    pub const TASK_CANCEL: &str = "task:cancel";
    /// client → server: a tab's state, relayed to the user's other tabs.
    pub const TAB_UPDATE: &str = "tab:update";
    /// client → server: follow users' presence (ack).
    pub const PRESENCE_SUBSCRIBE: &str = "presence:subscribe";

    /// server → client: a search was taken by a worker.
    pub const SEARCH_STARTED: &str = "search:started";
    /// server → client: one search result.
    pub const SEARCH_RESULT: &str = "search:result:v1";
    /// server → client: the search is over.
    pub const SEARCH_COMPLETE: &str = "search:complete:v1";
    /// server → client: the next piece of a model answer.
    pub const MODEL_CHUNK: &str = "model:chunk:v1";
    /// server → client: the model answer is over.
    pub const MODEL_COMPLETE: &str = "model:complete:v1";
    /// server → client: progress of a job.
    pub const TASK_PROGRESS: &str = "task:progress:v1";
    /// server → client: a job stopped because it was cancelled.
    pub const TASK_CANCELLED: &str = "task:cancelled:v1";
    /// server → client: a job failed.
    pub const TASK_FAILED: &str = "task:failed:v1";
    /// server → client: progress of a download.
    pub const DOWNLOAD_PROGRESS: &str = "download:progress:v1";
    /// server → client: another tab of the same user changed.
    pub const TAB_UPDATED: &str = "tab:update:v1";
    /// server → client: a followed user came online or went offline.
    pub const USER_PRESENCE: &str = "user:presence:v1";
}

/// Size limits of client payloads.
pub mod limits {
    /// `search:start` `query`, in characters.
    pub const QUERY_CHARS: usize = 512;
    /// `model:start` `prompt`, in characters.
    pub const PROMPT_CHARS: usize = 8_000;
    /// `task:cancel` `jobId`, in bytes.
    pub const JOB_ID_BYTES: usize = 64;
    /// `tab:update` `tabId`, in bytes.
    pub const TAB_ID_BYTES: usize = 128;
    /// `tab:update` `state`, as JSON, in bytes.
    pub const TAB_STATE_BYTES: usize = 16 * 1024;
    /// `presence:subscribe` `userIds`, entries.
    pub const PRESENCE_USERS: usize = 100;
    /// A user id, in bytes.
    pub const USER_ID_BYTES: usize = 256;
}

// ---------------------------------------------------------------------------------------------
// TypeScript mapping
// ---------------------------------------------------------------------------------------------

/// A Rust type's TypeScript spelling.
pub trait TsType {
    /// The type expression.
    fn ts() -> String;
}

macro_rules! ts_primitive {
    ($ts:literal: $($ty:ty),*) => {
        $(impl TsType for $ty {
            fn ts() -> String {
                $ts.to_owned()
            }
        })*
    };
}
ts_primitive!("string": String);
ts_primitive!("number": u32, u64, f64);
ts_primitive!("boolean": bool);
ts_primitive!("unknown": Value);

impl<T: TsType> TsType for Vec<T> {
    fn ts() -> String {
        format!("{}[]", T::ts())
    }
}

impl<T: TsType> TsType for Option<T> {
    fn ts() -> String {
        format!("{} | null", T::ts())
    }
}

/// An object type: its name, doc and fields as TypeScript sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// Type name.
    pub name: &'static str,
    /// Doc comment.
    pub doc: String,
    /// `(camelCase name, TS type, doc)`.
    pub fields: Vec<(String, String, String)>,
}

/// `job_id` → `jobId`.
fn camel(snake: &str) -> String {
    let mut out = String::with_capacity(snake.len());
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

fn doc(lines: &[&str]) -> String {
    lines.iter().map(|l| l.trim()).collect::<Vec<_>>().join(" ")
}

/// Declares a payload struct (serde: camelCase, unknown fields refused) and its TypeScript
/// interface from one definition.
macro_rules! payload {
    ($(#[doc = $doc:literal])* pub struct $name:ident {
        $($(#[doc = $fdoc:literal])* $field:ident : $ty:ty),* $(,)?
    }) => {
        $(#[doc = $doc])*
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(rename_all = "camelCase", deny_unknown_fields)]
        pub struct $name {
            $($(#[doc = $fdoc])* pub $field: $ty,)*
        }

        impl $name {
            /// Its TypeScript interface.
            pub fn interface() -> Interface {
                Interface {
                    name: stringify!($name),
                    doc: doc(&[$($doc),*]),
                    fields: vec![$((camel(stringify!($field)), <$ty as TsType>::ts(), doc(&[$($fdoc),*]))),*],
                }
            }
        }

        impl TsType for $name {
            fn ts() -> String {
                stringify!($name).to_owned()
            }
        }
    };
}

// ---------------------------------------------------------------------------------------------
// Client → server payloads
// ---------------------------------------------------------------------------------------------

payload! {
    /// `search:start`: start a search.
    pub struct SearchStart {
        /// 1 to 512 characters, not only blanks.
        query: String,
    }
}

payload! {
    /// `model:start`: start a streamed model answer.
    pub struct ModelStart {
        /// 1 to 8000 characters, not only blanks.
        prompt: String,
    }
}

payload! {
    /// `task:cancel`: cancel one of your jobs.
    pub struct TaskCancel {
        /// The id from the start ack.
        job_id: String,
    }
}

payload! {
    /// `tab:update`: a tab's state, relayed as `tab:update:v1` to the same user's other tabs.
    pub struct TabUpdate {
        /// 1 to 128 bytes.
        tab_id: String,
        /// Any JSON value, at most 16 KiB encoded.
        state: Value,
    }
}

payload! {
    /// `presence:subscribe`: follow these users' presence.
    pub struct PresenceSubscribe {
        /// 1 to 100 user ids.
        user_ids: Vec<String>,
    }
}

// ---------------------------------------------------------------------------------------------
// Ack payloads (the part after `ok: true`)
// ---------------------------------------------------------------------------------------------

payload! {
    /// The success ack of `search:start` and `model:start`.
    pub struct JobAccepted {
        /// The job's id, for `task:cancel` and to match the events that follow.
        job_id: String,
    }
}

payload! {
    /// One user's presence.
    pub struct PresenceStatus {
        /// User id (`sub`).
        user_id: String,
        /// Whether the user has a connected socket.
        online: bool,
    }
}

payload! {
    /// The success ack of `presence:subscribe`.
    pub struct PresenceSnapshot {
        /// The current status of each requested user.
        users: Vec<PresenceStatus>,
    }
}

payload! {
    /// Why a request was refused.
    pub struct AckError {
        /// Machine-readable reason.
        code: ErrorCode,
        /// Human-readable detail.
        message: String,
    }
}

/// The error codes of acks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The payload has a wrong type, size or an unknown field; nothing happened.
    InvalidPayload,
    /// Too many starts: try again later.
    RateLimited,
    /// No such job (or it is over).
    NotFound,
    /// The job belongs to another user.
    Forbidden,
    /// No worker can take jobs right now.
    Unavailable,
    /// The job queue is full.
    QueueFull,
}

impl ErrorCode {
    /// Every code, in declaration order.
    pub const ALL: [Self; 6] = [
        Self::InvalidPayload,
        Self::RateLimited,
        Self::NotFound,
        Self::Forbidden,
        Self::Unavailable,
        Self::QueueFull,
    ];

    /// The wire string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidPayload => "invalid_payload",
            Self::RateLimited => "rate_limited",
            Self::NotFound => "not_found",
            Self::Forbidden => "forbidden",
            Self::Unavailable => "unavailable",
            Self::QueueFull => "queue_full",
        }
    }
}

impl TsType for ErrorCode {
    fn ts() -> String {
        "ErrorCode".to_owned()
    }
}

// ---------------------------------------------------------------------------------------------
// Server → client payloads (inside the envelope)
// ---------------------------------------------------------------------------------------------

payload! {
    /// `search:started`: a worker took the search.
    pub struct SearchStarted {
        /// Job id.
        job_id: String,
        /// The query.
        query: String,
    }
}

payload! {
    /// One search hit.
    pub struct SearchHit {
        /// Title.
        title: String,
        /// Link.
        url: String,
        /// Extract.
        snippet: String,
        /// Relevance, 0 to 1.
        score: f64,
    }
}

payload! {
    /// `search:result:v1`: one result of a search.
    pub struct SearchResult {
        /// Job id.
        job_id: String,
        /// 0, 1, 2... in order.
        index: u32,
        /// The hit.
        result: SearchHit,
    }
}

payload! {
    /// `search:complete:v1`: the search is over.
    pub struct SearchComplete {
        /// Job id.
        job_id: String,
        /// Results sent.
        total: u32,
        /// Time the worker spent.
        duration_ms: u64,
    }
}

payload! {
    /// `model:chunk:v1`: the next piece of a model answer.
    pub struct ModelChunk {
        /// Job id.
        job_id: String,
        /// 0, 1, 2... in order.
        index: u32,
        /// Text to append.
        chunk: String,
    }
}

payload! {
    /// `model:complete:v1`: the model answer is over.
    pub struct ModelComplete {
        /// Job id.
        job_id: String,
        /// The whole answer.
        text: String,
        /// Tokens produced.
        tokens: u32,
        /// Time the worker spent.
        duration_ms: u64,
    }
}

payload! {
    /// `task:progress:v1`: progress of a job.
    pub struct TaskProgress {
        /// Job id.
        job_id: String,
        /// 0 to 1.
        progress: f64,
        /// What the worker is doing.
        stage: String,
    }
}

payload! {
    /// `task:cancelled:v1`: the job stopped; nothing more comes for it.
    pub struct TaskCancelled {
        /// Job id.
        job_id: String,
    }
}

payload! {
    /// `task:failed:v1`: the job failed; nothing more comes for it.
    pub struct TaskFailed {
        /// Job id.
        job_id: String,
        /// What went wrong.
        message: String,
    }
}

payload! {
    /// `download:progress:v1`: progress of a download.
    pub struct DownloadProgress {
        /// Job id of the download.
        job_id: String,
        /// Bytes received so far.
        received_bytes: u64,
        /// Size, when known.
        total_bytes: Option<u64>,
    }
}

payload! {
    /// `tab:update:v1`: another tab of the same user changed.
    pub struct TabUpdated {
        /// The tab that changed.
        tab_id: String,
        /// Its state.
        state: Value,
    }
}

payload! {
    /// `user:presence:v1`: online when a user's first socket connects, offline when the last
    /// one leaves.
    pub struct UserPresence {
        /// User id.
        user_id: String,
        /// Whether the user is online now.
        online: bool,
    }
}

// ---------------------------------------------------------------------------------------------
// The catalogue
// ---------------------------------------------------------------------------------------------

/// Who sends an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// The browser.
    ClientToServer,
    /// The server or a worker.
    ServerToClient,
}

/// One event of the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventSpec {
    /// Wire name.
    pub name: &'static str,
    /// Who sends it.
    pub direction: Direction,
    /// Payload type name.
    pub payload: &'static str,
    /// For client events answered with an ack: the success type name (`""`: just `ok`).
    pub ack: Option<&'static str>,
    /// Whether the ack is optional (the client may send without one).
    pub ack_optional: bool,
}

const fn client(name: &'static str, payload: &'static str, ack: &'static str) -> EventSpec {
    EventSpec {
        name,
        direction: Direction::ClientToServer,
        payload,
        ack: Some(ack),
        ack_optional: false,
    }
}

const fn server(name: &'static str, payload: &'static str) -> EventSpec {
    EventSpec {
        name,
        direction: Direction::ServerToClient,
        payload,
        ack: None,
        ack_optional: false,
    }
}

/// Every event.
pub const CATALOGUE: &[EventSpec] = &[
    client(name::SEARCH_START, "SearchStart", "JobAccepted"),
    client(name::MODEL_START, "ModelStart", "JobAccepted"),
    client(name::TASK_CANCEL, "TaskCancel", ""),
    EventSpec {
        ack_optional: true,
        ..client(name::TAB_UPDATE, "TabUpdate", "")
    },
    client(
        name::PRESENCE_SUBSCRIBE,
        "PresenceSubscribe",
        "PresenceSnapshot",
    ),
    server(name::SEARCH_STARTED, "SearchStarted"),
    server(name::SEARCH_RESULT, "SearchResult"),
    server(name::SEARCH_COMPLETE, "SearchComplete"),
    server(name::MODEL_CHUNK, "ModelChunk"),
    server(name::MODEL_COMPLETE, "ModelComplete"),
    server(name::TASK_PROGRESS, "TaskProgress"),
    server(name::TASK_CANCELLED, "TaskCancelled"),
    server(name::TASK_FAILED, "TaskFailed"),
    server(name::DOWNLOAD_PROGRESS, "DownloadProgress"),
    server(name::TAB_UPDATED, "TabUpdated"),
    server(name::USER_PRESENCE, "UserPresence"),
];

/// Every object type of the catalogue, in the order `events.ts` declares them.
pub fn interfaces() -> Vec<Interface> {
    vec![
        SearchStart::interface(),
        ModelStart::interface(),
        TaskCancel::interface(),
        TabUpdate::interface(),
        PresenceSubscribe::interface(),
        JobAccepted::interface(),
        PresenceStatus::interface(),
        PresenceSnapshot::interface(),
        AckError::interface(),
        SearchStarted::interface(),
        SearchHit::interface(),
        SearchResult::interface(),
        SearchComplete::interface(),
        ModelChunk::interface(),
        ModelComplete::interface(),
        TaskProgress::interface(),
        TaskCancelled::interface(),
        TaskFailed::interface(),
        DownloadProgress::interface(),
        TabUpdated::interface(),
        UserPresence::interface(),
    ]
}

// ---------------------------------------------------------------------------------------------
// Validation of client payloads
// ---------------------------------------------------------------------------------------------

/// Checks beyond types: sizes and contents. `Err` is the message of the `invalid_payload` ack.
pub trait Validate {
    /// Checks the payload.
    fn validate(&self) -> Result<(), String>;
}

fn text(field: &str, value: &str, max_chars: usize) -> Result<(), String> {
    if value.trim().is_empty() {
        return Err(format!("{field} is empty"));
    }
    if value.chars().count() > max_chars {
        return Err(format!("{field} is longer than {max_chars} characters"));
    }
    Ok(())
}

fn id(field: &str, value: &str, max_bytes: usize) -> Result<(), String> {
    if value.is_empty() || value.len() > max_bytes {
        return Err(format!("{field} must be 1 to {max_bytes} bytes"));
    }
    Ok(())
}

impl Validate for SearchStart {
    fn validate(&self) -> Result<(), String> {
        text("query", &self.query, limits::QUERY_CHARS)
    }
}

impl Validate for ModelStart {
    fn validate(&self) -> Result<(), String> {
        text("prompt", &self.prompt, limits::PROMPT_CHARS)
    }
}

impl Validate for TaskCancel {
    fn validate(&self) -> Result<(), String> {
        id("jobId", &self.job_id, limits::JOB_ID_BYTES)
    }
}

impl Validate for TabUpdate {
    fn validate(&self) -> Result<(), String> {
        id("tabId", &self.tab_id, limits::TAB_ID_BYTES)?;
        if socketio::value::has_binary(&self.state) {
            return Err("state must be JSON (no binary)".into());
        }
        if socketio::value::to_json_string(&self.state).len() > limits::TAB_STATE_BYTES {
            return Err(format!(
                "state is larger than {} bytes",
                limits::TAB_STATE_BYTES
            ));
        }
        Ok(())
    }
}

impl Validate for PresenceSubscribe {
    fn validate(&self) -> Result<(), String> {
        if self.user_ids.is_empty() || self.user_ids.len() > limits::PRESENCE_USERS {
            return Err(format!(
                "userIds must have 1 to {} entries",
                limits::PRESENCE_USERS
            ));
        }
        self.user_ids
            .iter()
            .try_for_each(|u| id("userIds[]", u, limits::USER_ID_BYTES))
    }
}

/// Reads a client event's arguments as payload `T`: exactly one object argument of the right
/// shape, valid. `Err` is the message of the `invalid_payload` ack.
pub fn parse_client<T: DeserializeOwned + Validate>(args: Vec<Value>) -> Result<T, String> {
    let mut args = args.into_iter();
    let (Some(payload), None) = (args.next(), args.next()) else {
        return Err("expected exactly one argument, the payload object".into());
    };
    if !payload.is_map() {
        return Err("the payload must be an object".into());
    }
    let payload: T = socketio::from_value(payload).map_err(|e| match e {
        socketio::Error::Serde(msg) => msg,
        other => other.to_string(),
    })?;
    payload.validate()?;
    Ok(payload)
}

// ---------------------------------------------------------------------------------------------
// Envelopes and acks
// ---------------------------------------------------------------------------------------------

/// A fresh, unique event id (120 random bits, URL-safe).
pub fn new_event_id() -> String {
    engineio::generate_id()
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A serde value as a payload [`Value`], structs as objects (JSON's data model: `rmpv`'s own
/// serializer would make structs arrays).
pub fn to_payload<T: Serialize>(value: &T) -> Result<Value, socketio::Error> {
    let json = serde_json::to_value(value).map_err(|e| socketio::Error::Serde(e.to_string()))?;
    Ok(from_json(json))
}

fn from_json(json: serde_json::Value) -> Value {
    match json {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::from(b),
        serde_json::Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => Value::from(u),
            (None, Some(i), _) => Value::from(i),
            (None, None, Some(f)) => Value::from(f),
            (None, None, None) => Value::Nil,
        },
        serde_json::Value::String(s) => Value::from(s),
        serde_json::Value::Array(items) => Value::Array(items.into_iter().map(from_json).collect()),
        serde_json::Value::Object(fields) => Value::Map(
            fields
                .into_iter()
                .map(|(k, v)| (Value::from(k), from_json(v)))
                .collect(),
        ),
    }
}

/// `{ eventId, ts, ...payload }`.
pub fn envelope<T: Serialize>(payload: &T) -> Result<Value, socketio::Error> {
    let mut map = vec![
        (Value::from("eventId"), Value::from(new_event_id())),
        (Value::from("ts"), Value::from(now_ms())),
    ];
    match to_payload(payload)? {
        Value::Map(fields) => map.extend(fields),
        _ => return Err(socketio::Error::Serde("payload is not an object".into())),
    }
    Ok(Value::Map(map))
}

/// `{ ok: true, ...fields }`.
pub fn ack_ok<T: Serialize>(fields: &T) -> Value {
    let mut map = vec![(Value::from("ok"), Value::from(true))];
    if let Ok(Value::Map(fields)) = to_payload(fields) {
        map.extend(fields);
    }
    Value::Map(map)
}

/// `{ ok: true }`.
pub fn ack_ok_empty() -> Value {
    Value::Map(vec![(Value::from("ok"), Value::from(true))])
}

/// `{ ok: false, error: { code, message } }`.
pub fn ack_error(code: ErrorCode, message: impl Into<String>) -> Value {
    Value::Map(vec![
        (Value::from("ok"), Value::from(false)),
        (
            Value::from("error"),
            Value::Map(vec![
                (Value::from("code"), Value::from(code.as_str())),
                (Value::from("message"), Value::from(message.into())),
            ]),
        ),
    ])
}

// ---------------------------------------------------------------------------------------------
// TypeScript generation
// ---------------------------------------------------------------------------------------------

fn ts_doc(out: &mut String, indent: &str, doc: &str) {
    if !doc.is_empty() {
        out.push_str(&format!("{indent}/** {doc} */\n"));
    }
}

fn ts_key(name: &str) -> String {
    let mut key = String::new();
    let mut upper = false;
    for c in name.chars() {
        if c == ':' {
            upper = true;
        } else if upper {
            key.extend(c.to_uppercase());
            upper = false;
        } else {
            key.push(c);
        }
    }
    key
}

/// The contents of `server/events.ts`.
pub fn typescript() -> String {
    let mut out = String::from(
        "// Generated from server/src/events.rs by `sockeye events-ts`: do not edit by hand.\n\
         // `cargo test -p sockeye` checks that this file matches the Rust catalogue.\n\
         //\n\
         // import type { Socket } from \"socket.io-client\";\n\
         // const socket: Socket<ServerToClientEvents, ClientToServerEvents> = io({ auth: { token } });\n\n",
    );
    out.push_str(
        "/** Every server-to-client event carries it; `eventId` is unique (drop duplicates after a reconnect). */\n\
         export interface Envelope {\n  eventId: string;\n  ts: number;\n}\n\n",
    );
    out.push_str("/** The error codes of acks. */\nexport type ErrorCode =");
    for code in ErrorCode::ALL {
        out.push_str(&format!("\n  | \"{}\"", code.as_str()));
    }
    out.push_str(";\n\n");
    out.push_str(
        "/** The answer of a client event: `{ ok: true, ...T }` or `{ ok: false, error }`. */\n\
         export type Ack<T = {}> = ({ ok: true } & T) | { ok: false; error: AckError };\n\n",
    );
    for iface in interfaces() {
        ts_doc(&mut out, "", &iface.doc);
        out.push_str(&format!("export interface {} {{\n", iface.name));
        for (field, ty, doc) in &iface.fields {
            ts_doc(&mut out, "  ", doc);
            out.push_str(&format!("  {field}: {ty};\n"));
        }
        out.push_str("}\n\n");
    }
    for (title, direction) in [
        ("ClientEvents", Direction::ClientToServer),
        ("ServerEvents", Direction::ServerToClient),
    ] {
        out.push_str(&format!("export const {title} = {{\n"));
        for spec in CATALOGUE.iter().filter(|s| s.direction == direction) {
            out.push_str(&format!("  {}: \"{}\",\n", ts_key(spec.name), spec.name));
        }
        out.push_str("} as const;\n\n");
    }
    out.push_str("export interface ClientToServerEvents {\n");
    for spec in CATALOGUE
        .iter()
        .filter(|s| s.direction == Direction::ClientToServer)
    {
        let ack = match spec.ack {
            Some("") => "Ack".to_owned(),
            Some(ty) => format!("Ack<{ty}>"),
            None => String::new(),
        };
        let ack_param = match (spec.ack, spec.ack_optional) {
            (None, _) => String::new(),
            (Some(_), true) => format!(", ack?: (response: {ack}) => void"),
            (Some(_), false) => format!(", ack: (response: {ack}) => void"),
        };
        out.push_str(&format!(
            "  \"{}\": (payload: {}{ack_param}) => void;\n",
            spec.name, spec.payload
        ));
    }
    out.push_str("}\n\nexport interface ServerToClientEvents {\n");
    for spec in CATALOGUE
        .iter()
        .filter(|s| s.direction == Direction::ServerToClient)
    {
        out.push_str(&format!(
            "  \"{}\": (payload: Envelope & {}) => void;\n",
            spec.name, spec.payload
        ));
    }
    out.push_str("}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(pairs: &[(&str, Value)]) -> Value {
        Value::Map(
            pairs
                .iter()
                .map(|(k, v)| (Value::from(*k), v.clone()))
                .collect(),
        )
    }

    #[test]
    fn valid_payloads_parse() {
        let p: SearchStart = parse_client(vec![obj(&[("query", "rust".into())])]).unwrap();
        assert_eq!(p.query, "rust");
        let p: TaskCancel = parse_client(vec![obj(&[("jobId", "j1".into())])]).unwrap();
        assert_eq!(p.job_id, "j1");
        let p: TabUpdate = parse_client(vec![obj(&[
            ("tabId", "t".into()),
            ("state", obj(&[("scroll", 3.into())])),
        ])])
        .unwrap();
        assert_eq!(p.tab_id, "t");
        let p: PresenceSubscribe = parse_client(vec![obj(&[(
            "userIds",
            Value::Array(vec!["a".into(), "b".into()]),
        )])])
        .unwrap();
        assert_eq!(p.user_ids, ["a", "b"]);
    }

    #[test]
    fn invalid_payloads_are_refused() {
        let bad: Vec<Vec<Value>> = vec![
            vec![],
            vec![Value::from("rust")],
            vec![obj(&[("query", "a".into())]), Value::Nil],
            vec![obj(&[])],
            vec![obj(&[("query", 5.into())])],
            vec![obj(&[("query", "a".into()), ("extra", 1.into())])],
            vec![obj(&[("query", "   ".into())])],
            vec![obj(&[(
                "query",
                "x".repeat(limits::QUERY_CHARS + 1).into(),
            )])],
            vec![obj(&[("query", Value::Nil)])],
        ];
        for args in bad {
            assert!(
                parse_client::<SearchStart>(args.clone()).is_err(),
                "{args:?}"
            );
        }
        let too_many: Vec<Value> = (0..=limits::PRESENCE_USERS)
            .map(|i| Value::from(i.to_string()))
            .collect();
        assert!(
            parse_client::<PresenceSubscribe>(vec![obj(&[("userIds", Value::Array(too_many))])])
                .is_err()
        );
        assert!(
            parse_client::<PresenceSubscribe>(vec![obj(&[("userIds", Value::Array(vec![]))])])
                .is_err()
        );
        assert!(
            parse_client::<PresenceSubscribe>(vec![obj(&[(
                "userIds",
                Value::Array(vec![1.into()])
            )])])
            .is_err()
        );
        let big = Value::from("x".repeat(limits::TAB_STATE_BYTES));
        assert!(
            parse_client::<TabUpdate>(vec![obj(&[("tabId", "t".into()), ("state", big)])]).is_err()
        );
        assert!(
            parse_client::<TabUpdate>(vec![obj(&[
                ("tabId", "t".into()),
                ("state", Value::Binary(vec![1]))
            ])])
            .is_err()
        );
        assert!(
            parse_client::<TaskCancel>(vec![obj(&[("jobId", "x".repeat(65).into())])]).is_err()
        );
    }

    #[test]
    fn envelope_puts_id_and_time_first() {
        let v = envelope(&TaskCancelled { job_id: "j".into() }).unwrap();
        let map = v.as_map().unwrap();
        let keys: Vec<_> = map.iter().map(|(k, _)| k.as_str().unwrap()).collect();
        assert_eq!(keys, ["eventId", "ts", "jobId"]);
        let other = envelope(&TaskCancelled { job_id: "j".into() }).unwrap();
        assert_ne!(map[0].1, other.as_map().unwrap()[0].1);
    }

    #[test]
    fn every_catalogue_type_is_declared() {
        let names: Vec<_> = interfaces().iter().map(|i| i.name).collect();
        for spec in CATALOGUE {
            assert!(names.contains(&spec.payload), "{}", spec.payload);
            if let Some(ack) = spec.ack.filter(|a| !a.is_empty()) {
                assert!(names.contains(&ack), "{ack}");
            }
        }
        let mut seen = std::collections::HashSet::new();
        assert!(
            CATALOGUE.iter().all(|s| seen.insert(s.name)),
            "duplicate names"
        );
    }

    #[test]
    fn serde_names_match_the_interfaces() {
        let v = to_payload(&DownloadProgress {
            job_id: "j".into(),
            received_bytes: 1,
            total_bytes: None,
        })
        .unwrap();
        let keys: Vec<_> = v
            .as_map()
            .unwrap()
            .iter()
            .map(|(k, _)| k.as_str().unwrap().to_owned())
            .collect();
        let fields: Vec<_> = DownloadProgress::interface()
            .fields
            .into_iter()
            .map(|f| f.0)
            .collect();
        assert_eq!(keys, fields);
        assert_eq!(ts_key("search:result:v1"), "searchResultV1");
    }
}
