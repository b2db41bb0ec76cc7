//! The command line: one clap definition per flag, subcommands that call into the stages.

mod audit_cmd;
mod auth_cmd;
mod bench_cmd;
mod bench_serve;
mod bench_welcome;
mod check_cmd;
mod dedupe_cmd;
mod demo_cmd;
mod extract_cmd;
mod manual_cmd;
mod migrate_cmd;
mod pipeline_cmds;
mod sandbox_cmd;
mod serve_cmd;
pub use sandbox_cmd::sandbox_pipeline_toml;
pub mod stage;

pub use crate::pipeline::{CommandError, CommandReport};

use crate::exit_code::ExitCode;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;

/// contactsync: sync HighLevel (GHL) contacts and BulkSMS.com messaging, deduplicated and audited.
#[derive(Debug, Parser)]
#[command(name = "contactsync", version, about, after_help = ExitCode::HELP)]
pub struct Cli {
    /// Log format on stderr: human on a terminal, JSON for cron and log shippers.
    #[arg(long, value_enum, default_value_t = LogFormat::Human, global = true)]
    pub log_format: LogFormat,
    /// More log detail (-v debug, -vv trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

/// Options every stage command takes.
#[derive(Debug, Clone, Args)]
pub struct StageArgs {
    /// Pipeline file (TOML).
    #[arg(long, short = 'p', value_name = "FILE")]
    pub pipeline: PathBuf,
    /// Print one JSON object on stdout at the end (run id, run directory, counts, requests, errors).
    #[arg(long)]
    pub json: bool,
}

/// `contactsync run`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub stage: StageArgs,
    /// Run only shard i of n (0-based) of the pipeline's `[ghl] locations`: the locations whose
    /// id's SHA-256 (first 8 bytes, big-endian) mod n is i. Stable across runs and machines, so
    /// n runners (e.g. a Kubernetes Indexed Job) each take their own slice.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<crate::pipeline::agency::Shard>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the GHL and BulkSMS emulators on loopback with seeded data.
    Sandbox(SandboxArgs),
    /// Authenticate to an API and store its tokens in the state directory.
    Auth(AuthArgs),
    /// Check everything a run needs (credentials, scopes, location, rate limits, BulkSMS credits,
    /// state directory, match model, quiet hours) without writing anything remote.
    Check(CheckArgs),
    /// Page both APIs into a Parquet snapshot.
    Extract(ExtractArgs),
    /// Normalise, deduplicate and link the latest snapshot into the desired state.
    Transform(RunSelectArgs),
    /// Diff the desired state against the snapshot into a reviewable plan.
    Plan(RunSelectArgs),
    /// Apply the plan exactly once, with rate limiting and backoff.
    Load(LoadArgs),
    /// Extract, transform, plan, load and audit in one locked run (the nightly job).
    Run(RunArgs),
    /// Receive GHL and BulkSMS webhooks into the durable spool in the state directory.
    Serve(ServeArgs),
    /// Reconcile the two systems and two runs into HTML, JSON and CSV reports.
    Audit(AuditArgs),
    /// Deduplicate any CSV or Parquet table with a match model.
    Dedupe(DedupeArgs),
    /// Move a CSV or Parquet export into GHL, deduplicated against what is there.
    Migrate(MigrateArgs),
    /// Start a seeded sandbox in-process and run the nightly pipeline against it end to end.
    Demo(DemoArgs),
    /// Run a benchmark against a sandbox and write its results to a file.
    Bench(BenchArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) on stdout.
    Completions(CompletionsArgs),
    /// Print the man page (roff) on stdout, or write one page per command with `--out DIR`.
    Man(ManArgs),
}

/// `contactsync serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Pipeline file (TOML) with a `[serve]` table.
    #[arg(long, short = 'p', value_name = "FILE")]
    pub pipeline: PathBuf,
    /// Address to listen on (default: `serve.listen`; port 0 picks a free port).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
}

/// `contactsync completions`.
#[derive(Debug, Clone, Args)]
pub struct CompletionsArgs {
    /// The shell to complete in.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `contactsync man`.
#[derive(Debug, Clone, Args)]
pub struct ManArgs {
    /// Folder to write `contactsync.1` and a page for every subcommand into.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// `contactsync bench`.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// What to measure.
    #[arg(value_enum)]
    pub target: BenchTarget,
    /// Sizes (contacts, and as many messages) to extract with the rate limit off.
    #[arg(long, value_delimiter = ',', default_values_t = vec![100_000usize, 1_000_000])]
    pub sizes: Vec<usize>,
    /// Contacts to extract once more with GHL's real rate limit on (omit to skip).
    #[arg(long)]
    pub limited_contacts: Option<usize>,
    /// Folder for results and scratch files.
    #[arg(long, default_value = "bench-output")]
    pub out: PathBuf,
    /// `serve`: signed events to send (after a warm-up).
    #[arg(long, default_value_t = 20_000)]
    pub events: usize,
    /// `serve`: requests kept in flight.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// `welcome`: contacts to create.
    #[arg(long, default_value_t = 60)]
    pub created: usize,
    /// `welcome`: milliseconds between two creates.
    #[arg(long, default_value_t = 1000)]
    pub create_interval_ms: u64,
    /// `welcome`: seconds between `serve`'s micro-batches.
    #[arg(long, default_value_t = 10)]
    pub batch_interval: u64,
}

/// Benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BenchTarget {
    /// Extract throughput, memory and rate-limit use.
    Extract,
    /// Webhook events per second with durable acknowledgements, and ack latency percentiles.
    Serve,
    /// Contact created → welcome SMS latency through webhooks and micro-batches, rate limit on.
    Welcome,
}

/// `contactsync sandbox`.
#[derive(Debug, Clone, Args)]
pub struct SandboxArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Seed of all generated data and injected faults.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// GHL locations of the emulated agency, each with its own contacts, tokens and rate budget
    /// (listed in the ready line's `ghl_locations`).
    #[arg(long, default_value_t = 1)]
    pub locations: usize,
    /// GHL contacts to seed per location (planted duplicates included).
    #[arg(long, default_value_t = 1_000)]
    pub contacts: usize,
    /// BulkSMS messages to seed.
    #[arg(long, default_value_t = 2_000)]
    pub messages: usize,
    /// Faults: none, flaky, hostile, or a TOML profile file.
    #[arg(long, default_value = "none")]
    pub faults: String,
    /// Serve without GHL's rate limits.
    #[arg(long)]
    pub no_rate_limit: bool,
    /// GHL access token lifetime in seconds.
    #[arg(long, default_value_t = 86_399)]
    pub token_ttl: i64,
    /// Milliseconds before a GHL write appears in /contacts/search.
    #[arg(long, default_value_t = 0)]
    pub index_lag_ms: u64,
    /// Refuse creates that duplicate an email or phone (GHL's "Allow Duplicate Contact" off).
    #[arg(long)]
    pub forbid_duplicates: bool,
    /// Also write a pipeline file pointing at this sandbox.
    #[arg(long, value_name = "FILE")]
    pub emit_pipeline: Option<PathBuf>,
    /// Write the seeded contacts (`contacts.csv`) and their ground truth (`truth.csv`) to this
    /// folder and exit without serving (for `contactsync dedupe` and the accuracy benchmark).
    #[arg(long, value_name = "DIR")]
    pub export_seed: Option<PathBuf>,
}

/// `contactsync auth`.
#[derive(Debug, Clone, Args)]
pub struct AuthArgs {
    /// Which API.
    #[arg(value_enum)]
    pub api: AuthApi,
    #[command(flatten)]
    pub stage: StageArgs,
    /// Authorization code, or the whole address the browser was redirected to, or `-` to read
    /// either from stdin. Without it: the pipeline file's `ghl.auth.auth_code`, else the
    /// authorization URL is printed and the code caught on a loopback `ghl.auth.redirect_uri`
    /// (or pasted on stdin).
    #[arg(long)]
    pub code: Option<String>,
    /// Seconds to wait for the browser to come back to a loopback redirect URI.
    #[arg(long, default_value_t = 300)]
    pub timeout: u64,
}

/// `contactsync check`.
#[derive(Debug, Clone, Args)]
#[command(after_help = "Exit code 0 when no check fails (warnings allowed); 2 when one fails.")]
pub struct CheckArgs {
    #[command(flatten)]
    pub stage: StageArgs,
}

/// APIs that have an auth flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuthApi {
    Ghl,
}

/// `contactsync extract`.
#[derive(Debug, Clone, Args)]
pub struct ExtractArgs {
    #[command(flatten)]
    pub stage: StageArgs,
    /// Ignore stored cursors and re-read everything.
    #[arg(long)]
    pub full: bool,
}

/// Stage commands that work on a run (the latest by default).
#[derive(Debug, Clone, Args)]
pub struct RunSelectArgs {
    #[command(flatten)]
    pub stage: StageArgs,
    /// Run id to work on (default: the latest).
    #[arg(long)]
    pub run: Option<String>,
}

/// `contactsync load`.
#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    #[command(flatten)]
    pub stage: StageArgs,
    /// Show what would be written and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Run id whose plan to apply (default: the latest).
    #[arg(long)]
    pub run: Option<String>,
}

/// `contactsync audit`.
#[derive(Debug, Clone, Args)]
pub struct AuditArgs {
    #[command(flatten)]
    pub stage: StageArgs,
    /// Run to audit (default: the latest).
    #[arg(long)]
    pub run: Option<String>,
    /// Earlier run to compare against (default: the one before).
    #[arg(long)]
    pub against: Option<String>,
    /// Audit the latest run of every location of `[ghl] locations`: one line per location and
    /// the totals.
    #[arg(long, conflicts_with_all = ["run", "against"])]
    pub all_locations: bool,
}

/// `contactsync dedupe`.
#[derive(Debug, Clone, Args)]
pub struct DedupeArgs {
    /// Input table (.csv or .parquet).
    #[arg(long)]
    pub input: PathBuf,
    /// Match model (TOML); default: the contacts model built into the binary (`pipelines/models/contacts.toml`).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Output: `id, cluster_id, match_probability` per input row (.csv or .parquet).
    #[arg(long)]
    pub out: PathBuf,
    /// Also write the scored pairs with per-field explanations.
    #[arg(long)]
    pub pairs: Option<PathBuf>,
    /// Only pairs scored at least this probability go to `--pairs` (0: every candidate pair,
    /// which on millions of rows is a very large file).
    #[arg(long, default_value_t = 0.0)]
    pub pairs_min_probability: f64,
    /// Default phone region for national numbers.
    #[arg(long, default_value = "US")]
    pub region: String,
    /// Print one JSON object on stdout at the end.
    #[arg(long)]
    pub json: bool,
}

/// `contactsync migrate`.
#[derive(Debug, Clone, Args)]
pub struct MigrateArgs {
    #[command(flatten)]
    pub stage: StageArgs,
    /// Export to move into GHL (.csv or .parquet).
    #[arg(long)]
    pub input: PathBuf,
    /// Apply the plan (without it nothing is written anywhere).
    #[arg(long)]
    pub apply: bool,
}

/// `contactsync demo`.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Directory for the demo's pipeline file, state and reports.
    #[arg(long, default_value = "demo-output")]
    pub out: PathBuf,
    /// Contacts to seed.
    #[arg(long, default_value_t = 1_000)]
    pub contacts: usize,
    /// Messages to seed.
    #[arg(long, default_value_t = 2_000)]
    pub messages: usize,
    /// Seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Print one JSON object on stdout at the end.
    #[arg(long)]
    pub json: bool,
}

impl Command {
    /// The subcommand's name, as `--json` reports it.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Sandbox(_) => "sandbox",
            Command::Auth(_) => "auth",
            Command::Check(_) => "check",
            Command::Extract(_) => "extract",
            Command::Transform(_) => "transform",
            Command::Plan(_) => "plan",
            Command::Load(_) => "load",
            Command::Run(_) => "run",
            Command::Audit(_) => "audit",
            Command::Serve(_) => "serve",
            Command::Dedupe(_) => "dedupe",
            Command::Migrate(_) => "migrate",
            Command::Demo(_) => "demo",
            Command::Bench(_) => "bench",
            Command::Completions(_) => "completions",
            Command::Man(_) => "man",
        }
    }

    /// Whether `--json` was asked for: a failing command still prints its report then, so a job
    /// that parses stdout sees the exit code and the error instead of nothing.
    pub fn wants_json(&self) -> bool {
        match self {
            Command::Auth(a) => a.stage.json,
            Command::Check(a) => a.stage.json,
            Command::Extract(a) => a.stage.json,
            Command::Transform(a) | Command::Plan(a) => a.stage.json,
            Command::Load(a) => a.stage.json,
            Command::Run(a) => a.stage.json,
            Command::Audit(a) => a.stage.json,
            Command::Migrate(a) => a.stage.json,
            Command::Dedupe(a) => a.json,
            Command::Demo(a) => a.json,
            Command::Sandbox(_)
            | Command::Serve(_)
            | Command::Bench(_)
            | Command::Completions(_)
            | Command::Man(_) => false,
        }
    }
}

/// Runs one parsed command line.
pub async fn run(cli: Cli) -> Result<ExitCode, CommandError> {
    match cli.command {
        Command::Sandbox(args) => sandbox_cmd::run(args).await,
        Command::Auth(args) => auth_cmd::run(args).await,
        Command::Check(args) => check_cmd::run(args).await,
        Command::Extract(args) => extract_cmd::run(args).await,
        Command::Demo(args) => demo_cmd::run(args).await,
        Command::Dedupe(args) => dedupe_cmd::run(args).await,
        Command::Transform(args) => pipeline_cmds::transform(args).await,
        Command::Plan(args) => pipeline_cmds::plan(args).await,
        Command::Load(args) => pipeline_cmds::load(args).await,
        Command::Run(args) => pipeline_cmds::run(args).await,
        Command::Bench(args) => bench_cmd::run(args).await,
        Command::Audit(args) => audit_cmd::run(args).await,
        Command::Serve(args) => serve_cmd::run(args).await,
        Command::Migrate(args) => migrate_cmd::run(args).await,
        Command::Completions(args) => manual_cmd::completions(args),
        Command::Man(args) => manual_cmd::man(args),
    }
}
