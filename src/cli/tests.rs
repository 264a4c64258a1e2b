//! The command line's sources and the one plan builder: config files, precedence, last-wins,
//! help headings, and that the CLI and the web form make the same plan.

use super::sources::{parse_strs, ParseError, Places};
use super::*;
use crate::web::{Controller, FormDefaults, StartRequest};

fn places(dir: &std::path::Path) -> Places {
    Places {
        home: None,
        cwd: dir.to_path_buf(),
    }
}

fn run_args(argv: &[&str], places: &Places) -> RunArgs {
    match parse_strs(argv, places) {
        Ok(p) => p.cli.run,
        Err(e) => panic!("{argv:?}: {e}"),
    }
}

#[test]
fn a_repeated_flag_takes_its_last_value() {
    let dir = tempfile::tempdir().unwrap();
    let a = run_args(
        &[
            "gsai-load",
            "-t",
            "8s",
            "-u",
            "3",
            "-t",
            "4s",
            "--users",
            "5",
        ],
        &places(dir.path()),
    );
    assert_eq!(a.run_time, Some(Duration::from_secs(4)));
    assert_eq!(a.users, 5);
}

#[test]
fn help_groups_options_under_headings() {
    use clap::CommandFactory;
    let help = Cli::command().render_long_help().to_string();
    for h in [
        heading::COMMON,
        heading::LOAD,
        heading::WORKLOAD,
        heading::OUTPUTS,
        heading::WEB,
        heading::DISTRIBUTED,
        heading::TIMEOUTS,
    ] {
        assert!(help.contains(&format!("{h}:")), "no '{h}' in --help");
    }
}

#[test]
fn a_locust_conf_is_read_and_flags_win_over_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("locust.conf"),
        "# Locust's own file\nlocustfile = locustfile.py\nheadless = true\nusers = 7\nspawn-rate = 3\nrun-time = 2m\nhost = http://127.0.0.1:9\ncsv = out\ncsv-full-history\nmaster = true\nexpect-workers = 2\nonly-summary = true\nloglevel = INFO\n",
    )
    .unwrap();
    let p = parse_strs(&["gsai-load", "-u", "9"], &places(dir.path())).unwrap();
    let a = &p.cli.run;
    assert!(a.headless && a.outputs.csv_full_history);
    assert_eq!((a.users, a.spawn_rate), (9, 3.0));
    assert_eq!(a.run_time, Some(Duration::from_secs(120)));
    assert_eq!(a.outputs.csv.as_deref(), Some(std::path::Path::new("out")));
    assert_eq!(p.cli.cluster.expect_workers, 2);
    assert_eq!(a.print_every, 0.0);
    assert!(
        p.notes.iter().any(|n| n.contains("locustfile ignored")),
        "{:?}",
        p.notes
    );
    assert!(p.notes.iter().any(|n| n.contains("loglevel ignored")));
    // The same file at a worker: its role wins, the master's keys are dropped.
    let w = parse_strs(&["gsai-load", "--worker"], &places(dir.path())).unwrap();
    assert!(w.cli.cluster.worker && !w.cli.cluster.master);
    // A TOML file and --config layer over it; --config wins.
    std::fs::write(
        dir.path().join("gsai-load.toml"),
        "users = 4\nspawn_rate = 2.5\n",
    )
    .unwrap();
    let extra = dir.path().join("extra.conf");
    std::fs::write(&extra, "spawn-rate = 6\n").unwrap();
    let a = run_args(
        &["gsai-load", "--config", extra.to_str().unwrap()],
        &places(dir.path()),
    );
    assert_eq!((a.users, a.spawn_rate), (4, 6.0));
}

#[test]
fn file_errors_name_the_file_the_line_and_the_key_never_a_value() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("locust.conf");
    std::fs::write(&conf, "users = 2\nspwan-rate = 3\n").unwrap();
    let err = |places: &Places| match parse_strs(&["gsai-load"], places) {
        Err(ParseError::Source(e)) => e.to_string(),
        other => panic!("{other:?}"),
    };
    let e = err(&places(dir.path()));
    assert!(e.contains("locust.conf, line 2"), "{e}");
    assert!(
        e.contains("'spwan-rate'") && e.contains("did you mean 'spawn-rate'"),
        "{e}"
    );
    std::fs::write(&conf, "sk-abc123secret\n").unwrap();
    let e = err(&places(dir.path()));
    assert!(e.contains("line 1") && !e.contains("sk-abc"), "{e}");
    std::fs::write(&conf, "users = 2\nrun-time = soon\n").unwrap();
    let e = err(&places(dir.path()));
    assert!(
        e.contains("locust.conf, line 2: run-time: ") && e.contains("soon"),
        "{e}"
    );
    std::fs::write(&conf, "headless = maybe\n").unwrap();
    assert!(err(&places(dir.path())).contains("headless is a switch"));
    let missing = dir.path().join("nope.conf");
    let e = match parse_strs(
        &["gsai-load", "--config", missing.to_str().unwrap()],
        &places(dir.path()),
    ) {
        Err(ParseError::Source(e)) => e.to_string(),
        other => panic!("{other:?}"),
    };
    assert!(e.contains("--config") && e.contains("nope.conf"), "{e}");
}

#[test]
fn subcommands_ignore_config_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("locust.conf"), "users = 2\n").unwrap();
    let p = parse_strs(&["gsai-load", "completions", "bash"], &places(dir.path())).unwrap();
    assert!(matches!(p.cli.command, Some(Command::Completions(_))));
}

/// The same settings through the command line and through the web form (a template from the
/// command line, completed by the form) make the same plan.
#[test]
fn the_web_form_and_the_cli_build_the_same_plan() {
    let dir = tempfile::tempdir().unwrap();
    let common = ["gsai-load", "--wait", "constant(0.5)", "--max-tokens", "64"];
    let full = [
        &common[..],
        &[
            "-u",
            "3",
            "-r",
            "2",
            "-H",
            "http://127.0.0.1:9",
            "--model",
            "m",
            "-t",
            "9s",
            "--api",
            "openai",
        ],
    ]
    .concat();
    let cli_plan = run_args(&full, &places(dir.path())).to_plan().unwrap();
    let template = run_args(&common, &places(dir.path())).to_input();
    let checked = template.check_template().unwrap();
    assert_eq!(checked.host, "", "a template has no placeholder host");
    let defaults = FormDefaults {
        users: 1,
        spawn_rate: 1.0,
        host: None,
        model: None,
        run_time: None,
        api: ApiKind::Openwebui,
    };
    let c = Controller::new(template, defaults);
    let web_plan = c
        .plan_for(&StartRequest {
            users: 3,
            spawn_rate: 2.0,
            host: Some("http://127.0.0.1:9".into()),
            model: Some("m".into()),
            run_time: Some(Duration::from_secs(9)),
            api: Some(ApiKind::Openai),
            token: None,
        })
        .unwrap();
    assert_eq!(
        serde_json::to_value(&cli_plan).unwrap(),
        serde_json::to_value(&web_plan).unwrap()
    );
}
