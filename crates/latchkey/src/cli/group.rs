//! `latchkey group …`

use clap::{Args, Subcommand};
use latchkey_proto as proto;

use super::Ctx;
use super::output::{self, opt, print_fields, print_json, print_table};

#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// Create a group.
    Add {
        name: String,
        #[arg(long)]
        description: Option<String>,
    },
    /// List the tenant's groups.
    List,
    /// List a group's direct members.
    Members {
        /// Group id.
        #[arg(value_name = "GROUP_ID")]
        group_id: String,
    },
    /// Add a device, user or group to a group.
    AddMember {
        /// Group id.
        #[arg(value_name = "GROUP_ID")]
        group_id: String,
        #[command(flatten)]
        member: MemberArg,
    },
    /// Remove a member from a group.
    RemoveMember {
        /// Group id.
        #[arg(value_name = "GROUP_ID")]
        group_id: String,
        #[command(flatten)]
        member: MemberArg,
    },
}

/// Exactly one member.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct MemberArg {
    /// A device, by device id.
    #[arg(long, value_name = "DEVICE_ID")]
    device: Option<String>,
    /// A user, by id.
    #[arg(long, value_name = "USER_ID")]
    user: Option<String>,
    /// A group, by id.
    #[arg(long = "group", value_name = "GROUP_ID")]
    member_group: Option<String>,
}

impl MemberArg {
    fn into_member(self) -> Result<proto::GroupMember, String> {
        let (kind, id) = match (self.device, self.user, self.member_group) {
            (Some(id), None, None) => (proto::MemberKind::Device, id),
            (None, Some(id), None) => (proto::MemberKind::User, id),
            (None, None, Some(id)) => (proto::MemberKind::Group, id),
            _ => return Err("give exactly one of --device, --user or --group".to_owned()),
        };
        Ok(proto::GroupMember { kind, id })
    }
}

fn kind_name(k: proto::MemberKind) -> &'static str {
    match k {
        proto::MemberKind::Device => "device",
        proto::MemberKind::User => "user",
        proto::MemberKind::Group => "group",
    }
}

pub async fn run(ctx: &Ctx, tenant: &str, cmd: GroupCommand) -> Result<(), String> {
    match cmd {
        GroupCommand::Add { name, description } => {
            let g = ctx
                .client
                .create_group(tenant, &proto::GroupCreate { name, description })
                .await
                .map_err(|e| ctx.err(e))?;
            if ctx.json {
                return print_json(&g);
            }
            print_fields(&[
                ("id", g.id),
                ("tenant", g.tenant),
                ("name", g.name),
                ("description", opt(g.description.as_deref())),
                ("created", output::time(g.created_at)),
            ])
        }
        GroupCommand::List => {
            let list = ctx.client.list_groups(tenant).await.map_err(|e| ctx.err(e))?;
            if ctx.json {
                return print_json(&list);
            }
            let rows = list
                .items
                .into_iter()
                .map(|g| vec![g.id, g.name, opt(g.description.as_deref()), output::time(g.created_at)])
                .collect();
            print_table(&["ID", "NAME", "DESCRIPTION", "CREATED"], rows, &format!("no groups in tenant {tenant}"))
        }
        GroupCommand::Members { group_id } => {
            let list = ctx.client.group_members(tenant, &group_id).await.map_err(|e| ctx.err(e))?;
            if ctx.json {
                return print_json(&list);
            }
            let rows = list.items.into_iter().map(|m| vec![kind_name(m.kind).to_owned(), m.id]).collect();
            print_table(&["KIND", "ID"], rows, &format!("group {group_id} has no members"))
        }
        GroupCommand::AddMember { group_id, member } => {
            let member = member.into_member()?;
            ctx.client.add_group_member(tenant, &group_id, &member).await.map_err(|e| ctx.err(e))?;
            if ctx.json {
                return print_json(&member);
            }
            outln!("added {} {} to group {group_id}", kind_name(member.kind), member.id)
        }
        GroupCommand::RemoveMember { group_id, member } => {
            let member = member.into_member()?;
            ctx.client.remove_group_member(tenant, &group_id, &member).await.map_err(|e| ctx.err(e))?;
            if ctx.json {
                return print_json(&member);
            }
            outln!("removed {} {} from group {group_id}", kind_name(member.kind), member.id)
        }
    }
}
