//! Locust 2.x's master/worker messages: the msgpack envelope `[type, data, node_id]` and typed
//! views of each message gsai-load sends or understands.
//!
//! The envelope is exactly what Locust's `Message.serialize()` produces (msgpack ≥ 1.0 defaults:
//! str type for text, smallest integer encoding, float64), so both sides interoperate with
//! Locust. What Locust has no word for travels in an extra `"gsai"` key, which Locust ignores;
//! [`GSAI_PROTOCOL`] versions that key's content.

use rmpv::Value;

/// Version of the `"gsai"` extension carried in `ack`, `spawn` and `stats`.
pub const GSAI_PROTOCOL: u64 = 1;

/// The user class name gsai-load workers report (declare it in a Locust master's locustfile).
pub const USER_CLASS: &str = "GsaiUser";

/// Why a payload is not a Locust message.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    /// Not valid msgpack, or trailing bytes.
    #[error("not a msgpack message: {0}")]
    Msgpack(String),
    /// Valid msgpack but not `[str, any, str]`, or a field of the wrong type.
    #[error("malformed {kind} message: {reason}")]
    Shape {
        /// The message type, or "?" when unknown.
        kind: String,
        /// What is wrong.
        reason: String,
    },
}

/// One message: Locust's `Message(type, data, node_id)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    /// Message type, e.g. `heartbeat`.
    pub kind: String,
    /// Payload (nil, a map, a number...).
    pub data: Value,
    /// The worker's id (both directions).
    pub node_id: String,
}

impl Message {
    /// A message.
    pub fn new(kind: &str, data: Value, node_id: &str) -> Self {
        Self {
            kind: kind.into(),
            data,
            node_id: node_id.into(),
        }
    }

    /// msgpack bytes, as Locust's `Message.serialize()`.
    pub fn encode(&self) -> Vec<u8> {
        let v = Value::Array(vec![
            Value::from(self.kind.as_str()),
            self.data.clone(),
            Value::from(self.node_id.as_str()),
        ]);
        let mut out = Vec::with_capacity(64);
        // Writing into a Vec cannot fail.
        let _ = rmpv::encode::write_value(&mut out, &v);
        out
    }

    /// Parses msgpack bytes, as Locust's `Message.unserialize()`.
    pub fn decode(bytes: &[u8]) -> Result<Self, ProtocolError> {
        let mut rd = bytes;
        let v =
            rmpv::decode::read_value(&mut rd).map_err(|e| ProtocolError::Msgpack(e.to_string()))?;
        if !rd.is_empty() {
            return Err(ProtocolError::Msgpack(format!(
                "{} bytes after the message",
                rd.len()
            )));
        }
        let shape = |reason: &str| ProtocolError::Shape {
            kind: "?".into(),
            reason: reason.into(),
        };
        let Value::Array(items) = v else {
            return Err(shape("not an array"));
        };
        let [kind, data, node_id]: [Value; 3] = items
            .try_into()
            .map_err(|_| shape("not a 3-element array"))?;
        let kind = kind
            .as_str()
            .ok_or_else(|| shape("type is not a string"))?
            .to_string();
        let node_id = match node_id {
            Value::String(s) => s.into_str().unwrap_or_default(),
            Value::Binary(b) => String::from_utf8_lossy(&b).into_owned(),
            _ => return Err(shape("node_id is not a string")),
        };
        Ok(Self {
            kind,
            data,
            node_id,
        })
    }
}

/// Looks up `key` in a msgpack map.
pub fn get<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.as_map()?
        .iter()
        .find(|(k, _)| k.as_str() == Some(key))
        .map(|(_, v)| v)
}

/// A number as u64 (non-negative integers, or floats rounded down).
pub fn as_u64(v: &Value) -> Option<u64> {
    v.as_u64()
        .or_else(|| v.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
}

/// A number as f64 (integers or floats).
pub fn as_f64(v: &Value) -> Option<f64> {
    v.as_f64()
        .or_else(|| v.as_i64().map(|i| i as f64))
        .or_else(|| v.as_u64().map(|i| i as f64))
}

/// A msgpack map from string keys, in order.
pub fn map(entries: Vec<(&str, Value)>) -> Value {
    Value::Map(
        entries
            .into_iter()
            .map(|(k, v)| (Value::from(k), v))
            .collect(),
    )
}

/// `{class: count}` maps, in order.
pub type ClassCounts = Vec<(String, u64)>;

fn class_counts(v: Option<&Value>) -> ClassCounts {
    v.and_then(Value::as_map)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.as_str()?.to_string(), as_u64(v)?)))
                .collect()
        })
        .unwrap_or_default()
}

fn class_counts_value(c: &ClassCounts) -> Value {
    Value::Map(
        c.iter()
            .map(|(k, n)| (Value::from(k.as_str()), Value::from(*n)))
            .collect(),
    )
}

/// A `spawn` order: the absolute number of users per class this worker should run.
#[derive(Clone, Debug, PartialEq)]
pub struct Spawn {
    /// Master's clock when sent; workers drop orders not newer than the last one.
    pub timestamp: f64,
    /// Users per class.
    pub user_classes_count: ClassCounts,
    /// Target host, if the master has one.
    pub host: Option<String>,
    /// Seconds in-flight requests may finish after a stop (None: Locust's 0).
    pub stop_timeout: Option<f64>,
    /// The master's options, Locust style (informational for us).
    pub parsed_options: Value,
    /// A gsai master's plan, as JSON with the token redacted.
    pub gsai_plan: Option<String>,
}

impl Spawn {
    /// Total users asked for.
    pub fn user_count(&self) -> u64 {
        // The master's figures: saturate rather than overflow, whatever it sends.
        self.user_classes_count
            .iter()
            .fold(0, |t, (_, n)| t.saturating_add(*n))
    }
}

/// Messages a worker receives.
#[derive(Clone, Debug, PartialEq)]
pub enum ToWorker {
    /// Registration accepted; `gsai` says the master is a gsai-load master.
    Ack {
        /// The worker's stable index.
        index: Option<u64>,
        /// The master understands the `"gsai"` extension.
        gsai: bool,
    },
    /// Run this many users.
    Spawn(Spawn),
    /// The whole ramp-up is done.
    SpawningComplete {
        /// Users over all workers.
        user_count: u64,
    },
    /// The master is alive.
    Heartbeat,
    /// Stop users, report, then register again.
    Stop,
    /// Stop users, report, exit.
    Quit,
    /// Reconnect with the same identity.
    Reconnect,
    /// Anything else (logged and ignored).
    Other(String),
}

impl ToWorker {
    /// Reads a message from the master.
    pub fn parse(m: &Message) -> Result<Self, ProtocolError> {
        let bad = |reason: &str| ProtocolError::Shape {
            kind: m.kind.clone(),
            reason: reason.into(),
        };
        Ok(match m.kind.as_str() {
            "ack" => ToWorker::Ack {
                index: get(&m.data, "index").and_then(as_u64),
                gsai: get(&m.data, "gsai").is_some(),
            },
            "spawn" => {
                let d = &m.data;
                ToWorker::Spawn(Spawn {
                    timestamp: get(d, "timestamp")
                        .and_then(as_f64)
                        .ok_or_else(|| bad("no timestamp"))?,
                    user_classes_count: class_counts(get(d, "user_classes_count")),
                    host: get(d, "host")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                        .filter(|h| !h.is_empty()),
                    stop_timeout: get(d, "stop_timeout").and_then(as_f64),
                    parsed_options: get(d, "parsed_options").cloned().unwrap_or(Value::Nil),
                    gsai_plan: get(d, "gsai")
                        .and_then(|g| get(g, "plan"))
                        .and_then(Value::as_str)
                        .map(str::to_string),
                })
            }
            "spawning_complete" => ToWorker::SpawningComplete {
                user_count: get(&m.data, "user_count").and_then(as_u64).unwrap_or(0),
            },
            "heartbeat" => ToWorker::Heartbeat,
            "stop" => ToWorker::Stop,
            "quit" => ToWorker::Quit,
            "reconnect" => ToWorker::Reconnect,
            other => ToWorker::Other(other.to_string()),
        })
    }

    /// The message, addressed to `node_id`.
    pub fn to_message(&self, node_id: &str) -> Message {
        let (kind, data) = match self {
            ToWorker::Ack { index, gsai } => {
                let mut e = vec![("index", index.map_or(Value::Nil, Value::from))];
                if *gsai {
                    e.push(("gsai", Value::from(GSAI_PROTOCOL)));
                }
                ("ack", map(e))
            }
            ToWorker::Spawn(s) => {
                let mut e = vec![
                    ("timestamp", Value::F64(s.timestamp)),
                    (
                        "user_classes_count",
                        class_counts_value(&s.user_classes_count),
                    ),
                    ("host", s.host.as_deref().map_or(Value::Nil, Value::from)),
                    (
                        "stop_timeout",
                        s.stop_timeout.map_or(Value::Nil, Value::F64),
                    ),
                    ("parsed_options", s.parsed_options.clone()),
                ];
                if let Some(plan) = &s.gsai_plan {
                    e.push((
                        "gsai",
                        map(vec![
                            ("version", Value::from(GSAI_PROTOCOL)),
                            ("plan", Value::from(plan.as_str())),
                        ]),
                    ));
                }
                ("spawn", map(e))
            }
            ToWorker::SpawningComplete { user_count } => (
                "spawning_complete",
                map(vec![("user_count", Value::from(*user_count))]),
            ),
            ToWorker::Heartbeat => ("heartbeat", Value::Nil),
            ToWorker::Stop => ("stop", Value::Nil),
            ToWorker::Quit => ("quit", Value::Nil),
            ToWorker::Reconnect => ("reconnect", Value::Nil),
            ToWorker::Other(k) => (k.as_str(), Value::Nil),
        };
        Message::new(kind, data, node_id)
    }
}

/// A worker's heartbeat.
#[derive(Clone, Debug, PartialEq)]
pub struct Heartbeat {
    /// `ready`, `spawning`, `running`, `stopped`...
    pub state: String,
    /// CPU use of the worker process, percent of one core.
    pub cpu_percent: f64,
    /// Resident memory, bytes, when known.
    pub memory_bytes: Option<u64>,
}

/// Messages a master receives.
#[derive(Clone, Debug, PartialEq)]
pub enum ToMaster {
    /// Register; Locust sends its version, Boomer and gsai-load send -1 (skips the check).
    ClientReady(Value),
    /// A spawn order arrived.
    Spawning,
    /// The worker runs this many users.
    SpawningComplete {
        /// Users per class.
        user_classes_count: ClassCounts,
        /// Total users.
        user_count: u64,
    },
    /// Alive, with state and load.
    Heartbeat(Heartbeat),
    /// A stats report (see [`super::locust_stats`]).
    Stats(Value),
    /// Users stopped after a `stop`.
    ClientStopped,
    /// The worker is leaving.
    Quit,
    /// An error in a user.
    Exception {
        /// Message.
        msg: String,
        /// Traceback or cause chain.
        traceback: String,
    },
    /// Anything else (`logs`, custom messages).
    Other(String),
}

impl ToMaster {
    /// Reads a message from a worker.
    pub fn parse(m: &Message) -> Result<Self, ProtocolError> {
        let text = |k: &str| {
            get(&m.data, k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        Ok(match m.kind.as_str() {
            "client_ready" => ToMaster::ClientReady(m.data.clone()),
            "spawning" => ToMaster::Spawning,
            "spawning_complete" => ToMaster::SpawningComplete {
                user_classes_count: class_counts(get(&m.data, "user_classes_count")),
                user_count: get(&m.data, "user_count").and_then(as_u64).unwrap_or(0),
            },
            "heartbeat" => ToMaster::Heartbeat(Heartbeat {
                state: text("state"),
                cpu_percent: get(&m.data, "current_cpu_usage")
                    .and_then(as_f64)
                    .unwrap_or(0.0),
                memory_bytes: get(&m.data, "current_memory_usage").and_then(as_u64),
            }),
            "stats" => {
                if m.data.as_map().is_none() {
                    return Err(ProtocolError::Shape {
                        kind: m.kind.clone(),
                        reason: "data is not a map".into(),
                    });
                }
                ToMaster::Stats(m.data.clone())
            }
            "client_stopped" => ToMaster::ClientStopped,
            "quit" => ToMaster::Quit,
            "exception" => ToMaster::Exception {
                msg: text("msg"),
                traceback: text("traceback"),
            },
            other => ToMaster::Other(other.to_string()),
        })
    }

    /// The message, from `node_id`.
    pub fn to_message(&self, node_id: &str) -> Message {
        let (kind, data) = match self {
            ToMaster::ClientReady(v) => ("client_ready", v.clone()),
            ToMaster::Spawning => ("spawning", Value::Nil),
            ToMaster::SpawningComplete {
                user_classes_count,
                user_count,
            } => (
                "spawning_complete",
                map(vec![
                    ("user_classes_count", class_counts_value(user_classes_count)),
                    ("user_count", Value::from(*user_count)),
                ]),
            ),
            ToMaster::Heartbeat(h) => {
                let mut e = vec![
                    ("state", Value::from(h.state.as_str())),
                    ("current_cpu_usage", Value::F64(h.cpu_percent)),
                ];
                if let Some(m) = h.memory_bytes {
                    e.push(("current_memory_usage", Value::from(m)));
                }
                ("heartbeat", map(e))
            }
            ToMaster::Stats(v) => ("stats", v.clone()),
            ToMaster::ClientStopped => ("client_stopped", Value::Nil),
            ToMaster::Quit => ("quit", Value::Nil),
            ToMaster::Exception { msg, traceback } => (
                "exception",
                map(vec![
                    ("msg", Value::from(msg.as_str())),
                    ("traceback", Value::from(traceback.as_str())),
                ]),
            ),
            ToMaster::Other(k) => (k.as_str(), Value::Nil),
        };
        Message::new(kind, data, node_id)
    }
}

#[cfg(test)]
mod tests;
