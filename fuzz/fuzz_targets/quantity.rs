//! Kubernetes quantities (`128Mi`, `250m`, `1e3`): [`Quantity::parse`] never panics and gives a
//! finite, non-negative number; formatting it as memory or CPU and parsing that again gives the
//! same value within the format's precision (memory rounds up to whole `Mi`, CPU to the nearest
//! millicore); comparisons never panic.
#![no_main]

use autofix_core::quantity::{Quantity, format_cpu, format_memory};
use libfuzzer_sys::fuzz_target;

const MI: f64 = 1048576.0;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Two quantities: the text up to the first `|`, and the rest, for comparisons.
    let (first, second) = text.split_once('|').unwrap_or((text, "1"));
    let Some(q) = Quantity::parse(first) else {
        return;
    };
    assert!(q.0.is_finite() && q.0 >= 0.0, "{first:?} parsed as {q:?}");
    if let Some(other) = Quantity::parse(second) {
        let _ = q.partial_cmp(&other);
        let _ = q < other;
        let _ = q.0.max(other.0);
    }

    let memory = format_memory(q.0);
    let back = Quantity::parse(&memory).unwrap_or_else(|| {
        panic!("{first:?}: format_memory gave {memory:?}, which does not parse")
    });
    assert!(
        back.0 >= q.0 - q.0 * 1e-12 - 1e-300 && back.0 - q.0 <= MI + q.0 * 1e-12,
        "{first:?} = {} bytes formats as {memory:?} = {} bytes",
        q.0,
        back.0
    );

    let cpu = format_cpu(q.0);
    let back = Quantity::parse(&cpu)
        .unwrap_or_else(|| panic!("{first:?}: format_cpu gave {cpu:?}, which does not parse"));
    assert!(
        (back.0 - q.0).abs() <= 0.0005 + q.0 * 1e-12,
        "{first:?} = {} cores formats as {cpu:?} = {} cores",
        q.0,
        back.0
    );
});
