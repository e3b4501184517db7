//! The command line: every command, its arguments and their help text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "vigil",
    version,
    about = "A governed path for clinical prediction models: registry, evidence, gates, serving, monitoring and audit",
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug, Clone)]
pub struct Global {
    /// The Vigil home: store, artifacts and configuration [default: ~/.vigil]
    #[arg(long, global = true, env = "VIGIL_HOME", value_name = "DIR")]
    pub home: Option<PathBuf>,
    /// A PostgreSQL URL (postgres://…) instead of the home's embedded SQLite store
    #[arg(
        long,
        global = true,
        env = "VIGIL_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    /// Who is acting: written into every audit event [default: $USER]
    #[arg(long = "as", global = true, env = "VIGIL_USER", value_name = "USER")]
    pub user: Option<String>,
    /// Machine-readable JSON output
    #[arg(long, global = true)]
    pub json: bool,
    /// The public base URL EHRs call this Vigil at: the `aud` of CDS Hooks tokens and the
    /// root of card links [default: http://ADDR of `serve`]
    #[arg(long, global = true, env = "VIGIL_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create (or upgrade) a Vigil home: folder, artifact store and database schema
    Init,
    /// The whole lifecycle on the bundled example in a demo home (register, check, evaluate, sign off, shadow, production, CDS client), then serve it
    Quickstart(QuickstartArgs),
    /// Dataset snapshots: register, list, show
    #[command(subcommand)]
    Dataset(DatasetCmd),
    /// Models: a named clinical use with its intended use, risk tier and owners
    #[command(subcommand)]
    Model(ModelCmd),
    /// Releases: immutable, content-addressed versions of a model
    #[command(subcommand)]
    Release(ReleaseCmd),
    /// The hash-chained audit log
    #[command(subcommand)]
    Audit(AuditCmd),
    /// Clinical evaluation: a score column of a file, or a release scored on a snapshot
    #[command(subcommand)]
    Evaluate(crate::commands::evaluate::EvaluateCmd),
    /// Recorded evaluations: list, show
    #[command(subcommand)]
    Evaluation(crate::commands::evaluate::EvaluationCmd),
    /// Compare two releases on the same snapshot: paired DeLong and metric differences
    Compare(crate::commands::evaluate::CompareArgs),
    /// Input drift between two datasets (files or snapshot ids)
    Drift(crate::commands::evaluate::DriftArgs),
    /// Users, roles and API tokens
    #[command(subcommand)]
    User(UserCmd),
    /// The gate policy: what each risk tier needs before each stage
    #[command(subcommand)]
    Policy(PolicyCmd),
    /// Sign off a release in a role, bound to the evidence on record now
    Approve(SignOffArgs),
    /// Reject a release in a role
    Reject(SignOffArgs),
    /// Exceptions: waive one gate for one release until an expiry
    #[command(subcommand)]
    Exception(ExceptionCmd),
    /// List every gate for moving a release to a stage: met, unmet or covered, with evidence
    Gates {
        release: String,
        #[arg(long)]
        to: String,
    },
    /// Move a release to a stage; refused (non-zero exit) unless every gate is met or covered
    Promote {
        release: String,
        #[arg(long)]
        to: String,
        #[arg(long)]
        reason: String,
    },
    /// Put the previous production release of a model back; --drill rehearses it and changes nothing
    Rollback {
        model: String,
        #[arg(long)]
        reason: String,
        #[arg(long)]
        drill: bool,
    },
    /// Retire a release (final)
    Retire {
        release: String,
        #[arg(long)]
        reason: String,
    },
    /// Every promotion of a model; --at T answers what was live then
    History {
        model: String,
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
    },
    /// Score a CSV or Parquet file with a model's production release (or --release): every
    /// input column plus score, decision and fallback_reason, in the same format
    Score(crate::commands::score::ScoreArgs),
    /// Prediction records: what was scored, by which release, with which inputs
    #[command(subcommand)]
    Predictions(crate::commands::predictions::PredictionsCmd),
    /// Structured clinical review of sampled cases
    #[command(subcommand)]
    Review(ReviewCmd),
    /// CDS Hooks clients (EHRs): register their keys, list, remove, mint a test token
    #[command(subcommand, name = "cds-client")]
    CdsClient(crate::commands::cds::CdsClientCmd),
    /// Clinician feedback on CDS cards
    #[command(subcommand)]
    Feedback(crate::commands::cds::FeedbackCmd),
    /// Outcomes (labels) joined to prediction records
    #[command(subcommand)]
    Outcomes(crate::commands::monitor::OutcomesCmd),
    /// Production monitoring: policy, rule runs, reports, deployment controls
    #[command(subcommand)]
    Monitor(crate::commands::monitor::MonitorCmd),
    /// Incidents: open, list, show, update, close
    #[command(subcommand)]
    Incident(crate::commands::monitor::IncidentCmd),
    /// Rehearse the monitor policy: replay a synthetic cohort with a scenario injected
    Simulate(crate::commands::monitor::SimulateArgs),
    /// Serve the REST API (/api/v1), predictions, the Open Inference Protocol (/v2) and
    /// /metrics until SIGTERM or Ctrl-C
    Serve(ServeArgs),
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: String,
    /// How often to check the store for promotions, rollbacks and user changes made elsewhere
    #[arg(long, default_value = "1s", value_name = "DURATION")]
    pub poll_interval: String,
    /// A scoring that takes longer is answered with the `timeout` fallback
    #[arg(long, default_value = "500ms", value_name = "DURATION")]
    pub score_timeout: String,
    /// How long a request waits for its prediction record to be durable before a 503
    #[arg(long, default_value = "10s", value_name = "DURATION")]
    pub record_timeout: String,
    /// The most prediction records committed in one transaction
    #[arg(long, default_value_t = 1000)]
    pub record_batch: usize,
    /// Run the monitor policy this often (0s: never)
    #[arg(long, default_value = "5m", value_name = "DURATION")]
    pub monitor_every: String,
}

#[derive(Subcommand, Debug)]
pub enum UserCmd {
    /// Add a user and print its API token once (the first user of a store also gets governance)
    Add {
        name: String,
        /// data-scientist, clinical-reviewer, governance, operator, auditor, predict-client (repeat or comma-separate)
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
    },
    /// Revoke a user: its token stops working
    Revoke { name: String },
    /// List users
    List,
}

#[derive(Subcommand, Debug)]
pub enum PolicyCmd {
    /// Apply a gate policy file as a new version (governance)
    Apply { file: PathBuf },
    /// Show the policy in force
    Show,
}

#[derive(Args, Debug)]
pub struct SignOffArgs {
    pub release: String,
    /// The role signed in (you must hold it)
    #[arg(long)]
    pub role: String,
    #[arg(long, default_value = "")]
    pub comment: String,
}

#[derive(Subcommand, Debug)]
pub enum ExceptionCmd {
    /// Waive one named gate for a release (governance)
    Grant {
        release: String,
        #[arg(long)]
        gate: String,
        #[arg(long)]
        rationale: String,
        /// YYYY-MM-DD or RFC 3339
        #[arg(long, value_name = "DATE")]
        expires: String,
    },
    /// List a release's exceptions
    List { release: String },
}

#[derive(Subcommand, Debug)]
pub enum ReviewCmd {
    /// Draw cases of a dataset for clinical review, stratified by label and subgroups
    Sample {
        release: String,
        /// The dataset snapshot (id or prefix)
        #[arg(long)]
        data: String,
        #[arg(long, default_value_t = 50)]
        n: usize,
        /// The label column
        #[arg(long, default_value = "label")]
        label: String,
        /// A subgroup column to stratify by (repeatable)
        #[arg(long = "subgroup")]
        subgroups: Vec<String>,
    },
    /// Record a verdict on a sampled case
    Record {
        release: String,
        /// The case's row in the sample
        #[arg(long)]
        case: u64,
        /// plausible, implausible or unsafe
        #[arg(long)]
        verdict: String,
        #[arg(long, default_value = "")]
        comment: String,
    },
    /// Counts of verdicts for a release
    Summary { release: String },
}

#[derive(Args, Debug)]
pub struct QuickstartArgs {
    /// Where the demo home goes [default: $VIGIL_HOME, else ./vigil-demo]
    #[arg(long, value_name = "DIR")]
    pub demo_home: Option<PathBuf>,
    /// Where the server listens at the end
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: String,
    /// Stop after the lifecycle, without starting the server (for scripts)
    #[arg(long)]
    pub no_serve: bool,
}

#[derive(Subcommand, Debug)]
pub enum DatasetCmd {
    /// Copy a CSV file into the artifact store and record a snapshot with its manifest
    Register {
        file: PathBuf,
        #[arg(long)]
        name: String,
        /// Provenance: source systems, extraction time, inclusion criteria, label definition, time window, sites
        #[arg(long, value_name = "manifest.toml")]
        manifest: Option<PathBuf>,
    },
    /// Run every data check on a snapshot against a feature contract; record the result.
    /// Exits 4 when a blocking check fails.
    Check(CheckArgs),
    /// List dataset snapshots
    List,
    /// Show one snapshot (id or unambiguous prefix)
    Show { id: String },
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// The snapshot (id or unambiguous prefix)
    pub snapshot: String,
    #[arg(long, value_name = "contract.toml")]
    pub contract: PathBuf,
    #[arg(long, value_name = "COL")]
    pub label_col: Option<String>,
    /// The label value meaning "positive", when labels are not 0/1
    #[arg(long, value_name = "VALUE")]
    pub positive_label: Option<String>,
    #[arg(long, value_name = "COL")]
    pub prediction_time_col: Option<String>,
    #[arg(long, value_name = "COL")]
    pub site_col: Option<String>,
    #[arg(long, value_name = "COL")]
    pub patient_col: Option<String>,
    /// Another snapshot that must share no patient with this one (e.g. the training set)
    #[arg(long, value_name = "SNAPSHOT_ID")]
    pub against: Option<String>,
    /// Also write the report as a self-contained HTML file
    #[arg(long, value_name = "checks.html")]
    pub html: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum ModelCmd {
    /// Create a model
    Create {
        name: String,
        #[arg(long, value_name = "intended-use.toml")]
        intended_use: PathBuf,
        /// 1 (lowest risk) to 4 (highest)
        #[arg(long)]
        risk_tier: u8,
        #[arg(long, value_name = "WHO")]
        clinical_owner: String,
        #[arg(long, value_name = "WHO")]
        technical_owner: String,
    },
    /// List models
    List,
    /// Show a model
    Show { name: String },
    /// The model card of a release: HTI-1 source attributes filled from the registry
    Card {
        release: String,
        #[arg(long, value_enum, default_value_t = CardFormat::Md)]
        format: CardFormat,
        /// Write the card here instead of standard output
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum CardFormat {
    Md,
    Html,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum ReleaseCmd {
    /// Pin an ONNX artifact, its feature contract and its training data into an immutable release
    Register(Box<RegisterReleaseArgs>),
    /// List releases
    List {
        #[arg(long)]
        model: Option<String>,
    },
    /// Show a release (id or unambiguous prefix)
    Show { id: String },
}

#[derive(Args, Debug)]
pub struct RegisterReleaseArgs {
    #[arg(long)]
    pub model: String,
    /// The model, exported to ONNX
    #[arg(long, value_name = "model.onnx")]
    pub artifact: PathBuf,
    #[arg(long, value_name = "contract.toml")]
    pub contract: PathBuf,
    /// The training dataset snapshot (id or unambiguous prefix)
    #[arg(long, value_name = "SNAPSHOT_ID")]
    pub training_data: String,
    #[arg(long, value_name = "SHA")]
    pub code_commit: Option<String>,
    /// The training environment's lockfile
    #[arg(long, value_name = "lockfile")]
    pub environment: Option<PathBuf>,
    #[arg(long, value_name = "params.json")]
    pub hyperparameters: Option<PathBuf>,
    /// A decision threshold on the score (repeat for several)
    #[arg(long = "threshold", value_name = "P")]
    pub thresholds: Vec<f64>,
    #[arg(long, value_name = "TEXT")]
    pub changelog: Option<String>,
    /// The training framework's predictions (CSV: the contract's inputs by feature name and a
    /// `probability` column); the release is refused unless the artifact reproduces every row
    /// within 1e-5
    #[arg(long, value_name = "FILE.csv")]
    pub reference_predictions: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum AuditCmd {
    /// Walk the chain and check every hash and link; exits non-zero at the first bad event
    Verify,
    /// List events
    Log {
        #[arg(long)]
        subject: Option<String>,
        #[arg(long)]
        action: Option<String>,
        /// Only events after this sequence number
        #[arg(long, default_value_t = 0)]
        after: i64,
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// Write the evidence package of a release: manifest, artifacts, datasets and checks,
    /// evaluations, sign-offs, history, and its audit events with the chain proof
    Export {
        release: String,
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Check an evidence package on any machine, without a store
    VerifyPackage {
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
}
