//! Embeds the catalog migrations of `migrations/` and the tenant migrations
//! of `migrations/tenant/` (`OUT_DIR/migrations.rs`, included by
//! `src/db/migrate.rs`). The server API generated from the contract is the
//! crate `athena-api` (`generated/athena-api`), with a `build.rs` of its own.

use std::path::Path;

fn main() {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    println!("cargo:rerun-if-changed=build.rs");
    let mut out = String::new();
    embed_migrations(&manifest, "migrations", "MIGRATIONS", &mut out);
    embed_migrations(
        &manifest,
        "migrations/tenant",
        "TENANT_MIGRATIONS",
        &mut out,
    );
    let target = Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("migrations.rs");
    std::fs::write(&target, out).unwrap_or_else(|e| panic!("writing {}: {e}", target.display()));
}

/// Embeds `<dir>/NNNN_name.sql` as `<name>: [(version, name, sql)]`.
fn embed_migrations(manifest: &str, dir: &str, name: &str, out: &mut String) {
    println!("cargo:rerun-if-changed={dir}");
    let rel = dir;
    let dir = Path::new(manifest).join(dir);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .collect();
    files.sort();
    out.push_str(&format!(
        "/// Migrations of `{rel}/`: (version, name, sql), in order.\npub static {name}: &[(i64, &str, &str)] = &[\n"
    ));
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
}
