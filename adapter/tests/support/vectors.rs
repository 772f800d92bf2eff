//! Loading the captured Node vectors (`tests/vectors/*.json`, copied from
//! `shared/vectors/redis-adapter/`) and reading their JSON view of payloads.

use socketio::Value;

/// One captured Redis command.
#[derive(Debug, Clone)]
pub struct Vector {
    pub operation: String,
    pub scenario: String,
    pub seq: u64,
    pub sender: String,
    pub command: String,
    pub channel: String,
    pub payload: Vec<u8>,
    pub encoding: String,
    pub decoded: serde_json::Value,
}

impl Vector {
    pub fn name(&self) -> String {
        format!(
            "{} #{} {} ({})",
            self.scenario, self.seq, self.operation, self.sender
        )
    }
}

/// The vectors of `file`, with the file's `scenarios` block.
pub fn load(file: &str) -> (Vec<Vector>, serde_json::Value) {
    let path = format!("{}/tests/vectors/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    let vectors = doc["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| Vector {
            operation: v["operation"].as_str().unwrap().to_owned(),
            scenario: v["scenario"].as_str().unwrap().to_owned(),
            seq: v["seq"].as_u64().unwrap(),
            sender: v["sender"].as_str().unwrap().to_owned(),
            command: v["command"].as_str().unwrap().to_owned(),
            channel: v["channel"].as_str().unwrap().to_owned(),
            payload: hex(v["payload_hex"].as_str().unwrap()),
            encoding: v["encoding"].as_str().unwrap().to_owned(),
            decoded: v["decoded"].clone(),
        })
        .collect();
    (vectors, doc["scenarios"].clone())
}

pub fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

pub fn to_hex(b: &[u8]) -> String {
    b.iter().map(|b| format!("{b:02x}")).collect()
}

/// A vector's JSON view as the [`Value`] our decoder gives after
/// `wire::normalize_dates`: `$bin` / `$arraybuffer` are binary, `$date` the ISO string,
/// `$undefined` is dropped from maps and `null` in arrays (notepack 3 semantics).
pub fn expected(json: &serde_json::Value) -> Value {
    convert(json).unwrap_or(Value::Nil)
}

fn convert(json: &serde_json::Value) -> Option<Value> {
    use serde_json::Value as J;
    Some(match json {
        J::Null => Value::Nil,
        J::Bool(b) => Value::Boolean(*b),
        J::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => Value::from(u),
            (None, Some(i)) => Value::from(i),
            _ => Value::F64(n.as_f64().unwrap()),
        },
        J::String(s) => Value::from(s.as_str()),
        J::Array(items) => Value::Array(
            items
                .iter()
                .map(|i| convert(i).unwrap_or(Value::Nil))
                .collect(),
        ),
        J::Object(map) => {
            if let Some(J::String(h)) = map.get("$bin").or_else(|| map.get("$arraybuffer")) {
                return Some(Value::Binary(hex(h)));
            }
            if let Some(J::String(iso)) = map.get("$date") {
                return Some(Value::from(iso.as_str()));
            }
            if map.contains_key("$undefined") {
                return None;
            }
            Value::Map(
                map.iter()
                    .filter_map(|(k, v)| Some((Value::from(k.as_str()), convert(v)?)))
                    .collect(),
            )
        }
    })
}
