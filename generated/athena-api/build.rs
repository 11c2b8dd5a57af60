//! Generates the server API (models, parameters, responses, operations,
//! family traits, dispatch) from `openapi/openapi.yaml` into
//! `OUT_DIR/athena_api.rs`, which `src/lib.rs` includes. The families
//! (`openapi/families.yaml`) and the SDK overlay (`openapi/sdk-overlay.yaml`)
//! are compiled into `athena-codegen`, so editing them reruns this too.

use std::path::Path;

fn main() {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let spec = Path::new(&manifest).join("../../openapi/openapi.yaml");
    println!("cargo:rerun-if-changed={}", spec.display());
    println!("cargo:rerun-if-changed=build.rs");

    let contract = athena_codegen::Contract::load(&spec)
        .unwrap_or_else(|e| panic!("openapi/openapi.yaml: {e}"));
    let code = athena_codegen::server::generate(&contract)
        .unwrap_or_else(|e| panic!("generating the server API from openapi/openapi.yaml: {e}"));
    let out =
        Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("athena_api.rs");
    // Unchanged code keeps its timestamp (a rerun that regenerates the same
    // text does not make the crate look modified).
    if std::fs::read_to_string(&out).ok().as_deref() != Some(code.as_str()) {
        std::fs::write(&out, code).unwrap_or_else(|e| panic!("writing {}: {e}", out.display()));
    }
}
