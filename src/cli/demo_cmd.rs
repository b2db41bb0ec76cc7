//! `contactsync demo`: a seeded sandbox in-process and the nightly pipeline against it, end to end:
//! a first (baseline) run that cleans the CRM up, a simulated day (new contacts, a tag and a custom
//! field change that fire reminders, a question by SMS, a STOP reply), and the next night's run that
//! texts exactly what that day asked for, opens a follow-up task for the question and writes the
//! digest.

use super::sandbox_cmd::sandbox_pipeline_toml;
use super::{CommandError, DemoArgs};
use crate::config::{GhlAuthConfig, PipelineConfig};
use crate::exit_code::ExitCode;
use crate::pipeline::clients::ghl_client;
use crate::pipeline::run_pipeline;
use crate::sandbox::{self, SandboxOptions};
use anyhow::Context;

pub(super) async fn run(args: DemoArgs) -> Result<ExitCode, CommandError> {
    let started = std::time::Instant::now();
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating demo folder {}", args.out.display()))?;
    let out = args
        .out
        .canonicalize()
        .with_context(|| format!("resolving {}", args.out.display()))?;
    let options = SandboxOptions {
        seed: args.seed,
        contacts: args.contacts,
        messages: args.messages,
        ..SandboxOptions::default()
    };
    let handle = sandbox::start(options)
        .await
        .context("starting the sandbox")?;
    tracing::info!(ghl = %handle.info.ghl_base_url, bulksms = %handle.info.bulksms_base_url, "Sandbox started");

    let pipeline_path = out.join("pipeline.toml");
    // A fresh state folder each time: the demo shows a first (baseline) run.
    let state_dir = out.join("state");
    if state_dir.exists() {
        std::fs::remove_dir_all(&state_dir)
            .with_context(|| format!("clearing {}", state_dir.display()))?;
    }
    let text = format!(
        "{}{DEMO_TRIGGERS}",
        sandbox_pipeline_toml(&handle.info, "state")
    );
    std::fs::write(&pipeline_path, text)
        .with_context(|| format!("writing {}", pipeline_path.display()))?;
    let config = PipelineConfig::load(&pipeline_path)?;

    // Authorise once, as a user would with `contactsync auth ghl`.
    if let GhlAuthConfig::Oauth {
        auth_code: Some(code),
        ..
    } = &config.ghl.auth
    {
        let client = ghl_client(&config, super::stage::pipeline_clock()?)?;
        let manager = client
            .token_manager()
            .expect("OAuth config always has a token manager");
        manager
            .exchange_code(code)
            .await
            .context("exchanging the sandbox's authorization code")?;
    }

    eprintln!("Night 1: the first run against this location (a baseline: it texts nobody).");
    let (first, first_code) =
        run_pipeline(&config, !args.json, super::stage::pipeline_clock()?).await?;
    if first_code != ExitCode::Ok {
        tracing::warn!(code = ?first_code, "The first run did not finish cleanly");
    }
    eprintln!(
        "A day passes: two new contacts from a web form, a tag and a job stage that ask for reminders, a question by SMS and a STOP reply."
    );
    let day = simulate_a_day(&handle.info)
        .await
        .context("simulating a day in the sandbox")?;
    eprintln!("Night 2: the next run texts what that day asked for, once.");
    let (mut report, code) =
        run_pipeline(&config, !args.json, super::stage::pipeline_clock()?).await?;
    report.command = "demo".into();
    report.counts.insert(
        "first_run.applied".into(),
        first.counts.get("applied").copied().unwrap_or(0),
    );
    report.counts.insert(
        "first_run.planned".into(),
        first.counts.get("planned_operations").copied().unwrap_or(0),
    );
    let control = handle.info.control_url.clone();
    let sandbox_stats: serde_json::Value = reqwest::get(format!("{control}/_sandbox/stats"))
        .await
        .context("reading sandbox stats")?
        .json()
        .await
        .context("parsing sandbox stats")?;
    handle.shutdown().await.context("stopping the sandbox")?;
    let run_dir = report.run_dir.clone().unwrap_or_default();
    if args.json {
        report.print();
    } else {
        let count = |k: &str| report.counts.get(k).copied().unwrap_or(0);
        eprintln!();
        eprintln!(
            "Demo finished in {:.1} s ({:?}).",
            started.elapsed().as_secs_f64(),
            code
        );
        eprintln!("  pipeline file:  {}", pipeline_path.display());
        eprintln!("  run folder:     {}", run_dir.display());
        eprintln!(
            "  snapshot:       {} ({} contacts, {} messages)",
            run_dir.join("extract").display(),
            count("ghl/contacts.rows"),
            count("bulksms/messages.rows")
        );
        eprintln!(
            "  transform:      {} ({} duplicate clusters)",
            run_dir.join("transform").display(),
            count("duplicate_clusters")
        );
        eprintln!(
            "  plan:           {} ({} operations)",
            run_dir.join("load/plan.md").display(),
            count("planned_operations")
        );
        eprintln!(
            "  night 1:        {} operations applied (duplicates marked, opt-outs made DND, numbers blocked, leads created), 0 texts",
            count("first_run.applied"),
        );
        eprintln!(
            "  night 2:        {} operations applied, {} failed, {} skipped; {} texts fired (welcome to {}, reminder to {} on the tag and to {} on the job stage becoming \"booked\", the digest); STOP from {} made DND",
            count("applied"),
            count("failed"),
            count("skipped"),
            count("messages_fired"),
            day.new_contacts.join(" and "),
            day.reminded,
            day.staged,
            day.stopped,
        );
        eprintln!(
            "  follow-up:      {}'s question became a task in GHL, due in 4 hours (see the plan's create_task)",
            day.asked,
        );
        let digest = run_dir.join("transform/digest.md");
        eprintln!("  digest:         {}", digest.display());
        if let Ok(text) = std::fs::read_to_string(&digest) {
            for line in text.lines().filter(|l| !l.trim().is_empty()).take(8) {
                eprintln!("                  {line}");
            }
        }
        eprintln!(
            "  sandbox:        {} requests, {} writes in all",
            sandbox_stats["total_requests"], sandbox_stats["writes"]
        );
        eprintln!(
            "  report:         {}",
            run_dir.join("audit/report.html").display()
        );
        eprintln!(
            "  metrics:        {}",
            run_dir.join("metrics.prom").display()
        );
        for e in &report.errors {
            eprintln!("  {e}");
        }
    }
    Ok(code)
}

/// Triggers of the demo pipeline: welcome, reminders on a tag and on a custom field, and a digest
/// to the team.
const DEMO_TRIGGERS: &str = r#"
[transform.triggers]
fire_on_first_run = false
activity_notes = true

[transform.triggers.welcome]
template = "Hi {first_name|there}, thanks for choosing ACME Home Services! Reply STOP to opt out."

[[transform.triggers.reminder]]
tag = "appointment-tomorrow"
template = "Hi {first_name|there}, a reminder of your appointment tomorrow. Reply C to confirm, STOP to opt out."
confirm_reply = ["C", "CONFIRM"]
confirm_tag = "appointment-confirmed"

[[transform.triggers.reminder]]
field = "job_stage"
values = ["booked"]
template = "Hi {first_name|there}, your job is {value}: we will call to schedule it. Reply STOP to opt out."

# A reply opens a follow-up task for the team, completed once someone texts the contact back.
[transform.workflows.reply_task]
due_hours = 4

# No template: the built-in digest (replies waiting first, then failures, opt-outs, new contacts by
# source, duplicates), cut to two SMS parts; transform/digest.md has it in full.
[transform.triggers.digest]
to = "+14155550100"
"#;

/// What the simulated day did.
struct Day {
    new_contacts: Vec<String>,
    reminded: String,
    staged: String,
    asked: String,
    stopped: String,
}

/// A day in the CRM, through the APIs as other apps would: two contacts created, a tag added, a
/// custom field changed, a question and a STOP reply to earlier texts.
async fn simulate_a_day(info: &crate::sandbox::ReadyInfo) -> anyhow::Result<Day> {
    let http = reqwest::Client::new();
    let ghl = |method: reqwest::Method, path: &str| {
        http.request(method, format!("{}{path}", info.ghl_base_url))
            .bearer_auth(&info.ghl_token)
            .header("Version", "2021-07-28")
    };
    // A contact with a phone, no DND and no duplicate mark gets the reminder tag.
    let search: serde_json::Value = ghl(reqwest::Method::POST, "/contacts/search")
        .json(&serde_json::json!({"locationId": info.ghl_location_id, "pageLimit": 100}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let contacts = search["contacts"].as_array().cloned().unwrap_or_default();
    let plain = |c: &&serde_json::Value| {
        c["phone"].as_str().is_some_and(|p| p.starts_with("+1"))
            && !c["dnd"].as_bool().unwrap_or(false)
            && c["tags"].as_array().is_none_or(|t| {
                !t.iter().any(|x| {
                    x.as_str()
                        .is_some_and(|x| x.starts_with("contactsync:") || x.starts_with("sms:"))
                })
            })
            && c["dndSettings"]["SMS"]["status"].as_str() != Some("active")
    };
    let mut eligible = contacts.iter().filter(plain);
    let reminded = eligible.next().context("no contact to tag")?;
    let id = reminded["id"].as_str().unwrap_or_default();
    ghl(reqwest::Method::POST, &format!("/contacts/{id}/tags"))
        .json(&serde_json::json!({"tags": ["appointment-tomorrow"]}))
        .send()
        .await?
        .error_for_status()?;
    let staged = eligible
        .next()
        .context("no contact to move to a new job stage")?;
    let staged_id = staged["id"].as_str().unwrap_or_default();
    ghl(reqwest::Method::PUT, &format!("/contacts/{staged_id}"))
        .json(&serde_json::json!({"customFields": [{"id": "job_stage", "field_value": "booked"}]}))
        .send()
        .await?
        .error_for_status()?;
    let asked = eligible.next().context("no contact to ask a question")?;
    let asked_number = asked["phone"].as_str().unwrap_or_default();
    http.post(format!("{}/_sandbox/bulksms/inbound", info.control_url))
        .json(&serde_json::json!({
            "from": asked_number.trim_start_matches('+'),
            "body": "Can we move my visit to Friday afternoon?",
        }))
        .send()
        .await?
        .error_for_status()?;
    let stopped = eligible.next().context("no contact to opt out")?;
    let number = stopped["phone"].as_str().unwrap_or_default();
    http.post(format!("{}/_sandbox/bulksms/inbound", info.control_url))
        .json(&serde_json::json!({"from": number.trim_start_matches('+'), "body": "STOP"}))
        .send()
        .await?
        .error_for_status()?;
    // Then the new contacts, after the picks, so neither pick is one of them.
    let mut new_contacts = Vec::new();
    for (first, last, email, phone) in [
        ("Amara", "Nwosu", "amara.nwosu@example.com", "+14155550142"),
        (
            "Diego",
            "Ferreira",
            "diego.ferreira@example.com",
            "+14155550143",
        ),
    ] {
        ghl(reqwest::Method::POST, "/contacts/")
            .json(&serde_json::json!({
                "locationId": info.ghl_location_id,
                "firstName": first, "lastName": last, "email": email, "phone": phone,
                "source": "web form",
            }))
            .send()
            .await?
            .error_for_status()?;
        new_contacts.push(format!("{first} {last}"));
    }
    let name = |c: &serde_json::Value| {
        format!(
            "{} {}",
            c["firstName"].as_str().unwrap_or(""),
            c["lastName"].as_str().unwrap_or("")
        )
        .trim()
        .to_string()
    };
    Ok(Day {
        new_contacts,
        reminded: name(reminded),
        staged: name(staged),
        asked: name(asked),
        stopped: name(stopped),
    })
}
