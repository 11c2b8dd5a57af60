//! Every operation of the contract is a method of the generated client.
//!
//! Three independent checks, any of which fails if progenitor drops an
//! operation: the operationIds handed to progenitor (`OPERATION_NAMES`) are
//! exactly the contract's operation names; the generated source defines a
//! builder method and a `send` for each; and each method is referenced by
//! path (`method_refs.rs`, which would not compile without it).

use athena_codegen::Contract;
use std::collections::BTreeSet;
use std::path::Path;

include!(concat!(env!("OUT_DIR"), "/method_refs.rs"));

const GENERATED: &str = include_str!(concat!(env!("OUT_DIR"), "/athena_client.rs"));

fn contract_names() -> BTreeSet<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../openapi/openapi.yaml");
    let contract = Contract::load(&path).expect("the contract loads");
    let names: BTreeSet<String> = contract.operations.iter().map(|o| o.name.clone()).collect();
    assert_eq!(
        names.len(),
        contract.operations.len(),
        "operation names are unique"
    );
    names
}

#[test]
fn every_operation_is_a_client_method() {
    let expected = contract_names();

    let given: BTreeSet<String> = athena_client::OPERATION_NAMES
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(
        given, expected,
        "operationIds given to progenitor differ from the contract's operations"
    );

    let referenced: BTreeSet<String> = client_method_refs()
        .into_iter()
        .map(str::to_string)
        .collect();
    assert_eq!(referenced, expected);

    // prettyplease wraps long signatures: compare with whitespace removed.
    let source: String = GENERATED.chars().filter(|c| !c.is_whitespace()).collect();
    let mut missing = Vec::new();
    for name in &expected {
        let method = format!("pubfn{name}(&self");
        let defined = source.match_indices(&method).any(|(i, m)| {
            let rest = &source[i + m.len()..];
            rest.starts_with(")->builder::") || rest.starts_with(",)->builder::")
        });
        let sent = source.contains(&format!("operation_id:\"{name}\""));
        if !defined || !sent {
            missing.push(name.clone());
        }
    }
    let present = expected.len() - missing.len();
    println!("client methods: {present}/{}", expected.len());
    assert!(
        missing.is_empty(),
        "missing from the generated client: {missing:?}"
    );
}
