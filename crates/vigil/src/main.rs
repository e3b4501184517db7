//! The `vigil` binary: parses the command line, loads configuration, runs the command and
//! turns errors into a clear message and a non-zero exit.

mod cli;
mod commands;
mod config;
mod output;
mod quickstart;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::config::Config;
use crate::output::Out;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.global.json;
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            report_error(&e, json);
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let out = Out {
        json: cli.global.json,
    };
    match cli.command {
        Command::Quickstart(args) => quickstart::run(&cli.global, &out, args).await,
        command => {
            let cfg = Config::load(&cli.global, None)?;
            match command {
                Command::Init => commands::init(&cfg, &out).await,
                Command::Dataset(c) => commands::dataset(&cfg, &out, c).await,
                Command::Model(c) => commands::model(&cfg, &out, c).await,
                Command::Release(c) => commands::release(&cfg, &out, c).await,
                Command::Audit(c) => commands::audit(&cfg, &out, c).await,
                Command::Evaluate(c) => commands::evaluate::evaluate(&cfg, &out, c).await,
                Command::Evaluation(c) => commands::evaluate::evaluation(&cfg, &out, c).await,
                Command::Compare(a) => commands::evaluate::compare(&cfg, &out, a).await,
                Command::Drift(a) => commands::evaluate::drift(&cfg, &out, a).await,
                Command::User(c) => commands::governance::user(&cfg, &out, c).await,
                Command::Policy(c) => commands::governance::policy(&cfg, &out, c).await,
                Command::Approve(a) => {
                    commands::governance::sign_off(
                        &cfg,
                        &out,
                        a.release,
                        a.role,
                        a.comment,
                        vigil_domain::governance::Decision::Approved,
                    )
                    .await
                }
                Command::Reject(a) => {
                    commands::governance::sign_off(
                        &cfg,
                        &out,
                        a.release,
                        a.role,
                        a.comment,
                        vigil_domain::governance::Decision::Rejected,
                    )
                    .await
                }
                Command::Exception(c) => commands::governance::exception(&cfg, &out, c).await,
                Command::Gates { release, to } => {
                    commands::governance::gates(&cfg, &out, release, to).await
                }
                Command::Promote {
                    release,
                    to,
                    reason,
                } => commands::governance::promote(&cfg, &out, release, to, reason).await,
                Command::Rollback {
                    model,
                    reason,
                    drill,
                } => commands::governance::rollback(&cfg, &out, model, reason, drill).await,
                Command::Retire { release, reason } => {
                    commands::governance::retire(&cfg, &out, release, reason).await
                }
                Command::History { model, at } => {
                    commands::governance::history(&cfg, &out, model, at).await
                }
                Command::Score(a) => commands::score::score(&cfg, &out, a).await,
                Command::Predictions(c) => commands::predictions::predictions(&cfg, &out, c).await,
                Command::Review(c) => commands::governance::review(&cfg, &out, c).await,
                Command::CdsClient(c) => commands::cds::client(&cfg, &out, c).await,
                Command::Feedback(c) => commands::cds::feedback(&cfg, &out, c).await,
                Command::Outcomes(c) => commands::monitor::outcomes(&cfg, &out, c).await,
                Command::Monitor(c) => commands::monitor::monitor(&cfg, &out, c).await,
                Command::Incident(c) => commands::monitor::incident(&cfg, &out, c).await,
                Command::Simulate(a) => commands::monitor::simulate(&cfg, &out, a).await,
                Command::Serve(a) => commands::governance::serve(&cfg, a).await,
                Command::Quickstart(_) => unreachable!("handled above"),
            }
        }
    }
}

fn report_error(e: &anyhow::Error, json: bool) {
    let code = e
        .downcast_ref::<vigil_service::Error>()
        .map_or("error", |s| s.code);
    if json {
        let v = serde_json::json!({ "error": { "code": code, "message": format!("{e:#}") } });
        eprintln!("{v}");
    } else {
        eprintln!("error: {e:#}");
    }
}
