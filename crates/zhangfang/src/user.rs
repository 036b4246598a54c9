use std::io::{BufRead, IsTerminal};

use anyhow::Context;
use clap::Subcommand;
use secrecy::{ExposeSecret, SecretString};
use zf_audit::Actor;
use zf_domain::Username;
use zf_policy::Role;

use crate::config::Settings;

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Create a user. The password is read from standard input when piped, otherwise generated
    /// and printed once; either way it is one-time and must be replaced at first sign-in.
    Add {
        #[arg(long)]
        username: String,
        /// system_admin, security_admin, audit_admin, supervisor, accountant, auditor or sales.
        #[arg(long)]
        role: String,
        /// Read the one-time password from standard input instead of generating one.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Move a user to another role (a job transfer, or granting an administrator role, which
    /// only an operator on the server may do). Audited with the reason.
    SetRole {
        #[arg(long)]
        username: String,
        #[arg(long)]
        role: String,
        #[arg(long)]
        reason: String,
    },
    /// Move a user to another team, or out of every team with `--team ""`. Team-scoped roles
    /// reach the new team's clients from the user's next request. Audited with the reason.
    SetTeam {
        #[arg(long)]
        username: String,
        #[arg(long)]
        team: String,
        #[arg(long)]
        reason: String,
    },
    /// What a user may do and why, as JSON: role, permissions, client scope, field visibility,
    /// network ranges.
    Permissions {
        #[arg(value_name = "USERNAME")]
        username: String,
    },
    /// A user's permission changes as JSON: who, when, why, approved by.
    History {
        #[arg(value_name = "USERNAME")]
        username: String,
    },
    /// Every role, built in and custom, with its permissions, scope and field visibility, as
    /// JSON.
    Roles,
    /// Re-enable an account locked by a monitoring rule, after investigation.
    Unlock {
        #[arg(long)]
        username: String,
    },
    /// Remove a user's authenticator and recovery codes (a lost phone) and end all their
    /// sessions; they set up a new authenticator at their next sign-in. Audited with the reason.
    ResetMfa {
        #[arg(value_name = "USERNAME")]
        username: String,
        #[arg(long)]
        reason: String,
    },
}

/// Who ran the command, for the audit event: the login name, or the numeric uid where the
/// environment names nobody (services, containers).
pub fn os_user() -> String {
    use std::os::unix::fs::MetadataExt;
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .filter(|u| !u.is_empty())
        .or_else(|| {
            std::fs::metadata("/proc/self")
                .ok()
                .map(|m| format!("uid {}", m.uid()))
        })
        .unwrap_or_else(|| "unknown".into())
}

pub async fn run(settings: Settings, cmd: UserCommand) -> anyhow::Result<()> {
    match cmd {
        UserCommand::Add {
            username,
            role,
            password_stdin,
        } => {
            let username = Username::parse(&username).context("invalid --username")?;
            let role = Role::parse(&role).context("invalid --role")?;
            let password = if password_stdin {
                let stdin = std::io::stdin();
                if stdin.is_terminal() {
                    eprint!("One-time password for {}: ", username.as_str());
                }
                let mut line = String::new();
                stdin
                    .lock()
                    .read_line(&mut line)
                    .context("cannot read the password from standard input")?;
                let trimmed = line.trim_end_matches(['\n', '\r']).to_owned();
                zeroize_string(line);
                Some(SecretString::from(trimmed))
            } else {
                None
            };
            let instance = crate::provider::open_instance(&settings).await?;
            let given = password.is_some();
            let secret = instance
                .app
                .add_user(username, role, password, Actor::cli(&os_user()))
                .await?;
            println!(
                "Created user {} with role {}.",
                secret.username.as_str(),
                role.as_str()
            );
            if !given {
                println!(
                    "One-time password (shown once): {}",
                    secret.password.expose_secret()
                );
            }
            println!("The user must choose a new password at first sign-in.");
            Ok(())
        }
        UserCommand::SetRole {
            username,
            role,
            reason,
        } => {
            let username = Username::parse(&username).context("invalid --username")?;
            let instance = crate::provider::open_instance(&settings).await?;
            let from = instance
                .app
                .set_role_as_operator(&username, &role, &reason, os_actor())
                .await
                .map_err(|e| match e {
                    zf_app::AppError::NotFound => {
                        anyhow::anyhow!("no user named {}", username.as_str())
                    }
                    other => other.into(),
                })?;
            println!(
                "{} moved from {from} to {}; their sessions ended, and the new role applies from their next sign-in.",
                username.as_str(),
                role.trim()
            );
            Ok(())
        }
        UserCommand::SetTeam {
            username,
            team,
            reason,
        } => {
            let username = Username::parse(&username).context("invalid --username")?;
            let app = open_app(&settings).await?;
            app.set_team(&username, Some(&team), &reason, os_actor())
                .await
                .map_err(|e| no_such_user(e, &username))?;
            match team.trim() {
                "" => println!("{} is in no team now.", username.as_str()),
                team => println!("{} is in team {team} now.", username.as_str()),
            }
            Ok(())
        }
        UserCommand::Permissions { username } => {
            let username = Username::parse(&username).context("invalid USERNAME")?;
            let app = open_app(&settings).await?;
            let effective = app
                .effective_permissions(&username)
                .await
                .map_err(|e| no_such_user(e, &username))?;
            println!("{}", serde_json::to_string_pretty(&effective)?);
            Ok(())
        }
        UserCommand::History { username } => {
            let username = Username::parse(&username).context("invalid USERNAME")?;
            let app = open_app(&settings).await?;
            let history = app
                .permission_history(&username)
                .await
                .map_err(|e| no_such_user(e, &username))?;
            println!("{}", serde_json::to_string_pretty(&history)?);
            Ok(())
        }
        UserCommand::Roles => {
            let app = open_app(&settings).await?;
            println!(
                "{}",
                serde_json::to_string_pretty(&app.role_catalog().await?)?
            );
            Ok(())
        }
        UserCommand::Unlock { username } => {
            let username = Username::parse(&username).context("invalid --username")?;
            let instance = crate::provider::open_instance(&settings).await?;
            instance
                .app
                .unlock_user(&username, os_actor())
                .await
                .map_err(|e| match e {
                    zf_app::AppError::NotFound => {
                        anyhow::anyhow!("no user named {}", username.as_str())
                    }
                    other => other.into(),
                })?;
            println!("Unlocked {}; they may sign in again.", username.as_str());
            Ok(())
        }
        UserCommand::ResetMfa { username, reason } => {
            let username = Username::parse(&username).context("invalid USERNAME")?;
            let instance = crate::provider::open_instance(&settings).await?;
            instance
                .app
                .reset_mfa(&username, &reason, os_actor())
                .await
                .map_err(|e| match e {
                    zf_app::AppError::NotFound => {
                        anyhow::anyhow!("no user named {}", username.as_str())
                    }
                    other => other.into(),
                })?;
            println!(
                "Removed the authenticator and recovery codes of {} and ended their sessions; \
                 they set up a new authenticator at their next sign-in.",
                username.as_str()
            );
            Ok(())
        }
    }
}

fn zeroize_string(s: String) {
    use zeroize::Zeroize;
    let mut s = s;
    s.zeroize();
}

/// The audit actor for a command run from this shell.
pub fn os_actor() -> Actor {
    Actor::cli(&os_user())
}

async fn open_app(settings: &Settings) -> anyhow::Result<zf_app::App> {
    let instance = crate::provider::open_instance(settings).await?;
    Ok(instance.app)
}

fn no_such_user(e: zf_app::AppError, username: &Username) -> anyhow::Error {
    match e {
        zf_app::AppError::NotFound => anyhow::anyhow!("no user named {}", username.as_str()),
        other => other.into(),
    }
}
