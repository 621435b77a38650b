//! Inputs the cargo-fuzz targets (`fuzz/`, see docs/fuzzing.md) found, minimized, kept so the
//! bugs they showed stay fixed.

use autofix_core::quantity::{Quantity, format_cpu, format_memory};
use autofix_core::yaml::parse_documents;
use serde_json::json;

/// `quantity` target: huge quantities were capped at `u64::MAX` when formatted, so `1E` cores
/// came out as `18446744073709551615m` (about 1.8e16 cores).
#[test]
fn huge_quantities_format_without_capping() {
    let q = Quantity::parse(std::str::from_utf8(b"1E").unwrap()).unwrap();
    assert_eq!(q, Quantity(1e18));
    assert_eq!(format_cpu(q.0), "1000000000000000000");
    assert_eq!(Quantity::parse(&format_cpu(q.0)), Some(q));
    let bytes = 1e30;
    let back = Quantity::parse(&format_memory(bytes)).unwrap();
    assert!(
        back.0 >= bytes && back.0 - bytes <= 1048576.0 * 1e15,
        "{}",
        format_memory(bytes)
    );
}

/// `quantity` target: past 1.8e305 cores the millicores overflowed to infinity and
/// `format_cpu` wrote `infm`, which is no quantity.
#[test]
fn cpu_too_large_for_millicores_formats_as_whole_cores() {
    let q = Quantity::parse(std::str::from_utf8(b"252.e305").unwrap()).unwrap();
    let text = format_cpu(q.0);
    assert_eq!(Quantity::parse(&text), Some(q), "{text}");
}

/// A number that is finite but overflows once scaled by its suffix is no quantity (it used to
/// parse as infinity).
#[test]
fn overflowing_suffix_is_refused() {
    assert_eq!(Quantity::parse("1e308Ki"), None);
    assert_eq!(Quantity::parse("1e300E"), None);
    assert_eq!(Quantity::parse("1e308"), Some(Quantity(1e308)));
}

/// Ordinary values keep their old spelling; -0 and negatives still give 0.
#[test]
fn ordinary_values_format_as_before() {
    assert_eq!(format_cpu(0.25), "250m");
    assert_eq!(format_cpu(2.0), "2");
    assert_eq!(format_cpu(-0.0), "0");
    assert_eq!(format_cpu(-1.0), "0");
    assert_eq!(format_memory(-0.0), "0Mi");
    assert_eq!(format_memory(1.0), "1Mi");
    assert_eq!(format_memory(3.0 * 1073741824.0), "3Gi");
}

/// `yaml_parse` target: a plain scalar over several lines keeps a line break for each blank
/// line in it (YAML 1.2, 7.3.1), even one holding spaces. The fast reader resolved `1000\n}`
/// by reading it again as a document of its own, which folded the break into a space.
#[test]
fn a_blank_line_in_a_plain_scalar_stays_a_line_break() {
    let docs = parse_documents("a: 1000\n  \n  }\n").unwrap();
    assert_eq!(docs, vec![json!({"a": "1000\n}"})]);
}
