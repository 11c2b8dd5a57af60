//! Generates the client from the contract on every build.
//!
//! `openapi/openapi.yaml` → `athena_codegen::Contract::load` (checks the
//! contract and derives operation names) → `athena_codegen::client::
//! normalize_for_progenitor` (the rules listed in README.md) → progenitor
//! (builder interface, merged tags) → `$OUT_DIR/athena_client.rs`, plus
//! `$OUT_DIR/operation_names.rs` listing the operationIds progenitor was
//! given and `$OUT_DIR/method_refs.rs` naming each client method, for the
//! method-count test.

use progenitor::{GenerationSettings, Generator, InterfaceStyle, TagStyle};
use std::fmt::Write as _;
use std::path::PathBuf;

fn main() {
    if let Err(e) = run() {
        eprintln!("athena-client build.rs: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let manifest_dir =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").map_err(|e| e.to_string())?);
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").map_err(|e| e.to_string())?);
    // ATHENA_CLIENT_SPEC: generate from another copy of the contract (for
    // trying a contract change without touching openapi/openapi.yaml; the
    // method-count test still compares against the project contract).
    println!("cargo:rerun-if-env-changed=ATHENA_CLIENT_SPEC");
    let spec_path = match std::env::var_os("ATHENA_CLIENT_SPEC") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => manifest_dir.join("../../openapi/openapi.yaml"),
    };
    println!("cargo:rerun-if-changed={}", spec_path.display());
    println!("cargo:rerun-if-changed=build.rs");

    let contract = athena_codegen::Contract::load(&spec_path).map_err(|e| e.to_string())?;
    let spec = athena_codegen::client::normalize_for_progenitor(&contract.raw)?;

    let mut names: Vec<String> = Vec::new();
    for (path, item) in spec.paths.iter() {
        let item = item
            .as_item()
            .ok_or_else(|| format!("{path}: path item $ref"))?;
        for (method, op) in item.iter() {
            names.push(
                op.operation_id.clone().ok_or_else(|| {
                    format!("{method} {path}: no operationId after normalization")
                })?,
            );
        }
    }

    let mut settings = GenerationSettings::default();
    settings
        .with_interface(InterfaceStyle::Builder)
        .with_tag(TagStyle::Merged)
        .with_derive("PartialEq");
    let mut generator = Generator::new(&settings);
    let tokens = generator
        .generate_tokens(&spec)
        .map_err(|e| format!("progenitor: {e}"))?;
    let file: syn::File =
        syn::parse2(tokens).map_err(|e| format!("generated code does not parse: {e}"))?;
    let code = prettyplease::unparse(&file);
    write(&out_dir.join("athena_client.rs"), &code)?;

    let mut list = String::from(
        "/// Every operationId the generator was given, in contract order.\n\
         pub const OPERATION_NAMES: &[&str] = &[\n",
    );
    for name in &names {
        let _ = writeln!(list, "    {name:?},");
    }
    list.push_str("];\n");
    write(&out_dir.join("operation_names.rs"), &list)?;

    // For tests/method_count.rs: names every method by path, so the test
    // does not compile if progenitor dropped or renamed one.
    let mut refs = String::from(
        "/// `(operation name, client method as a value)` for every operation.\n\
         fn client_method_refs() -> Vec<&'static str> {\n    vec![\n",
    );
    for name in &names {
        let _ = writeln!(
            refs,
            "        {{ let _ = athena_client::Client::{name}; {name:?} }},"
        );
    }
    refs.push_str("    ]\n}\n");
    write(&out_dir.join("method_refs.rs"), &refs)
}

/// Writes only when the content changed (keeps the files' timestamps when a
/// build script rerun regenerates identical code).
fn write(path: &std::path::Path, content: &str) -> Result<(), String> {
    if std::fs::read_to_string(path).ok().as_deref() == Some(content) {
        return Ok(());
    }
    std::fs::write(path, content).map_err(|e| format!("writing {}: {e}", path.display()))
}
