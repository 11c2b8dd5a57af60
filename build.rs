//! Generates the server API (models, parameters, responses, family traits,
//! dispatch) from `openapi/openapi.yaml` into `OUT_DIR/athena_api.rs`.
//! `src/api.rs` is the only module that includes it. Also embeds the catalog
//! migrations of `migrations/`.

use std::path::Path;

fn main() {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let spec = Path::new(&manifest).join("openapi/openapi.yaml");
    println!("cargo:rerun-if-changed=openapi/openapi.yaml");
    println!("cargo:rerun-if-changed=build.rs");

    let contract = athena_codegen::Contract::load(&spec)
        .unwrap_or_else(|e| panic!("openapi/openapi.yaml: {e}"));
    let code = athena_codegen::server::generate(&contract)
        .unwrap_or_else(|e| panic!("generating the server API from openapi/openapi.yaml: {e}"));
    let out =
        Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("athena_api.rs");
    std::fs::write(&out, code).unwrap_or_else(|e| panic!("writing {}: {e}", out.display()));

    embed_migrations(&manifest);
}

/// Embeds `migrations/NNNN_name.sql` as `MIGRATIONS: [(version, name, sql)]`.
fn embed_migrations(manifest: &str) {
    let dir = Path::new(manifest).join("migrations");
    println!("cargo:rerun-if-changed=migrations");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .collect();
    files.sort();
    let mut out = String::from("/// Catalog migrations: (version, name, sql), in order.\npub static MIGRATIONS: &[(i64, &str, &str)] = &[\n");
    for path in files {
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        let version: i64 = stem
            .split('_')
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| {
                panic!(
                    "{}: migration files are named NNNN_name.sql",
                    path.display()
                )
            });
        out.push_str(&format!(
            "    ({version}, {stem:?}, include_str!({:?})),\n",
            path.display().to_string()
        ));
    }
    out.push_str("];\n");
    let target = Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("migrations.rs");
    std::fs::write(&target, out).unwrap_or_else(|e| panic!("writing {}: {e}", target.display()));
}
