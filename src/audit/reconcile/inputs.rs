//! What the audit of a run reads: its snapshot, transform outputs, plan and ledger. Files only,
//! through the contract's row types.

use crate::snapshot::contact::SnapshotContact;
use crate::snapshot::contract::ledger::LedgerReader;
use crate::snapshot::contract::plan::{Plan, read_plan};
use crate::snapshot::contract::transform_outputs::{
    CLUSTERS_FILE, ClusterRow, GOLDEN_FILE, GoldenRecord, LINKS_FILE, LinkRow, NORMALIZED_FILE,
    NormalizedRow, PAIRS_FILE, SUMMARY_FILE,
};
use crate::snapshot::desired::read_rows;
use crate::snapshot::phone::digits;
use crate::snapshot::run::RunDir;
use crate::snapshot::schema::BlockedNumberRow;
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// A scored pair: left id, right id, match probability, accepted, evidence (field weights).
pub type PairRow = (String, String, f64, bool, String);

/// One run's files, read once.
pub struct RunInputs {
    pub contacts: Vec<SnapshotContact>,
    /// E.164 digits of each contact whose phone parsed, by contact id (transform's normalisation).
    pub phone_digits: HashMap<String, String>,
    /// Blocked numbers, digits.
    pub blocked: HashSet<String>,
    pub links: Vec<LinkRow>,
    pub clusters: Vec<ClusterRow>,
    pub goldens: Vec<GoldenRecord>,
    pub pairs: Vec<PairRow>,
    pub plan: Option<Plan>,
    pub ledger: Option<LedgerReader>,
}

impl RunInputs {
    /// Reads `run`'s files; `ledger` is the state store's, when there is one.
    pub fn read(ledger: Option<LedgerReader>, run: &RunDir) -> anyhow::Result<RunInputs> {
        let extract = run.extract_dir();
        let transform = run.transform_dir();
        anyhow::ensure!(
            transform.join(SUMMARY_FILE).exists(),
            "run {} has no finished transform; run `contactsync transform` first",
            run.id
        );
        let blocked: Vec<BlockedNumberRow> =
            read_rows(&extract.join("bulksms/blocked_numbers.parquet"))?;
        let normalized: Vec<NormalizedRow> = read_rows(&transform.join(NORMALIZED_FILE))?;
        Ok(RunInputs {
            contacts: read_rows(&extract.join("ghl/contacts.parquet"))?,
            phone_digits: normalized
                .into_iter()
                .filter_map(|n| Some((n.id, digits(n.phone_e164.as_deref()?))))
                .collect(),
            blocked: blocked.iter().map(|b| digits(&b.phone_number)).collect(),
            links: read_rows(&transform.join(LINKS_FILE))?,
            clusters: read_rows(&transform.join(CLUSTERS_FILE))?,
            goldens: read_rows(&transform.join(GOLDEN_FILE))?,
            pairs: read_pairs(&transform.join(PAIRS_FILE))?,
            plan: read_plan(&run.load_dir(), &run.id).ok(),
            ledger,
        })
    }

    /// The contacts by id.
    pub fn by_id(&self) -> HashMap<&str, &SnapshotContact> {
        self.contacts.iter().map(|c| (c.id.as_str(), c)).collect()
    }
}

/// Reads a run's pairs file.
fn read_pairs(path: &Path) -> anyhow::Result<Vec<PairRow>> {
    // The per-field columns depend on the model, so rows are read as JSON maps.
    let rows: Vec<serde_json::Map<String, serde_json::Value>> = read_rows(path)?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let text = |k: &str| {
            row.get(k)
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_string()
        };
        let probability = row
            .get("match_probability")
            .and_then(serde_json::Value::as_f64)
            .unwrap_or(0.0);
        let accepted = row
            .get("accepted")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false);
        // Evidence: each field's weight, strongest first.
        let mut weights: Vec<(String, f64)> = row
            .iter()
            .filter_map(|(k, v)| {
                let field = k.strip_suffix("_weight")?;
                (field != "match").then(|| (field.to_string(), v.as_f64().unwrap_or(0.0)))
            })
            .collect();
        weights.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()));
        let evidence = weights
            .iter()
            .filter(|(_, w)| w.abs() >= 0.05)
            .map(|(f, w)| format!("{f} {w:+.1}"))
            .collect::<Vec<_>>()
            .join(", ");
        out.push((text("id_l"), text("id_r"), probability, accepted, evidence));
    }
    Ok(out)
}
