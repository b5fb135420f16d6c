//! `fieldsync-app`: runs the agent app in a desktop window (feature `desktop`).
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use fieldsync_app::location::{LocationProvider, Position, SimulatedLocation};

/// The fieldsync sales-agent app.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Where the app keeps its local database.
    #[arg(long, env = "FIELDSYNC_APP_DATA", default_value = "fieldsync-app-data")]
    data_dir: PathBuf,
    /// Server address pre-filled on the activation screen.
    #[arg(
        long,
        env = "FIELDSYNC_APP_SERVER",
        default_value = "http://127.0.0.1:8080"
    )]
    server: String,
    /// Simulated position "LAT,LON[,ACCURACY_M[,mock]]" (desktop has no GPS; `mock` marks the
    /// fixes as a mock-location app's, as a platform would).
    #[arg(
        long,
        env = "FIELDSYNC_APP_POSITION",
        default_value = "50.4501,30.5234,12"
    )]
    position: String,
    /// A file holding "LAT,LON[,ACCURACY_M[,mock]]", read for every fix (overrides --position).
    #[arg(long, env = "FIELDSYNC_APP_POSITION_FILE")]
    position_file: Option<PathBuf>,
    /// Seconds between automatic network checks and syncs (0: only manual syncs).
    #[arg(long, default_value_t = 30)]
    auto_sync: u64,
    /// Drive the UI with a script (see mobile/app/e2e.sh) and exit with its result.
    #[arg(long)]
    e2e_script: Option<PathBuf>,
    /// Command that saves a screenshot for the script's `shot NAME` steps; `{}` is the name.
    #[arg(long, default_value = "import -window root {}.png")]
    shot_cmd: String,
}

fn main() {
    let started = std::time::Instant::now();
    let args = Args::parse();
    let location: Arc<dyn LocationProvider> = match &args.position_file {
        Some(f) => Arc::new(SimulatedLocation::from_file(f)),
        None => match args.position.parse::<Position>() {
            Ok(p) => Arc::new(SimulatedLocation::fixed(p)),
            Err(e) => {
                eprintln!("--position: {e}");
                std::process::exit(2);
            }
        },
    };
    if let Err(e) = std::fs::create_dir_all(&args.data_dir) {
        eprintln!("{}: {e}", args.data_dir.display());
        std::process::exit(2);
    }
    let engine = match fieldsync_agent::Engine::open(args.data_dir.join("agent.db")) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("cannot open the local database: {e}");
            std::process::exit(2);
        }
    };
    let auto = (args.auto_sync > 0).then(|| Duration::from_secs(args.auto_sync));
    let ctx = fieldsync_app::start(engine, location, &args.server, auto);
    run(ctx, args, started);
}

#[cfg(feature = "desktop")]
fn run(ctx: fieldsync_app::AppCtx, args: Args, started: std::time::Instant) {
    use dioxus::desktop::{Config, LogicalSize, WindowBuilder};
    let script = match &args.e2e_script {
        Some(p) => match fieldsync_app::e2e::Script::load(p, &args.shot_cmd, started) {
            Ok(s) => Some(s),
            Err(e) => {
                eprintln!("{}: {e}", p.display());
                std::process::exit(2);
            }
        },
        None => None,
    };
    let window = WindowBuilder::new()
        .with_title("fieldsync")
        .with_inner_size(LogicalSize::new(430.0, 860.0));
    dioxus::LaunchBuilder::desktop()
        .with_cfg(Config::new().with_window(window).with_menu(None))
        .with_context(ctx)
        .with_context(fieldsync_app::e2e::Driver(script.map(Arc::new)))
        .launch(fieldsync_app::e2e::Root);
}

#[cfg(not(feature = "desktop"))]
fn run(_ctx: fieldsync_app::AppCtx, _args: Args, _started: std::time::Instant) {
    eprintln!(
        "this build has no window: run `cargo run -p fieldsync-app --features desktop` \
         (Debian packages: libwebkit2gtk-4.1-dev libxdo-dev)"
    );
    std::process::exit(2);
}
