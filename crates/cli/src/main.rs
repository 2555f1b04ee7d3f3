//! `countersign`: the approval inbox on a terminal. Same core, same data dir
//! as the desktop app; every command is a thin call into `countersign-inbox`.
//!
//! Exit codes: 0 success (also when the reader of our output went away,
//! as with `| head`); 1 error; 2 bad usage; 3 a decision was recorded but
//! is queued, not yet delivered.

mod notifications;
mod print;

use clap::{Parser, Subcommand, ValueEnum};
use countersign_inbox::export::{ExportError, Format};
use countersign_inbox::when::{self, When};
use countersign_inbox::{AccountEdit, AccountInput, DecisionInput, Inbox};
use countersign_model::{
    Delivery, Outcome, Platform, Secret, SecretStoreKind, Status, SystemClock,
};
use countersign_store::{HistoryCursor, HistoryQuery, PendingQuery, Snoozed};
use std::io::{IsTerminal, Write};
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Parser)]
#[command(
    name = "countersign",
    version,
    about = "One approval inbox for your AI agents"
)]
struct Cli {
    /// Data directory (default: $COUNTERSIGN_DATA_DIR, else the OS data dir).
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Log more (repeat for more detail); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Add, list or remove platform accounts.
    #[command(subcommand)]
    Account(AccountCommand),
    /// Reconcile every account and deliver queued decisions.
    Sync {
        /// One pass, then exit (non-zero if any account failed).
        #[arg(long)]
        once: bool,
    },
    /// Pending requests, most urgent first.
    Pending {
        #[arg(long)]
        json: bool,
        #[arg(long)]
        account: Option<String>,
        /// Full-text filter.
        #[arg(long)]
        search: Option<String>,
        /// The snoozed requests instead (they are left out otherwise).
        #[arg(long)]
        snoozed: bool,
    },
    /// Take a pending request out of the inbox until a time: a span (30m,
    /// 2h), `tomorrow` (9:00 local time), or an RFC 3339 time. A request
    /// with a deadline comes back 5 minutes before it at the latest.
    Snooze {
        id: i64,
        #[arg(value_name = "WHEN", value_parser = parse_snooze)]
        until: SnoozeUntil,
    },
    /// Everything about one request.
    Show {
        id: i64,
        #[arg(long)]
        json: bool,
    },
    /// What agents did and reported, newest first.
    Activity {
        #[arg(long)]
        json: bool,
        #[arg(long)]
        account: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Decide a pending request: approve, deny, answer (a question, with
    /// --value JSON), accept (an escalation), edit (with --args JSON),
    /// respond (with --text), or always (allow from now on), as it allows.
    Decide {
        id: i64,
        decision: DecisionArg,
        #[arg(long)]
        comment: Option<String>,
        /// `answer`: the answer as JSON (a string is "\"text\"").
        #[arg(long)]
        value: Option<String>,
        /// `edit`: the edited arguments as a JSON object.
        #[arg(long)]
        args: Option<String>,
        /// `respond`: the reply text.
        #[arg(long)]
        text: Option<String>,
        /// Decide every pending request of the same thread this way (for
        /// platforms that take a thread's decisions together: SurfSense).
        #[arg(long, conflicts_with_all = ["value", "args", "text"])]
        thread: bool,
    },
    /// Decided, expired and resolved-elsewhere requests, newest first by
    /// when they ended, printed as they are read.
    ///
    /// With --limit, a page: when more rows follow, the command for the
    /// next page is printed on stderr (`more: countersign history --before
    /// CURSOR …`).
    History {
        /// JSON Lines: one JSON object per row (not one array), so a script
        /// can read rows as they come.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        filter: Filter,
        /// Only rows older than this cursor (from a `more:` line).
        #[arg(long, value_name = "CURSOR", value_parser = parse_cursor)]
        before: Option<HistoryCursor>,
        /// At most this many rows.
        #[arg(long)]
        limit: Option<u32>,
    },
    /// Requests and their decisions, for archiving: every request (oldest
    /// first), or with filters the ended ones history would list, then the
    /// matching pending ones. Streamed; a progress bar shows on a terminal.
    Export {
        #[arg(long, value_enum)]
        format: ExportFormat,
        /// Write here instead of standard output.
        #[arg(long)]
        output: Option<PathBuf>,
        #[command(flatten)]
        filter: Filter,
    },
    /// Notification switches, shared with the desktop app (a running app
    /// picks a change up within a second).
    #[command(subcommand)]
    Notifications(notifications::NotificationsCommand),
    /// Delete history that ended before a time, and give the space back.
    /// Pending requests and decisions not yet delivered are always kept.
    Prune {
        /// A date (2026-06-01), an RFC 3339 time, or a span back from now (90d).
        #[arg(long, value_name = "WHEN", value_parser = when::parse)]
        before: When,
        /// Keep the requests and their decisions; drop only the platforms'
        /// raw payloads.
        #[arg(long)]
        keep_decisions: bool,
        /// Do not ask first (required when standard input is not a terminal).
        #[arg(long)]
        yes: bool,
    },
}

/// History's filters (shared by `history` and `export`).
#[derive(clap::Args)]
struct Filter {
    /// Full-text search over title, action, arguments, reason, agent, comment.
    #[arg(long)]
    search: Option<String>,
    /// Only this outcome: approved, denied, expired, resolved_elsewhere,
    /// cancelled (export: pending too).
    #[arg(long, value_parser = parse_status)]
    status: Option<Status>,
    /// Only this account (its name, as `account list` shows it).
    #[arg(long)]
    account: Option<String>,
    /// Only this platform (a wrong name lists the valid ones).
    #[arg(long, value_parser = parse_platform)]
    platform: Option<Platform>,
    /// Only this agent (as the AGENT column shows it).
    #[arg(long)]
    agent: Option<String>,
    /// Ended at or after: a date (2026-12-01), an RFC 3339 time, or a span
    /// back from now (7d, 12h, 30m).
    #[arg(long, value_name = "WHEN", value_parser = when::parse)]
    since: Option<When>,
    /// Ended before (same forms as --since).
    #[arg(long, value_name = "WHEN", value_parser = when::parse)]
    until: Option<When>,
}

impl Filter {
    fn query(self, now: chrono::DateTime<chrono::Utc>) -> HistoryQuery {
        HistoryQuery {
            statuses: self.status.into_iter().collect(),
            account: self.account,
            platform: self.platform,
            agent: self.agent,
            search: self.search,
            since: self.since.map(|w| w.resolve(now)),
            until: self.until.map(|w| w.resolve(now)),
            ..Default::default()
        }
    }
}

#[derive(Subcommand)]
enum AccountCommand {
    /// Add an account.
    Add(Box<AddAccount>),
    /// Change an account in place (same options as `add`; what you leave
    /// out stays). Its history stays with it; a new secret replaces the
    /// stored one.
    Edit(Box<EditAccount>),
    /// List accounts and their health.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Remove an account (its history stays).
    Remove { name: String },
}

/// `account add`'s arguments.
#[derive(clap::Args)]
struct AddAccount {
    #[arg(value_parser = parse_platform)]
    platform: Platform,
    #[arg(long)]
    name: String,
    /// The platform's URL (harn: `harn serve api`'s URL).
    #[arg(long, required_unless_present = "event_log")]
    url: Option<String>,
    /// harn: the project's event log (`.harn/events.sqlite`, its `.harn`
    /// directory, or the project directory).
    #[arg(long, value_name = "PATH", conflicts_with = "url")]
    event_log: Option<PathBuf>,
    /// Name of the environment variable holding the token (Molecule,
    /// harn serve api) or password (Clawith, SurfSense, OpenCode).
    #[arg(long, value_name = "VAR")]
    secret_env: Option<String>,
    /// SurfSense: name of the environment variable holding a personal
    /// access token (`ss_pat_…`), instead of a password.
    #[arg(long, value_name = "VAR", conflicts_with = "secret_env")]
    token_env: Option<String>,
    #[command(flatten)]
    platform_options: PlatformOptions,
    /// The name your decisions are recorded under (default: $USER).
    #[arg(long)]
    reviewer: Option<String>,
    /// Where the secret is kept.
    #[arg(long, value_enum, default_value_t = SecretStoreArg::Keychain)]
    secret_store: SecretStoreArg,
}

/// The per-platform settings `account add` and `account edit` take.
#[derive(clap::Args)]
struct PlatformOptions {
    /// Clawith: the username, email or phone to log in with; SurfSense:
    /// the email; OpenCode: the Basic auth user (default `opencode`).
    #[arg(long)]
    username: Option<String>,
    /// Clawith: the company to sign in to (id, slug or name). The account
    /// is bound to that company's id at its first login.
    #[arg(long)]
    tenant: Option<String>,
    /// Molecule: Origin for the WebSocket when the server sets CORS_ORIGINS.
    #[arg(long)]
    ws_origin: Option<String>,
    /// Molecule SaaS: the tenant's org id.
    #[arg(long)]
    org_id: Option<String>,
}

impl PlatformOptions {
    /// The options given, as account settings.
    fn settings(self) -> serde_json::Map<String, serde_json::Value> {
        [
            ("ws_origin", self.ws_origin),
            ("org_id", self.org_id),
            ("login", self.username),
            ("tenant", self.tenant),
        ]
        .into_iter()
        .filter_map(|(k, v)| Some((k.to_owned(), v?.into())))
        .collect()
    }
}

/// `account edit`'s arguments: `add`'s, all optional.
#[derive(clap::Args)]
struct EditAccount {
    /// The account to change.
    name: String,
    /// A new name for the account.
    #[arg(long = "name", value_name = "NEW_NAME")]
    new_name: Option<String>,
    /// The platform's URL (harn: `harn serve api`'s URL).
    #[arg(long)]
    url: Option<String>,
    /// harn: the project's event log.
    #[arg(long, value_name = "PATH", conflicts_with = "url")]
    event_log: Option<PathBuf>,
    /// Name of the environment variable holding the new token or password;
    /// it replaces the stored one.
    #[arg(long, value_name = "VAR")]
    secret_env: Option<String>,
    /// SurfSense: the environment variable holding a new personal access token.
    #[arg(long, value_name = "VAR", conflicts_with = "secret_env")]
    token_env: Option<String>,
    #[command(flatten)]
    platform_options: PlatformOptions,
    /// The name your decisions are recorded under.
    #[arg(long)]
    reviewer: Option<String>,
    /// Where the secret is kept; it moves there.
    #[arg(long, value_enum)]
    secret_store: Option<SecretStoreArg>,
}

/// The secret named by `--secret-env`/`--token-env`, read from the environment.
fn secret_from_env(var: Option<String>) -> Result<Option<Secret>, Failure> {
    match var {
        Some(var) => match std::env::var(&var) {
            Ok(v) if !v.is_empty() => Ok(Some(Secret::new(v))),
            _ => Err(format!("the environment variable {var} is not set or empty").into()),
        },
        None => Ok(None),
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum DecisionArg {
    Approve,
    Deny,
    Answer,
    Accept,
    Edit,
    Respond,
    Always,
}

#[derive(Clone, Copy, ValueEnum, PartialEq)]
enum SecretStoreArg {
    Keychain,
    File,
}

#[derive(Clone, Copy, ValueEnum)]
enum ExportFormat {
    Jsonl,
    Csv,
}

fn parse_platform(s: &str) -> Result<Platform, String> {
    s.parse().map_err(|_| {
        let names: Vec<_> = Platform::ALL.iter().map(|p| p.as_str()).collect();
        format!("unknown platform `{s}`; one of: {}", names.join(", "))
    })
}

fn parse_status(s: &str) -> Result<Status, String> {
    s.parse().map_err(|_| {
        let names: Vec<_> = Status::ALL.iter().map(|p| p.as_str()).collect();
        format!("unknown status `{s}`; one of: {}", names.join(", "))
    })
}

fn parse_cursor(s: &str) -> Result<HistoryCursor, String> {
    s.parse()
        .map_err(|e: countersign_store::BadCursor| e.to_string())
}

/// When a snooze ends, as typed.
#[derive(Clone, Copy)]
enum SnoozeUntil {
    In(chrono::Duration),
    At(chrono::DateTime<chrono::Utc>),
    Tomorrow,
}

fn parse_snooze(s: &str) -> Result<SnoozeUntil, String> {
    if s.trim().eq_ignore_ascii_case("tomorrow") {
        return Ok(SnoozeUntil::Tomorrow);
    }
    match when::parse(s) {
        Ok(When::Ago(d)) => Ok(SnoozeUntil::In(d)),
        Ok(When::At(t)) => Ok(SnoozeUntil::At(t)),
        _ => Err(format!(
            "not a snooze time: `{}` (expected a span like 30m or 2h, tomorrow, or an RFC 3339 time)",
            s.chars().take(40).collect::<String>()
        )),
    }
}

/// 9:00 local time the day after `now`.
fn tomorrow_morning(now: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
    use chrono::TimeZone;
    let day = now.with_timezone(&chrono::Local).date_naive() + chrono::Duration::days(1);
    let nine = day.and_hms_opt(9, 0, 0).expect("9:00 exists");
    chrono::Local
        .from_local_datetime(&nine)
        .earliest()
        .map(|t| t.with_timezone(&chrono::Utc))
        .unwrap_or(now + chrono::Duration::days(1))
}

/// A failure to report: one line on stderr, then the exit code.
struct Failure {
    message: String,
    code: u8,
}

impl Failure {
    fn usage(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            code: 2,
        }
    }

    /// The reader of our output went away (`| head`): not worth a word.
    fn broken_pipe(&self) -> bool {
        self.code == 0
    }
}

fn is_broken_pipe(e: &(dyn std::any::Any + 'static)) -> bool {
    let io = e
        .downcast_ref::<std::io::Error>()
        .or(match e.downcast_ref() {
            Some(ExportError::Write(io)) => Some(io),
            _ => None,
        });
    io.is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}

impl<E: std::fmt::Display + 'static> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure {
            message: e.to_string(),
            code: if is_broken_pipe(&e) { 0 } else { 1 },
        }
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // A value that does not parse (a date, a cursor) is one line.
        Err(e) if e.kind() == clap::error::ErrorKind::ValueValidation => {
            let text = e.render().to_string();
            eprintln!("{}", text.lines().next().unwrap_or("error: bad usage"));
            return ExitCode::from(2);
        }
        Err(e) => e.exit(),
    };
    init_logging(cli.verbose);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(f) if f.broken_pipe() => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("error: {}", print::clean(&f.message));
            ExitCode::from(f.code)
        }
    }
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

async fn run(cli: Cli) -> Result<u8, Failure> {
    // Repeated in the `more:` hint, so it reads the same store.
    let given_dir = cli.data_dir.clone();
    let dir = countersign_inbox::resolve_data_dir(cli.data_dir)?;
    let mut out = std::io::stdout().lock();
    let inbox = Inbox::open(&dir, Arc::new(SystemClock))?;
    match cli.command {
        Command::Account(cmd) => account(&inbox, cmd, &mut out).await,
        Command::Sync { once: true } => sync_once(&inbox, &mut out).await,
        Command::Sync { once: false } => {
            drop(out);
            sync_forever(&inbox).await
        }
        Command::Pending {
            json,
            account,
            search,
            snoozed,
        } => {
            let now = inbox.clock().now();
            let q = PendingQuery {
                account,
                search,
                snoozed: if snoozed {
                    Snoozed::AsleepAt(now)
                } else {
                    Snoozed::AwakeAt(now)
                },
                ..Default::default()
            };
            let list = inbox.pending(&q)?;
            print::requests(&mut out, &list, json, inbox.clock().now())?;
            Ok(0)
        }
        Command::Snooze { id, until } => {
            let now = inbox.clock().now();
            let until = match until {
                SnoozeUntil::In(d) => now + d,
                SnoozeUntil::At(t) => t,
                SnoozeUntil::Tomorrow => tomorrow_morning(now),
            };
            let back = inbox.snooze(id, until)?;
            writeln!(
                out,
                "snoozed request {id} until {}",
                back.with_timezone(&chrono::Local).format("%Y-%m-%d %H:%M")
            )?;
            Ok(0)
        }
        Command::Show { id, json } => {
            let detail = inbox.detail(id)?;
            print::detail(&mut out, &detail, json)?;
            Ok(0)
        }
        Command::Activity {
            json,
            account,
            limit,
        } => {
            let items = inbox.store().activity(account.as_deref(), limit)?;
            print::activity(&mut out, &items, json)?;
            Ok(0)
        }
        Command::Decide {
            id,
            decision,
            comment,
            value,
            args,
            text,
            thread,
        } => {
            let input = decision_input(&inbox, id, decision, comment, value, args, text)?;
            if let Some(w) = inbox.store().request(id).ok().and_then(|r| r.hidden) {
                writeln!(out, "warning: request {id}'s text hides something: {w}")?;
            }
            if thread {
                let request = inbox.detail(id)?.request;
                let decisions = inbox.decide_group(id, input.outcome, input.comment).await?;
                let mut code = 0;
                for d in decisions {
                    code = code.max(report(&inbox, d.request_id, input.outcome, &d, &mut out)?);
                }
                if let Some(group) = &request.extra.group {
                    writeln!(out, "decided all of {}", print::clean(&group.label))?;
                }
                Ok(code)
            } else {
                decide(&inbox, input, &mut out).await
            }
        }
        Command::History {
            json,
            filter,
            before,
            limit,
        } => {
            let q = HistoryQuery {
                before,
                limit,
                ..filter.query(inbox.clock().now())
            };
            history(&inbox, &q, json, given_dir.as_deref(), &mut out)
        }
        Command::Export {
            format,
            output,
            filter,
        } => {
            let format = match format {
                ExportFormat::Jsonl => Format::Jsonl,
                ExportFormat::Csv => Format::Csv,
            };
            let q = filter.query(inbox.clock().now());
            export(&inbox, format, &q, output, &mut out)
        }
        Command::Prune {
            before,
            keep_decisions,
            yes,
        } => prune(&inbox, before, keep_decisions, yes, &mut out),
        Command::Notifications(cmd) => {
            notifications::run(inbox.data_dir(), cmd, inbox.clock().now(), &mut out)
        }
    }
}

/// Prints rows as they are read; with a limit that cut the list short,
/// says on stderr how to get the next page.
fn history(
    inbox: &Inbox,
    q: &HistoryQuery,
    json: bool,
    data_dir: Option<&std::path::Path>,
    out: &mut impl Write,
) -> Result<u8, Failure> {
    let mut rows = print::RequestRows::new(json, inbox.clock().now());
    let mut failed = None;
    let next = inbox.for_each_history(q, |r| match rows.row(out, &r) {
        Ok(()) => ControlFlow::Continue(()),
        Err(e) => {
            failed = Some(e);
            ControlFlow::Break(())
        }
    })?;
    if let Some(e) = failed {
        return Err(e.into());
    }
    rows.finish(out)?;
    let Some(next) = next else {
        return Ok(0);
    };
    let more = inbox.store().history_page(&HistoryQuery {
        before: Some(next),
        limit: Some(1),
        ..q.clone()
    })?;
    if !more.rows.is_empty() {
        eprintln!(
            "more: countersign history --before {next}{}",
            repeat_args(q, json, data_dir)
        );
    }
    Ok(0)
}

/// The flags that select the same rows again, for the `more:` line.
fn repeat_args(q: &HistoryQuery, json: bool, data_dir: Option<&std::path::Path>) -> String {
    let quote = |s: &str| {
        if !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.:@/+=,".contains(c))
        {
            s.to_owned()
        } else {
            format!("'{}'", s.replace('\'', "'\\''"))
        }
    };
    let mut out = String::new();
    let mut flag = |name: &str, value: Option<String>| {
        if let Some(v) = value {
            out.push_str(&format!(" --{name} {}", quote(&print::clean(&v))));
        }
    };
    flag("data-dir", data_dir.map(|d| d.display().to_string()));
    flag("limit", q.limit.map(|l| l.to_string()));
    flag("status", q.statuses.first().map(|s| s.as_str().to_owned()));
    flag("account", q.account.clone());
    flag("platform", q.platform.map(|p| p.as_str().to_owned()));
    flag("agent", q.agent.clone());
    flag("search", q.search.clone());
    let time =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
    flag("since", q.since.map(time));
    flag("until", q.until.map(time));
    if json {
        out.push_str(" --json");
    }
    out
}

fn export(
    inbox: &Inbox,
    format: Format,
    q: &HistoryQuery,
    output: Option<PathBuf>,
    out: &mut impl Write,
) -> Result<u8, Failure> {
    // A bar only for a person watching; nothing in logs or pipes.
    let bar = if std::io::stderr().is_terminal() {
        let total = inbox.store().history_total()? + inbox.store().pending_count()?;
        indicatif::ProgressBar::new(total.max(0) as u64).with_style(
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} requests ({eta} left)")
                .expect("a valid template"),
        )
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mut progress = |n: u64| bar.set_position(n);
    let count = match output {
        Some(path) => {
            // Only the user may read it: it holds every request's payload.
            let file = countersign_store::private::create_file(&path)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            let mut w = std::io::BufWriter::new(file);
            inbox.export(format, q, &mut w, &mut progress)?
        }
        None => {
            let mut w = std::io::BufWriter::new(out);
            inbox.export(format, q, &mut w, &mut progress)?
        }
    };
    bar.finish_and_clear();
    eprintln!("exported {count} requests");
    Ok(0)
}

fn prune(
    inbox: &Inbox,
    before: When,
    keep_decisions: bool,
    yes: bool,
    out: &mut impl Write,
) -> Result<u8, Failure> {
    let now = inbox.clock().now();
    let p = countersign_store::Prune {
        before: before.resolve(now),
        keep_decisions,
    };
    let cutoff = p.before.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let n = inbox.store().prune_count(&p)?;
    if n == 0 {
        writeln!(out, "nothing to prune: no request ended before {cutoff}")?;
        return Ok(0);
    }
    if keep_decisions {
        writeln!(out, "will drop the raw payloads of {n} requests that ended before {cutoff} (the requests and their decisions stay)")?;
    } else {
        writeln!(
            out,
            "will delete {n} requests that ended before {cutoff}, with their decisions"
        )?;
    }
    writeln!(
        out,
        "pending requests and decisions not yet delivered are kept"
    )?;
    out.flush()?;
    if !yes {
        if !std::io::stdin().is_terminal() {
            return Err(Failure::usage(
                "refusing to prune without --yes: standard input is not a terminal",
            ));
        }
        eprint!("go ahead? [y/N] ");
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        if !matches!(answer.trim().to_lowercase().as_str(), "y" | "yes") {
            writeln!(out, "nothing changed")?;
            return Ok(0);
        }
    }
    let done = inbox.store().prune(&p, now)?;
    if keep_decisions {
        writeln!(
            out,
            "dropped the raw payloads of {} requests",
            done.payloads
        )?;
    } else {
        writeln!(
            out,
            "deleted {} requests and their decisions",
            done.requests
        )?;
    }
    writeln!(out, "freed {}", print::bytes(done.freed_bytes))?;
    Ok(0)
}

async fn account(inbox: &Inbox, cmd: AccountCommand, out: &mut impl Write) -> Result<u8, Failure> {
    match cmd {
        AccountCommand::Add(add) => {
            let AddAccount {
                platform,
                name,
                url,
                event_log,
                secret_env,
                token_env,
                platform_options,
                reviewer,
                secret_store,
            } = *add;
            let secret = secret_from_env(secret_env.or(token_env))?;
            let settings = platform_options.settings();
            let store = match secret_store {
                SecretStoreArg::Keychain => SecretStoreKind::Keychain,
                SecretStoreArg::File => SecretStoreKind::File,
            };
            let account = inbox
                .add_account(AccountInput {
                    name,
                    platform,
                    base_url: match event_log {
                        Some(path) => path.display().to_string(),
                        None => url.unwrap_or_default(),
                    },
                    reviewer,
                    secret: secret.clone(),
                    secret_store: store,
                    settings: settings.into(),
                })
                .await?;
            if secret.is_some() && store == SecretStoreKind::File {
                eprintln!(
                    "warning: the secret is kept unencrypted in {} (readable only by you)",
                    inbox.data_dir().join("secrets.json").display()
                );
            }
            writeln!(
                out,
                "added {} account `{}` ({})",
                account.platform,
                print::clean(&account.name),
                account.base_url
            )?;
            Ok(0)
        }
        AccountCommand::Edit(edit) => {
            let EditAccount {
                name,
                new_name,
                url,
                event_log,
                secret_env,
                token_env,
                platform_options,
                reviewer,
                secret_store,
            } = *edit;
            let secret = secret_from_env(secret_env.or(token_env))?;
            let settings = platform_options.settings();
            let store = secret_store.map(|s| match s {
                SecretStoreArg::Keychain => SecretStoreKind::Keychain,
                SecretStoreArg::File => SecretStoreKind::File,
            });
            let replaced = secret.is_some();
            let account = inbox
                .edit_account(
                    &name,
                    AccountEdit {
                        name: new_name,
                        base_url: event_log.map(|p| p.display().to_string()).or(url),
                        reviewer,
                        secret,
                        secret_store: store,
                        settings,
                    },
                )
                .await?;
            if account.secret_store == SecretStoreKind::File && (replaced || store.is_some()) {
                eprintln!(
                    "warning: the secret is kept unencrypted in {} (readable only by you)",
                    inbox.data_dir().join("secrets.json").display()
                );
            }
            writeln!(
                out,
                "updated {} account `{}` ({}){}; its history is kept",
                account.platform,
                print::clean(&account.name),
                account.base_url,
                if replaced {
                    ", the stored secret is replaced"
                } else {
                    ""
                }
            )?;
            Ok(0)
        }
        AccountCommand::List { json } => {
            print::accounts(out, &inbox.accounts()?, json)?;
            Ok(0)
        }
        AccountCommand::Remove { name } => {
            let account = inbox.remove_account(&name).await?;
            writeln!(
                out,
                "removed account `{}`; its history is kept",
                print::clean(&account.name)
            )?;
            Ok(0)
        }
    }
}

async fn sync_once(inbox: &Inbox, out: &mut impl Write) -> Result<u8, Failure> {
    let reports = inbox.sync_once().await?;
    let mut failed = 0;
    for r in &reports {
        match &r.result {
            Ok(rec) => writeln!(
                out,
                "{}: {} pending ({} new), {} resolved, {} decisions delivered",
                print::clean(&r.account),
                rec.pending,
                rec.new,
                rec.resolved,
                r.delivered
                    .iter()
                    .filter(|d| d.delivery == Delivery::Confirmed)
                    .count()
            )?,
            Err(e) => {
                failed += 1;
                writeln!(
                    out,
                    "{}: failed: {}",
                    print::clean(&r.account),
                    print::clean(&e.to_string())
                )?;
            }
        }
    }
    if reports.is_empty() {
        writeln!(out, "no accounts; add one with `countersign account add`")?;
    }
    Ok(if failed > 0 { 1 } else { 0 })
}

async fn sync_forever(inbox: &Inbox) -> Result<u8, Failure> {
    let mut events = inbox.engine().events();
    let running = inbox.run().await?;
    let clock = inbox.clock().clone();
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Ok(event) => {
                    let mut out = std::io::stdout().lock();
                    let shown = print::event(&mut out, &event, clock.now()).and_then(|()| out.flush());
                    if let Err(e) = shown {
                        running.stop().await;
                        return Err(e.into());
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    eprintln!("({n} events not shown; `countersign pending` has them all)");
                }
                Err(_) => break,
            },
            _ = tokio::signal::ctrl_c() => break,
            _ = terminated() => break,
        }
    }
    running.stop().await;
    Ok(0)
}

/// Resolves on SIGTERM (how services and `kill` stop a process).
#[cfg(unix)]
async fn terminated() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut s) => {
            s.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}

#[cfg(not(unix))]
async fn terminated() {
    std::future::pending().await
}

/// The decision the arguments describe, each verb with the value it needs.
fn decision_input(
    inbox: &Inbox,
    id: i64,
    decision: DecisionArg,
    comment: Option<String>,
    value: Option<String>,
    args: Option<String>,
    text: Option<String>,
) -> Result<DecisionInput, Failure> {
    let json = |flag: &str, raw: Option<String>| -> Result<String, Failure> {
        let raw = raw.ok_or_else(|| Failure::from(format!("`{flag}` is required here")))?;
        serde_json::from_str::<serde_json::Value>(&raw)
            .map_err(|e| Failure::from(format!("{flag} is not valid JSON: {e}")))?;
        Ok(raw)
    };
    let mut input = DecisionInput {
        request_id: id,
        outcome: Outcome::Approve,
        comment,
        edited_arguments: None,
        response: None,
    };
    match decision {
        DecisionArg::Approve | DecisionArg::Accept => {}
        DecisionArg::Deny => input.outcome = Outcome::Deny,
        DecisionArg::Always => input.outcome = Outcome::AlwaysAllow,
        DecisionArg::Answer => {
            input.outcome = Outcome::Respond;
            input.response = Some(json("--value", value)?);
        }
        DecisionArg::Respond => {
            let text = text.ok_or_else(|| Failure::from("`--text` is required here".to_owned()))?;
            input.outcome = Outcome::Respond;
            // harn answers are JSON values; elsewhere a reply is plain text.
            input.response = Some(if inbox.detail(id)?.request.platform == Platform::Harn {
                serde_json::Value::String(text).to_string()
            } else {
                text
            });
        }
        DecisionArg::Edit => {
            let raw = json("--args", args)?;
            input.outcome = Outcome::Edit;
            input.edited_arguments = serde_json::from_str(&raw).ok();
        }
    }
    Ok(input)
}

async fn decide(inbox: &Inbox, input: DecisionInput, out: &mut impl Write) -> Result<u8, Failure> {
    let (id, outcome) = (input.request_id, input.outcome);
    let d = inbox.decide(input).await?;
    report(inbox, id, outcome, &d, out)
}

/// Prints where one decision stands; returns the exit code it means.
fn report(
    inbox: &Inbox,
    id: i64,
    outcome: Outcome,
    d: &countersign_model::Decision,
    out: &mut impl Write,
) -> Result<u8, Failure> {
    let request = inbox.detail(id)?.request;
    let verb = match outcome {
        Outcome::Deny => "denied",
        Outcome::Respond => "answered",
        Outcome::Edit => "approved with edits",
        Outcome::AlwaysAllow => "always allowed",
        Outcome::Approve => "approved",
    };
    if d.comment.is_some() && request.extra.comment_not_sent {
        writeln!(
            out,
            "note: {} drops decision comments; yours is kept in Countersign's history only",
            request.platform
        )?;
    }
    if let (Delivery::Queued, Some(held)) = (
        d.delivery,
        d.error.as_deref().filter(|e| e.starts_with("held:")),
    ) {
        writeln!(out, "{verb} request {id}: {}", print::clean(held))?;
        return Ok(3);
    }
    match d.delivery {
        Delivery::Confirmed => {
            writeln!(
                out,
                "{verb} request {id} on {}: delivered{}",
                print::clean(&request.account),
                d.note
                    .as_deref()
                    .map(|n| format!(", but {}", print::clean(n)))
                    .unwrap_or_default()
            )?;
            Ok(0)
        }
        Delivery::Queued | Delivery::Sent => {
            let next = countersign_inbox::next_step(d, &request.account, inbox.clock().now())
                .unwrap_or_else(|| "queued".into());
            writeln!(out, "{verb} request {id}: {}", print::clean(&next))?;
            Ok(3)
        }
        Delivery::Failed => Err(Failure {
            message: format!(
                "request {id} was not {verb}: {} (now {})",
                d.error.as_deref().unwrap_or("refused"),
                request.status.as_str().replace('_', " ")
            ),
            code: 1,
        }),
    }
}
