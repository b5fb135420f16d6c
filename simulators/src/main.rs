//! `fieldsync-sim`: field simulation and benchmarks.
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use fieldsync_sim::faults::FaultSpec;
use fieldsync_sim::{bench, bench_cards, bench_web, cards, distributor, field, truth};

#[derive(Parser)]
#[command(
    name = "fieldsync-sim",
    version,
    about = "fieldsync simulators and benchmarks"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run real agent engines through realistic days against a server.
    Field {
        /// Server base URL, e.g. http://127.0.0.1:8080; several, comma-separated, share the
        /// requests in turn (servers on one database, as behind a load balancer).
        #[arg(long)]
        server: String,
        /// CSV file with `login,pin` lines (from `fieldsync-server seed --pins-out`).
        #[arg(long)]
        pins: PathBuf,
        #[arg(long, default_value_t = 1)]
        days: u32,
        #[arg(long, default_value_t = 50)]
        concurrency: usize,
        /// e.g. drop=0.2,dup=0.2,skew=72h,offline=0.3,restart=0.05
        #[arg(long, default_value = "")]
        faults: String,
        /// Give up retrying after this many seconds from the start.
        #[arg(long, default_value_t = 600)]
        deadline: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Where the engines' SQLite files go (default: a temporary directory; the day and
        /// evening phases need one they share).
        #[arg(long)]
        workdir: Option<PathBuf>,
        /// Visits per working day: the route, topped up from the territory (or cut) to this
        /// many; 0 keeps each day's route as it is.
        #[arg(long, default_value_t = 0)]
        visits_per_day: usize,
        /// full: activation, pulls, days with syncs, the evening sync. day: activation, the
        /// first pull and the days' work without syncing, engines left in --workdir.
        /// evening: those engines all sync at once until their outboxes are empty.
        #[arg(long, default_value = "full")]
        phase: field::Phase,
        /// JSON summary output.
        #[arg(long)]
        summary: PathBuf,
    },
    /// Agents sharing a territory edit its outlets' shared cards concurrently, through
    /// faults; every replica is then compared with the server's cards (seed the server with
    /// `--agents-per-territory` so that agents share outlets).
    Cards {
        #[arg(long)]
        server: String,
        /// CSV file with `login,pin` lines (from `fieldsync-server seed --pins-out`).
        #[arg(long)]
        pins: PathBuf,
        /// How many agents of the pins file take part (the first ones).
        #[arg(long, default_value_t = 3)]
        agents: usize,
        /// Cards edited: the first this many outlets of each agent's territory.
        #[arg(long, default_value_t = 10)]
        outlets: usize,
        /// Edits per agent.
        #[arg(long, default_value_t = 50)]
        edits: usize,
        /// e.g. drop=0.2,dup=0.2,offline=0.3,restart=0.05
        #[arg(long, default_value = "")]
        faults: String,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, default_value_t = 600)]
        deadline: u64,
        /// JSON summary output.
        #[arg(long)]
        summary: PathBuf,
    },
    /// A distributor's system: polls the order feed, acknowledges, walks orders through
    /// their states, with faults; runs until the feed is drained (or the deadline).
    Distributor {
        /// Server base URL, e.g. http://127.0.0.1:8080; several, comma-separated, share the
        /// requests in turn (servers on one database, as behind a load balancer).
        #[arg(long)]
        server: String,
        /// The distributor's API key (`fieldsync-server api-key add --distributor CODE`).
        #[arg(long)]
        api_key: String,
        /// e.g. crash=0.2,dupack=0.3,illegal=0.1
        #[arg(long, default_value = "")]
        faults: String,
        /// Milliseconds between two status steps of one order.
        #[arg(long, default_value_t = 0)]
        step_delay_ms: u64,
        #[arg(long, default_value_t = 600)]
        deadline: u64,
        #[arg(long, default_value_t = 100)]
        page_size: i64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Stop after the feed stayed empty this many seconds with no order left to move.
        #[arg(long, default_value_t = 3.0)]
        idle: f64,
        /// JSON summary output.
        #[arg(long)]
        summary: PathBuf,
    },
    /// Field truth: visits whose truth the simulator knows (honest, off-site, mocked,
    /// hidden spoofing, back-dated), synced by real engines; the server's signals are read
    /// back and scored. The server must run with FIELDSYNC_DEVICE_SIGNALS=true.
    Truth {
        /// Server base URL, e.g. http://127.0.0.1:8080.
        #[arg(long)]
        server: String,
        /// CSV file with `login,pin` lines (from `fieldsync-server seed --pins-out`).
        #[arg(long)]
        pins: PathBuf,
        /// Visits in all, shared out among the agents of --pins.
        #[arg(long, default_value_t = 2_000)]
        visits: usize,
        /// Shares of the classes, e.g. honest=0.8,offsite=0.05,mock=0.05,spoof=0.05,clock=0.05
        #[arg(
            long,
            default_value = "honest=0.8,offsite=0.05,mock=0.05,spoof=0.05,clock=0.05"
        )]
        mix: String,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, default_value_t = 20)]
        concurrency: usize,
        /// JSON summary output.
        #[arg(long)]
        summary: PathBuf,
    },
    /// Benchmarks; each prints a Markdown table.
    Bench {
        #[command(subcommand)]
        which: BenchCommand,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Push ingest throughput and latency at several concurrency levels (server in process).
    Push {
        /// PostgreSQL URL to create a scratch database from; default: a temporary SQLite file.
        #[arg(long)]
        postgres: Option<String>,
        #[arg(long, value_delimiter = ',', default_value = "1,10,100")]
        agents: Vec<usize>,
        #[arg(long, default_value_t = 40_000)]
        mutations: usize,
        /// Visits per push request (4 mutations each).
        #[arg(long, default_value_t = 25)]
        batch_visits: usize,
        /// Vary the visits per request from half to one and a half times --batch-visits,
        /// as real pushes do (every request then has its own row counts).
        #[arg(long)]
        varied: bool,
    },
    /// First pull of a big world into a real agent engine.
    Pull {
        #[arg(long)]
        postgres: Option<String>,
        #[arg(long, default_value_t = 10_000)]
        outlets: usize,
        #[arg(long, default_value_t = 5_000)]
        products: usize,
    },
    /// The sales report over a year of order lines and invoice lines: p50/p99 per request.
    Report {
        #[arg(long)]
        postgres: Option<String>,
        /// Orders of 5 lines each.
        #[arg(long, default_value_t = 200_000)]
        orders: usize,
        #[arg(long, default_value_t = 1_000_000)]
        sales: usize,
        #[arg(long, default_value_t = 20)]
        requests: usize,
    },
    /// RDC redistribution of a month of invoice lines over the outlets attached by shares.
    Rdc {
        #[arg(long)]
        postgres: Option<String>,
        #[arg(long, default_value_t = 100_000)]
        lines: usize,
        /// Outlets attached to the RDC.
        #[arg(long, default_value_t = 20)]
        outlets: usize,
    },
    /// The whole shop visit: the first pull of an agent whose outlets each have open invoices
    /// and a plan, and the bytes of a claim.
    Shop {
        #[arg(long)]
        postgres: Option<String>,
        #[arg(long, default_value_t = 300)]
        outlets: usize,
        #[arg(long, default_value_t = 2_000)]
        products: usize,
        /// Open invoices per outlet.
        #[arg(long, default_value_t = 10)]
        invoices: usize,
    },
    /// The agent app: cold start to a usable Today screen, and catalogue search latency.
    App {
        #[arg(long, default_value_t = 300)]
        outlets: usize,
        #[arg(long, default_value_t = 10_000)]
        products: usize,
        /// Cold starts measured.
        #[arg(long, default_value_t = 30)]
        starts: usize,
        /// Catalogue searches measured.
        #[arg(long, default_value_t = 2_000)]
        searches: usize,
    },
    /// Shared outlet cards: bytes per typical edit, merge throughput through the real push,
    /// and the first pull of a territory whose every card was edited `--edits` times.
    Cards {
        #[arg(long)]
        postgres: Option<String>,
        #[arg(long, default_value_t = 10_000)]
        outlets: usize,
        #[arg(long, default_value_t = 5_000)]
        products: usize,
        /// Edits per card.
        #[arg(long, default_value_t = 50)]
        edits: usize,
    },
    /// Bytes on the wire per GPS fix and per typical visit.
    Wire,
    /// Orders handed over per second through the distributors' feed, and status updates.
    Handoff {
        #[arg(long)]
        postgres: Option<String>,
        #[arg(long, default_value_t = 20_000)]
        orders: usize,
        #[arg(long, default_value_t = 500)]
        page: i64,
    },
    /// Import throughput of an actual-sales file (CSV and XLSX) through the import API.
    Import {
        #[arg(long)]
        postgres: Option<String>,
        #[arg(long, default_value_t = 100_000)]
        rows: usize,
    },
    /// A nightly outlet re-import where a few rows changed: dry run, real run, and one
    /// agent's pull afterwards.
    OutletReimport {
        #[arg(long)]
        postgres: Option<String>,
        #[arg(long, default_value_t = 50_000)]
        outlets: usize,
        #[arg(long, default_value_t = 8)]
        agents: usize,
        /// Outlets whose row differs from what is stored.
        #[arg(long, default_value_t = 2_500)]
        changed: usize,
        /// Of those, how many lie in the first agent's territory.
        #[arg(long, default_value_t = 300)]
        in_territory: usize,
    },
    /// Anonymous logins and activations all at once: server memory and /healthz latency.
    LoginFlood {
        #[arg(long)]
        postgres: Option<String>,
        #[arg(long, default_value_t = 500)]
        concurrency: usize,
    },
    /// Push latency of phones while a big outlet import runs.
    ImportPush {
        #[arg(long)]
        postgres: Option<String>,
        #[arg(long, default_value_t = 200_000)]
        rows: usize,
        #[arg(long, default_value_t = 10)]
        agents: usize,
    },
    /// The back office's visits list with filters and sorts at a million visits.
    VisitsList {
        #[arg(long)]
        postgres: Option<String>,
        #[arg(long, default_value_t = 1_000_000)]
        visits: usize,
        /// Requests measured per query.
        #[arg(long, default_value_t = 200)]
        requests: usize,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Cards {
            server,
            pins,
            agents,
            outlets,
            edits,
            faults,
            seed,
            deadline,
            summary,
        } => {
            let faults = FaultSpec::parse(&faults).map_err(|e| anyhow::anyhow!("--faults: {e}"))?;
            let mut all = field::read_pins(&pins)?;
            all.truncate(agents);
            let temp = tempfile::tempdir()?;
            let result = cards::run_cards(cards::CardsOptions {
                server,
                agents: all,
                outlets,
                edits,
                faults,
                seed,
                workdir: temp.path().to_path_buf(),
                deadline: Duration::from_secs(deadline),
                key_user: None,
            })
            .await?;
            std::fs::write(&summary, serde_json::to_string_pretty(&result.json)?)?;
            let j = &result.json;
            println!(
                "outlets {} edits {} converged {} divergent {} conflicts {} refused {} restarts {} ({:.1} s)",
                j["outlets"],
                j["edits"],
                j["converged"],
                j["divergent"],
                j["conflicts"],
                j["refused"],
                j["restarts"],
                j["seconds"].as_f64().unwrap_or(0.0)
            );
            anyhow::ensure!(j["converged"] == true, "replicas diverged: {}", j["errors"]);
            Ok(())
        }
        Command::Truth {
            server,
            pins,
            visits,
            mix,
            seed,
            concurrency,
            summary,
        } => {
            let mix = truth::Mix::parse(&mix).map_err(|e| anyhow::anyhow!("--mix: {e}"))?;
            let agents = field::read_pins(&pins)?;
            let temp = tempfile::tempdir()?;
            let result = truth::run_truth(truth::TruthOptions {
                server,
                agents,
                visits,
                mix,
                seed,
                workdir: temp.path().to_path_buf(),
                concurrency,
            })
            .await?;
            std::fs::write(&summary, serde_json::to_string_pretty(&result)?)?;
            print!("{}", truth::table(&result));
            println!(
                "visits {}, scored {}, missing {}",
                result["visits"], result["scored"], result["missing"]
            );
            anyhow::ensure!(
                result["missing"] == 0,
                "visits the phones sent are missing on the server"
            );
            Ok(())
        }
        Command::Distributor {
            server,
            api_key,
            faults,
            step_delay_ms,
            deadline,
            page_size,
            seed,
            idle,
            summary,
        } => {
            let faults = distributor::DistributorFaults::parse(&faults)
                .map_err(|e| anyhow::anyhow!("--faults: {e}"))?;
            let j = distributor::run_distributor(&distributor::DistributorOptions {
                server,
                api_key,
                faults,
                step_delay: Duration::from_millis(step_delay_ms),
                deadline: Duration::from_secs(deadline),
                page_size,
                seed,
                idle: Duration::from_secs_f64(idle.max(0.0)),
            })
            .await?;
            std::fs::write(&summary, serde_json::to_string_pretty(&j)?)?;
            println!(
                "received {} (handed twice {}, lost {}), status changes {}, finals {}, crashes {}, duplicate acks {}, illegal refused {}/{}, requests {}, p50 {:.1} ms, {:.1} s",
                j["received"],
                j["handed_twice"],
                j["lost"],
                j["status_changes"],
                j["final_states"],
                j["faults"]["crashes_before_ack"],
                j["faults"]["duplicate_acks"],
                j["faults"]["illegal_refused"],
                j["faults"]["illegal_sent"],
                j["requests"],
                j["latency_ms"]["p50"].as_f64().unwrap_or(0.0),
                j["seconds"].as_f64().unwrap_or(0.0)
            );
            anyhow::ensure!(
                j["handed_twice"] == 0 && j["lost"] == 0 && j["faults"]["illegal_accepted"] == 0,
                "the handoff was not exactly once or an illegal move was accepted"
            );
            Ok(())
        }
        Command::Field {
            server,
            pins,
            days,
            concurrency,
            faults,
            deadline,
            seed,
            workdir,
            visits_per_day,
            phase,
            summary,
        } => {
            anyhow::ensure!(
                phase == field::Phase::Full || workdir.is_some(),
                "--phase day and evening need a --workdir they share"
            );
            let spec = FaultSpec::parse(&faults).map_err(|e| anyhow::anyhow!("--faults: {e}"))?;
            let agents = field::read_pins(&pins)?;
            let temp = tempfile::tempdir()?;
            let workdir = workdir.unwrap_or_else(|| temp.path().to_path_buf());
            std::fs::create_dir_all(&workdir)?;
            let result = field::run_field(field::FieldOptions {
                server,
                agents,
                days,
                concurrency,
                faults: spec,
                faults_text: faults,
                deadline: Duration::from_secs(deadline),
                seed,
                workdir,
                visits_per_day,
                phase,
            })
            .await?;
            std::fs::write(&summary, serde_json::to_string_pretty(&result.json)?)?;
            let j = &result.json;
            println!("| kind | created | acknowledged | on server | lost | doubled |");
            println!("|---|---:|---:|---:|---:|---:|");
            for k in [
                "visits",
                "gps_fixes",
                "orders",
                "order_lines",
                "questionnaire_answers",
                "distribution_checks",
            ] {
                println!(
                    "| {k} | {} | {} | {} | {} | {} |",
                    j["created"][k],
                    j["acknowledged"][k],
                    j["server"][k],
                    j["lost"][k],
                    j["duplicated"][k]
                );
            }
            println!(
                "agents {}, days {}, requests {}, faults injected {}, engine restarts {}, bytes up {} down {}, latency p50 {:.1} ms p99 {:.1} ms, {:.1} s",
                j["agents"],
                j["days"],
                j["requests"],
                j["faults_injected"],
                j["engine_restarts"],
                j["bytes_up"],
                j["bytes_down"],
                j["latency_ms"]["p50"].as_f64().unwrap_or(0.0),
                j["latency_ms"]["p99"].as_f64().unwrap_or(0.0),
                j["elapsed_s"].as_f64().unwrap_or(0.0)
            );
            println!(
                "phase {}, mutations waiting at the evening {}, drained at {:.0} mutations/s, pushes {}, push p50 {:.1} ms p99 {:.1} ms",
                j["phase"],
                j["evening"]["mutations"],
                j["evening"]["mutations_per_s"].as_f64().unwrap_or(0.0),
                j["pushes"],
                j["push_latency_ms"]["p50"].as_f64().unwrap_or(0.0),
                j["push_latency_ms"]["p99"].as_f64().unwrap_or(0.0),
            );
            if let Some(errors) = j["errors"].as_array().filter(|e| !e.is_empty()) {
                eprintln!(
                    "{} agents reported errors, e.g. {}",
                    errors.len(),
                    errors[0]
                );
            }
            if result.lost > 0 || result.duplicated > 0 {
                eprintln!("LOST {} DOUBLED {}", result.lost, result.duplicated);
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Bench { which } => match which {
            BenchCommand::Push {
                postgres,
                agents,
                mutations,
                batch_visits,
                varied,
            } => {
                let rows = bench::push(
                    postgres.as_deref(),
                    &agents,
                    mutations,
                    batch_visits,
                    varied,
                )
                .await?;
                bench::print_push(&rows, batch_visits, varied);
                Ok(())
            }
            BenchCommand::Pull {
                postgres,
                outlets,
                products,
            } => bench::pull(postgres.as_deref(), outlets, products).await,
            BenchCommand::Report {
                postgres,
                orders,
                sales,
                requests,
            } => bench_web::report(postgres.as_deref(), orders, sales, requests).await,
            BenchCommand::Rdc {
                postgres,
                lines,
                outlets,
            } => bench_web::rdc(postgres.as_deref(), lines, outlets).await,
            BenchCommand::Shop {
                postgres,
                outlets,
                products,
                invoices,
            } => bench::shop(postgres.as_deref(), outlets, products, invoices).await,
            BenchCommand::Cards {
                postgres,
                outlets,
                products,
                edits,
            } => bench_cards::cards(postgres.as_deref(), outlets, products, edits).await,
            BenchCommand::App {
                outlets,
                products,
                starts,
                searches,
            } => bench::app(outlets, products, starts, searches).await,
            BenchCommand::Handoff {
                postgres,
                orders,
                page,
            } => bench_web::handoff(postgres.as_deref(), orders, page).await,
            BenchCommand::Import { postgres, rows } => {
                bench_web::import(postgres.as_deref(), rows).await
            }
            BenchCommand::OutletReimport {
                postgres,
                outlets,
                agents,
                changed,
                in_territory,
            } => {
                bench_web::outlet_reimport(
                    postgres.as_deref(),
                    outlets,
                    agents,
                    changed,
                    in_territory,
                )
                .await
            }
            BenchCommand::VisitsList {
                postgres,
                visits,
                requests,
            } => bench_web::visits_list(postgres.as_deref(), visits, requests).await,
            BenchCommand::LoginFlood {
                postgres,
                concurrency,
            } => bench::login_flood(postgres.as_deref(), concurrency).await,
            BenchCommand::ImportPush {
                postgres,
                rows,
                agents,
            } => bench::import_push(postgres.as_deref(), rows, agents).await,
            BenchCommand::Wire => {
                bench::wire();
                Ok(())
            }
        },
    }
}
