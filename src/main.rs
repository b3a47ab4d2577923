//! `vouchsafe`: the command-line entry point. Wiring only: every command delegates to the workspace crates.
//!
//! Exit codes: 0 success, 1 runtime failure, 2 usage or configuration error. Every failure prints exactly one line
//! on stderr, starting with `vouchsafe:`.
#![forbid(unsafe_code)]

mod ascii;
mod authority;
mod centre;
mod cmd;
mod demo;
mod demo_after;
mod error;
mod eval;
mod keyfile;
mod leakage;
mod load;
mod provider;
mod review;
mod transparency;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::error::{CliError, EXIT_USAGE, Result};

/// Privacy-preserving detection of known abuse imagery under detection orders (threshold PSI over ristretto255).
#[derive(Debug, Parser)]
#[command(name = "vouchsafe", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the whole system locally (Centre, provider server, two devices) and show what each party learns.
    Demo(DemoArgs),
    /// Run the provider's matching server until SIGTERM or SIGINT.
    Serve {
        /// Server configuration (TOML, see docs/OPERATIONS.md).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Blinded indicator table management.
    #[command(subcommand)]
    Table(TableCommand),
    /// The provider's identity towards the Centre (its report-signing key).
    #[command(subcommand)]
    Provider(ProviderCommand),
    /// The operator's view: inbox, counters, cases, the audit chain (verified) and the table file. Safe while the
    /// server runs.
    Status {
        /// Server configuration (TOML): names the database and the table file.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// The device side: sync the table, scan images into vouchers, submit them.
    Client(ClientArgs),
    /// Print the perceptual hashes and the quality verdict of images.
    Hash {
        /// PNG or JPEG files.
        #[arg(required = true, value_name = "IMAGE")]
        images: Vec<PathBuf>,
        /// Hash configuration id (docs/HASHING.md).
        #[arg(long, value_name = "ID", default_value_t = vouchsafe_phash::HashConfig::RECOMMENDED.id())]
        hash_config: u16,
    },
    /// The server's posterior on an account's real match count below the threshold (docs/LEAKAGE.md).
    Leakage(LeakageArgs),
    /// Detection quality on natural images: recall per edit, false matches, effective bits (docs/HASHING.md §8).
    Eval(EvalArgs),
    /// The issuing authority: its signing key, signed detection orders and revocations (docs/GOVERNANCE.md).
    #[command(subcommand)]
    Authority(AuthorityCommand),
    /// The Centre: its key, the indicator database with provenance, signed releases (docs/GOVERNANCE.md), and the
    /// intake of reports, withdrawals and feedback (docs/CENTRE.md).
    #[command(subcommand)]
    Centre(CentreCommand),
    /// A witness of a provider's transparency log: its key, and cosigning a checkpoint only if the log did not fork.
    #[command(subcommand)]
    Witness(WitnessCommand),
    /// The provider's transparency log, for auditors.
    #[command(subcommand)]
    Log(LogCommand),
    /// Reviewers and supervisors: list, show and decide cases; list and decide appeals (the `Review` API).
    Review(review::ReviewArgs),
    /// The transparency report of an order: the unsigned statistics as a draft, or (--publish, supervisors) signed
    /// and logged; as JSON, Markdown or a self-contained HTML page.
    Report(review::ReportArgs),
    /// A bounded load generator for a matching server on loopback: simulated devices sync and scan generated images,
    /// then all submit at once; prints submit throughput and latency, and with --metrics-url the time until the
    /// inbox is empty (docs/OPERATIONS.md, "Load testing").
    Load(load::LoadArgs),
}

#[derive(Debug, Args)]
struct LogServer {
    /// The provider's server (its `Transparency` service).
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:50051")]
    server: String,
    /// For an https server: PEM file of the certificate authorities to trust instead of the built-in roots.
    #[arg(long, value_name = "FILE")]
    ca_cert: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum WitnessCommand {
    /// Make a witness key: FILE (mode 0600) and FILE.pub (what devices and auditors pin).
    Keygen {
        /// The witness's name (a key name: no spaces, no '+'), e.g. `witness.example.org`.
        #[arg(long)]
        name: String,
        /// Where to write the secret key.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Cosign the log's current checkpoint if it is consistent with the last one this witness cosigned (exit 1,
    /// nothing signed, on a rollback or a fork).
    Cosign {
        #[command(flatten)]
        server: LogServer,
        /// The witness's secret key file.
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// The log's public key file (`vouchsafe log keygen` writes it).
        #[arg(long, value_name = "FILE")]
        log_key: PathBuf,
        /// The witness's state: the last checkpoint it cosigned (created on first use, replaced atomically).
        #[arg(long, value_name = "FILE")]
        state: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum LogCommand {
    /// Make the transparency log's signing key: FILE (mode 0600) and FILE.pub (the verifier key apps and witnesses
    /// pin); the origin is the key's name.
    Keygen {
        /// The log's origin, e.g. `provider.example/vouchsafe-log`.
        #[arg(long)]
        origin: String,
        /// The secret key file to create (refused if it exists).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Replay the whole log: the checkpoint's log signature and witness quorum, every leaf against the root, and
    /// every order, revocation, release record and table manifest against the keys and what came before it
    /// (exit 1 on the first failure, naming the leaf).
    Verify {
        #[command(flatten)]
        server: LogServer,
        /// The log's public key file.
        #[arg(long, value_name = "FILE")]
        log_key: PathBuf,
        /// A witness public key file (repeat).
        #[arg(long = "witness", value_name = "FILE", required = true)]
        witnesses: Vec<PathBuf>,
        /// Distinct witnesses that must have cosigned.
        #[arg(long)]
        quorum: usize,
        /// An authority public key file (repeat).
        #[arg(long = "authority", value_name = "FILE", required = true)]
        authorities: Vec<PathBuf>,
        /// The auditor's state: the last checkpoint it verified; the log must extend it.
        #[arg(long, value_name = "FILE")]
        state: Option<PathBuf>,
        /// A provider public key file (`provider keygen`, repeat): transparency reports must be signed by one.
        #[arg(long = "provider-key", value_name = "FILE")]
        providers: Vec<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum CentreCommand {
    /// Make a new Ed25519 signing key: FILE (secret, mode 0600) and FILE.pub; prints the public key in hex.
    Keygen {
        /// The secret key file to create (refused if it exists).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Import one independent source's list into the database (created if missing), keeping its provenance.
    Import {
        /// The Centre's database file.
        #[arg(long, value_name = "FILE")]
        db: PathBuf,
        /// The source's id (lowercase letters, digits, `.`, `_`, `-`).
        #[arg(long)]
        source: String,
        /// A list of `primary-hex secondary-hex reference` lines.
        #[arg(long, value_name = "FILE", conflicts_with = "images", required_unless_present = "images")]
        list: Option<PathBuf>,
        /// A directory of images to hash; the reference is each file's name.
        #[arg(long, value_name = "DIR")]
        images: Option<PathBuf>,
        /// Hash configuration of a new database (default: 2, the recommended one). An existing database keeps
        /// its own; giving another is an error.
        #[arg(long, value_name = "ID")]
        hash_config: Option<u16>,
        /// With --images: also attest the hashes of each image's renderings by the usual messenger pipelines
        /// (`pipelines`, the default), by sizes and qualities chosen without knowing them (`generic`), or none;
        /// each is referenced `<file>#<rendering>` (docs/HASHING.md §8).
        #[arg(long, value_name = "SET", requires = "images")]
        variants: Option<String>,
    },
    /// Sign the next release of a line: indicators attested by at least N distinct sources, minus false positives.
    Release {
        /// The Centre's database file.
        #[arg(long, value_name = "FILE")]
        db: PathBuf,
        /// The Centre's secret key file.
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// The release line.
        #[arg(long)]
        line: String,
        /// The directory of the line's releases (read to chain, and written: LINE-NNNNNN.bin).
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// Distinct sources an indicator needs (recorded in the release).
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..))]
        min_sources: u8,
        /// False positives to remove: hex primary hashes, one per line (they never return).
        #[arg(long, value_name = "FILE")]
        remove: Option<PathBuf>,
    },
    /// Run the Centre's intake (reports, withdrawals, indicator feedback) until SIGTERM or SIGINT (docs/CENTRE.md).
    Serve {
        /// The Centre's configuration file (centre.toml).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Reports received, forwarded, manifest false positives, withdrawals, per provider; feedback totals.
    Stats {
        /// The Centre's configuration file (centre.toml).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Per-indicator second-hash drops and review rejections of all providers, and the removal proposals.
    Feedback {
        /// The Centre's configuration file (centre.toml).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Review rejections that make a removal proposal (any second-hash drop does).
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..))]
        min: u64,
        /// Write the proposals, one primary hash (hex) per line, for `centre release --remove` (refused if it exists).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Mark an indicator a false positive: reports naming it are manifest false positives, the next release removes it.
    Flag {
        /// The Centre's database file.
        #[arg(long, value_name = "FILE")]
        db: PathBuf,
        /// The indicator's primary hash (hex, canonical bytes).
        #[arg(long, value_name = "HEX")]
        primary: String,
        /// Why (kept in DB.flags with the time).
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
    },
    /// Verify the whole chain of a line's releases under a Centre public key and summarise it (exit 1 if not).
    Show {
        /// The Centre's public key file.
        #[arg(long, value_name = "PUB")]
        centre: PathBuf,
        /// The release line.
        #[arg(long)]
        line: String,
        /// The directory of the line's releases.
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum AuthorityCommand {
    /// Make a new Ed25519 signing key: FILE (secret, mode 0600, never printed) and FILE.pub (what apps pin).
    Keygen {
        /// The secret key file to create (refused if it exists).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Sign a detection order (at most 24 months; known imagery only).
    Issue(IssueCli),
    /// Sign a revocation of an order: effective at once on every device and server that sees it.
    Revoke {
        /// The authority's secret key file (the one that signed the order).
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// The signed order to revoke.
        #[arg(long, value_name = "FILE")]
        order: PathBuf,
        /// unspecified | superseded | issued-in-error | annulled | key-compromise.
        #[arg(long, default_value = "unspecified")]
        reason: String,
        /// Where to write the signed revocation (refused if it exists).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Verify an order against pinned authority keys, print it, and say whether it is active (exit 1 if not).
    Show {
        /// An authority public key file to trust (repeat for several).
        #[arg(long = "authority", value_name = "PUB", required = true)]
        authorities: Vec<PathBuf>,
        /// A signed revocation to take into account (repeatable).
        #[arg(long = "revocation", value_name = "FILE")]
        revocations: Vec<PathBuf>,
        /// Judge validity at this Unix time instead of now.
        #[arg(long, value_name = "SECONDS")]
        at: Option<i64>,
        /// The signed order.
        #[arg(value_name = "ORDER")]
        order: PathBuf,
    },
}

#[derive(Debug, Args)]
struct IssueCli {
    /// The authority's secret key file.
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// The service the order is for.
    #[arg(long)]
    service: String,
    /// Limit the order to these components of the service (comma-separated).
    #[arg(long, value_delimiter = ',', conflicts_with = "groups")]
    components: Vec<String>,
    /// Limit the order to these groups (comma-separated).
    #[arg(long, value_delimiter = ',')]
    groups: Vec<String>,
    /// Start of validity, Unix seconds (default: now).
    #[arg(long, value_name = "SECONDS")]
    not_before: Option<i64>,
    /// Length of validity in days (1..=731: at most 24 months).
    #[arg(long)]
    days: u32,
    /// Threshold T of distinct matches before anything can be decrypted (2..=1000).
    #[arg(long)]
    threshold: u16,
    /// Synthetic-voucher probability p in [0, 1].
    #[arg(long, default_value_t = 0.0)]
    synthetic_rate: f64,
    /// Synthetic cap s (0..=1024; > 0 when p > 0).
    #[arg(long, default_value_t = 0)]
    synthetic_cap: u16,
    /// Hash configuration id (docs/HASHING.md): 2 is the recommended one; 1 stays valid for Centre lists hashed
    /// under it.
    #[arg(long, default_value_t = vouchsafe_phash::HashConfig::RECOMMENDED.id())]
    hash_config: u16,
    /// The Centre's Ed25519 public key the table must come from (64 hex digits).
    #[arg(long, value_name = "HEX")]
    centre_key: String,
    /// The Centre release line the table must come from.
    #[arg(long)]
    release_line: String,
    /// The provider's table-signing Ed25519 public key (64 hex digits).
    #[arg(long, value_name = "HEX")]
    table_key: String,
    /// An account class the order excludes (repeatable), e.g. state accounts used for national security.
    #[arg(long = "exclude", value_name = "CLASS")]
    exclude: Vec<String>,
    /// Where to write the signed order (refused if it exists).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

#[derive(Debug, Args)]
struct DemoArgs {
    /// Number of benign fixture images to generate (12 of them become indicators).
    #[arg(long, default_value_t = 40, value_parser = clap::value_parser!(u32).range(30..=400))]
    images: u32,
    /// Keep the demo's files (config, table, databases, device data) in this directory (new or empty).
    #[arg(long, value_name = "DIR")]
    keep: Option<PathBuf>,
    /// Seed of the images and of every random choice (the demo is reproducible for a given seed).
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

#[derive(Debug, Subcommand)]
enum ProviderCommand {
    /// Make the provider's report-signing key: FILE (secret, mode 0600) and FILE.pub, which the Centre pins; the
    /// server's `[provider] key` names FILE.
    Keygen {
        /// The secret key file to create (refused if it exists).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum TableCommand {
    /// Make the provider's table-signing key: FILE (secret, mode 0600) and FILE.pub; prints the public key for
    /// `authority issue --table-key`.
    Keygen {
        /// The secret key file to create (refused if it exists).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Build the table of the order from the newest Centre release (verified under the order's Centre key and
    /// line) with a fresh blinding key, sign its manifest with the table key and write the table file and
    /// `<table>.manifest`.
    Build {
        /// Server configuration (TOML): the signed order, the keys, the releases, the table file.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Read the releases from this directory instead of `[releases] dir`.
        #[arg(long, value_name = "DIR")]
        release_dir: Option<PathBuf>,
    },
    /// Bring the table to the newest Centre release (same epoch and key), append the change to the update
    /// history, save the table and its new signed manifest; then send SIGHUP to `vouchsafe serve` (or restart it).
    Update {
        /// Server configuration (TOML).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Read the releases from this directory instead of `[releases] dir`.
        #[arg(long, value_name = "DIR")]
        release_dir: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
struct ClientArgs {
    /// The matching server.
    #[arg(long, global = true, default_value = "http://127.0.0.1:50051")]
    endpoint: String,
    /// The account's bearer token (prefer the environment variable: command lines are visible to other users).
    #[arg(long, global = true, env = "VOUCHSAFE_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// The account's data directory (table, per-order state, revocations, log checkpoint, outbox).
    #[arg(long, global = true, default_value = "vouchsafe-client-data")]
    data_dir: PathBuf,
    /// The service this client is (an order for another service is refused).
    #[arg(long, global = true, default_value = "demo-messenger")]
    service_id: String,
    /// For an https endpoint: PEM file of the certificate authorities to trust instead of the built-in roots.
    #[arg(long, global = true, value_name = "FILE")]
    ca_cert: Option<PathBuf>,
    /// Pinned issuing-authority public key file (`vouchsafe authority keygen`'s .pub); repeat for a keyring.
    #[arg(long = "authority-key", global = true, value_name = "FILE")]
    authority_keys: Vec<PathBuf>,
    /// Pinned Centre public key file (`vouchsafe centre keygen`'s .pub).
    #[arg(long, global = true, value_name = "FILE")]
    centre_key: Option<PathBuf>,
    /// Pinned transparency-log key: the verifier string `name+id+key`, or a file holding it.
    #[arg(long, global = true, value_name = "KEY|FILE")]
    log_key: Option<String>,
    /// Pinned witness key: a verifier string `name+id+key`, or a file holding it; repeat for each witness.
    #[arg(long = "witness", global = true, value_name = "KEY|FILE")]
    witnesses: Vec<String>,
    /// How many distinct pinned witnesses must cosign a checkpoint.
    #[arg(long, global = true)]
    quorum: Option<usize>,
    /// Refuse a checkpoint whose newest witness quorum is older than this many seconds.
    #[arg(long, global = true, value_name = "SECONDS")]
    max_checkpoint_age: Option<u64>,
    /// A class the account has (e.g. state-security); an order excluding it is refused. Repeatable.
    #[arg(long = "class", global = true, value_name = "CLASS")]
    classes: Vec<String>,
    #[command(subcommand)]
    action: ClientAction,
}

#[derive(Debug, Subcommand)]
enum ClientAction {
    /// Verify the order, the signed manifest and the transparency log, then download (or update) the table.
    Sync,
    /// Make a voucher for each image (of a conversation in --component / --group) and queue it in the outbox.
    Scan {
        /// The service component of the conversation (for an order scoped to components).
        #[arg(long)]
        component: Option<String>,
        /// The group id of the conversation (for an order scoped to groups).
        #[arg(long)]
        group: Option<String>,
        /// PNG or JPEG files.
        #[arg(required = true, value_name = "IMAGE")]
        images: Vec<PathBuf>,
    },
    /// Submit the queued vouchers.
    Submit,
    /// Verify a signed revocation (`vouchsafe authority revoke`) under the pinned keys and apply it at once.
    AddRevocation {
        /// The signed revocation file.
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Show the account's notices (reports the provider sent about it) and their appeal status.
    Notices,
    /// Appeal a notice with your own words.
    Appeal {
        /// The notice's id (from `client notices`).
        #[arg(long)]
        notice: u64,
        /// Why the report is wrong (1..=4000 bytes).
        #[arg(long)]
        text: String,
    },
}

/// `vouchsafe eval`.
#[derive(Debug, Args)]
struct EvalArgs {
    /// The corpus directory (filled by scripts/fetch-eval-corpus.sh).
    #[arg(long, value_name = "DIR")]
    corpus: PathBuf,
    /// Also write eval.json and eval.html into this directory.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Hash configurations to measure, comma-separated: the shipped v1 and v2, or evaluation candidates (v1-probeK,
    /// area-block-probeK, pdq, pdq8; any of them followed by +var-pipelines, +var-generic, +var-dihedral or
    /// +var-flips for Centre-side variants). docs/HASHING.md §8 lists them.
    #[arg(long, value_name = "NAMES", value_delimiter = ',', default_value = "v1")]
    config: Vec<String>,
    /// Read at most this many pictures (in path order).
    #[arg(long, value_name = "N")]
    max_pictures: Option<usize>,
    /// Cut at most this many 512 x 512 tiles from each large picture.
    #[arg(long, value_name = "N", default_value_t = 12)]
    tiles_per_picture: usize,
}

/// Without a subcommand: the server's posterior on an account's real match count below the threshold.
#[derive(Debug, Args)]
#[command(subcommand_negates_reqs = true, args_conflicts_with_subcommands = true)]
struct LeakageArgs {
    #[command(subcommand)]
    action: Option<LeakageAction>,
    /// n: vouchers the account sent for distinct new images.
    #[arg(long, required = true)]
    vouchers: Option<u64>,
    /// c: how many of them opened (real matches and synthetics together).
    #[arg(long, required = true)]
    opened: Option<u64>,
    /// p: synthetic rate in [0, 1].
    #[arg(long, required = true)]
    rate: Option<f64>,
    /// s: synthetic cap.
    #[arg(long, required = true)]
    cap: Option<u32>,
    /// T: threshold.
    #[arg(long, required = true)]
    threshold: Option<u32>,
    /// Prior: each image matches independently with this probability (default: uniform prior on the count).
    #[arg(long)]
    match_rate: Option<f64>,
}

/// The leakage toolkit (docs/LEAKAGE.md §9).
#[derive(Debug, Subcommand)]
enum LeakageAction {
    /// The server's view (JSON lines) of a scenario run through the real protocol in memory, or, with --from, of
    /// one order from a running server's capture log (`worker.capture`).
    Capture {
        /// Assemble the view from this server capture log instead of running a scenario.
        #[arg(long, conflicts_with_all = ["accounts", "images", "matches", "threshold", "cap", "rate", "batch", "seed"])]
        from: Option<PathBuf>,
        /// With --from: the order to assemble (hex; needed when the log holds more than one).
        #[arg(long, requires = "from")]
        order: Option<String>,
        /// With --from: the epoch to assemble (needed when the order has more than one in the log).
        #[arg(long, requires = "from")]
        epoch: Option<u64>,
        /// The scenario (without --from).
        #[command(flatten)]
        scenario: leakage::ScenarioArgs,
        /// Output file (JSON lines).
        #[arg(long)]
        out: PathBuf,
    },
    /// The same view drawn from the stated leakage function only.
    Simulate {
        /// A captured view (JSON lines).
        #[arg(long)]
        view: PathBuf,
        /// Output file (JSON lines).
        #[arg(long)]
        out: PathBuf,
        /// Seed of the ChaCha20 RNG.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Statistical tests that try to tell a view from the ideal one (or from another view); exit 1 if any flags.
    Distinguish {
        /// The view to test (JSON lines).
        #[arg(long)]
        view: PathBuf,
        /// A second view: two-sample comparison instead of the test against the ideal.
        #[arg(long)]
        against: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                let _ = e.print();
                return ExitCode::from(EXIT_USAGE);
            }
            let rendered = e.render().to_string();
            let mut lines = rendered.lines().map(str::trim).filter(|l| !l.is_empty());
            let mut first = lines.next().unwrap_or("invalid arguments").trim_start_matches("error: ").to_owned();
            // "the following required arguments were not provided:" names them on the lines that follow.
            if first.ends_with(':') {
                let named: Vec<&str> = lines.take_while(|l| l.starts_with('-') || l.starts_with('<')).collect();
                first = format!("{first} {}", named.join(" "));
            }
            eprintln!("vouchsafe: {first} (see vouchsafe --help)");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vouchsafe: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::runtime(format!("cannot start the async runtime: {e}")))
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Demo(a) => {
            let opts = demo::DemoOptions { images: a.images as usize, keep: a.keep, seed: a.seed };
            runtime()?.block_on(demo::run(opts))
        }
        Command::Serve { config } => runtime()?.block_on(cmd::serve(&config)),
        Command::Table(TableCommand::Keygen { out }) => provider::table_keygen(&out),
        Command::Provider(ProviderCommand::Keygen { out }) => provider::provider_keygen(&out),
        Command::Table(TableCommand::Build { config, release_dir }) => {
            provider::table_build(&config, release_dir.as_deref())
        }
        Command::Status { config } => cmd::status(&config),
        Command::Table(TableCommand::Update { config, release_dir }) => {
            provider::table_update(&config, release_dir.as_deref())
        }
        Command::Log(LogCommand::Keygen { origin, out }) => provider::log_keygen(&origin, &out),
        Command::Client(c) => {
            let token = c
                .token
                .ok_or_else(|| CliError::usage("client: no bearer token: pass --token or set VOUCHSAFE_TOKEN"))?;
            let conn = cmd::ClientConn {
                endpoint: c.endpoint,
                token,
                data_dir: c.data_dir,
                service_id: c.service_id,
                ca_cert: c.ca_cert,
                pins: cmd::ClientPins {
                    authority_keys: c.authority_keys,
                    centre_key: c.centre_key,
                    log_key: c.log_key,
                    witnesses: c.witnesses,
                    quorum: c.quorum,
                    max_checkpoint_age: c.max_checkpoint_age,
                },
                classes: c.classes,
            };
            let rt = runtime()?;
            match c.action {
                ClientAction::Sync => rt.block_on(cmd::client_sync(conn)),
                ClientAction::Scan { component, group, images } => {
                    rt.block_on(cmd::client_scan(conn, component, group, &images))
                }
                ClientAction::Submit => rt.block_on(cmd::client_submit(conn)),
                ClientAction::AddRevocation { file } => rt.block_on(cmd::client_add_revocation(conn, &file)),
                ClientAction::Notices => rt.block_on(cmd::client_notices(conn)),
                ClientAction::Appeal { notice, text } => rt.block_on(cmd::client_appeal(conn, notice, &text)),
            }
        }
        Command::Hash { images, hash_config } => cmd::hash(&images, hash_config),
        Command::Eval(a) => eval::run(&eval::EvalOptions {
            corpus: a.corpus,
            out: a.out,
            configs: a.config,
            limits: vouchsafe_eval::corpus::CorpusLimits {
                max_pictures: a.max_pictures,
                max_tiles_per_picture: a.tiles_per_picture,
            },
        }),
        Command::Leakage(a) => match a.action {
            Some(LeakageAction::Capture { from: Some(from), order, epoch, out, .. }) => {
                leakage::capture_from(&from, order.as_deref(), epoch, &out)
            }
            Some(LeakageAction::Capture { from: None, scenario, out, .. }) => leakage::capture(&scenario, &out),
            Some(LeakageAction::Simulate { view, out, seed }) => leakage::simulate_cmd(&view, &out, seed),
            Some(LeakageAction::Distinguish { view, against }) => leakage::distinguish_cmd(&view, against.as_deref()),
            None => match (a.vouchers, a.opened, a.rate, a.cap, a.threshold) {
                (Some(vouchers), Some(opened), Some(rate), Some(cap), Some(threshold)) => {
                    cmd::leakage(&cmd::LeakageQuery {
                        vouchers,
                        opened,
                        rate,
                        cap,
                        threshold,
                        match_rate: a.match_rate,
                    })
                }
                _ => Err(CliError::usage(
                    "leakage: --vouchers, --opened, --rate, --cap and --threshold are required without a subcommand",
                )),
            },
        },
        Command::Authority(AuthorityCommand::Keygen { out }) => authority::keygen(&out),
        Command::Authority(AuthorityCommand::Issue(a)) => authority::issue(&authority::IssueArgs {
            key: a.key,
            service: a.service,
            components: a.components,
            groups: a.groups,
            not_before: a.not_before,
            days: a.days,
            threshold: a.threshold,
            synthetic_rate: a.synthetic_rate,
            synthetic_cap: a.synthetic_cap,
            hash_config: a.hash_config,
            centre_key: a.centre_key,
            release_line: a.release_line,
            table_key: a.table_key,
            exclude: a.exclude,
            out: a.out,
        }),
        Command::Authority(AuthorityCommand::Revoke { key, order, reason, out }) => {
            authority::revoke(&key, &order, &reason, &out)
        }
        Command::Authority(AuthorityCommand::Show { authorities, revocations, at, order }) => {
            authority::show(&authorities, &order, &revocations, at)
        }
        Command::Witness(WitnessCommand::Keygen { name, out }) => transparency::witness_keygen(&name, &out),
        Command::Witness(WitnessCommand::Cosign { server, key, log_key, state }) => {
            let server = transparency::Server { url: server.server, ca_cert: server.ca_cert };
            let done = runtime()?.block_on(transparency::witness_cosign(&server, &key, &log_key, &state))?;
            println!(
                "cosigned checkpoint of size {} (root {}); the log now holds {} cosignature(s)",
                done.head.size,
                hex::encode(done.head.root.as_bytes()),
                done.cosignatures
            );
            Ok(())
        }
        Command::Log(LogCommand::Verify { server, log_key, witnesses, quorum, authorities, state, providers }) => {
            let server = transparency::Server { url: server.server, ca_cert: server.ca_cert };
            let args = transparency::VerifyArgs { log_key, witnesses, quorum, authorities, state, providers };
            let report = runtime()?.block_on(transparency::log_verify(&server, &args))?;
            transparency::print_report(&report);
            Ok(())
        }
        Command::Centre(CentreCommand::Keygen { out }) => centre::keygen(&out),
        Command::Centre(CentreCommand::Import { db, source, list, images, hash_config, variants }) => {
            centre::import(&db, &source, list.as_deref(), images.as_deref(), hash_config, variants.as_deref())
        }
        Command::Centre(CentreCommand::Release { db, key, line, dir, min_sources, remove }) => {
            centre::release(&db, &key, &line, &dir, min_sources, remove.as_deref())
        }
        Command::Centre(CentreCommand::Show { centre: public, line, dir }) => centre::show(&public, &line, &dir),
        Command::Centre(CentreCommand::Serve { config }) => runtime()?.block_on(centre::serve(&config)),
        Command::Centre(CentreCommand::Stats { config, json }) => centre::stats(&config, json),
        Command::Centre(CentreCommand::Feedback { config, min, out }) => centre::feedback(&config, min, out.as_deref()),
        Command::Centre(CentreCommand::Flag { db, primary, reason }) => centre::flag(&db, &primary, reason.as_deref()),
        Command::Review(a) => runtime()?.block_on(review::review(a)),
        Command::Report(a) => runtime()?.block_on(review::report(a)),
        Command::Load(a) => runtime()?.block_on(load::run(a)),
    }
}
