//! Client commands: talk to a server through the typed client.

use clap::{Args, Subcommand};

/// Where the server is and how to authenticate.
#[derive(Debug, Args)]
pub struct Connection {
    /// Server URL.
    #[arg(long, global = true, env = "LATCHKEY_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// Admin API token.
    #[arg(long, global = true, env = "LATCHKEY_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
}

/// The client commands.
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Check the server.
    Health {
        #[command(flatten)]
        conn: Connection,
    },
}

pub async fn run(cmd: ClientCommand) -> Result<(), String> {
    match cmd {
        ClientCommand::Health { conn } => {
            let client = latchkey_client::Client::new(&conn.url, conn.token).map_err(|e| e.to_string())?;
            let h = client.ready().await.map_err(|e| e.to_string())?;
            println!("{}", h.status);
            Ok(())
        }
    }
}
