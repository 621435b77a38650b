//! The safe reader ([`autofix_core::yaml::parse_documents`]) on arbitrary texts, against
//! serde-saphyr alone.
//!
//! `parse_documents` builds plain data straight from the parser's events and leaves the rest to
//! serde-saphyr (see `autofix_core::yaml`). Property: nothing panics, and it answers exactly
//! what serde-saphyr answers: the same documents (empty ones left out), or an error when
//! serde-saphyr has one.
#![no_main]

use autofix_core::yaml::parse_documents;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let ours = parse_documents(text);
    let reference = serde_saphyr::from_multiple::<Value>(text)
        .map(|docs| docs.into_iter().filter(|d| !d.is_null()).collect::<Vec<_>>());
    match (ours, reference) {
        (Ok(ours), Ok(reference)) => assert_eq!(ours, reference, "different values"),
        (Err(_), Err(_)) => {}
        (ours, reference) => panic!("ours: {ours:?}\nserde-saphyr: {reference:?}"),
    }
});
