//! Embeds the catalog migrations of `migrations/` (`OUT_DIR/migrations.rs`,
//! included by `src/db/migrate.rs`). The server API generated from the contract is the
//! crate `athena-api` (`generated/athena-api`), with a `build.rs` of its own.

use std::path::Path;

fn main() {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    println!("cargo:rerun-if-changed=build.rs");
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
