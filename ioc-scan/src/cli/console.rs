//! `ioc-scan console --listen ADDR [--tls-cert PEM --tls-key PEM]`: the web
//! console and the server of managed devices' agents, over the database
//! (`--db`). `ioc-scan console init` creates the first administrator and
//! prints an API token; `ioc-scan console user add --role ROLE` adds people.

use super::task::DbArgs;
use super::validate::printable;
use anyhow::{bail, Context as _};
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
    /// Largest result a device may upload (one run), in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = UploadLimits::default().max_result_bytes, hide = true)]
    pub max_result_bytes: usize,
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
            max_result_bytes: args.max_result_bytes,
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
