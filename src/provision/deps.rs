//! Local provisioning dependencies (issue 21): which tools exist here
//! (`pg_dump`, `pg_restore`, `psql`, `docker`), their versions, and an
//! opt-in installer (`ATHENA_ALLOW_DEPENDENCY_INSTALL=1`) that runs the
//! package manager with fixed argument vectors: nothing from the request
//! reaches a command line (the request only switches steps on or off).

use crate::api::models::{
    LocalProvisionDependencyInstallResult as InstallResult,
    LocalProvisionDependencyInstallStep as Step, LocalProvisionDependencyStatus as Status,
};
use serde_json::{json, Map};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The tools provisioning uses.
pub const TOOLS: [&str; 4] = ["pg_dump", "pg_restore", "psql", "docker"];

/// Package managers, in order of preference.
const MANAGERS: [&str; 5] = ["apt-get", "dnf", "yum", "apk", "brew"];

/// Longest one install step may run.
const STEP_TIMEOUT: Duration = Duration::from_secs(600);

/// Most output kept per step.
const OUTPUT_CAP: usize = 4096;

/// Where tools are looked up: `ATHENA_PROVISION_PATH`, else `PATH`.
pub fn search_path(settings: &super::Settings) -> String {
    settings
        .tool_path
        .clone()
        .or_else(|| std::env::var("PATH").ok())
        .unwrap_or_default()
}

/// The executable `name` in `path`, if any.
pub fn find(path: &str, name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    std::env::split_paths(path)
        .map(|dir| dir.join(name))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// `<tool> --version`'s first line (2 s at most).
pub async fn version(bin: &Path) -> Option<String> {
    let out = tokio::time::timeout(
        Duration::from_secs(2),
        tokio::process::Command::new(bin)
            .arg("--version")
            .env_clear()
            .kill_on_drop(true)
            .output(),
    )
    .await
    .ok()?
    .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .next()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
}

/// The major version in a `pg_dump (PostgreSQL) 15.4 (Debian …)` line.
pub fn major(version_line: &str) -> Option<u32> {
    version_line
        .split_whitespace()
        .find_map(|w| w.split('.').next()?.parse::<u32>().ok())
}

fn running_as_root() -> Option<bool> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .nth(1)?
        .to_string();
    Some(uid == "0")
}

/// The truthful status of this host.
pub async fn status(settings: &super::Settings, docker_reachable: bool) -> Status {
    let path = search_path(settings);
    let mut missing = Vec::new();
    let mut notes = Vec::new();
    for tool in TOOLS {
        match find(&path, tool) {
            Some(bin) => match version(&bin).await {
                Some(v) => notes.push(format!("{tool}: {v}")),
                None => notes.push(format!("{tool}: found, version unknown")),
            },
            None => missing.push(tool.to_string()),
        }
    }
    let package_manager = MANAGERS
        .iter()
        .find(|m| find(&path, m).is_some())
        .map(|m| m.to_string());
    let sudo = find(&path, "sudo");
    let sudo_non_interactive = match &sudo {
        Some(bin) => tokio::time::timeout(
            Duration::from_secs(2),
            tokio::process::Command::new(bin)
                .args(["-n", "true"])
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .kill_on_drop(true)
                .status(),
        )
        .await
        .ok()
        .and_then(Result::ok)
        .is_some_and(|s| s.success()),
        None => false,
    };
    let root = running_as_root();
    let postgres = ["pg_dump", "pg_restore", "psql"]
        .iter()
        .all(|t| !missing.iter().any(|m| m == t));
    if !settings.allow_dependency_install {
        notes.push("installs are disabled (ATHENA_ALLOW_DEPENDENCY_INSTALL is not set)".into());
    }
    Status {
        can_attempt_install: Some(
            settings.allow_dependency_install
                && package_manager.is_some()
                && (root == Some(true) || sudo_non_interactive),
        ),
        docker_binary_available: Some(find(&path, "docker").is_some()),
        docker_service_active: Some(docker_reachable),
        missing,
        notes,
        os_family: Some(std::env::consts::OS.to_string()),
        package_manager,
        postgres_binary_available: Some(postgres),
        // Whether a PostgreSQL server runs on this host is not observable
        // without guessing its port: not reported.
        postgres_service_active: None,
        running_as_root: root,
        sudo_available: Some(sudo.is_some()),
        sudo_non_interactive_available: Some(sudo_non_interactive),
        systemctl_available: Some(find(&path, "systemctl").is_some()),
    }
}

/// What to install (the request's switches).
#[derive(Debug, Clone, Copy)]
pub struct Wanted {
    pub postgres: bool,
    pub docker: bool,
    pub start_services: bool,
    pub use_sudo: bool,
}

/// The fixed argument vector installing `package` with `manager`.
fn install_args(manager: &str, what: &str) -> Vec<&'static str> {
    match (manager, what) {
        ("apt-get", "postgres") => vec!["install", "-y", "postgresql-client"],
        ("apt-get", _) => vec!["install", "-y", "docker.io"],
        ("dnf" | "yum", "postgres") => vec!["install", "-y", "postgresql"],
        ("dnf" | "yum", _) => vec!["install", "-y", "docker"],
        ("apk", "postgres") => vec!["add", "postgresql-client"],
        ("apk", _) => vec!["add", "docker"],
        (_, "postgres") => vec!["install", "libpq"],
        (_, _) => vec!["install", "docker"],
    }
}

/// Runs the install steps (the caller checked the opt-in).
pub async fn install(settings: &super::Settings, wanted: Wanted) -> InstallResult {
    let before = status(settings, false).await;
    let path = search_path(settings);
    let mut steps = Vec::new();
    let manager = before.package_manager.clone();
    let sudo = (wanted.use_sudo && before.running_as_root != Some(true))
        .then(|| find(&path, "sudo"))
        .flatten();
    let mut plan: Vec<(&str, &str, Vec<String>)> = Vec::new();
    if let Some(m) = &manager {
        if wanted.postgres {
            plan.push((
                "install_postgres",
                "Install the PostgreSQL client tools",
                std::iter::once(m.clone())
                    .chain(install_args(m, "postgres").into_iter().map(String::from))
                    .collect(),
            ));
        }
        if wanted.docker {
            plan.push((
                "install_docker",
                "Install Docker",
                std::iter::once(m.clone())
                    .chain(install_args(m, "docker").into_iter().map(String::from))
                    .collect(),
            ));
        }
    } else {
        steps.push(Step {
            key: Some("package_manager".into()),
            description: Some("Find a package manager".into()),
            status: Some("failed".into()),
            detail: Some(format!("none of {} is on the path", MANAGERS.join(", "))),
            command: None,
            output: None,
        });
    }
    if wanted.start_services && wanted.docker && find(&path, "systemctl").is_some() {
        plan.push((
            "start_docker",
            "Start the Docker service",
            ["systemctl", "start", "docker"].map(String::from).to_vec(),
        ));
    }
    for (key, description, argv) in plan {
        let mut argv = argv;
        if let Some(sudo) = &sudo {
            argv.splice(0..0, [sudo.display().to_string(), "-n".to_string()]);
        }
        let Some(program) = (if argv[0].contains('/') {
            Some(PathBuf::from(&argv[0]))
        } else {
            find(&path, &argv[0])
        }) else {
            steps.push(Step {
                key: Some(key.into()),
                description: Some(description.into()),
                status: Some("failed".into()),
                detail: Some(format!("{} is not on the path", argv[0])),
                command: Some(argv.join(" ")),
                output: None,
            });
            continue;
        };
        let mut cmd = tokio::process::Command::new(program);
        cmd.args(&argv[1..])
            .env_clear()
            .env("PATH", &path)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        let (ok, detail, output) = match tokio::time::timeout(STEP_TIMEOUT, cmd.output()).await {
            Ok(Ok(out)) => {
                let mut text = String::from_utf8_lossy(&out.stdout).to_string();
                text.push_str(&String::from_utf8_lossy(&out.stderr));
                if text.len() > OUTPUT_CAP {
                    let mut cut = text.len() - OUTPUT_CAP;
                    while !text.is_char_boundary(cut) {
                        cut += 1;
                    }
                    text = text[cut..].to_string();
                }
                (
                    out.status.success(),
                    format!("exit {}", out.status),
                    Some(text),
                )
            }
            Ok(Err(e)) => (false, format!("could not start: {e}"), None),
            Err(_) => (false, "timed out".to_string(), None),
        };
        steps.push(Step {
            key: Some(key.into()),
            description: Some(description.into()),
            status: Some(if ok { "succeeded" } else { "failed" }.into()),
            detail: Some(detail),
            command: Some(argv.join(" ")),
            output,
        });
    }
    let after = status(settings, false).await;
    let failed = steps
        .iter()
        .filter(|s| s.status.as_deref() == Some("failed"))
        .count();
    let overall = match (failed, steps.len()) {
        (0, _) => "succeeded",
        (f, n) if f == n => "failed",
        _ => "partial",
    };
    let mut requested = Map::new();
    requested.insert("install_postgres".into(), json!(wanted.postgres));
    requested.insert("install_docker".into(), json!(wanted.docker));
    requested.insert("start_services".into(), json!(wanted.start_services));
    requested.insert("use_sudo".into(), json!(wanted.use_sudo));
    InstallResult {
        after: Some(after),
        before: Some(before),
        overall_status: Some(overall.into()),
        requested,
        steps,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn majors() {
        assert_eq!(
            super::major("pg_dump (PostgreSQL) 15.4 (Debian 15.4-1)"),
            Some(15)
        );
        assert_eq!(super::major("pg_restore (PostgreSQL) 16.1"), Some(16));
        assert_eq!(super::major("nothing"), None);
    }
}
