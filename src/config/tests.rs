//! Unit tests of the pipeline file: parsing, validation and the keys named in errors.

use super::*;

fn minimal() -> String {
    super::test_support::pipeline_text(r#"{ kind = "private_token", token = "pit-1" }"#, "")
}

fn parse(text: &str) -> Result<PipelineConfig, ConfigError> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("p.toml");
    std::fs::write(&path, text).expect("write");
    PipelineConfig::load(&path)
}

#[test]
fn minimal_file_parses_with_defaults() {
    let config = parse(&minimal()).expect("valid");
    assert_eq!(config.ghl.rate_limit.burst, 100);
    assert_eq!(config.pipeline.default_region, "US");
    assert!(config.state_dir().ends_with("state"));
}

#[test]
fn unknown_key_is_named_with_its_line() {
    let text = minimal().replace("name = \"t\"", "name = \"t\"\nstate_dri = \"x\"");
    let err = parse(&text).expect_err("typo must fail").to_string();
    assert!(err.contains("state_dri"), "{err}");
    assert!(err.contains("line"), "{err}");
}

#[test]
fn a_parse_error_never_quotes_a_secret() {
    let text = minimal().replace(
        "token_secret = \"secret\"",
        "token_secrt = \"sbx!Zq9-very-private\"",
    );
    let err = parse(&text).expect_err("typo must fail").to_string();
    assert!(err.contains("token_secrt"), "the key is named: {err}");
    assert!(err.contains("line"), "{err}");
    assert!(!err.contains("sbx!Zq9"), "the secret is quoted: {err}");
    let text = minimal().replace("token = \"pit-1\"", "token = 12345678");
    let err = parse(&text).expect_err("wrong type").to_string();
    assert!(!err.contains("12345678"), "the secret is quoted: {err}");
    // Other values are still quoted: they help and are not secret.
    let text = minimal().replace("name = \"t\"", "name = 5");
    let err = parse(&text).expect_err("wrong type").to_string();
    assert!(err.contains("name = 5"), "{err}");
}

#[test]
fn a_state_url_is_checked_and_named_without_its_password() {
    let config = parse(&minimal()).expect("valid");
    assert!(
        config.state_store().postgres.is_none(),
        "absent: local state"
    );
    // SAFETY of the test: the variable name is unique to this test.
    unsafe { std::env::set_var("CONTACTSYNC_TEST_STATE_PASSWORD", "pw-91xq") };
    let with = |url: &str| format!("{}\n[state]\nurl = \"{url}\"\n", minimal());
    let config = parse(&with(
        "postgres://app:${CONTACTSYNC_TEST_STATE_PASSWORD}@db:5432/cs?sslmode=disable",
    ))
    .expect("valid");
    let target = config.state_store().postgres.expect("postgres");
    assert_eq!(
        target.url.expose(),
        "postgres://app:pw-91xq@db:5432/cs?sslmode=disable"
    );
    assert_eq!(
        (target.pipeline.as_str(), target.location.as_str()),
        ("t", "loc")
    );
    for (url, says) in [
        ("mysql://app:pw-91xq@db/cs", "postgres://"),
        ("postgres://app:pw-91xq@db:notaport/cs", "not a PostgreSQL"),
        ("postgres://app:pw-91xq@db", "names no database"),
        (
            "postgres://app:pw-91xq@db/cs?sslmode=allow",
            "sslmode=allow is not one of",
        ),
        (
            "postgres://app:pw-91xq@db/cs?sslmode=verify-ca&sslrootcert=/nonexistent/ca.pem",
            "sslrootcert /nonexistent/ca.pem: no such file",
        ),
    ] {
        let err = parse(&with(url)).expect_err(url).to_string();
        assert!(
            err.contains("state.url") && err.contains(says),
            "{url}: {err}"
        );
        assert!(!err.contains("pw-91xq"), "the password is quoted: {err}");
    }
    for mode in ["disable", "prefer", "require", "verify-ca", "verify-full"] {
        let url = format!("postgres://app:pw-91xq@db/cs?sslmode={mode}");
        parse(&with(&url)).unwrap_or_else(|e| panic!("{mode}: {e}"));
    }
}

#[test]
fn a_bad_snapshots_url_is_named() {
    let config = parse(&minimal()).expect("valid");
    assert!(
        config.snapshots.url.is_none(),
        "absent: nothing is published"
    );
    let text = format!("{}\n[snapshots]\nurl = \"ftp://host/x\"\n", minimal());
    let err = parse(&text).expect_err("must refuse").to_string();
    assert!(err.contains("snapshots.url"), "{err}");
    let text = format!(
        "{}\n[snapshots]\nurl = \"s3://b/p\"\nregion = \"x\"\n",
        minimal()
    );
    let err = parse(&text).expect_err("unknown key").to_string();
    assert!(err.contains("region"), "{err}");
    let text = format!("{}\n[snapshots]\nurl = \"s3://bucket/prefix\"\n", minimal());
    let config = parse(&text).expect("valid");
    assert_eq!(config.snapshots.url.as_deref(), Some("s3://bucket/prefix"));
}

#[test]
fn locations_list_gives_one_pipeline_per_location() {
    let text = minimal().replace("location_id = \"loc\"", "locations = [\"a\", \"b-2\"]")
        + "default_location = \"a\"\n";
    let config = parse(&text).expect("valid");
    assert_eq!(
        config.locations(),
        Locations::Listed(vec!["a".into(), "b-2".into()])
    );
    assert_eq!(config.pipeline.max_parallel_locations, 8);
    let b = config.for_location("b-2");
    assert_eq!(b.ghl.location_id, "b-2");
    assert_eq!(b.locations(), Locations::Single("b-2".into()));
    assert_eq!(
        b.state_dir(),
        config.state_dir().join("locations").join("b-2")
    );
    b.validate()
        .expect("a location's pipeline is a valid one-location pipeline");
    // One location keeps today's layout.
    let single = parse(&minimal()).expect("valid");
    assert_eq!(single.locations(), Locations::Single("loc".into()));
    assert!(single.state_dir().ends_with("state"));
}

#[test]
fn location_keys_are_exclusive_and_checked() {
    let both = minimal().replace(
        "location_id = \"loc\"",
        "location_id = \"loc\"\nlocations = [\"a\"]",
    );
    let err = parse(&both).expect_err("both keys").to_string();
    assert!(
        err.contains("ghl.locations") && err.contains("location_id"),
        "{err}"
    );
    let neither = minimal().replace("location_id = \"loc\"", "");
    let err = parse(&neither).expect_err("no location").to_string();
    assert!(err.contains("ghl.location_id"), "{err}");
    let word = minimal().replace("location_id = \"loc\"", "locations = \"all\"");
    let err = parse(&word).expect_err("unknown word").to_string();
    assert!(err.contains("all-installed"), "{err}");
    let all = minimal().replace("location_id = \"loc\"", "locations = \"all-installed\"");
    assert_eq!(
        parse(&all).expect("valid").locations(),
        Locations::AllInstalled
    );
    let escape = minimal().replace("location_id = \"loc\"", "locations = [\"../x\"]");
    let err = parse(&escape).expect_err("path in id").to_string();
    assert!(err.contains("../x"), "{err}");
    let stray = minimal().replace("location_id = \"loc\"", "locations = [\"a\"]")
        + "default_location = \"z\"\n";
    let err = parse(&stray).expect_err("default not listed").to_string();
    assert!(err.contains("bulksms.default_location"), "{err}");
    let zero = minimal().replace("name = \"t\"", "name = \"t\"\nmax_parallel_locations = 0");
    let err = parse(&zero).expect_err("zero").to_string();
    assert!(err.contains("pipeline.max_parallel_locations"), "{err}");
}

#[test]
fn plain_http_to_a_remote_host_is_refused() {
    let text = minimal().replace("http://127.0.0.1:9/ghl", "http://example.com/ghl");
    let err = parse(&text).expect_err("must refuse").to_string();
    assert!(err.contains("ghl.base_url"), "{err}");
}

#[test]
fn example_pipeline_files_parse() {
    for var in [
        "GHL_LOCATION_ID",
        "GHL_CLIENT_ID",
        "GHL_CLIENT_SECRET",
        "BULKSMS_TOKEN_ID",
        "BULKSMS_TOKEN_SECRET",
        "GHL_PRIVATE_TOKEN",
        "SANDBOX_GHL_LOCATION_ID",
        "SANDBOX_GHL_TOKEN",
        "SANDBOX_BULKSMS_TOKEN_ID",
        "SANDBOX_BULKSMS_TOKEN_SECRET",
    ] {
        // SAFETY of the test: these names are only read by pipeline files.
        unsafe { std::env::set_var(var, "x") };
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("pipelines folder") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "toml") {
            PipelineConfig::load(&path).unwrap_or_else(|e| panic!("{e}"));
            seen += 1;
        }
    }
    assert!(seen >= 4, "expected example pipelines in {}", dir.display());
}

#[test]
fn a_refused_file_still_names_its_state_dir_when_it_is_toml() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("nightly.toml");
    std::fs::write(
        &file,
        "[pipeline]\nname = \"n\"\nstate_dir = \"state\"\nunknown_key = 1\n",
    )
    .expect("write");
    assert!(PipelineConfig::load(&file).is_err());
    assert_eq!(
        state_dir_hint(&file),
        Some(StateDirHint {
            pipeline_name: "n".into(),
            state_dir: dir.path().join("state"),
        })
    );
    std::fs::write(&file, "[pipeline\nname = \"n\"\n").expect("write");
    assert_eq!(state_dir_hint(&file), None, "not TOML: nothing to go by");
    std::fs::write(&file, "[pipeline]\nname = \"n\"\n").expect("write");
    assert_eq!(state_dir_hint(&file), None, "no state_dir");
}
