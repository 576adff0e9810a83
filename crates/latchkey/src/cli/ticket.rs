//! `latchkey ticket …`: built-in tickets.

use clap::Subcommand;

use super::Ctx;
use super::output::{self, print_fields, print_json, print_table, yes_no};

#[derive(Debug, Subcommand)]
pub enum TicketCommand {
    /// Open a ticket; prints its number.
    Create {
        /// What the ticket is about.
        title: String,
    },
    /// List tickets, newest first.
    List {
        /// Only open tickets.
        #[arg(long)]
        open: bool,
    },
    /// Close a ticket.
    Close { number: i64 },
    /// The comments written to a ticket.
    Comments { ticket: String },
}

fn fields(t: &latchkey_proto::Ticket) -> Vec<(&'static str, String)> {
    vec![
        ("number", t.number.to_string()),
        ("title", t.title.clone()),
        ("open", yes_no(t.open)),
        ("created by", t.created_by.clone()),
        ("created", output::time(t.created_at)),
        ("closed", output::opt_time(t.closed_at)),
    ]
}

pub async fn run(ctx: &Ctx, tenant: &str, cmd: TicketCommand) -> Result<(), String> {
    let c = &ctx.client;
    match cmd {
        TicketCommand::Create { title } => {
            let t = c.create_ticket(tenant, &title).await.map_err(|e| ctx.err(e))?;
            if ctx.json { print_json(&t) } else { print_fields(&fields(&t)) }
        }
        TicketCommand::Close { number } => {
            let t = c.close_ticket(tenant, number).await.map_err(|e| ctx.err(e))?;
            if ctx.json { print_json(&t) } else { print_fields(&fields(&t)) }
        }
        TicketCommand::List { open } => {
            let list = c.list_tickets(tenant, open).await.map_err(|e| ctx.err(e))?;
            if ctx.json {
                return print_json(&list);
            }
            let rows = list
                .tickets
                .into_iter()
                .map(|t| vec![t.number.to_string(), yes_no(t.open), t.title, output::time(t.created_at)])
                .collect();
            print_table(&["NUMBER", "OPEN", "TITLE", "CREATED"], rows, &format!("no tickets in tenant {tenant}"))
        }
        TicketCommand::Comments { ticket } => {
            let list = c.ticket_comments(tenant, &ticket).await.map_err(|e| ctx.err(e))?;
            if ctx.json {
                return print_json(&list);
            }
            let rows = list
                .comments
                .into_iter()
                .map(|m| vec![output::time(m.created_at), m.adapter, yes_no(m.delivered), m.body])
                .collect();
            print_table(&["WHEN", "ADAPTER", "DELIVERED", "COMMENT"], rows, &format!("no comments on ticket {ticket}"))
        }
    }
}
