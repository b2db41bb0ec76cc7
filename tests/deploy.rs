//! The files in deploy/ and the Dockerfile, checked with whatever this machine can run:
//! `systemd-analyze` when it is installed, a YAML parse and key check of every Kubernetes
//! manifest, the cron line run by `sh` against stand-ins, and `docker build` when a Docker engine
//! answers. A check whose tool is missing prints that it was skipped.

mod common;

use chrono::TimeZone;
use contactsync::config::PipelineConfig;
use std::path::{Path, PathBuf};
use std::process::Command;
use yaml_rust2::{Yaml, YamlLoader};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(relative: &str) -> String {
    let path = repo().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Whether `program` runs at all (found on PATH).
fn have(program: &str, probe: &[&str]) -> bool {
    Command::new(program).args(probe).output().is_ok()
}

/// `pipelines/nightly.toml` loaded by the project's own loader, with every `${NAME}` filled by a
/// placeholder (in a copy: the test never changes its process environment).
fn load_pipeline_text(text: &str) -> PipelineConfig {
    let mut filled = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let end = rest[start..].find('}').expect("closed ${") + start;
        filled.push_str(&rest[..start]);
        filled.push_str("placeholder");
        rest = &rest[end + 1..];
    }
    filled.push_str(rest);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("nightly.toml");
    std::fs::write(&path, filled).expect("write pipeline");
    PipelineConfig::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

fn nightly() -> PipelineConfig {
    load_pipeline_text(&read("pipelines/nightly.toml"))
}

/// Panics when a send started at `hour:minute` in `zone` would be held by the nightly pipeline's
/// quiet hours (checked on a winter and a summer day, as daylight saving shifts the zones apart).
fn assert_outside_quiet_hours(what: &str, zone: &str, hour: u32, minute: u32) {
    let config = nightly();
    let quiet = config
        .load
        .quiet_hours
        .as_ref()
        .expect("nightly.toml has quiet hours");
    let tz: chrono_tz::Tz = zone
        .parse()
        .unwrap_or_else(|_| panic!("{what}: {zone:?} is not an IANA time zone"));
    for (month, day) in [(1, 15), (7, 15)] {
        let local = tz
            .with_ymd_and_hms(2026, month, day, hour, minute, 0)
            .single()
            .expect("an unambiguous local time");
        let utc = local.with_timezone(&chrono::Utc);
        assert!(
            !quiet.is_quiet(utc, None),
            "{what}: {hour:02}:{minute:02} {zone} ({utc}) is inside the pipeline's quiet hours \
             {}-{} in {}: every send would be deferred, night after night",
            quiet.start,
            quiet.end,
            quiet.default_timezone
        );
    }
}

// ---------------------------------------------------------------------------------------------
// systemd

fn unit_values<'a>(text: &'a str, key: &str) -> Vec<&'a str> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix(key)?.strip_prefix('='))
        .map(str::trim)
        .collect()
}

#[test]
fn the_systemd_timer_fires_in_a_named_zone_outside_quiet_hours() {
    let timer = read("deploy/contactsync-nightly.timer");
    let calendars = unit_values(&timer, "OnCalendar");
    assert!(!calendars.is_empty(), "the timer has no OnCalendar=");
    for calendar in calendars {
        // `*-*-* HH:MM:SS Zone`: the zone is the last word; without it systemd uses the host's.
        let mut words = calendar.split_whitespace().rev();
        let zone = words.next().expect("a zone");
        let time = words.next().unwrap_or_else(|| {
            panic!("OnCalendar={calendar} has no time zone: it would fire in the host's zone")
        });
        let mut parts = time.split(':').map(|p| p.parse::<u32>());
        let (Some(Ok(hour)), Some(Ok(minute))) = (parts.next(), parts.next()) else {
            panic!("OnCalendar={calendar}: cannot read the time {time:?}")
        };
        assert_outside_quiet_hours(&format!("OnCalendar={calendar}"), zone, hour, minute);
        if have("systemd-analyze", &["--version"]) {
            let out = Command::new("systemd-analyze")
                .args(["calendar", calendar])
                .output()
                .expect("systemd-analyze runs");
            assert!(
                out.status.success(),
                "systemd-analyze calendar {calendar:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

#[test]
fn systemd_analyze_verifies_the_units() {
    if !have("systemd-analyze", &["--version"]) {
        println!("skipped: systemd-analyze is not installed here");
        return;
    }
    // The units name /usr/local/bin/contactsync, which verify requires to exist: the copies point
    // at the binary this test run built instead.
    let dir = tempfile::tempdir().expect("tempdir");
    for name in ["contactsync-nightly.service", "contactsync-nightly.timer"] {
        let text = read(&format!("deploy/{name}")).replace(
            "/usr/local/bin/contactsync",
            env!("CARGO_BIN_EXE_contactsync"),
        );
        std::fs::write(dir.path().join(name), text).expect("write unit");
    }
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(dir.path().join("contactsync-nightly.timer"))
        .arg(dir.path().join("contactsync-nightly.service"))
        .output()
        .expect("systemd-analyze runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !stderr.contains("contactsync-nightly"),
        "systemd-analyze verify: {:?}\n{stderr}",
        out.status
    );
}

#[test]
fn the_service_runs_the_nightly_pipeline_with_its_environment_file() {
    let service = read("deploy/contactsync-nightly.service");
    let exec = unit_values(&service, "ExecStart");
    assert_eq!(exec.len(), 1, "one ExecStart=");
    assert!(
        exec[0].starts_with("/usr/local/bin/contactsync run --pipeline /etc/contactsync/"),
        "{}",
        exec[0]
    );
    assert_eq!(
        unit_values(&service, "EnvironmentFile"),
        ["/etc/contactsync/env"]
    );
    // The pipeline's state folder must be inside the one systemd makes writable.
    let state = unit_values(&service, "StateDirectory");
    assert_eq!(state.len(), 1, "one StateDirectory=");
    let state_root = Path::new("/var/lib").join(state[0]);
    assert!(
        nightly().state_dir().starts_with(&state_root),
        "state_dir {} is outside {} (ProtectSystem=strict makes everything else read-only)",
        nightly().state_dir().display(),
        state_root.display()
    );
}

// ---------------------------------------------------------------------------------------------
// cron

/// One job line of a cron.d file.
struct CronJob {
    fields: [String; 5],
    user: String,
    command: String,
}

fn cron_lines() -> (Vec<(String, String)>, Vec<CronJob>) {
    let text = read("deploy/cron.d-contactsync");
    let mut variables = Vec::new();
    let mut jobs = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let first = line.split_whitespace().next().expect("a word");
        if let Some((name, _)) = first.split_once('=') {
            assert!(
                name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "cron.d line {}: bad variable name {name:?}",
                n + 1
            );
            let value = line[line.find('=').expect("=") + 1..].trim();
            variables.push((name.to_string(), value.to_string()));
            continue;
        }
        let mut rest = line;
        let mut words = Vec::new();
        for _ in 0..6 {
            let word_end = rest
                .find(char::is_whitespace)
                .unwrap_or_else(|| panic!("cron.d line {}: fewer than 7 fields", n + 1));
            words.push(rest[..word_end].to_string());
            rest = rest[word_end..].trim_start();
        }
        let user = words.pop().expect("user");
        let fields: [String; 5] = words.try_into().expect("five time fields");
        jobs.push(CronJob {
            fields,
            user,
            command: rest.to_string(),
        });
    }
    (variables, jobs)
}

/// A cron time field: `*`, numbers, ranges, lists and steps within `low..=high`.
fn cron_field_ok(field: &str, low: u32, high: u32) -> bool {
    field.split(',').all(|item| {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => (r, s.parse::<u32>().ok().filter(|s| *s > 0).map(|_| ())),
            None => (item, Some(())),
        };
        step.is_some()
            && (range == "*"
                || range
                    .split('-')
                    .all(|n| n.parse::<u32>().is_ok_and(|n| (low..=high).contains(&n))))
    })
}

#[test]
fn the_cron_file_parses_and_exports_the_environment_file() {
    let (variables, jobs) = cron_lines();
    assert_eq!(jobs.len(), 1, "one job line");
    let job = &jobs[0];
    let limits = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)];
    for (field, (low, high)) in job.fields.iter().zip(limits) {
        assert!(cron_field_ok(field, low, high), "bad cron field {field:?}");
    }
    assert_eq!(job.user, "contactsync");
    assert!(variables.iter().any(|(k, _)| k == "MAILTO"));
    // A bare `%` ends the command for cron (the rest becomes its stdin).
    let bare_percent = job
        .command
        .match_indices('%')
        .any(|(i, _)| !job.command[..i].ends_with('\\'));
    assert!(!bare_percent, "unescaped % in {}", job.command);
    // `. FILE` alone sets shell variables that the child process never sees.
    let export = job
        .command
        .find("set -a")
        .expect("set -a before the env file");
    let source = job
        .command
        .find(". /etc/contactsync/env")
        .expect("sources /etc/contactsync/env");
    assert!(
        export < source,
        "set -a must come before . /etc/contactsync/env"
    );
}

/// What the cron job does, run by `sh` as cron would, with stand-ins for the environment file,
/// `date` and the binary. Returns (stdout, the stand-in binary's record).
fn run_cron_command(hour_in_zone: &str, exit_code: i32) -> (String, Option<String>) {
    let (variables, jobs) = cron_lines();
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).expect("bin");
    let write_script = |path: &Path, text: &str| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(path, text).expect("write script");
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    };
    // `date` answers the hour the job asks about, and records the zone it was asked in.
    write_script(
        &bin.join("date"),
        &format!(
            "#!/bin/sh\necho \"$TZ\" > '{}/tz'\necho {hour_in_zone}\n",
            dir.path().display()
        ),
    );
    let record = dir.path().join("record");
    let fake = dir.path().join("contactsync");
    write_script(
        &fake,
        &format!(
            "#!/bin/sh\n{{ echo \"args=$*\"; env; }} > '{}'\necho 'a log line'\nexit {exit_code}\n",
            record.display()
        ),
    );
    let env_file = dir.path().join("env");
    std::fs::write(
        &env_file,
        "GHL_LOCATION_ID=loc-123\nGHL_CLIENT_SECRET='with space'\nBULKSMS_TOKEN_ID=tok\n",
    )
    .expect("env file");
    let log = dir.path().join("nightly.jsonl");
    // cron turns `\%` into `%`, then hands the command to SHELL -c.
    let command = jobs[0]
        .command
        .replace("\\%", "%")
        .replace("/etc/contactsync/env", &env_file.display().to_string())
        .replace("/usr/local/bin/contactsync", &fake.display().to_string())
        .replace(
            "/var/log/contactsync/nightly.jsonl",
            &log.display().to_string(),
        );
    let shell = variables
        .iter()
        .find(|(k, _)| k == "SHELL")
        .map_or("/bin/sh".to_string(), |(_, v)| v.clone());
    let out = Command::new(shell)
        .arg("-c")
        .arg(&command)
        .env_clear()
        .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
        .output()
        .expect("sh runs");
    assert!(
        out.stderr.is_empty(),
        "the cron command wrote to stderr (cron would mail it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tz = std::fs::read_to_string(dir.path().join("tz")).unwrap_or_default();
    assert_eq!(
        tz.trim(),
        nightly()
            .load
            .quiet_hours
            .expect("quiet hours")
            .default_timezone,
        "the job's hour gate asks for the pipeline's time zone"
    );
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        std::fs::read_to_string(&record).ok(),
    )
}

/// The hour of New York time the cron job runs in (from its `date +%H` gate).
fn cron_gate_hour() -> u32 {
    let (_, jobs) = cron_lines();
    let command = &jobs[0].command;
    let gate = command.find("date +\\%H)\" = ").expect("an hour gate") + "date +\\%H)\" = ".len();
    command[gate..gate + 2].parse().expect("a two-digit hour")
}

#[test]
fn the_cron_job_exports_the_variables_and_mails_only_failures() {
    let hour = cron_gate_hour();
    let (_, jobs) = cron_lines();
    let minute: u32 = jobs[0].fields[0].parse().expect("a fixed minute");
    assert_outside_quiet_hours("the cron job", "America/New_York", hour, minute);

    let (stdout, record) = run_cron_command(&format!("{hour:02}"), 0);
    let record = record.expect("the binary ran in its hour");
    for expected in [
        "GHL_LOCATION_ID=loc-123",
        "GHL_CLIENT_SECRET=with space",
        "BULKSMS_TOKEN_ID=tok",
    ] {
        assert!(
            record.lines().any(|l| l == expected),
            "{expected} did not reach contactsync's environment:\n{record}"
        );
    }
    assert!(record.starts_with("args=run --pipeline /etc/contactsync/nightly.toml"));
    assert_eq!(
        stdout, "",
        "a good run prints nothing, so cron mails nothing"
    );

    let (stdout, _) = run_cron_command(&format!("{hour:02}"), 3);
    assert!(
        stdout.contains("failed with exit code 3"),
        "a failed run prints a line for MAILTO: {stdout:?}"
    );

    let (stdout, record) = run_cron_command(&format!("{:02}", (hour + 1) % 24), 0);
    assert!(record.is_none(), "the job ran outside its hour");
    assert_eq!(stdout, "");
}

// ---------------------------------------------------------------------------------------------
// Dockerfile and Kubernetes

/// The image the Dockerfile's header says to build (`docker build -t IMAGE .`).
fn documented_image() -> String {
    let dockerfile = read("Dockerfile");
    let line = dockerfile
        .lines()
        .find(|l| l.contains("docker build -t "))
        .expect("the Dockerfile documents its build command");
    let image = line
        .split("docker build -t ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("an image name");
    image.to_string()
}

#[test]
fn the_dockerfile_is_multi_stage_non_root_and_names_its_image() {
    let dockerfile = read("Dockerfile");
    let instructions: Vec<(String, String)> = dockerfile
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let (word, rest) = l.split_once(char::is_whitespace)?;
            word.chars()
                .all(|c| c.is_ascii_uppercase())
                .then(|| (word.to_string(), rest.trim().to_string()))
        })
        .collect();
    let stages: Vec<usize> = instructions
        .iter()
        .enumerate()
        .filter(|(_, (word, _))| word == "FROM")
        .map(|(i, _)| i)
        .collect();
    assert!(stages.len() >= 2, "a build stage and a runtime stage");
    let runtime = &instructions[*stages.last().expect("a stage")..];
    let value = |word: &str| {
        runtime
            .iter()
            .filter(|(w, _)| w == word)
            .map(|(_, v)| v.as_str())
            .next_back()
    };
    let user = value("USER").expect("the runtime stage sets USER");
    let uid = user.split(':').next().expect("a user");
    assert!(uid != "0" && uid != "root", "runs as root: USER {user}");
    assert!(
        value("ENTRYPOINT").is_some_and(|e| e.contains("/usr/local/bin/contactsync")),
        "ENTRYPOINT is the binary"
    );
    assert!(
        value("VOLUME").is_some_and(|v| v.contains("/var/lib/contactsync")),
        "the state folder is a volume"
    );
    assert!(
        value("COPY").is_some_and(|c| c.starts_with("--from=")),
        "the runtime stage copies the binary from the build stage"
    );
    assert!(
        runtime
            .iter()
            .any(|(w, v)| w == "RUN" && v.contains("ca-certificates"))
            || dockerfile.contains("ca-certificates"),
        "CA roots for HTTPS"
    );
    let image = documented_image();
    let tag = image.rsplit(':').next().expect("a tag");
    assert_eq!(
        tag,
        env!("CARGO_PKG_VERSION"),
        "the documented image tag is the crate version"
    );
    let ignore = read(".dockerignore");
    assert!(
        ignore.lines().any(|l| l.trim() == "target"),
        ".dockerignore leaves out target/"
    );
}

#[test]
fn docker_builds_the_image_where_an_engine_answers() {
    let engine = Command::new("docker")
        .arg("info")
        .output()
        .is_ok_and(|o| o.status.success());
    if !engine {
        println!("skipped: no Docker engine answers `docker info` here, so the image is not built");
        return;
    }
    let tag = "contactsync:deploy-test";
    let out = Command::new("docker")
        .args(["build", "-t", tag, "."])
        .current_dir(repo())
        .output()
        .expect("docker build runs");
    assert!(
        out.status.success(),
        "docker build: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new("docker")
        .args(["run", "--rm", tag, "--version"])
        .output()
        .expect("docker run runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
    let out = Command::new("docker")
        .args(["run", "--rm", "--entrypoint", "id", tag, "-u"])
        .output()
        .expect("docker run runs");
    assert_ne!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "0",
        "runs as root"
    );
}

/// Every document of every YAML file in deploy/kubernetes, by file name.
fn manifests() -> Vec<(String, Yaml)> {
    let dir = repo().join("deploy/kubernetes");
    let mut out = Vec::new();
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("deploy/kubernetes")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    names.sort();
    for path in names {
        let text = std::fs::read_to_string(&path).expect("read manifest");
        let docs = YamlLoader::load_from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not YAML: {e}", path.display()));
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        for doc in docs {
            out.push((name.clone(), doc));
        }
    }
    out
}

fn of_kind<'a>(all: &'a [(String, Yaml)], kind: &str) -> Vec<&'a Yaml> {
    all.iter()
        .filter(|(_, d)| d["kind"].as_str() == Some(kind))
        .map(|(_, d)| d)
        .collect()
}

fn str_at<'a>(doc: &'a Yaml, path: &[&str]) -> &'a str {
    let mut node = doc;
    for key in path {
        node = &node[*key];
    }
    node.as_str()
        .unwrap_or_else(|| panic!("{} is not a string", path.join(".")))
}

/// Checks a pod template: non-root, the credentials Secret, the pipeline ConfigMap and the state
/// PVC, mounted where the pipeline file expects them, the documented image.
fn check_pod(what: &str, pod: &Yaml, all: &[(String, Yaml)]) {
    let security = &pod["securityContext"];
    assert_eq!(
        security["runAsNonRoot"].as_bool(),
        Some(true),
        "{what}: runAsNonRoot"
    );
    assert!(
        security["runAsUser"].as_i64().is_some_and(|u| u > 0),
        "{what}: runAsUser"
    );
    let pvc_name = str_at(
        of_kind(all, "PersistentVolumeClaim")[0],
        &["metadata", "name"],
    );
    let config_map = of_kind(all, "ConfigMap")[0];
    let secret_names: Vec<&str> = of_kind(all, "Secret")
        .iter()
        .map(|s| str_at(s, &["metadata", "name"]))
        .collect();
    let volumes = pod["volumes"].as_vec().expect("volumes");
    let volume_for = |pick: &dyn Fn(&Yaml) -> bool| -> String {
        volumes
            .iter()
            .find(|v| pick(v))
            .map(|v| str_at(v, &["name"]).to_string())
            .unwrap_or_else(|| panic!("{what}: a volume is missing"))
    };
    let state_volume =
        volume_for(&|v| v["persistentVolumeClaim"]["claimName"].as_str() == Some(pvc_name));
    let pipeline_volume = volume_for(&|v| {
        v["configMap"]["name"].as_str() == Some(str_at(config_map, &["metadata", "name"]))
    });
    let containers: Vec<&Yaml> = pod["containers"]
        .as_vec()
        .into_iter()
        .chain(pod["initContainers"].as_vec())
        .flatten()
        .collect();
    assert!(!containers.is_empty(), "{what}: no containers");
    let config = nightly();
    for container in containers {
        let name = str_at(container, &["name"]);
        assert_eq!(
            str_at(container, &["image"]),
            documented_image(),
            "{what}/{name}: the image the Dockerfile builds"
        );
        assert_eq!(
            container["securityContext"]["allowPrivilegeEscalation"].as_bool(),
            Some(false),
            "{what}/{name}: allowPrivilegeEscalation"
        );
        let env_from = container["envFrom"].as_vec().expect("envFrom");
        assert!(
            env_from
                .iter()
                .any(|e| secret_names.contains(&str_at(e, &["secretRef", "name"]))),
            "{what}/{name}: envFrom the credentials Secret"
        );
        let mounts = container["volumeMounts"].as_vec().expect("volumeMounts");
        let mount_of = |volume: &str| {
            mounts
                .iter()
                .find(|m| m["name"].as_str() == Some(volume))
                .map(|m| PathBuf::from(str_at(m, &["mountPath"])))
                .unwrap_or_else(|| panic!("{what}/{name}: {volume} is not mounted"))
        };
        assert!(
            config.state_dir().starts_with(mount_of(&state_volume)),
            "{what}/{name}: state_dir {} is not on the PVC",
            config.state_dir().display()
        );
        let args: Vec<&str> = container["args"]
            .as_vec()
            .expect("args")
            .iter()
            .map(|a| a.as_str().expect("string arg"))
            .collect();
        let pipeline = args
            .iter()
            .position(|a| *a == "--pipeline")
            .map(|i| PathBuf::from(args[i + 1]))
            .expect("--pipeline");
        let key = pipeline.file_name().expect("file name").to_string_lossy();
        assert_eq!(
            pipeline.parent().expect("folder"),
            mount_of(&pipeline_volume),
            "{what}/{name}: --pipeline is in the ConfigMap's mount"
        );
        assert!(
            !config_map["data"][&*key].is_badvalue(),
            "{what}/{name}: the ConfigMap has no key {key}"
        );
    }
}

#[test]
fn the_kubernetes_manifests_parse_and_fit_together() {
    let all = manifests();
    for (file, doc) in &all {
        for key in ["apiVersion", "kind"] {
            assert!(doc[key].as_str().is_some(), "{file}: no {key}");
        }
        if doc["kind"].as_str() != Some("Kustomization") {
            assert!(
                doc["metadata"]["name"].as_str().is_some(),
                "{file}: no metadata.name"
            );
        }
    }
    for kind in [
        "CronJob",
        "Job",
        "ConfigMap",
        "PersistentVolumeClaim",
        "Secret",
    ] {
        assert!(!of_kind(&all, kind).is_empty(), "no {kind} manifest");
    }

    let cron = of_kind(&all, "CronJob")[0];
    let spec = &cron["spec"];
    assert_eq!(spec["concurrencyPolicy"].as_str(), Some("Forbid"));
    let deadline = spec["jobTemplate"]["spec"]["activeDeadlineSeconds"]
        .as_i64()
        .expect("activeDeadlineSeconds: a hung run would block every later one under Forbid");
    assert!(
        (1..86_400).contains(&deadline),
        "activeDeadlineSeconds {deadline} must end a run before the next day's"
    );
    let zone = str_at(spec, &["timeZone"]);
    let schedule: Vec<&str> = str_at(spec, &["schedule"]).split_whitespace().collect();
    assert_eq!(schedule.len(), 5, "a five-field schedule");
    let (minute, hour) = (
        schedule[0].parse().expect("a fixed minute"),
        schedule[1].parse().expect("a fixed hour"),
    );
    assert_outside_quiet_hours("the CronJob", zone, hour, minute);
    let pod = &spec["jobTemplate"]["spec"]["template"]["spec"];
    check_pod("CronJob", pod, &all);
    let container = &pod["containers"][0];
    assert!(
        !container["resources"]["requests"]["memory"].is_badvalue()
            && !container["resources"]["requests"]["cpu"].is_badvalue(),
        "resource requests"
    );
    assert_eq!(container["args"][0].as_str(), Some("run"));

    // The OAuth bootstrap: `auth ghl --code $(VAR)` with VAR from a Secret, on the same volume.
    let job = of_kind(&all, "Job")[0];
    let pod = &job["spec"]["template"]["spec"];
    check_pod("Job", pod, &all);
    let auth = pod["initContainers"]
        .as_vec()
        .into_iter()
        .chain(pod["containers"].as_vec())
        .flatten()
        .find(|c| c["args"][0].as_str() == Some("auth"))
        .expect("a container runs `contactsync auth`");
    assert_eq!(auth["args"][1].as_str(), Some("ghl"));
    let args = auth["args"].as_vec().expect("args");
    let code = args
        .iter()
        .position(|a| a.as_str() == Some("--code"))
        .and_then(|i| args[i + 1].as_str())
        .expect("--code");
    let variable = code
        .strip_prefix("$(")
        .and_then(|c| c.strip_suffix(')'))
        .expect("--code $(VAR), filled by Kubernetes");
    let env = auth["env"]
        .as_vec()
        .expect("env")
        .iter()
        .find(|e| e["name"].as_str() == Some(variable))
        .expect("the code's variable is set");
    let secret = str_at(env, &["valueFrom", "secretKeyRef", "name"]);
    assert!(
        of_kind(&all, "Secret")
            .iter()
            .any(|s| str_at(s, &["metadata", "name"]) == secret),
        "the code comes from a Secret shipped as an example"
    );

    // The Secrets are examples: every value a visible placeholder.
    for secret in of_kind(&all, "Secret") {
        let data = secret["stringData"].as_hash().expect("stringData");
        for (key, value) in data {
            assert!(
                value.as_str().is_some_and(|v| v.starts_with("REPLACE_")),
                "Secret value {key:?} is not a placeholder"
            );
        }
    }

    // kustomization.yaml lists files that exist.
    let kustomization = all
        .iter()
        .find(|(f, _)| f == "kustomization.yaml")
        .map(|(_, d)| d)
        .expect("kustomization.yaml");
    for resource in kustomization["resources"].as_vec().expect("resources") {
        let file = resource.as_str().expect("a file name");
        assert!(
            repo().join("deploy/kubernetes").join(file).exists(),
            "kustomization.yaml lists {file}, which does not exist"
        );
    }
}

#[test]
fn the_config_map_holds_the_nightly_pipeline_and_it_loads() {
    let all = manifests();
    let config_map = of_kind(&all, "ConfigMap")[0];
    let text = str_at(config_map, &["data", "nightly.toml"]);
    assert_eq!(
        text,
        read("pipelines/nightly.toml"),
        "the ConfigMap's nightly.toml differs from pipelines/nightly.toml (run scripts/sync-configmap.py)"
    );
    let config = load_pipeline_text(text);
    assert_eq!(config.pipeline.name, "nightly");
    assert!(
        config.transform.model.is_none(),
        "the ConfigMap names a model file the image does not have"
    );
    // Every ${NAME} the file reads is a key of the credentials Secret.
    let secret = of_kind(&all, "Secret")
        .into_iter()
        .find(|s| str_at(s, &["metadata", "name"]) == "contactsync-credentials")
        .expect("the credentials Secret");
    let keys = secret["stringData"].as_hash().expect("stringData");
    for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
        let mut rest = line;
        while let Some(start) = rest.find("${") {
            let end = rest[start..].find('}').expect("closed") + start;
            let name = &rest[start + 2..end];
            assert!(
                keys.contains_key(&Yaml::String(name.to_string())),
                "the pipeline reads ${{{name}}}, which the Secret does not set"
            );
            rest = &rest[end + 1..];
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A schedule that keeps recipients inside their quiet hours

/// Quiet hours that hold every send but those landing in the one minute 00:00-00:01 of the
/// recipient's zone: the sandbox's contacts live in several zones, so each load holds some.
const ALWAYS_QUIET: &str = r#"
[load.quiet_hours]
start = "00:01"
end = "00:00"
default_timezone = "America/New_York"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_held_by_quiet_hours_three_runs_in_a_row_are_flagged_in_plan_and_audit() {
    use std::io::Write;
    let h = common::effects::harness_with_triggers(common::effects::options(33, 40)).await;
    std::fs::OpenOptions::new()
        .append(true)
        .open(&h.pipeline)
        .and_then(|mut f| f.write_all(ALWAYS_QUIET.as_bytes()))
        .expect("append quiet hours");
    h.authorise().await;
    let mut reports = Vec::new();
    for night in 1..=4 {
        let out = h.run(&["run", "--json"]).await;
        let report = common::json_report(&["run", "--json"], &out);
        assert_eq!(
            out.status.code(),
            Some(3),
            "night {night}: held sends make a partial failure: {report}"
        );
        assert!(
            report["counts"]["deferred_quiet_hours"]
                .as_u64()
                .unwrap_or(0)
                > 0,
            "night {night}: no send was held by quiet hours: {report}"
        );
        reports.push(report);
    }
    let run_dir = |i: usize| PathBuf::from(reports[i]["run_dir"].as_str().expect("run_dir"));
    let plan_md =
        |i: usize| std::fs::read_to_string(run_dir(i).join("load/plan.md")).expect("plan.md");
    let audit = |i: usize| -> serde_json::Value {
        let text = std::fs::read_to_string(run_dir(i).join("audit/report.json")).expect("report");
        serde_json::from_str(&text).expect("report.json")
    };
    // Nights 1 and 2: no warning anywhere.
    for (i, report) in reports.iter().enumerate().take(2) {
        assert!(report.get("warnings").is_none(), "{report}");
        assert!(!plan_md(i).contains("# Warnings"), "night {}", i + 1);
        assert_eq!(audit(i)["warnings"].as_array().map(Vec::len), Some(0));
    }
    // Night 3: its audit counts three loads in a row; its plan, made before its load, two.
    assert!(!plan_md(2).contains("# Warnings"), "{}", plan_md(2));
    let warnings = reports[2]["warnings"]
        .as_array()
        .expect("warnings in the run's JSON");
    let warning = warnings[0].as_str().expect("text");
    assert!(warning.contains("each of the last 3 runs"), "{warning}");
    assert!(warning.contains("quiet hours"), "{warning}");
    assert_eq!(audit(2)["warnings"][0].as_str(), Some(warning));
    assert_eq!(
        reports[2]["counts"]["findings.quiet_hours_streak"].as_u64(),
        Some(3)
    );
    let csv = std::fs::read_to_string(run_dir(2).join("audit/quiet_hours_streak.csv"))
        .expect("quiet_hours_streak.csv");
    assert_eq!(
        csv.lines().count(),
        4,
        "a header and the three runs:\n{csv}"
    );
    let html = std::fs::read_to_string(run_dir(2).join("audit/report.html")).expect("html");
    assert!(
        html.contains("each of the last 3 runs"),
        "the HTML report shows the warning"
    );
    // Night 4: the plan warns before anything is sent, from the three nights before it.
    let plan = plan_md(3);
    assert!(plan.starts_with("# Warnings"), "{plan}");
    assert!(plan.contains("each of the last 3 runs"), "{plan}");
    assert!(
        reports[3]["warnings"][0]
            .as_str()
            .is_some_and(|w| w.contains("each of the last 4 runs"))
    );
    // `plan --json` carries the plan's warning too.
    let plan_report = h.run_ok(&["plan", "--json"]).await;
    assert!(
        plan_report["warnings"][0]
            .as_str()
            .is_some_and(|w| w.contains("each of the last 3 runs")),
        "{plan_report}"
    );
}

/// The documents of the YAML files in deploy/kubernetes/agency.
fn agency_manifests() -> Vec<(String, Yaml)> {
    let dir = repo().join("deploy/kubernetes/agency");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("deploy/kubernetes/agency") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let text = std::fs::read_to_string(&path).expect("read manifest");
            let name = path
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            for doc in YamlLoader::load_from_str(&text)
                .unwrap_or_else(|e| panic!("{} is not YAML: {e}", path.display()))
            {
                out.push((name.clone(), doc));
            }
        }
    }
    out
}

#[test]
fn the_agency_indexed_job_gives_each_pod_its_shard_of_the_locations() {
    let all = agency_manifests();
    let cron = of_kind(&all, "CronJob")[0];
    let job = &cron["spec"]["jobTemplate"]["spec"];
    assert_eq!(job["completionMode"].as_str(), Some("Indexed"));
    let completions = job["completions"].as_i64().expect("completions");
    assert!(completions > 1, "sharded over several pods");
    assert!(
        job["parallelism"]
            .as_i64()
            .is_some_and(|p| (1..=completions).contains(&p))
    );
    let pod = &job["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"].as_bool(), Some(true));
    let container = &pod["containers"][0];
    assert_eq!(str_at(container, &["image"]), documented_image());
    let args: Vec<&str> = container["args"]
        .as_vec()
        .expect("args")
        .iter()
        .map(|a| a.as_str().expect("string arg"))
        .collect();
    assert_eq!(args[0], "run");
    let shard = args
        .iter()
        .position(|a| *a == "--shard")
        .map(|i| args[i + 1])
        .expect("--shard");
    let count = shard
        .strip_prefix("$(JOB_COMPLETION_INDEX)/")
        .expect("--shard $(JOB_COMPLETION_INDEX)/N");
    assert_eq!(
        count.parse::<i64>().expect("N"),
        completions,
        "--shard's N is the Job's completions: every location in exactly one pod"
    );
    let index_env = container["env"]
        .as_vec()
        .expect("env")
        .iter()
        .find(|e| e["name"].as_str() == Some("JOB_COMPLETION_INDEX"))
        .expect("JOB_COMPLETION_INDEX declared, so $(...) in args expands");
    assert!(
        str_at(index_env, &["valueFrom", "fieldRef", "fieldPath"])
            .contains("batch.kubernetes.io/job-completion-index")
    );
    // The CLI takes what the pods will pass (index 0 of N).
    use clap::Parser;
    let concrete = shard.replace("$(JOB_COMPLETION_INDEX)", "0");
    contactsync::cli::Cli::try_parse_from([
        "contactsync",
        "run",
        "--pipeline",
        "p.toml",
        "--shard",
        &concrete,
    ])
    .unwrap_or_else(|e| panic!("{e}"));

    // The pipeline file: in the ConfigMap the pods mount, many locations, a default location
    // among them, and the shared state and snapshot stores every pod uses.
    let pipeline = args
        .iter()
        .position(|a| *a == "--pipeline")
        .map(|i| PathBuf::from(args[i + 1]))
        .expect("--pipeline");
    let config_map = of_kind(&all, "ConfigMap")[0];
    let mounted = pod["volumes"]
        .as_vec()
        .expect("volumes")
        .iter()
        .find(|v| {
            v["configMap"]["name"].as_str() == Some(str_at(config_map, &["metadata", "name"]))
        })
        .map(|v| str_at(v, &["name"]))
        .expect("the ConfigMap is a volume");
    let mount = container["volumeMounts"]
        .as_vec()
        .expect("mounts")
        .iter()
        .find(|m| m["name"].as_str() == Some(mounted))
        .map(|m| PathBuf::from(str_at(m, &["mountPath"])))
        .expect("the ConfigMap is mounted");
    assert_eq!(pipeline.parent(), Some(mount.as_path()));
    let key = pipeline.file_name().expect("name").to_string_lossy();
    let text = str_at(config_map, &["data", &*key]);
    let mut table: toml::Table = text.parse().expect("agency pipeline is TOML");
    // The stores' URLs come from the environment; the loader then checks the whole file with
    // values of the shape a Secret would hold.
    for (store, example) in [
        ("state", "postgres://contactsync@db.internal/contactsync"),
        ("snapshots", "s3://agency-snapshots/contactsync"),
    ] {
        let section = table
            .get_mut(store)
            .and_then(|t| t.as_table_mut())
            .unwrap_or_else(|| panic!("[{store}]: every pod shares it"));
        let url = section.get("url").and_then(|u| u.as_str()).unwrap_or("");
        assert!(
            url.starts_with("${"),
            "[{store}] url comes from the environment"
        );
        section.insert("url".into(), example.into());
    }
    let config = load_pipeline_text(&toml::to_string(&table).expect("TOML"));
    assert!(config.state.url.is_some() && config.snapshots.url.is_some());
    match config.locations() {
        contactsync::config::Locations::Listed(ids) => {
            assert!(ids.len() > 1);
            assert!(config.bulksms.default_location.is_some());
        }
        other => panic!("the agency pipeline names its locations: {other:?}"),
    }
    // kustomization.yaml lists files that exist.
    let kustomization = all
        .iter()
        .find(|(f, _)| f == "kustomization.yaml")
        .map(|(_, d)| d)
        .expect("kustomization.yaml");
    for resource in kustomization["resources"].as_vec().expect("resources") {
        let file = resource.as_str().expect("a file name");
        assert!(
            repo().join("deploy/kubernetes/agency").join(file).exists(),
            "kustomization.yaml lists {file}, which does not exist"
        );
    }
}
