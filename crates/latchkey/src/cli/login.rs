//! `latchkey login`, `latchkey logout` and `latchkey whoami`: sessions of people, and the saved
//! session file the other commands read when no token is given.
//!
//! The session file (`--save`) is JSON with the server URL and the token, written with mode
//! 0600 to `$LATCHKEY_SESSION_FILE`, else `$XDG_CONFIG_HOME/latchkey/session.json`, else
//! `~/.config/latchkey/session.json`. It is only used for the server it was saved for.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use clap::Args;
use latchkey_proto as proto;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::output::{self, opt, print_fields, print_json};
use super::{Connection, Ctx};

/// `latchkey login` options.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// User name: `name`, `DOMAIN\name` or `name@upn.suffix`.
    #[arg(long, value_name = "NAME")]
    pub user: String,
    /// Read the password from the first line of stdin instead of asking on the terminal.
    #[arg(long)]
    pub password_stdin: bool,
    /// Save the session token (mode 0600) instead of printing it; later commands to the same
    /// server use it when no --token / LATCHKEY_TOKEN is given. The file is
    /// $LATCHKEY_SESSION_FILE, else $XDG_CONFIG_HOME/latchkey/session.json, else
    /// ~/.config/latchkey/session.json.
    #[arg(long)]
    pub save: bool,
}

/// A saved session.
#[derive(Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
#[serde(rename_all = "camelCase")]
struct SavedSession {
    url: String,
    token: String,
    #[zeroize(skip)]
    tenant: String,
    #[zeroize(skip)]
    user: String,
    #[zeroize(skip)]
    #[serde(with = "time::serde::rfc3339")]
    expires_at: time::OffsetDateTime,
}

/// Where the session file lives.
pub fn session_file() -> Result<PathBuf, String> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(p) = var("LATCHKEY_SESSION_FILE") {
        return Ok(p);
    }
    if let Some(dir) = var("XDG_CONFIG_HOME") {
        return Ok(dir.join("latchkey").join("session.json"));
    }
    match var("HOME") {
        Some(home) => Ok(home.join(".config").join("latchkey").join("session.json")),
        None => Err("cannot tell where to keep the session: set LATCHKEY_SESSION_FILE or HOME".to_owned()),
    }
}

/// The saved session token for the server at `url`, with the file it came from; `None` when
/// nothing is saved for that server.
pub fn saved_token(url: &str) -> Result<Option<(String, PathBuf)>, String> {
    let Ok(path) = session_file() else { return Ok(None) };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => Zeroizing::new(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read the saved session {}: {e}", path.display())),
    };
    let saved: SavedSession = serde_json::from_str(&text).map_err(|_| {
        format!("the saved session {} is not readable; remove it or run `latchkey login --save` again", path.display())
    })?;
    if same_server(&saved.url, url) { Ok(Some((saved.token.clone(), path))) } else { Ok(None) }
}

fn same_server(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

/// A password: the first line of stdin with `from_stdin`, else asked on the terminal.
pub fn read_password(prompt: &str, from_stdin: bool) -> Result<Zeroizing<String>, String> {
    let password = if from_stdin {
        let mut line = Zeroizing::new(String::new());
        let n = std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| format!("cannot read the password from stdin: {e}"))?;
        if n == 0 {
            return Err("no password on stdin (--password-stdin reads its first line)".to_owned());
        }
        let end = line.trim_end_matches(['\n', '\r']).len();
        line.truncate(end);
        line
    } else {
        if !std::io::stdin().is_terminal() {
            return Err("no terminal to ask for the password: pipe it in with --password-stdin".to_owned());
        }
        Zeroizing::new(rpassword::prompt_password(prompt).map_err(|e| format!("cannot read the password: {e}"))?)
    };
    if password.is_empty() {
        return Err("the password is empty".to_owned());
    }
    Ok(password)
}

/// `latchkey login`.
pub async fn login(conn: Connection, tenant: &str, args: LoginArgs) -> Result<(), String> {
    let url = conn.url.clone();
    let ctx = Ctx::connect(conn, false)?;
    let password = read_password(&format!("Password for {} in {tenant}: ", args.user), args.password_stdin)?;
    let body =
        proto::SignInRequest { tenant: tenant.to_owned(), username: args.user.clone(), password: password.to_string() };
    // No token is involved, so no hint about where one came from.
    let session = ctx.client.sign_in(&body).await.map_err(|e| super::describe(&e))?;
    drop(body);
    if args.save {
        let saved = SavedSession {
            url,
            token: session.token.clone(),
            tenant: session.user.tenant.clone(),
            user: session.user.name.clone(),
            expires_at: session.expires_at,
        };
        let path = session_file()?;
        write_private(&path, &Zeroizing::new(serde_json::to_vec(&saved).map_err(|e| e.to_string())?))?;
        if ctx.json {
            return print_json(&serde_json::json!({
                "user": session.user,
                "expiresAt": output::time(session.expires_at),
                "sessionFile": path.display().to_string(),
            }));
        }
        return outln!(
            "signed in as {} in {} until {}; session saved to {}",
            session.user.name,
            session.user.tenant,
            output::time(session.expires_at),
            path.display()
        );
    }
    if ctx.json {
        return print_json(&session);
    }
    // stdout holds only the token (for a pipe); the rest goes to stderr.
    eprintln!(
        "signed in as {} in {} until {}; session token:",
        session.user.name,
        session.user.tenant,
        output::time(session.expires_at)
    );
    outln!("{}", session.token)
}

/// `latchkey logout`: end the session and forget the saved one.
pub async fn logout(conn: Connection) -> Result<(), String> {
    let given = conn.token.as_deref().is_some_and(|t| !t.trim().is_empty());
    let saved = if given { None } else { saved_token(&conn.url)? };
    if !given && saved.is_none() {
        return Err("not signed in: no saved session for this server and no --token / LATCHKEY_TOKEN".to_owned());
    }
    let ctx = Ctx::connect(conn, true)?;
    let result = ctx.client.sign_out().await;
    // A saved session is forgotten even when the server no longer knew it.
    if let Some((_, path)) = &saved {
        std::fs::remove_file(path).map_err(|e| format!("cannot remove the saved session {}: {e}", path.display()))?;
    }
    match result {
        Ok(()) => outln!("signed out"),
        Err(e) if saved.is_some() && e.code() == Some(proto::ProblemCode::Unauthenticated) => {
            outln!("the session had already ended; the saved session is removed")
        }
        Err(e) => Err(ctx.err(e)),
    }
}

/// `latchkey whoami`: who the session token belongs to.
pub async fn whoami(conn: Connection) -> Result<(), String> {
    let ctx = Ctx::connect(conn, true)?;
    let me = ctx.client.me().await.map_err(|e| ctx.err(e))?;
    if ctx.json {
        return print_json(&me);
    }
    print_fields(&[
        ("user", me.user.name),
        ("id", me.user.id),
        ("tenant", me.user.tenant),
        ("display name", opt(me.user.display_name.as_deref())),
        ("email", opt(me.user.email.as_deref())),
        ("signed in by", me.method),
        ("signed in", output::time(me.signed_in_at)),
        ("expires", output::time(me.expires_at)),
    ])
}

/// Write `bytes` to `path` with mode 0600 (its directory 0700 when created), replacing it whole.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let fail = |e: std::io::Error| format!("cannot save the session to {}: {e}", path.display());
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(fail)?;
    }
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp).map_err(fail)?;
    f.write_all(bytes).and_then(|()| f.sync_all()).map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(fail)
}
