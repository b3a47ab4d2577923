//! `vouchsafe review …` and `vouchsafe report …`: the provider's reviewers and supervisors, as gRPC clients of the
//! `Review` service (`proto/vouchsafe/v1/review.proto`) on its own listener. Wiring only: the channel is
//! [`crate::transparency::connect_channel`], the signed report is decoded (and verified, given the key) by
//! `vouchsafe-case`, rendered by `vouchsafe-render`; what turns a response into output is in plain functions below
//! (tested without a server).
//!
//! The reviewer's bearer token is read from a file (one line), sent as `authorization: Bearer …` and never printed:
//! a server message that quoted it would be shown with the token replaced.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand, ValueEnum};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use vouchsafe_case::{ProviderKey, ReasonCode, SignedTransparencyReport, Verdict};
use vouchsafe_proto::v1 as pb;
use vouchsafe_proto::v1::review_client::ReviewClient;
use vouchsafe_render::{ReportView, SignatureView, utc};
use zeroize::Zeroizing;

use crate::error::{CliError, Result};

/// How the exit codes of `review` and `report` are chosen (shown in `--help`).
const EXIT_HELP: &str = "\
Exit codes: 0 done; 2 usage: bad arguments, an unreadable token or CA file, or the server answered \
INVALID_ARGUMENT, UNAUTHENTICATED (unknown token) or PERMISSION_DENIED (the role may not do this); 1 anything \
else (NOT_FOUND, FAILED_PRECONDITION, UNAVAILABLE, INTERNAL, no connection, a malformed answer). A server error \
is one line: `vouchsafe: review <command>: <CODE>: <message>`.";

/// Largest answer accepted (a case's derivatives come as PNGs in one message).
const MAX_MESSAGE: usize = 64 << 20;
/// Largest token file read.
const MAX_TOKEN_FILE: u64 = 4096;
/// Largest comment or reason sent (the server's limit).
const MAX_TEXT: usize = 2000;
/// Case statuses `--status` accepts (review.proto, `ListCasesRequest.status`).
const CASE_STATUSES: &[&str] =
    &["open", "awaiting-second", "confirmed", "rejected", "forwarded", "false-positive", "withdrawn"];
/// Appeal statuses `--status` accepts.
const APPEAL_STATUSES: &[&str] = &["pending", "upheld", "dismissed"];

/// Where the review API is and who is calling it.
#[derive(Debug, Args)]
pub struct ConnArgs {
    /// The provider's review API (`[review] listen` of the server), e.g. https://review.provider.example:50052.
    #[arg(long, global = true, env = "VOUCHSAFE_REVIEW_ENDPOINT", value_name = "URL")]
    endpoint: Option<String>,
    /// A file holding the reviewer's bearer token on one line (never printed).
    #[arg(long, global = true, env = "VOUCHSAFE_REVIEW_TOKEN_FILE", value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// For an https endpoint: PEM file of the certificate authorities to trust instead of the built-in roots.
    #[arg(long, global = true, value_name = "FILE")]
    ca: Option<PathBuf>,
}

/// `vouchsafe review …`.
#[derive(Debug, Args)]
#[command(after_help = EXIT_HELP)]
pub struct ReviewArgs {
    #[command(flatten)]
    conn: ConnArgs,
    #[command(subcommand)]
    command: ReviewCommand,
}

#[derive(Debug, Subcommand)]
enum ReviewCommand {
    /// Cases, newest first: metadata only (no image is fetched).
    #[command(after_help = EXIT_HELP)]
    List {
        /// Only cases with this status.
        #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(CASE_STATUSES))]
        status: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1000))]
        limit: u32,
    },
    /// One case: summary, decisions, the Centre's verdict; writes each item's derivative as a PNG into DIR
    /// (`case-<id>-item-<nn>.png`, mode 0600, never overwriting). Every view is audited.
    #[command(after_help = EXIT_HELP)]
    Show {
        /// The case id.
        #[arg(value_name = "CASE")]
        case: u64,
        /// The directory for the PNG files (created with mode 0700 if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Fetch the derivatives unblurred (audited as a full view). Default: blurred grayscale.
        #[arg(long)]
        full: bool,
        /// Also print each blurred derivative as ASCII art (not with --full: a full view stays in files).
        #[arg(long, conflicts_with = "full")]
        preview: bool,
    },
    /// Confirm or reject a case (a four-eyes order needs two different reviewers to confirm).
    #[command(after_help = EXIT_HELP)]
    Decide {
        /// The case id.
        #[arg(value_name = "CASE")]
        case: u64,
        /// The image is known abuse imagery: a signed report to the Centre is queued (after the last needed
        /// confirmation).
        #[arg(long, conflicts_with = "reject", required_unless_present = "reject")]
        confirm: bool,
        /// The case is not what the indicator says: counted as a false positive, fed back to the Centre.
        #[arg(long)]
        reject: bool,
        /// The reason code: with --confirm `known-image`; with --reject `not-matching`, `benign`, `illegible` or
        /// `other`.
        #[arg(long, value_name = "CODE")]
        reason: String,
        /// Free text kept with the case (and, confirmed, in the report to the Centre); at most 2000 bytes.
        #[arg(long, value_name = "TEXT", default_value = "")]
        comment: String,
        /// Mark the report urgent (signs of ongoing abuse); only with --confirm.
        #[arg(long, conflicts_with = "reject")]
        urgent: bool,
    },
    /// Appeals, newest first.
    #[command(after_help = EXIT_HELP)]
    Appeals {
        /// Only appeals with this status.
        #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(APPEAL_STATUSES))]
        status: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1000))]
        limit: u32,
    },
    /// Supervisors: uphold an appeal (the report is withdrawn at the Centre, the account action reversed) or
    /// dismiss it.
    #[command(after_help = EXIT_HELP)]
    DecideAppeal {
        /// The appeal id.
        #[arg(value_name = "ID")]
        appeal: u64,
        /// Uphold the appeal.
        #[arg(long, conflicts_with = "dismiss", required_unless_present = "dismiss")]
        uphold: bool,
        /// Dismiss the appeal.
        #[arg(long)]
        dismiss: bool,
        /// Shown to the user in the notice; 1..=2000 bytes.
        #[arg(long, value_name = "TEXT")]
        reason: String,
    },
}

/// The formats of `report`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Stable JSON for tools (keys in docs/GOVERNANCE.md §11).
    Json,
    /// Markdown tables.
    Md,
    /// One self-contained HTML page with SVG charts, no JavaScript.
    Html,
}

/// `vouchsafe report …`.
#[derive(Debug, Args)]
#[command(after_help = EXIT_HELP)]
pub struct ReportArgs {
    #[command(flatten)]
    conn: ConnArgs,
    /// The order: 32 hex digits, or `current` for the order the server serves.
    #[arg(long, value_name = "HEX|current")]
    order: String,
    /// Start of the period, Unix seconds (inclusive); with --to. Default: the whole order.
    #[arg(long, value_name = "T", requires = "to")]
    from: Option<i64>,
    /// End of the period, Unix seconds (exclusive); with --from.
    #[arg(long, value_name = "T", requires = "from")]
    to: Option<i64>,
    /// Output format.
    #[arg(long, value_enum)]
    format: Format,
    /// Write to this new file (mode 0600, never overwriting) instead of standard output.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Supervisors: sign the report with the provider key and append it to the transparency log, then render what
    /// was signed. Without it: the unsigned statistics, rendered as a draft.
    #[arg(long)]
    publish: bool,
    /// The provider's public key file (`provider keygen`'s FILE.pub): the signed report is verified under it and
    /// its key id shown.
    #[arg(long, value_name = "FILE", requires = "publish")]
    provider_key: Option<PathBuf>,
    /// The report's title (default: says what it is and names the order).
    #[arg(long, value_name = "TEXT")]
    title: Option<String>,
}

// ---------------------------------------------------------------------------------------------------------------
// Connection
// ---------------------------------------------------------------------------------------------------------------

#[derive(Clone)]
struct Auth(MetadataValue<Ascii>);

impl tonic::service::Interceptor for Auth {
    fn call(&mut self, mut req: tonic::Request<()>) -> std::result::Result<tonic::Request<()>, tonic::Status> {
        req.metadata_mut().insert("authorization", self.0.clone());
        Ok(req)
    }
}

type Rpc = ReviewClient<InterceptedService<Channel, Auth>>;

/// A connected review client and what its error messages must never show.
struct Conn {
    rpc: Rpc,
    token: Zeroizing<String>,
}

/// Checks a token file's content: one line (a final newline is allowed) of 1..=1024 visible ASCII characters (what
/// a bearer token and an HTTP header value may hold). Messages name the file, never its content.
fn parse_token(bytes: &[u8], path: &Path) -> Result<Zeroizing<String>> {
    let bad = |why: &str| CliError::usage(format!("--token-file {}: {why}", path.display()));
    let line = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.is_empty() {
        return Err(bad("empty: expected the bearer token on one line"));
    }
    if line.len() > 1024 {
        return Err(bad("longer than 1024 bytes"));
    }
    if !line.iter().all(|b| (0x21..=0x7e).contains(b)) {
        return Err(bad("not one line of visible ASCII characters (no spaces)"));
    }
    let text = std::str::from_utf8(line).map_err(|_| bad("not ASCII"))?;
    Ok(Zeroizing::new(text.to_owned()))
}

fn read_token(path: &Path) -> Result<Zeroizing<String>> {
    let bytes = vouchsafe_files::read_limited(path, MAX_TOKEN_FILE)
        .map_err(|e| CliError::usage(format!("--token-file {}: {e}", path.display())))?;
    parse_token(&bytes, path)
}

async fn connect(c: &ConnArgs, context: &str) -> Result<Conn> {
    let endpoint = c.endpoint.as_deref().ok_or_else(|| {
        CliError::usage(format!("{context}: no endpoint: pass --endpoint URL or set VOUCHSAFE_REVIEW_ENDPOINT"))
    })?;
    let token_file = c.token_file.as_deref().ok_or_else(|| {
        CliError::usage(format!(
            "{context}: no reviewer token: pass --token-file FILE or set VOUCHSAFE_REVIEW_TOKEN_FILE"
        ))
    })?;
    if c.ca.is_some() && !endpoint.starts_with("https://") {
        return Err(CliError::usage(format!("{context}: --ca is for an https:// endpoint")));
    }
    let token = read_token(token_file)?;
    let mut value = MetadataValue::try_from(format!("Bearer {}", token.as_str()))
        .map_err(|_| CliError::usage(format!("--token-file {}: not a valid header value", token_file.display())))?;
    value.set_sensitive(true);
    let channel = crate::transparency::connect_channel(endpoint, c.ca.as_deref(), "--endpoint", "review").await?;
    let rpc = ReviewClient::with_interceptor(channel, Auth(value))
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE);
    Ok(Conn { rpc, token })
}

/// The canonical name of a gRPC status code.
fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code as C;
    match code {
        C::Ok => "OK",
        C::Cancelled => "CANCELLED",
        C::Unknown => "UNKNOWN",
        C::InvalidArgument => "INVALID_ARGUMENT",
        C::DeadlineExceeded => "DEADLINE_EXCEEDED",
        C::NotFound => "NOT_FOUND",
        C::AlreadyExists => "ALREADY_EXISTS",
        C::PermissionDenied => "PERMISSION_DENIED",
        C::ResourceExhausted => "RESOURCE_EXHAUSTED",
        C::FailedPrecondition => "FAILED_PRECONDITION",
        C::Aborted => "ABORTED",
        C::OutOfRange => "OUT_OF_RANGE",
        C::Unimplemented => "UNIMPLEMENTED",
        C::Internal => "INTERNAL",
        C::Unavailable => "UNAVAILABLE",
        C::DataLoss => "DATA_LOSS",
        C::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// One line for a gRPC status: `<context>: <CODE>: <message>`; exit 2 for INVALID_ARGUMENT, UNAUTHENTICATED and
/// PERMISSION_DENIED (fix the invocation, the token or the role), 1 for the rest. The message is cleaned of
/// control characters, bounded, and any occurrence of `token` is replaced.
fn status_error(context: &str, status: &tonic::Status, token: &str) -> CliError {
    let mut message = clean(status.message(), 300);
    if !token.is_empty() && message.contains(token) {
        message = message.replace(token, "<redacted>");
    }
    if message.is_empty() {
        message = "(no message)".to_owned();
    }
    let msg = format!("{context}: {}: {message}", code_name(status.code()));
    match status.code() {
        tonic::Code::InvalidArgument | tonic::Code::Unauthenticated | tonic::Code::PermissionDenied => {
            CliError::usage(msg)
        }
        _ => CliError::runtime(msg),
    }
}

impl Conn {
    fn fail(&self, context: &str) -> impl Fn(tonic::Status) -> CliError + '_ {
        let context = context.to_owned();
        move |s| status_error(&context, &s, &self.token)
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Plain output functions (tested without a server)
// ---------------------------------------------------------------------------------------------------------------

/// Text from the server made safe for a terminal: control characters and bidirectional overrides become `?`;
/// longer than `max` characters is cut with `…`.
fn clean(s: &str, max: usize) -> String {
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i == max {
            out.push('…');
            break;
        }
        let bidi = matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}');
        out.push(if c.is_control() || bidi { '?' } else { c });
    }
    out
}

/// A left-aligned text table with a header row and two spaces between columns.
fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| -> String {
        let parts: Vec<String> =
            cells.zip(&widths).map(|(c, w)| format!("{c}{}", " ".repeat(w - c.chars().count()))).collect();
        parts.join("  ").trim_end().to_owned()
    };
    let mut out = line(&mut headers.iter().copied());
    out.push('\n');
    for row in rows {
        out.push_str(&line(&mut row.iter().map(String::as_str)));
        out.push('\n');
    }
    out
}

/// The first 8 hex digits of an order id (cleaned).
fn short_order(order_id: &str) -> String {
    clean(order_id.get(..8).unwrap_or(order_id), 8)
}

fn dash(s: String) -> String {
    if s.is_empty() { "-".to_owned() } else { s }
}

fn when(t: i64) -> String {
    if t == 0 { "-".to_owned() } else { utc(t) }
}

/// `review list`'s table.
fn case_table(cases: &[pb::CaseSummary], status: Option<&str>) -> String {
    if cases.is_empty() {
        return match status {
            Some(s) => format!("no cases with status {s}\n"),
            None => "no cases\n".to_owned(),
        };
    }
    let rows: Vec<Vec<String>> = cases
        .iter()
        .map(|c| {
            vec![
                c.case_id.to_string(),
                clean(&c.status, 20),
                clean(&c.account, 40),
                short_order(&c.order_id),
                when(c.created_at),
                c.items.to_string(),
                format!("{}/{}", c.confirmations, c.confirmations_needed),
            ]
        })
        .collect();
    table(&["case", "status", "account", "order", "created (UTC)", "items", "confirmations"], &rows)
}

/// The name of item `index` (0-based) of case `case`: `case-<id>-item-<nn>.png`, nn from 01.
fn item_file_name(case: u64, index: usize) -> String {
    format!("case-{case}-item-{:02}.png", index + 1)
}

/// `review show`'s text; `files[i]` is where item i's image was written (`None`: it had none).
fn case_text(d: &pb::CaseDetail, full: bool, files: &[Option<PathBuf>]) -> String {
    let mut o = String::new();
    let view = if full { "FULL VIEW (audited)" } else { "blurred grayscale view" };
    match &d.summary {
        Some(s) => {
            o.push_str(&format!("case {}: {} ({view})\n", s.case_id, clean(&s.status, 20)));
            o.push_str(&format!("  account        {}\n", clean(&s.account, 256)));
            o.push_str(&format!("  order          {}\n", clean(&s.order_id, 64)));
            o.push_str(&format!("  created        {}\n", when(s.created_at)));
            o.push_str(&format!("  items          {}\n", s.items));
            o.push_str(&format!("  confirmations  {}/{}\n", s.confirmations, s.confirmations_needed));
            if s.closed_at != 0 {
                o.push_str(&format!("  closed         {}\n", utc(s.closed_at)));
            }
            if s.data_purged {
                o.push_str("  data purged    yes: the derivatives are gone\n");
            }
        }
        None => o.push_str(&format!("case (no summary sent) ({view})\n")),
    }
    if d.decisions.is_empty() {
        o.push_str("decisions: none yet\n");
    } else {
        o.push_str("decisions:\n");
        for x in &d.decisions {
            o.push_str(&format!(
                "  {}  {} ({}): {}, {}",
                when(x.at),
                clean(&x.reviewer, 64),
                clean(&x.role, 20),
                clean(&x.verdict, 20),
                clean(&x.reason, 40)
            ));
            if !x.comment.is_empty() {
                o.push_str(&format!(": {}", clean(&x.comment, 2000)));
            }
            o.push('\n');
        }
    }
    if d.centre_verdict.is_empty() {
        o.push_str("Centre verdict: none yet\n");
    } else {
        o.push_str(&format!("Centre verdict: {}", clean(&d.centre_verdict, 40)));
        if !d.centre_reason.is_empty() {
            o.push_str(&format!(" ({})", clean(&d.centre_reason, 2000)));
        }
        o.push('\n');
    }
    o.push_str(&format!("items ({view}):\n"));
    for (i, item) in d.items.iter().enumerate() {
        let file = match files.get(i) {
            Some(Some(p)) => p.display().to_string(),
            _ => "no image (purged)".to_owned(),
        };
        o.push_str(&format!(
            "  {:02}  voucher {}  attachment {}  hashed {}  secondary distance {}  {file}\n",
            i + 1,
            dash(clean(&item.voucher_id, 32)),
            dash(clean(&item.attachment_ref, 64)),
            when(i64::try_from(item.time).unwrap_or(i64::MAX)),
            item.secondary_distance
        ));
    }
    o
}

/// The line after a decision.
fn decided_text(s: &pb::CaseSummary, urgent: bool) -> String {
    let id = s.case_id;
    let (n, of) = (s.confirmations, s.confirmations_needed);
    match s.status.as_str() {
        "awaiting-second" => {
            format!("case {id}: confirmation recorded ({n}/{of}); a second, different reviewer must confirm")
        }
        "confirmed" => format!(
            "case {id}: confirmed ({n}/{of}); the provider-signed report is queued for the Centre{}",
            if urgent { ", marked urgent" } else { "" }
        ),
        "rejected" => {
            format!("case {id}: rejected; counted as a false positive, indicator feedback queued for the Centre")
        }
        other => format!("case {id}: {}", clean(other, 20)),
    }
}

/// `review appeals`' table, then each appeal's text (and decision reason).
fn appeal_table(appeals: &[pb::Appeal], status: Option<&str>) -> String {
    if appeals.is_empty() {
        return match status {
            Some(s) => format!("no appeals with status {s}\n"),
            None => "no appeals\n".to_owned(),
        };
    }
    let rows: Vec<Vec<String>> = appeals
        .iter()
        .map(|a| {
            vec![
                a.appeal_id.to_string(),
                a.case_id.to_string(),
                clean(&a.status, 20),
                clean(&a.account, 40),
                when(a.filed_at),
                if a.decided_by.is_empty() { "-".to_owned() } else { clean(&a.decided_by, 64) },
                when(a.decided_at),
            ]
        })
        .collect();
    let mut o = table(&["appeal", "case", "status", "account", "filed (UTC)", "decided by", "decided (UTC)"], &rows);
    for a in appeals {
        o.push_str(&format!("\nappeal {}: {}\n", a.appeal_id, clean(&a.text, 4000)));
        if !a.reason.is_empty() {
            o.push_str(&format!("  decision reason: {}\n", clean(&a.reason, 2000)));
        }
    }
    o
}

fn appeal_decided_text(a: &pb::Appeal) -> String {
    match a.status.as_str() {
        "upheld" => format!(
            "appeal {}: upheld; the report is withdrawn at the Centre and the account action reversed",
            a.appeal_id
        ),
        "dismissed" => format!("appeal {}: dismissed; the reason is shown to the user", a.appeal_id),
        other => format!("appeal {}: {}", a.appeal_id, clean(other, 20)),
    }
}

/// `--order`: 32 hex digits (lower-cased) or `current` (the empty string the API takes for the served order).
fn parse_order(s: &str) -> Result<String> {
    if s == "current" {
        return Ok(String::new());
    }
    let mut id = [0u8; 16];
    hex::decode_to_slice(s, &mut id)
        .map_err(|_| CliError::usage("report: --order: expected 32 hex digits or `current`"))?;
    Ok(hex::encode(id))
}

/// The period asked for: `(0, 0)` for the whole order.
fn parse_period(from: Option<i64>, to: Option<i64>) -> Result<(i64, i64)> {
    match (from, to) {
        (Some(f), Some(t)) if f < t => Ok((f, t)),
        (Some(_), Some(_)) => Err(CliError::usage("report: --from must be before --to")),
        (None, None) => Ok((0, 0)),
        _ => Err(CliError::usage("report: give --from and --to together")),
    }
}

fn default_title(signed: bool, order_id: &str) -> String {
    let what = if signed { "Transparency report" } else { "Statistics (unsigned draft)" };
    format!("{what}, order {}", short_order(order_id))
}

/// Checks that the server answered for the order and period asked (`order` empty: any order).
fn check_scope(context: &str, asked: (&str, i64, i64), got: (&str, i64, i64)) -> Result<()> {
    let (order, from, to) = asked;
    if !order.is_empty() && !got.0.eq_ignore_ascii_case(order) {
        return Err(CliError::runtime(format!(
            "{context}: the server answered for order {}, not for {order}",
            clean(got.0, 32)
        )));
    }
    if (from, to) != (got.1, got.2) {
        return Err(CliError::runtime(format!(
            "{context}: the server answered for the period [{}, {}), not [{from}, {to})",
            got.1, got.2
        )));
    }
    Ok(())
}

/// The unsigned statistics as a draft view; `now` is when it was fetched.
fn statistics_view(s: pb::Statistics, asked: (&str, i64, i64), title: Option<String>, now: i64) -> Result<ReportView> {
    check_scope("report", asked, (&s.order_id, s.from, s.to))?;
    let view = ReportView {
        title: title.unwrap_or_else(|| default_title(false, &s.order_id)),
        provider: String::new(),
        order_id: s.order_id,
        from: s.from,
        to: s.to,
        counters: s.counters.into_iter().map(|c| (c.name, c.value)).collect(),
        decision_seconds: s.decision_seconds,
        signature: None,
        created_at: now,
    };
    vouchsafe_render::check(&view)
        .map_err(|e| CliError::runtime(format!("report: the server's statistics are malformed: {e}")))?;
    Ok(view)
}

/// The view of what the server signed: decoded from `signed_report` (verified under `key` if given), never from
/// anything else the server said.
pub(crate) fn published_view(
    signed_report: &[u8],
    leaf_index: u64,
    key: Option<&ProviderKey>,
    asked: (&str, i64, i64),
    title: Option<String>,
) -> Result<ReportView> {
    let context = "report --publish";
    let signed = SignedTransparencyReport::decode(signed_report)
        .map_err(|e| CliError::runtime(format!("{context}: the signed report does not decode: {e}")))?;
    let (report, key_id) = match key {
        Some(k) => {
            let r = signed.verify(k).map_err(|e| {
                CliError::runtime(format!("{context}: the signed report does not verify under --provider-key: {e}"))
            })?;
            (r, hex::encode(k.key_id()))
        }
        None => {
            let r = signed
                .report_unverified()
                .map_err(|e| CliError::runtime(format!("{context}: the signed report does not decode: {e}")))?;
            (r, "unverified: no --provider-key given".to_owned())
        }
    };
    let order_id = hex::encode(report.order_id);
    check_scope(context, asked, (&order_id, report.from, report.to))?;
    let view = ReportView {
        title: title.unwrap_or_else(|| default_title(true, &order_id)),
        provider: report.provider,
        order_id,
        from: report.from,
        to: report.to,
        counters: report.counters,
        decision_seconds: report.decision_seconds,
        signature: Some(SignatureView {
            key_id,
            signed_report_hex: hex::encode(signed.encode()),
            log_leaf_index: leaf_index,
        }),
        created_at: report.created_at,
    };
    vouchsafe_render::check(&view).map_err(|e| CliError::runtime(format!("{context}: {e}")))?;
    Ok(view)
}

fn render(view: &ReportView, format: Format) -> String {
    match format {
        Format::Json => vouchsafe_render::to_json(view),
        Format::Md => vouchsafe_render::to_markdown(view),
        Format::Html => vouchsafe_render::to_html(view),
    }
}

fn text_limit(flag: &str, text: &str, allow_empty: bool) -> Result<()> {
    if text.len() > MAX_TEXT {
        return Err(CliError::usage(format!("{flag}: at most {MAX_TEXT} bytes")));
    }
    if !allow_empty && text.trim().is_empty() {
        return Err(CliError::usage(format!("{flag}: must not be empty")));
    }
    Ok(())
}

/// `--reason` of `review decide`, checked against the verdict before anything is sent.
fn decide_reason(confirm: bool, reason: &str) -> Result<ReasonCode> {
    let verdict = if confirm { Verdict::Confirm } else { Verdict::Reject };
    let fitting: Vec<&str> = ReasonCode::ALL.iter().filter(|r| r.fits(verdict)).map(|r| r.as_str()).collect();
    match ReasonCode::parse(reason) {
        Some(r) if r.fits(verdict) => Ok(r),
        _ => Err(CliError::usage(format!(
            "review decide: --reason: with --{} use {}",
            verdict.as_str(),
            fitting.join(", ")
        ))),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------------------------------------------

fn print(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| CliError::runtime(format!("standard output: {}", e.kind())))
}

/// `vouchsafe review …`.
pub async fn review(args: ReviewArgs) -> Result<()> {
    match args.command {
        ReviewCommand::List { status, limit } => {
            let c = connect(&args.conn, "review list").await?;
            let req = pb::ListCasesRequest { status: status.clone().unwrap_or_default(), limit };
            let r = c.rpc.clone().list_cases(req).await.map_err(c.fail("review list"))?.into_inner();
            print(&case_table(&r.cases, status.as_deref()))
        }
        ReviewCommand::Show { case, out, full, preview } => show(&args.conn, case, &out, full, preview).await,
        ReviewCommand::Decide { case, confirm, reject: _, reason, comment, urgent } => {
            let code = decide_reason(confirm, &reason)?;
            text_limit("review decide: --comment", &comment, true)?;
            let c = connect(&args.conn, "review decide").await?;
            let verdict = if confirm { Verdict::Confirm } else { Verdict::Reject };
            let req = pb::DecideRequest {
                case_id: case,
                verdict: verdict.as_str().to_owned(),
                reason: code.as_str().to_owned(),
                comment,
                urgent,
            };
            let s = c.rpc.clone().decide(req).await.map_err(c.fail("review decide"))?.into_inner();
            print(&format!("{}\n", decided_text(&s, urgent)))
        }
        ReviewCommand::Appeals { status, limit } => {
            let c = connect(&args.conn, "review appeals").await?;
            let req = pb::ListAppealsRequest { status: status.clone().unwrap_or_default(), limit };
            let r = c.rpc.clone().list_appeals(req).await.map_err(c.fail("review appeals"))?.into_inner();
            print(&appeal_table(&r.appeals, status.as_deref()))
        }
        ReviewCommand::DecideAppeal { appeal, uphold, dismiss: _, reason } => {
            text_limit("review decide-appeal: --reason", &reason, false)?;
            let c = connect(&args.conn, "review decide-appeal").await?;
            let req = pb::DecideAppealRequest { appeal_id: appeal, uphold, reason };
            let a = c.rpc.clone().decide_appeal(req).await.map_err(c.fail("review decide-appeal"))?.into_inner();
            print(&format!("{}\n", appeal_decided_text(&a)))
        }
    }
}

const PNG_MAGIC: &[u8] = b"\x89PNG\r\n\x1a\n";

/// Decodes a derivative for the ASCII preview, within bounds (a derivative is a small thumbnail; whatever the server
/// sends cannot make the CLI allocate more than 64 MiB for it).
fn decode_preview(png: &[u8]) -> image::ImageResult<image::DynamicImage> {
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(4096);
    limits.max_image_height = Some(4096);
    limits.max_alloc = Some(64 << 20);
    let mut reader = image::ImageReader::with_format(std::io::Cursor::new(png), image::ImageFormat::Png);
    reader.limits(limits);
    reader.decode()
}

/// `review show CASE --out DIR [--full] [--preview]`.
async fn show(conn: &ConnArgs, case: u64, dir: &Path, full: bool, preview: bool) -> Result<()> {
    let context = "review show";
    match std::fs::symlink_metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(CliError::usage(format!("{context}: --out {}: not a directory", dir.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(CliError::usage(format!("{context}: --out {}: {}", dir.display(), e.kind()))),
    }
    let c = connect(conn, context).await?;
    let d = c
        .rpc
        .clone()
        .get_case(pb::GetCaseRequest { case_id: case, full_view: full })
        .await
        .map_err(c.fail(context))?
        .into_inner();
    // Every target is checked before anything is written, so a refusal leaves no partial set behind.
    let mut files: Vec<Option<PathBuf>> = Vec::with_capacity(d.items.len());
    for (i, item) in d.items.iter().enumerate() {
        if item.png.is_empty() {
            files.push(None);
            continue;
        }
        if !item.png.starts_with(PNG_MAGIC) {
            return Err(CliError::runtime(format!(
                "{context}: item {}: the server sent something that is not a PNG",
                i + 1
            )));
        }
        let path = dir.join(item_file_name(case, i));
        if std::fs::symlink_metadata(&path).is_ok() {
            return Err(CliError::usage(format!("{context}: {} exists; refusing to overwrite it", path.display())));
        }
        files.push(Some(path));
    }
    if files.iter().any(Option::is_some) {
        vouchsafe_files::create_private_dir(dir)
            .map_err(|e| CliError::runtime(format!("{context}: --out {}: {}", dir.display(), e.kind())))?;
    }
    let mut written = 0usize;
    for (item, path) in d.items.iter().zip(&files) {
        if let Some(path) = path {
            vouchsafe_files::create_secret(path, &item.png).map_err(|e| {
                CliError::runtime(format!(
                    "{context}: {}: {} ({written} item file(s) written before it)",
                    path.display(),
                    e.kind()
                ))
            })?;
            written += 1;
        }
    }
    let mut text = case_text(&d, full, &files);
    if preview {
        for (i, item) in d.items.iter().enumerate().filter(|(_, it)| !it.png.is_empty()) {
            text.push_str(&format!("\nitem {:02} (blurred grayscale view):\n", i + 1));
            match decode_preview(&item.png) {
                Ok(img) => {
                    for row in crate::ascii::render(&img.to_luma8(), 48) {
                        text.push_str(&format!("  {row}\n"));
                    }
                }
                Err(_) => text.push_str("  (the PNG does not decode)\n"),
            }
        }
    }
    print(&text)
}

/// `vouchsafe report …`.
pub async fn report(args: ReportArgs) -> Result<()> {
    let order = parse_order(&args.order)?;
    let (from, to) = parse_period(args.from, args.to)?;
    let key = args.provider_key.as_deref().map(crate::provider::load_public_key).transpose()?;
    if let Some(out) = &args.out
        && std::fs::symlink_metadata(out).is_ok()
    {
        return Err(CliError::usage(format!("report: --out {} exists; refusing to overwrite it", out.display())));
    }
    let asked = (order.as_str(), from, to);
    let req = pb::GetStatisticsRequest { order_id: order.clone(), from, to };
    let (view, leaf) = if args.publish {
        let c = connect(&args.conn, "report --publish").await?;
        let p = c.rpc.clone().publish_transparency_report(req).await.map_err(c.fail("report --publish"))?.into_inner();
        (published_view(&p.signed_report, p.leaf_index, key.as_ref(), asked, args.title)?, Some(p.leaf_index))
    } else {
        let c = connect(&args.conn, "report").await?;
        let s = c.rpc.clone().get_statistics(req).await.map_err(c.fail("report"))?.into_inner();
        (statistics_view(s, asked, args.title, crate::keyfile::now_secs()?)?, None)
    };
    let text = render(&view, args.format);
    match &args.out {
        None => print(&text),
        Some(out) => {
            vouchsafe_files::create_secret(out, text.as_bytes()).map_err(|e| {
                let published = leaf.map(|l| format!(" (the report was published: log leaf {l})")).unwrap_or_default();
                CliError::runtime(format!("report: --out {}: {}{published}", out.display(), e.kind()))
            })?;
            let what = match leaf {
                Some(l) => format!("signed transparency report, log leaf {l}"),
                None => "unsigned draft".to_owned(),
            };
            print(&format!("wrote {} ({what})\n", out.display()))
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Top {
        #[command(subcommand)]
        cmd: Cmd,
    }

    #[derive(Debug, clap::Subcommand)]
    enum Cmd {
        Review(ReviewArgs),
        Report(ReportArgs),
    }

    fn parse(args: &[&str]) -> std::result::Result<Cmd, clap::Error> {
        Top::try_parse_from(std::iter::once("vouchsafe").chain(args.iter().copied())).map(|t| t.cmd)
    }

    fn review(args: &[&str]) -> ReviewCommand {
        match parse(args) {
            Ok(Cmd::Review(r)) => r.command,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn review_arguments_parse() {
        match review(&["review", "list", "--status", "awaiting-second", "--limit", "5"]) {
            ReviewCommand::List { status, limit } => {
                assert_eq!((status.as_deref(), limit), (Some("awaiting-second"), 5))
            }
            other => panic!("{other:?}"),
        }
        match review(&["review", "list"]) {
            ReviewCommand::List { status, limit } => assert_eq!((status, limit), (None, 100)),
            other => panic!("{other:?}"),
        }
        match review(&["review", "show", "12", "--out", "d", "--full"]) {
            ReviewCommand::Show { case, out, full, preview } => {
                assert_eq!((case, out, full, preview), (12, PathBuf::from("d"), true, false))
            }
            other => panic!("{other:?}"),
        }
        match review(&["review", "decide", "7", "--confirm", "--reason", "known-image", "--urgent"]) {
            ReviewCommand::Decide { case, confirm, reject, reason, comment, urgent } => {
                assert_eq!(
                    (case, confirm, reject, reason.as_str(), comment.as_str(), urgent),
                    (7, true, false, "known-image", "", true)
                )
            }
            other => panic!("{other:?}"),
        }
        match review(&["review", "decide-appeal", "3", "--dismiss", "--reason", "the image is known"]) {
            ReviewCommand::DecideAppeal { appeal, uphold, dismiss, reason } => {
                assert_eq!((appeal, uphold, dismiss, reason.as_str()), (3, false, true, "the image is known"))
            }
            other => panic!("{other:?}"),
        }
        // The connection flags go before or after the subcommand.
        match parse(&["review", "--endpoint", "https://r:1", "appeals", "--token-file", "t", "--ca", "ca.pem"]) {
            Ok(Cmd::Review(r)) => {
                assert_eq!(r.conn.endpoint.as_deref(), Some("https://r:1"));
                assert_eq!(r.conn.token_file, Some(PathBuf::from("t")));
                assert_eq!(r.conn.ca, Some(PathBuf::from("ca.pem")));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn review_arguments_refused() {
        for bad in [
            &["review", "list", "--status", "pending"][..],
            &["review", "list", "--limit", "0"],
            &["review", "list", "--limit", "1001"],
            &["review", "show", "x", "--out", "d"],
            &["review", "show", "1"],
            &["review", "show", "1", "--out", "d", "--full", "--preview"],
            &["review", "decide", "1", "--reason", "benign"],
            &["review", "decide", "1", "--confirm", "--reject", "--reason", "benign"],
            &["review", "decide", "1", "--reject", "--reason", "benign", "--urgent"],
            &["review", "decide", "1", "--confirm"],
            &["review", "appeals", "--status", "open"],
            &["review", "decide-appeal", "1", "--reason", "r"],
            &["review", "decide-appeal", "1", "--uphold", "--dismiss", "--reason", "r"],
            &["review", "frobnicate"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn report_arguments() {
        match parse(&["report", "--order", "current", "--format", "html", "--publish", "--out", "r.html"]) {
            Ok(Cmd::Report(r)) => {
                assert_eq!((r.order.as_str(), r.format, r.publish), ("current", Format::Html, true));
                assert_eq!(r.out, Some(PathBuf::from("r.html")));
                assert_eq!((r.from, r.to), (None, None));
            }
            other => panic!("{other:?}"),
        }
        match parse(&["report", "--order", "ab", "--from", "10", "--to", "20", "--format", "md"]) {
            Ok(Cmd::Report(r)) => {
                assert_eq!((r.from, r.to, r.format, r.publish), (Some(10), Some(20), Format::Md, false))
            }
            other => panic!("{other:?}"),
        }
        for bad in [
            &["report", "--order", "current"][..],
            &["report", "--order", "current", "--format", "pdf"],
            &["report", "--order", "current", "--format", "json", "--from", "1"],
            &["report", "--order", "current", "--format", "json", "--provider-key", "00"],
            &["report", "--format", "json"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?} parsed");
        }
        assert_eq!(parse_order("current").ok(), Some(String::new()));
        assert_eq!(
            parse_order("0123456789ABCDEF0123456789abcdef").ok().as_deref(),
            Some("0123456789abcdef0123456789abcdef")
        );
        for bad in ["", "00", "zz23456789abcdef0123456789abcdef", "0123456789abcdef0123456789abcdef00"] {
            assert_eq!(parse_order(bad).map_err(|e| e.exit_code()).err(), Some(2), "{bad}");
        }
        assert_eq!(parse_period(None, None).ok(), Some((0, 0)));
        assert_eq!(parse_period(Some(5), Some(9)).ok(), Some((5, 9)));
        assert!(parse_period(Some(9), Some(9)).is_err());
        assert!(parse_period(Some(1), None).is_err());
    }

    #[test]
    fn decide_reason_must_fit_the_verdict() {
        assert!(decide_reason(true, "known-image").is_ok());
        assert!(decide_reason(false, "benign").is_ok());
        let e = decide_reason(true, "benign").err().map(|e| (e.exit_code(), e.to_string()));
        assert_eq!(e, Some((2, "review decide: --reason: with --confirm use known-image".to_owned())));
        let e = decide_reason(false, "known-image").err().map(|e| e.to_string()).unwrap_or_default();
        assert_eq!(e, "review decide: --reason: with --reject use not-matching, benign, illegible, other");
        assert!(decide_reason(false, "nonsense").is_err());
        assert!(text_limit("c", &"x".repeat(2000), true).is_ok());
        assert!(text_limit("c", &"x".repeat(2001), true).is_err());
        assert!(text_limit("c", " ", false).is_err());
    }

    #[test]
    fn preview_decoding_is_bounded() {
        let png = |w: u32, h: u32| {
            let mut out = Vec::new();
            image::GrayImage::new(w, h)
                .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
                .map(|()| out)
                .unwrap_or_default()
        };
        assert!(decode_preview(&png(64, 48)).is_ok());
        assert!(decode_preview(&png(4097, 1)).is_err());
        assert!(decode_preview(PNG_MAGIC).is_err());
    }

    #[test]
    fn token_files() {
        let p = Path::new("tok");
        assert_eq!(parse_token(b"abc-123_XYZ\n", p).ok().as_deref().map(|s| s.as_str()), Some("abc-123_XYZ"));
        assert_eq!(parse_token(b"abc\r\n", p).ok().as_deref().map(|s| s.as_str()), Some("abc"));
        assert_eq!(parse_token(b"abc", p).ok().as_deref().map(|s| s.as_str()), Some("abc"));
        for bad in [&b""[..], b"\n", b"two\nlines\n", b"sp ace", b"tab\t", b"\xc3\xa9", &[b'a'; 1025]] {
            let e = parse_token(bad, p).err().map(|e| (e.exit_code(), e.to_string()));
            let (code, msg) = e.unwrap_or_default();
            assert_eq!(code, 2, "{bad:?}");
            assert!(msg.starts_with("--token-file tok: "), "{msg}");
            let secret = String::from_utf8_lossy(bad);
            assert!(secret.trim().is_empty() || !msg.contains(secret.trim()), "the message shows the content: {msg}");
        }
    }

    #[test]
    fn status_errors_are_one_line_with_their_code_and_no_token() {
        let token = "s3cr3t-token";
        let e =
            status_error("review decide", &tonic::Status::failed_precondition("the case is already decided"), token);
        assert_eq!(
            (e.exit_code(), e.to_string()),
            (1, "review decide: FAILED_PRECONDITION: the case is already decided".to_owned())
        );
        let e =
            status_error("review list", &tonic::Status::unauthenticated(format!("unknown token {token}\nline")), token);
        assert_eq!(e.exit_code(), 2);
        assert_eq!(e.to_string(), "review list: UNAUTHENTICATED: unknown token <redacted>?line");
        for (status, code) in [
            (tonic::Status::permission_denied("supervisors only"), 2),
            (tonic::Status::invalid_argument("reason"), 2),
            (tonic::Status::not_found("no such case"), 1),
            (tonic::Status::unavailable(""), 1),
            (tonic::Status::internal("x"), 1),
        ] {
            let e = status_error("report", &status, token);
            assert_eq!(e.exit_code(), code, "{e}");
            assert!(e.to_string().starts_with(&format!("report: {}: ", code_name(status.code()))));
        }
        let long = "y".repeat(1000);
        assert!(status_error("r", &tonic::Status::internal(long), token).to_string().chars().count() < 320);
    }

    fn summary(id: u64, status: &str) -> pb::CaseSummary {
        pb::CaseSummary {
            case_id: id,
            order_id: "0123456789abcdef0123456789abcdef".into(),
            account: "alice@example".into(),
            status: status.into(),
            created_at: 1_767_225_600,
            items: 3,
            confirmations: 1,
            confirmations_needed: 2,
            closed_at: 0,
            data_purged: false,
        }
    }

    #[test]
    fn case_list_table() {
        let mut evil = summary(12, "open");
        evil.account = "mallory\u{1b}[2J\u{202e}".into();
        let t = case_table(&[summary(3, "awaiting-second"), evil], None);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(
            lines.first().copied(),
            Some("case  status           account        order     created (UTC)            items  confirmations")
        );
        assert_eq!(
            lines.get(1).copied(),
            Some("3     awaiting-second  alice@example  01234567  2026-01-01 00:00:00 UTC  3      1/2")
        );
        assert!(lines.get(2).is_some_and(|l| l.contains("mallory?[2J?") && !l.contains('\u{1b}')));
        assert_eq!(case_table(&[], Some("open")), "no cases with status open\n");
        assert_eq!(case_table(&[], None), "no cases\n");
    }

    #[test]
    fn case_detail_text() {
        let d = pb::CaseDetail {
            summary: Some(summary(12, "confirmed")),
            items: vec![
                pb::CaseItem {
                    voucher_id: "aa".repeat(16),
                    attachment_ref: "bb".repeat(32),
                    time: 1_767_225_600,
                    png: PNG_MAGIC.to_vec(),
                    secondary_distance: 3,
                },
                pb::CaseItem { voucher_id: "cc".repeat(16), png: vec![], ..Default::default() },
            ],
            decisions: vec![pb::Decision {
                reviewer: "rev1".into(),
                role: "reviewer".into(),
                verdict: "confirm".into(),
                reason: "known-image".into(),
                comment: "matches".into(),
                at: 1_767_225_660,
            }],
            centre_verdict: "forwarded".into(),
            centre_reason: String::new(),
        };
        let files = vec![Some(PathBuf::from("out/case-12-item-01.png")), None];
        let t = case_text(&d, false, &files);
        assert!(t.starts_with("case 12: confirmed (blurred grayscale view)\n"), "{t}");
        assert!(t.contains("  2026-01-01 00:01:00 UTC  rev1 (reviewer): confirm, known-image: matches\n"), "{t}");
        assert!(t.contains("Centre verdict: forwarded\n"));
        assert!(t.contains("  01  voucher aaaa"), "{t}");
        assert!(t.contains("secondary distance 3  out/case-12-item-01.png\n"), "{t}");
        assert!(t.contains("  02  voucher cccc") && t.contains("no image (purged)\n"), "{t}");
        let full = case_text(&pb::CaseDetail { decisions: vec![], centre_verdict: String::new(), ..d }, true, &files);
        assert!(full.starts_with("case 12: confirmed (FULL VIEW (audited))\n"));
        assert!(full.contains("items (FULL VIEW (audited)):\n"));
        assert!(full.contains("decisions: none yet\n") && full.contains("Centre verdict: none yet\n"));
        assert_eq!(item_file_name(12, 0), "case-12-item-01.png");
        assert_eq!(item_file_name(12, 99), "case-12-item-100.png");
    }

    #[test]
    fn decision_and_appeal_lines() {
        assert_eq!(
            decided_text(&summary(4, "awaiting-second"), false),
            "case 4: confirmation recorded (1/2); a second, different reviewer must confirm"
        );
        let mut s = summary(4, "confirmed");
        s.confirmations = 2;
        assert_eq!(
            decided_text(&s, true),
            "case 4: confirmed (2/2); the provider-signed report is queued for the Centre, marked urgent"
        );
        assert!(decided_text(&summary(4, "rejected"), false).contains("false positive"));
        let a = pb::Appeal {
            appeal_id: 9,
            case_id: 4,
            account: "bob".into(),
            status: "pending".into(),
            text: "that was my own\nphoto".into(),
            filed_at: 1_767_225_600,
            ..Default::default()
        };
        let t = appeal_table(std::slice::from_ref(&a), None);
        assert!(
            t.starts_with("appeal  case  status   account  filed (UTC)              decided by  decided (UTC)\n"),
            "{t}"
        );
        assert!(t.contains("\n9       4     pending  bob      2026-01-01 00:00:00 UTC  -           -\n"), "{t}");
        assert!(t.contains("appeal 9: that was my own?photo\n"));
        assert_eq!(appeal_table(&[], Some("upheld")), "no appeals with status upheld\n");
        let upheld = pb::Appeal { status: "upheld".into(), ..a.clone() };
        assert!(appeal_decided_text(&upheld).starts_with("appeal 9: upheld; the report is withdrawn"));
        let dismissed = pb::Appeal { status: "dismissed".into(), ..a };
        assert_eq!(appeal_decided_text(&dismissed), "appeal 9: dismissed; the reason is shown to the user");
    }

    fn stats() -> pb::Statistics {
        pb::Statistics {
            order_id: "0123456789abcdef0123456789abcdef".into(),
            from: 0,
            to: 0,
            counters: vec![
                pb::Counter { name: "vouchers_received".into(), value: 100 },
                pb::Counter { name: "cases".into(), value: 2 },
            ],
            decision_seconds: vec![60, 120],
        }
    }

    #[test]
    fn statistics_render_as_an_unsigned_draft() {
        let v = statistics_view(stats(), ("", 0, 0), None, 1_767_225_600).ok();
        let v = v.as_ref();
        assert_eq!(v.map(|v| v.title.as_str()), Some("Statistics (unsigned draft), order 01234567"));
        assert_eq!(v.and_then(|v| v.counter("cases")), Some(2));
        assert_eq!(v.map(|v| v.signature.is_none()), Some(true));
        let json = v.map(|v| render(v, Format::Json)).unwrap_or_default();
        assert!(json.contains("\"status\": \"unsigned-draft\""));
        assert!(json.contains("\"vouchers_received\": 100,"));
        let html = v.map(|v| render(v, Format::Html)).unwrap_or_default();
        assert!(html.contains("UNSIGNED DRAFT") && !html.contains("<script"));
        let md = v.map(|v| render(v, Format::Md)).unwrap_or_default();
        assert!(md.starts_with("# Statistics (unsigned draft), order 01234567\n"), "{md}");
        // Another order or period than asked, or a malformed counter list, is refused.
        assert!(statistics_view(stats(), ("ffffffffffffffffffffffffffffffff", 0, 0), None, 0).is_err());
        assert!(statistics_view(stats(), ("", 5, 10), None, 0).is_err());
        let mut dup = stats();
        dup.counters.push(pb::Counter { name: "cases".into(), value: 3 });
        let e = statistics_view(dup, ("", 0, 0), None, 0).err().map(|e| (e.exit_code(), e.to_string()));
        assert_eq!(
            e,
            Some((1, "report: the server's statistics are malformed: counter cases appears more than once".into()))
        );
    }

    fn signed_report() -> (Vec<u8>, ProviderKey) {
        let key = vouchsafe_case::ProviderSigningKey::from_secret_bytes(&[7u8; 32]);
        let report = vouchsafe_case::TransparencyReport {
            provider: "messenger.example".into(),
            order_id: [0x01; 16],
            from: 0,
            to: 0,
            counters: vec![("cases".into(), 5), ("vouchers_received".into(), 900)],
            decision_seconds: vec![30, 40],
            created_at: 1_767_225_600,
        };
        let signed = key.sign_transparency(&report).map(|s| s.encode()).unwrap_or_default();
        (signed, key.public())
    }

    #[test]
    fn published_report_renders_what_was_signed() {
        let (bytes, key) = signed_report();
        let v = published_view(&bytes, 17, Some(&key), ("", 0, 0), None).ok();
        let v = v.as_ref();
        assert_eq!(v.map(|v| v.provider.as_str()), Some("messenger.example"));
        assert_eq!(v.map(|v| v.order_id.as_str()), Some("01010101010101010101010101010101"));
        assert_eq!(v.and_then(|v| v.counter("vouchers_received")), Some(900));
        let sig = v.and_then(|v| v.signature.clone());
        assert_eq!(sig.as_ref().map(|s| s.log_leaf_index), Some(17));
        assert_eq!(sig.as_ref().map(|s| s.key_id.clone()), Some(hex::encode(key.key_id())));
        assert_eq!(sig.map(|s| s.signed_report_hex), Some(hex::encode(&bytes)));
        let json = v.map(|v| render(v, Format::Json)).unwrap_or_default();
        assert!(json.contains("\"status\": \"signed\"") && json.contains("\"log_leaf_index\": 17,"));

        // Without the key it is shown as not verified.
        let v = published_view(&bytes, 17, None, ("01010101010101010101010101010101", 0, 0), None).ok();
        assert_eq!(v.and_then(|v| v.signature).map(|s| s.key_id), Some("unverified: no --provider-key given".into()));
        // A wrong key, a flipped bit, another order or period than asked: refused (exit 1).
        let other = vouchsafe_case::ProviderSigningKey::from_secret_bytes(&[8u8; 32]).public();
        let codes = |r: Result<ReportView>| r.err().map(|e| e.exit_code());
        assert_eq!(codes(published_view(&bytes, 1, Some(&other), ("", 0, 0), None)), Some(1));
        let mut flipped = bytes.clone();
        if let Some(b) = flipped.last_mut() {
            *b ^= 1;
        }
        assert_eq!(codes(published_view(&flipped, 1, Some(&key), ("", 0, 0), None)), Some(1));
        assert_eq!(codes(published_view(&bytes, 1, None, ("02020202020202020202020202020202", 0, 0), None)), Some(1));
        assert_eq!(codes(published_view(&bytes, 1, None, ("", 1, 2), None)), Some(1));
        assert_eq!(codes(published_view(b"garbage", 1, None, ("", 0, 0), None)), Some(1));
    }

    /// A canned `Review` server on loopback: records the `authorization` header of every call.
    mod fake {
        use std::sync::{Arc, Mutex};

        use tonic::{Request, Response, Status};
        use vouchsafe_proto::v1 as pb;

        #[derive(Clone, Default)]
        pub struct Fake {
            pub auth: Arc<Mutex<Vec<String>>>,
            pub signed: Vec<u8>,
            pub png: Vec<u8>,
        }

        impl Fake {
            fn saw<T>(&self, r: &Request<T>) {
                let value = r.metadata().get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
                self.auth.lock().unwrap().push(value.to_owned());
            }
        }

        #[tonic::async_trait]
        impl pb::review_server::Review for Fake {
            async fn list_cases(&self, r: Request<pb::ListCasesRequest>) -> Result<Response<pb::CaseList>, Status> {
                self.saw(&r);
                Ok(Response::new(pb::CaseList { cases: vec![super::summary(1, "open")] }))
            }
            async fn get_case(&self, r: Request<pb::GetCaseRequest>) -> Result<Response<pb::CaseDetail>, Status> {
                self.saw(&r);
                let item = |png: Vec<u8>| pb::CaseItem { voucher_id: "aa".repeat(16), png, ..Default::default() };
                Ok(Response::new(pb::CaseDetail {
                    summary: Some(super::summary(r.get_ref().case_id, "open")),
                    items: vec![item(self.png.clone()), item(vec![]), item(self.png.clone())],
                    ..Default::default()
                }))
            }
            async fn decide(&self, r: Request<pb::DecideRequest>) -> Result<Response<pb::CaseSummary>, Status> {
                self.saw(&r);
                Err(Status::failed_precondition("the case is already decided"))
            }
            async fn list_appeals(
                &self,
                r: Request<pb::ListAppealsRequest>,
            ) -> Result<Response<pb::AppealList>, Status> {
                self.saw(&r);
                Ok(Response::new(pb::AppealList { appeals: vec![] }))
            }
            async fn decide_appeal(&self, r: Request<pb::DecideAppealRequest>) -> Result<Response<pb::Appeal>, Status> {
                self.saw(&r);
                Err(Status::permission_denied("supervisors only"))
            }
            async fn get_statistics(
                &self,
                r: Request<pb::GetStatisticsRequest>,
            ) -> Result<Response<pb::Statistics>, Status> {
                self.saw(&r);
                Ok(Response::new(super::stats()))
            }
            async fn publish_transparency_report(
                &self,
                r: Request<pb::GetStatisticsRequest>,
            ) -> Result<Response<pb::PublishedReport>, Status> {
                self.saw(&r);
                Ok(Response::new(pb::PublishedReport { signed_report: self.signed.clone(), leaf_index: 9 }))
            }
        }
    }

    #[tokio::test]
    async fn the_commands_against_a_canned_server() {
        let mut png = Vec::new();
        image::GrayImage::from_pixel(8, 8, image::Luma([128u8]))
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        let fake = fake::Fake { signed: signed_report().0, png, ..Default::default() };
        let incoming = tonic::transport::server::TcpIncoming::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = incoming.local_addr().unwrap();
        let server = tonic::transport::Server::builder()
            .add_service(pb::review_server::ReviewServer::new(fake.clone()))
            .serve_with_incoming(incoming);
        let server = tokio::spawn(server);

        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, "rev1-token\n").unwrap();
        let endpoint = format!("http://{addr}");
        let conn = ["--endpoint", endpoint.as_str(), "--token-file", token.to_str().unwrap()];
        let run_review = |args: &[&str]| {
            let mut all = vec!["review"];
            all.extend_from_slice(args);
            all.extend_from_slice(&conn);
            match parse(&all).unwrap() {
                Cmd::Review(r) => super::review(r),
                Cmd::Report(_) => unreachable!(),
            }
        };

        run_review(&["list"]).await.unwrap();
        run_review(&["appeals", "--status", "pending"]).await.unwrap();
        let out = dir.path().join("items");
        let out_s = out.to_str().unwrap();
        run_review(&["show", "5", "--out", out_s, "--preview"]).await.unwrap();
        for nn in ["01", "03"] {
            let f = out.join(format!("case-5-item-{nn}.png"));
            assert!(std::fs::read(&f).unwrap().starts_with(PNG_MAGIC));
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                assert_eq!(std::fs::metadata(&f).unwrap().permissions().mode() & 0o777, 0o600);
            }
        }
        assert!(!out.join("case-5-item-02.png").exists(), "a purged item has no file");
        // Never overwriting: a second show refuses before writing anything.
        let e = run_review(&["show", "5", "--out", out_s]).await.unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("case-5-item-01.png exists; refusing to overwrite it"), "{e}");

        let e = run_review(&["decide", "5", "--confirm", "--reason", "known-image"]).await.unwrap_err();
        assert_eq!(
            (e.exit_code(), e.to_string()),
            (1, "review decide: FAILED_PRECONDITION: the case is already decided".into())
        );
        let e = run_review(&["decide-appeal", "2", "--uphold", "--reason", "ok"]).await.unwrap_err();
        assert_eq!(
            (e.exit_code(), e.to_string()),
            (2, "review decide-appeal: PERMISSION_DENIED: supervisors only".into())
        );
        // Refused locally: nothing is sent.
        let before = fake.auth.lock().unwrap().len();
        assert_eq!(run_review(&["decide", "5", "--confirm", "--reason", "benign"]).await.unwrap_err().exit_code(), 2);
        assert_eq!(fake.auth.lock().unwrap().len(), before);

        let report_to = |file: &str, publish: bool| {
            let path = dir.path().join(file);
            let mut all: Vec<String> =
                ["report", "--order", "current", "--format", "json", "--out"].iter().map(|s| (*s).to_owned()).collect();
            all.push(path.to_str().unwrap().to_owned());
            if publish {
                all.extend(["--publish".to_owned(), "--provider-key".to_owned()]);
                let pub_file = dir.path().join("provider.pub");
                let text = vouchsafe_files::key_text(
                    vouchsafe_server::PROVIDER_PUBLIC_KEY_HEADER,
                    &signed_report().1.to_bytes(),
                );
                if !pub_file.exists() {
                    std::fs::write(&pub_file, text.as_bytes()).unwrap();
                }
                all.push(pub_file.to_str().unwrap().to_owned());
            }
            all.extend(conn.iter().map(|s| (*s).to_owned()));
            let all: Vec<&str> = all.iter().map(String::as_str).collect();
            let args = match parse(&all).unwrap() {
                Cmd::Report(r) => r,
                Cmd::Review(_) => unreachable!(),
            };
            (path, super::report(args))
        };
        let (draft, run) = report_to("draft.json", false);
        run.await.unwrap();
        let draft = std::fs::read_to_string(draft).unwrap();
        assert!(draft.contains("\"status\": \"unsigned-draft\"") && draft.contains("\"vouchers_received\": 100,"));
        let (signed, run) = report_to("signed.json", true);
        run.await.unwrap();
        let signed = std::fs::read_to_string(&signed).unwrap();
        assert!(signed.contains("\"status\": \"signed\"") && signed.contains("\"log_leaf_index\": 9,"));
        assert!(signed.contains("\"vouchers_received\": 900,"), "the signed counters, not the statistics");
        let (_, run) = report_to("signed.json", true);
        assert_eq!(run.await.unwrap_err().exit_code(), 2, "an existing --out is refused");

        let seen = fake.auth.lock().unwrap().clone();
        assert_eq!(seen.len(), 8);
        assert!(seen.iter().all(|a| a == "Bearer rev1-token"), "{seen:?}");
        server.abort();
    }
}
