//! `ioc-scan console --listen ADDR [--tls-cert PEM --tls-key PEM]`: the web
//! console and the server of managed devices' agents, over the database
//! (`--db`). `ioc-scan console init` creates the first administrator and
//! prints an API token; `ioc-scan console user add --role ROLE` adds people.
//! Also the managed mode of `ioc-scan agent --console`.

use super::task::{catch_stop_signals, engine, DbArgs, STOP};
use super::validate::printable;
use anyhow::{bail, Context as _};
use ioc_scan::agent::managed::{self, ManagedConfig, ManagedEvents};
use ioc_scan::agent::queue::IdentityV1;
use ioc_scan::console::protocol::{Job, ResultAck, ResultUpload};
use ioc_scan::console::tables::Role;
use ioc_scan::console::{self, ConsoleConfig, UploadLimits};
use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    pub command: Option<ConsoleCommand>,
    #[command(flatten)]
    pub serve: ServeArgs,
    #[command(flatten)]
    pub db: DbArgs,
}

#[derive(clap::Subcommand)]
pub enum ConsoleCommand {
    /// Create the first administrator and print an API token.
    Init(InitArgs),
    /// Manage the console's users.
    #[command(subcommand)]
    User(UserCommand),
}

#[derive(clap::Subcommand)]
pub enum UserCommand {
    /// Add a user with a role: admin (users, tokens, devices), analyst
    /// (tasks and results) or viewer (reads only).
    Add(UserAddArgs),
}

#[derive(clap::Args)]
pub struct UserAddArgs {
    /// The user name.
    #[arg(long)]
    pub user: String,
    #[arg(long, value_parser = parse_role)]
    pub role: Role,
    /// The password (default: read one line from standard input).
    #[arg(long)]
    pub password: Option<String>,
}

fn parse_role(s: &str) -> Result<Role, String> {
    s.parse()
}

#[derive(clap::Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0: any free port; the address is printed).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8443")]
    pub listen: SocketAddr,
    /// PEM certificate chain: serve HTTPS (with --tls-key).
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Largest IOC file accepted, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = UploadLimits::default().max_file_bytes)]
    pub max_file_bytes: usize,
    /// Largest IOC collection (all files of one upload), in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = UploadLimits::default().max_collection_bytes)]
    pub max_collection_bytes: usize,
    /// Seconds between two pruning passes of old results.
    #[arg(long, value_name = "SECS", default_value_t = 3600, hide = true)]
    pub prune_every: u64,
}

#[derive(clap::Args)]
pub struct InitArgs {
    /// The administrator's user name.
    #[arg(long, default_value = "admin")]
    pub user: String,
    /// The password (default: read one line from standard input).
    #[arg(long)]
    pub password: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Some(ConsoleCommand::Init(init)) => run_init(&args.db, init),
        Some(ConsoleCommand::User(UserCommand::Add(add))) => run_user_add(&args.db, add),
        None => serve(&args.db, args.serve),
    }
}

/// The password given, or one line of standard input.
fn password_or_stdin(given: Option<String>) -> anyhow::Result<String> {
    Ok(match given {
        Some(p) => p,
        None => {
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line).context("reading the password from standard input")?;
            line.trim_end_matches(['\n', '\r']).to_string()
        }
    })
}

fn run_user_add(db: &DbArgs, args: UserAddArgs) -> anyhow::Result<ExitCode> {
    let password = password_or_stdin(args.password)?;
    let store = db.open(false)?;
    console::prepare(&store)?;
    let user = console::accounts::create_user(&store, &args.user, &password, args.role)?;
    eprintln!("created {} {} (id {})", user.role, printable(&user.name), user.id);
    Ok(ExitCode::SUCCESS)
}

fn run_init(db: &DbArgs, args: InitArgs) -> anyhow::Result<ExitCode> {
    let password = password_or_stdin(args.password)?;
    let store = db.open(false)?;
    if console::accounts::user_count(&store).unwrap_or(0) > 0 {
        bail!("{} already has users; sign in to the console to add more", store.path().display());
    }
    let (user, token) = console::init(&store, &args.user, &password)?;
    eprintln!("created administrator {} (id {})", printable(&user.name), user.id);
    println!("{token}");
    Ok(ExitCode::SUCCESS)
}

fn serve(db: &DbArgs, args: ServeArgs) -> anyhow::Result<ExitCode> {
    let store = Arc::new(db.open(false)?);
    let config = ConsoleConfig {
        tls: args.tls_cert.zip(args.tls_key),
        uploads: UploadLimits {
            max_file_bytes: args.max_file_bytes,
            max_collection_bytes: args.max_collection_bytes.max(args.max_file_bytes),
            ..Default::default()
        },
        retention: db.retention()?,
        prune_every: Duration::from_secs(args.prune_every.max(1)),
        ..Default::default()
    };
    let listener = std::net::TcpListener::bind(args.listen).with_context(|| format!("listening on {}", args.listen))?;
    let addr = listener.local_addr()?;
    let scheme = if config.tls.is_some() { "https" } else { "http" };
    // Store calls run on the blocking pool: a bounded one (many threads only thrash).
    let runtime = tokio::runtime::Builder::new_multi_thread().max_blocking_threads(32).enable_all().build()?;
    // One line on stdout, then serve: scripts and tests read the address from it.
    println!("ioc-scan console: listening on {scheme}://{addr}");
    std::io::stdout().flush()?;
    eprintln!("ioc-scan console: database {}", store.path().display());
    runtime.block_on(async move {
        let shutdown = async {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
            }
        };
        console::serve(store, config, listener, shutdown).await
    })?;
    eprintln!("ioc-scan console: stopped");
    Ok(ExitCode::SUCCESS)
}

struct Log;

impl ManagedEvents for Log {
    fn enrolled(&mut self, id: &IdentityV1) {
        eprintln!("ioc-scan agent: enrolled as device {} {}", id.device_id, printable(&id.device_name));
    }
    fn jobs_received(&mut self, new: usize) {
        eprintln!("ioc-scan agent: {new} new job{}", if new == 1 { "" } else { "s" });
    }
    fn run_started(&mut self, job: &Job) {
        eprintln!("ioc-scan agent: running job {} (task {} {})", job.id, job.task.id, printable(&job.task.name));
    }
    fn run_finished(&mut self, r: &ResultUpload) {
        eprintln!(
            "ioc-scan agent: job {} finished: {} ({} detections), run {} queued",
            r.job_id,
            r.status,
            r.detections.len(),
            r.run_key
        );
    }
    fn uploaded(&mut self, r: &ResultUpload, ack: &ResultAck) {
        let how = if ack.duplicate { " (already there)" } else { "" };
        eprintln!("ioc-scan agent: run {} uploaded{how}", r.run_key);
    }
    fn refused(&mut self, r: &ResultUpload, why: &str) {
        eprintln!("ioc-scan agent: run {} refused by the console, dropped: {}", r.run_key, printable(why));
    }
    fn unreachable(&mut self, why: &str, queued: usize) {
        eprintln!("ioc-scan agent: {} ({queued} result{} queued)", printable(why), if queued == 1 { "" } else { "s" });
    }
}

/// `ioc-scan agent --console URL [--token TOKEN]`: the managed agent.
pub(crate) fn run_managed_agent(
    db: &DbArgs,
    url: &str,
    token: Option<String>,
    device_name: Option<String>,
    ca_cert: Option<PathBuf>,
    poll_wait: u64,
) -> anyhow::Result<ExitCode> {
    catch_stop_signals()?;
    let db_path = db.path()?;
    let state_path =
        db_path.parent().map(|d| d.join("console-agent.redb")).unwrap_or_else(|| "console-agent.redb".into());
    let ca_pem = match &ca_cert {
        Some(p) => Some(std::fs::read(p).with_context(|| format!("reading {}", p.display()))?),
        None => None,
    };
    let config = ManagedConfig {
        console: url.to_string(),
        enrollment_token: token,
        device_name: device_name.unwrap_or_else(ioc_scan::agent::default_device_name),
        ca_pem,
        state_path,
        poll_wait: Duration::from_secs(poll_wait.clamp(1, 60)),
        max_backoff: Duration::from_secs(30),
    };
    eprintln!(
        "ioc-scan agent: console {}, device {}, state {}",
        printable(url),
        printable(&config.device_name),
        config.state_path.display()
    );
    let scanner = engine();
    managed::run(&config, &scanner, &STOP, &mut Log)?;
    eprintln!("ioc-scan agent: stopped");
    Ok(ExitCode::SUCCESS)
}
