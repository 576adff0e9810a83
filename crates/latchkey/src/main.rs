//! `latchkey`: the server (`serve`), and the command line for admins and users.

mod agent;
mod cli;
mod serve;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc: the server allocates per request; glibc malloc was a tenth of its CPU.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Latchkey: per-device admin passwords, audited access and just-in-time privilege.
#[derive(Debug, Parser)]
#[command(name = "latchkey", version, about, propagate_version = true)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server.
    Serve(serve::ServeArgs),
    /// Run the device agent: enroll once, then check in with signed requests.
    Agent(agent::AgentArgs),
    /// Print the OpenAPI document of the native API.
    Openapi,
    #[command(flatten)]
    Client(cli::ClientCommand),
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match args.command {
            Command::Serve(a) => serve::run(a).await,
            Command::Agent(a) => agent::run(a).await,
            Command::Openapi => {
                println!("{}", latchkey_server::openapi::document());
                Ok(())
            }
            Command::Client(c) => cli::run(c).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}
