//! The transform stage of a run: snapshot contacts → normalised table → duplicate clusters →
//! survivors and golden records → SMS activity linked to contacts → the desired state load will
//! diff → messaging triggers. Reads `extract/`, writes `transform/` (Parquet), nothing else.
//! Each step lives in its own module; this one only runs them in order and writes their outputs.

use super::TransformConfig;
use super::agency_routing::AgencyRouting;
use super::desired_state::{self, ActedBefore};
use super::inputs::Inputs;
use super::{confirm, history, link, merge, survivorship, trigger_input, workflows};
use crate::clock::Clock;
use crate::matching::model::MatchModel;
use crate::normalize;
use crate::snapshot::contract::transform_outputs::{
    CLUSTERS_FILE, ClusterRow, GOLDEN_FILE, LINKS_FILE, LinkRow, NORMALIZED_FILE, PAIRS_FILE,
    SUMMARY_FILE, clusters_schema, golden_schema, links_schema, normalized_schema,
};
use crate::snapshot::desired::{
    DESIRED_TASKS_FILE, desired_blocked_schema, desired_contacts_schema, desired_messages_schema,
    desired_notes_schema, desired_tasks_schema, write_rows,
};
use crate::snapshot::run::RunDir;
use anyhow::Context;
use std::collections::HashMap;

pub use super::desired_state::{OPTED_OUT_TAG, SMS_LEAD_TAG};

/// The digest in full (`transform/digest.md`), beside the SMS the digest trigger sends.
pub const DIGEST_FILE: &str = "digest.md";
pub use crate::snapshot::contract::transform_outputs::TransformSummary;

/// Runs the stage on a run whose extract finished; `clock` dates a run whose extract left no
/// manifest.
pub fn run_transform(
    run: &RunDir,
    model: &MatchModel,
    default_region: &str,
    config: &TransformConfig,
    clock: &dyn Clock,
) -> anyhow::Result<TransformSummary> {
    let out = run.transform_dir();
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let region = normalize::region(default_region);

    // Load the inputs: this run's extract, and what earlier runs saw and decided.
    let Inputs {
        contacts,
        messages,
        blocked,
    } = Inputs::read(&run.extract_dir())?;
    let previous_survivors = history::previous_survivors(run)?;
    let previous_accepted = history::previous_accepted_pairs(run)?;
    let previous_contacts = history::previous_snapshot(run)?;
    let previous = history::previous_state(run)?;
    let previous_blocked = history::previous_blocked(run)?;
    let acted_contacts = history::previous_acted_contacts(run)?;
    let mut summary = TransformSummary {
        contacts: contacts.len() as u64,
        ..TransformSummary::default()
    };

    // Normalise: the table as the matcher compares it; later steps read numbers from it.
    let mut normalized = normalize::contact_rows(&contacts, region);
    // One BulkSMS account for many locations: only this location's share of the messages.
    let messages = match AgencyRouting::read(&run.extract_dir())? {
        Some(routing) => routing.keep(messages, &normalized),
        None => messages,
    };

    // Block, score and cluster. Survivorship reads when each record's data last changed, not
    // when anything on it did.
    let by_data_time = survivorship::with_data_times(&contacts, &previous_contacts);
    let previous_decisions = previous_accepted.map(|accepted| history::EarlierPairs {
        accepted,
        contacts: &previous_contacts.read,
    });
    for (row, dated) in normalized.iter_mut().zip(&by_data_time) {
        row.data_updated = dated.date_updated.clone();
    }
    let merge::Clustered {
        result,
        predicted,
        preferred_survivors,
    } = merge::cluster_contacts(
        &contacts,
        &by_data_time,
        &previous_survivors,
        previous_decisions.as_ref(),
        model,
        &config.survivorship,
        region,
    )?;
    summary.candidate_pairs = result.metrics.candidate_pairs;
    summary.held_decisions = result.metrics.decisions_held;
    crate::matching::io::write_pairs(&result, model.threshold, &out.join(PAIRS_FILE))?;

    // Survive: one survivor per cluster, and the golden record of each cluster with duplicates.
    let members = survivorship::cluster_members(&result);
    // Survivors and golden values are read from the table the clusters were found on: the
    // contacts as earlier predicted rounds leave them.
    let survivors = survivorship::pick_survivors(&predicted, &members, &preferred_survivors);
    let survivor_of: HashMap<&str, &str> = survivors
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    summary.duplicate_clusters = members.values().filter(|r| r.len() > 1).count() as u64;
    let cluster_rows: Vec<ClusterRow> = result
        .assignments
        .iter()
        .map(|a| ClusterRow {
            id: a.id.clone(),
            cluster_id: a.cluster_id.clone(),
            match_probability: a.match_probability,
            survivor_id: survivor_of[a.cluster_id.as_str()].to_string(),
        })
        .collect();
    write_rows(&out.join(CLUSTERS_FILE), &clusters_schema(), &cluster_rows)?;
    write_rows(
        &out.join(NORMALIZED_FILE),
        &normalized_schema(),
        &normalized,
    )?;
    let mut goldens = survivorship::golden_records(
        &predicted,
        &members,
        &survivor_of,
        &config.survivorship,
        region,
    );
    survivorship::add_predicted_fills(&mut goldens, &by_data_time, &predicted, region);
    summary.field_conflicts = goldens.field_conflicts;
    summary.golden_updates = goldens.updates.len() as u64;
    write_rows(&out.join(GOLDEN_FILE), &golden_schema(), &goldens.records)?;

    // Link SMS activity to contacts by number.
    let blocked = link::blocked_numbers(&blocked);
    let links = link::link_activity(&contacts, &normalized, &messages, &blocked);
    summary.linked_numbers = links.values().filter(|l| !l.contact_ids.is_empty()).count() as u64;
    summary.opted_out_numbers = links.values().filter(|l| l.opted_out).count() as u64;
    let link_rows: Vec<LinkRow> = links.values().cloned().collect();
    write_rows(&out.join(LINKS_FILE), &links_schema(), &link_rows)?;

    // The desired state.
    let opted_out_now = desired_state::new_opt_outs(
        &contacts,
        &normalized,
        &messages,
        &blocked,
        &ActedBefore {
            state: previous.as_ref(),
            blocked: previous_blocked.as_ref(),
            contacts: &acted_contacts,
        },
    );
    let holders = desired_state::NumberHolders::new(
        &contacts,
        &normalized,
        &goldens.updates,
        previous.as_ref().map(|_| &acted_contacts),
        region,
    );
    let desired = desired_state::desired_state(
        &contacts,
        &normalized,
        &holders,
        &links,
        &opted_out_now,
        &blocked,
        &result.assignments,
        &survivor_of,
        goldens.updates,
        // Seen by this run and by no run before it that acted (`new_opt_outs`).
        &format!("opt-out seen by run {}", run.id),
    );
    summary.dnd_updates = desired.dnd_updates;
    summary.numbers_to_block = desired.blocked.len() as u64;
    summary.duplicates_marked = desired.duplicates_marked;
    summary.lead_candidates = desired.lead_candidates;

    // Triggers fire on what changed since the run that acted last.
    let events = trigger_input::trigger_events(
        &contacts,
        &normalized,
        &messages,
        &links,
        &result.assignments,
        &survivor_of,
        previous.as_ref(),
        &opted_out_now,
    );
    summary.new_contacts = events.new_contacts;
    let appointments = trigger_input::read_appointments(&run.extract_dir())?;
    let fired = trigger_input::fire(
        &config.triggers,
        &events,
        &appointments,
        trigger_input::RunWhen {
            date: history::run_date(run, clock),
            now: history::run_time(run, clock),
        },
        previous.as_ref(),
        &summary,
    );
    // Reminders a reply can confirm are remembered; replies that confirm set the tag or field.
    let remembered = confirm::remember(
        &config.triggers,
        confirm::previous_reminders(run)?,
        &fired.messages,
        &fired.reminder_rules,
        &history::run_date(run, clock),
    );
    write_rows(
        &out.join(confirm::REMINDERS_FILE),
        &confirm::reminders_schema(),
        &remembered,
    )?;
    let mut desired = desired;
    desired
        .contacts
        .extend(confirm::confirmations(&remembered, &messages));
    if let Some(markdown) = &fired.digest_markdown {
        let path = out.join(DIGEST_FILE);
        crate::snapshot::atomic::write(&path, markdown.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    summary.baseline = u64::from(fired.baseline);
    summary.messages_fired = fired.messages.len() as u64;
    summary.notes_fired = fired.notes.len() as u64;

    // Message workflows: tasks, failure tags and SMS statuses from the same events.
    let flows = workflows::run(
        &config.workflows,
        &events,
        previous.as_ref(),
        config.triggers.fire_on_first_run,
    );
    desired.contacts.extend(flows.contacts);

    // Write the desired state, then the summary that marks the stage done.
    write_rows(
        &out.join(crate::snapshot::desired::DESIRED_CONTACTS_FILE),
        &desired_contacts_schema(),
        &desired.contacts,
    )?;
    write_rows(
        &out.join("desired_blocked.parquet"),
        &desired_blocked_schema(),
        &desired.blocked,
    )?;
    write_rows(
        &out.join("desired_messages.parquet"),
        &desired_messages_schema(),
        &fired.messages,
    )?;
    write_rows(
        &out.join("desired_notes.parquet"),
        &desired_notes_schema(),
        &fired.notes,
    )?;
    write_rows(
        &out.join(DESIRED_TASKS_FILE),
        &desired_tasks_schema(),
        &flows.tasks,
    )?;
    let json = serde_json::to_vec_pretty(&summary)?;
    crate::snapshot::atomic::write(&out.join(SUMMARY_FILE), &json)?;
    Ok(summary)
}

/// True when a run's transform finished.
pub fn transform_done(run: &RunDir) -> bool {
    run.transform_dir().join(SUMMARY_FILE).exists()
}
