//! Hand-rolled argument parsing (no clap):
//! `conformance --base-url URL [--admin-key K] [--client NAME] [--tenant-db-url URL]
//!  [--spec PATH] [--uncovered FILE] [--passing FILE] [--update]`

use std::path::PathBuf;

pub const USAGE: &str = "usage: conformance --base-url URL [--admin-key K] [--client NAME] \
[--tenant-db-url URL] [--spec PATH] [--uncovered FILE] [--passing FILE] [--update] [--verbose]";

#[derive(Debug, Clone)]
pub struct Args {
    pub base_url: String,
    pub admin_key: Option<String>,
    pub client: String,
    pub tenant_db_url: Option<String>,
    pub spec: PathBuf,
    pub uncovered: PathBuf,
    pub passing: PathBuf,
    pub update: bool,
    /// Print every case's outcome to stderr.
    pub verbose: bool,
}

pub fn default_spec() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../openapi/openapi.yaml"
    ))
}

pub fn default_uncovered() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/uncovered.txt"))
}

pub fn default_passing() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/passing.txt"))
}

/// Parses the arguments after the program name. `Err` carries a message for
/// the user (`--help` yields the usage text).
pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Args, String> {
    let mut base_url = None;
    let mut admin_key = None;
    let mut client = "conformance".to_string();
    let mut tenant_db_url = None;
    let mut spec = default_spec();
    let mut uncovered = default_uncovered();
    let mut passing = default_passing();
    let mut update = false;
    let mut verbose = false;

    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            match inline.clone() {
                Some(v) => Ok(v),
                None => it
                    .next()
                    .ok_or_else(|| format!("{name} needs a value\n{USAGE}")),
            }
        };
        match flag.as_str() {
            "--base-url" => base_url = Some(value("--base-url")?),
            "--admin-key" => admin_key = Some(value("--admin-key")?),
            "--client" => client = value("--client")?,
            "--tenant-db-url" => tenant_db_url = Some(value("--tenant-db-url")?),
            "--spec" => spec = PathBuf::from(value("--spec")?),
            "--uncovered" => uncovered = PathBuf::from(value("--uncovered")?),
            "--passing" => passing = PathBuf::from(value("--passing")?),
            "--update" => update = true,
            "--verbose" | "-v" => verbose = true,
            "-h" | "--help" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    let base_url = base_url.ok_or_else(|| format!("--base-url is required\n{USAGE}"))?;
    Ok(Args {
        base_url: base_url.trim_end_matches('/').to_string(),
        admin_key,
        client,
        tenant_db_url,
        spec,
        uncovered,
        passing,
        update,
        verbose,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &[&str]) -> Result<Args, String> {
        parse(s.iter().map(|s| s.to_string()))
    }

    #[test]
    fn parses_flags_and_defaults() {
        let a = args(&["--base-url", "http://h:1/", "--admin-key=k", "--update"]).unwrap();
        assert_eq!(a.base_url, "http://h:1");
        assert_eq!(a.admin_key.as_deref(), Some("k"));
        assert_eq!(a.client, "conformance");
        assert!(a.update);
        assert!(a.tenant_db_url.is_none());
    }

    #[test]
    fn rejects_missing_base_url_and_unknown_flags() {
        assert!(args(&[]).is_err());
        assert!(args(&["--base-url", "x", "--bogus"]).is_err());
        assert!(args(&["--base-url"]).is_err());
    }
}
