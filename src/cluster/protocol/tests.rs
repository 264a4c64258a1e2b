//! Round trips of every message type against bytes made by Locust's own encoder
//! (tests/fixtures/locust/*.bin, written by tests/locust/make_fixtures.py).

use super::*;

const NODE: &str = "worker-host_0123456789abcdef0123456789abcdef";

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/locust/{name}.bin",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Decodes the fixture, checks the typed view, and re-encodes the typed view to the same bytes.
fn to_worker(name: &str, expected: ToWorker) {
    let bytes = fixture(name);
    let m = Message::decode(&bytes).unwrap();
    assert_eq!(m.node_id, NODE);
    let typed = ToWorker::parse(&m).unwrap();
    assert_eq!(typed, expected, "{name}");
    assert_eq!(
        typed.to_message(NODE).encode(),
        bytes,
        "{name}: bytes differ"
    );
    assert_eq!(m.encode(), bytes, "{name}: envelope round trip");
}

fn to_master(name: &str, expected: ToMaster) {
    let bytes = fixture(name);
    let m = Message::decode(&bytes).unwrap();
    assert_eq!(m.node_id, NODE);
    let typed = ToMaster::parse(&m).unwrap();
    assert_eq!(typed, expected, "{name}");
    assert_eq!(
        typed.to_message(NODE).encode(),
        bytes,
        "{name}: bytes differ"
    );
}

#[test]
fn master_to_worker_messages_match_locust_bytes() {
    to_worker(
        "ack",
        ToWorker::Ack {
            index: Some(3),
            gsai: false,
        },
    );
    to_worker(
        "spawn",
        ToWorker::Spawn(Spawn {
            timestamp: 1700000000.25,
            user_classes_count: vec![(USER_CLASS.into(), 7)],
            host: Some("http://127.0.0.1:8080".into()),
            stop_timeout: Some(2.5),
            parsed_options: map(vec![
                ("headless", Value::Boolean(true)),
                ("num_users", Value::from(10)),
                ("spawn_rate", Value::F64(2.0)),
                ("run_time", Value::Nil),
            ]),
            gsai_plan: None,
        }),
    );
    to_worker(
        "spawning_complete_master",
        ToWorker::SpawningComplete { user_count: 21 },
    );
    to_worker("heartbeat_master", ToWorker::Heartbeat);
    to_worker("stop", ToWorker::Stop);
    to_worker("quit", ToWorker::Quit);
    to_worker("reconnect", ToWorker::Reconnect);
}

#[test]
fn worker_to_master_messages_match_locust_bytes() {
    to_master(
        "client_ready_minus1",
        ToMaster::ClientReady(Value::from(-1)),
    );
    to_master(
        "client_ready_version",
        ToMaster::ClientReady(Value::from("2.47.0")),
    );
    to_master("spawning", ToMaster::Spawning);
    to_master(
        "spawning_complete_worker",
        ToMaster::SpawningComplete {
            user_classes_count: vec![(USER_CLASS.into(), 7)],
            user_count: 7,
        },
    );
    to_master(
        "heartbeat_worker",
        ToMaster::Heartbeat(Heartbeat {
            state: "running".into(),
            cpu_percent: 12.5,
            memory_bytes: Some(123456789),
        }),
    );
    to_master("client_stopped", ToMaster::ClientStopped);
    to_master("quit", ToMaster::Quit);
    to_master(
        "exception",
        ToMaster::Exception {
            msg: "boom".into(),
            traceback: "Traceback (most recent call last):\n".into(),
        },
    );
    let stats = Message::decode(&fixture("stats")).unwrap();
    assert!(matches!(
        ToMaster::parse(&stats).unwrap(),
        ToMaster::Stats(_)
    ));
}

#[test]
fn gsai_extensions_survive_a_round_trip() {
    let ack = ToWorker::Ack {
        index: Some(0),
        gsai: true,
    };
    let back = ToWorker::parse(&Message::decode(&ack.to_message("n").encode()).unwrap()).unwrap();
    assert_eq!(back, ack);
    let spawn = ToWorker::Spawn(Spawn {
        timestamp: 1.5,
        user_classes_count: vec![(USER_CLASS.into(), 2)],
        host: None,
        stop_timeout: None,
        parsed_options: Value::Map(vec![]),
        gsai_plan: Some("{\"host\":\"http://x\"}".into()),
    });
    let back = ToWorker::parse(&Message::decode(&spawn.to_message("n").encode()).unwrap()).unwrap();
    assert_eq!(back, spawn);
}

#[test]
fn garbage_is_an_error_not_a_panic() {
    for bad in [
        &b""[..],
        b"\xc1",
        b"\x93\xa1a\xc0",
        b"\x92\xa1a\xc0",
        b"\x93\x01\xc0\xa1n",
        b"\x93\xa1a\xc0\xa1n\x00",
        b"\xdd\xff\xff\xff\xff",
    ] {
        assert!(Message::decode(bad).is_err(), "{bad:?}");
    }
    let m = Message::new("spawn", Value::Nil, "n");
    assert!(ToWorker::parse(&m).is_err(), "a spawn without timestamp");
    let m = Message::new("stats", Value::from(3), "n");
    assert!(ToMaster::parse(&m).is_err());
    let m = Message::new("update_user_class", Value::Nil, "n");
    assert_eq!(
        ToWorker::parse(&m).unwrap(),
        ToWorker::Other("update_user_class".into())
    );
}
