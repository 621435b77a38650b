//! Generated Kubernetes-like manifests in many writing styles: setting any scalar changes that
//! line only, and the file reads back with exactly that value changed.

use super::*;
use crate::format::plain_safe;
use autofix_core::yaml::parse_documents;
use proptest::prelude::*;
use serde_json::json;

/// A tiny deterministic generator for the many small style choices of one manifest.
struct Dice(u64);

impl Dice {
    fn roll(&mut self, sides: u64) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % sides
    }

    fn one_in(&mut self, sides: u64) -> bool {
        self.roll(sides) == 0
    }
}

/// A node to print.
enum G {
    Leaf(Value),
    FlowList(Vec<Value>),
    /// Header (`|`, `>-`...) and content lines.
    Block(&'static str, &'static [&'static str]),
    Map(Vec<(&'static str, G)>),
    List(Vec<G>),
    /// A mapping with an anchor.
    Anchored(&'static str, Vec<(&'static str, G)>),
    Alias(&'static str),
}

fn leaf(s: &str) -> G {
    G::Leaf(json!(s))
}

fn container(i: usize, dice: &mut Dice) -> G {
    let limits_cpu = if dice.one_in(2) {
        json!("1")
    } else {
        json!("500m")
    };
    let args = || G::FlowList(vec![json!("--port"), json!("8080"), json!("a b")]);
    let args_last = dice.one_in(2);
    let mut entries = vec![
        ("name", G::Leaf(json!(format!("c{i}")))),
        (
            "image",
            G::Leaf(json!(format!("registry.example.com/app:1.{i}.0"))),
        ),
    ];
    if !args_last {
        entries.push(("args", args()));
    }
    entries.extend([
        (
            "env",
            G::List(vec![
                G::Map(vec![("name", leaf("MODE")), ("value", leaf("fast"))]),
                G::Map(vec![
                    ("name", leaf("NOTE")),
                    ("value", G::Block(">-", &["folded text", "more text"])),
                ]),
            ]),
        ),
        (
            "resources",
            G::Map(vec![
                (
                    "requests",
                    G::Map(vec![("cpu", leaf("250m")), ("memory", leaf("64Mi"))]),
                ),
                (
                    "limits",
                    G::Map(vec![
                        ("cpu", G::Leaf(limits_cpu)),
                        ("memory", leaf("128Mi")),
                    ]),
                ),
            ]),
        ),
        (
            "readinessProbe",
            G::Map(vec![
                (
                    "httpGet",
                    G::Map(vec![
                        ("path", leaf("/readyz")),
                        ("port", G::Leaf(json!(8080))),
                    ]),
                ),
                ("periodSeconds", G::Leaf(json!(5))),
            ]),
        ),
    ]);
    if args_last {
        entries.push(("args", args()));
    }
    G::Map(entries)
}

fn deployment(containers: usize, anchors: bool, dice: &mut Dice) -> G {
    let labels = vec![("app", leaf("web")), ("tier", leaf("front"))];
    G::Map(vec![
        ("apiVersion", leaf("apps/v1")),
        ("kind", leaf("Deployment")),
        (
            "metadata",
            G::Map(vec![
                ("name", leaf("web")),
                ("namespace", leaf("shop")),
                (
                    "labels",
                    if anchors {
                        G::Anchored("labels", labels)
                    } else {
                        G::Map(labels)
                    },
                ),
                (
                    "annotations",
                    G::Map(vec![
                        (
                            "note",
                            G::Block("|", &["line one", "  indented two", "", "after blank"]),
                        ),
                        ("owner", leaf("team-a")),
                    ]),
                ),
            ]),
        ),
        (
            "spec",
            G::Map(vec![
                ("replicas", G::Leaf(json!(dice.roll(5) + 1))),
                (
                    "selector",
                    G::Map(vec![(
                        "matchLabels",
                        if anchors {
                            G::Alias("labels")
                        } else {
                            G::Map(vec![("app", leaf("web"))])
                        },
                    )]),
                ),
                (
                    "template",
                    G::Map(vec![(
                        "spec",
                        G::Map(vec![(
                            "containers",
                            G::List((0..containers).map(|i| container(i, dice)).collect()),
                        )]),
                    )]),
                ),
            ]),
        ),
    ])
}

/// A scalar that can be set: its path, its line, its value.
struct Target {
    path: FieldPath,
    line: usize,
    value: Value,
}

struct Printer {
    dice: Dice,
    unit: usize,
    indented: bool,
    lines: Vec<String>,
    targets: Vec<Target>,
    /// Block mappings that may get new keys.
    maps: Vec<FieldPath>,
}

impl Printer {
    fn scalar(&mut self, value: &Value, in_flow: bool) -> String {
        let Value::String(s) = value else {
            return value.to_string();
        };
        match self.dice.roll(3) {
            0 if plain_safe(s, in_flow) => s.clone(),
            1 => format!("'{}'", s.replace('\'', "''")),
            _ => serde_json::to_string(s).unwrap_or_default(),
        }
    }

    fn trailing(&mut self) -> String {
        if self.dice.one_in(3) {
            format!(" # note {}", self.dice.roll(100))
        } else {
            String::new()
        }
    }

    /// Prints mapping entries at column `col`; `first` replaces the indentation of the first
    /// entry (a list item's `- `).
    fn map(
        &mut self,
        entries: &[(&str, G)],
        col: usize,
        path: &FieldPath,
        targets: bool,
        first: Option<String>,
    ) {
        if targets {
            self.maps.push(path.clone());
        }
        for (i, (key, value)) in entries.iter().enumerate() {
            let pad = match (&first, i) {
                (Some(dash), 0) => dash.clone(),
                _ => {
                    if self.dice.one_in(4) {
                        let at = if self.dice.one_in(2) { 0 } else { col };
                        self.lines.push(format!(
                            "{}# comment {}",
                            " ".repeat(at),
                            self.dice.roll(100)
                        ));
                    }
                    " ".repeat(col)
                }
            };
            let here = path.key(key);
            match value {
                G::Leaf(v) => {
                    let text = self.scalar(v, false);
                    let trailing = self.trailing();
                    if targets {
                        self.targets.push(Target {
                            path: here,
                            line: self.lines.len(),
                            value: v.clone(),
                        });
                    }
                    self.lines.push(format!("{pad}{key}: {text}{trailing}"));
                }
                G::FlowList(items) => {
                    let mut texts = Vec::new();
                    for (j, item) in items.iter().enumerate() {
                        texts.push(self.scalar(item, true));
                        if targets {
                            let mut item_path = here.clone();
                            item_path.0.push(Segment::Index(j));
                            self.targets.push(Target {
                                path: item_path,
                                line: self.lines.len(),
                                value: item.clone(),
                            });
                        }
                    }
                    let trailing = self.trailing();
                    self.lines
                        .push(format!("{pad}{key}: [{}]{trailing}", texts.join(", ")));
                }
                G::Block(header, content) => {
                    let trailing = self.trailing();
                    self.lines.push(format!("{pad}{key}: {header}{trailing}"));
                    for line in content.iter() {
                        let inner = if line.is_empty() {
                            String::new()
                        } else {
                            " ".repeat(col + self.unit)
                        };
                        self.lines.push(format!("{inner}{line}"));
                    }
                }
                G::Map(inner) => {
                    let trailing = self.trailing();
                    self.lines.push(format!("{pad}{key}:{trailing}"));
                    self.map(inner, col + self.unit, &here, targets, None);
                }
                G::Anchored(anchor, inner) => {
                    self.lines.push(format!("{pad}{key}: &{anchor}"));
                    self.map(inner, col + self.unit, &here, false, None);
                }
                G::Alias(anchor) => {
                    let trailing = self.trailing();
                    self.lines.push(format!("{pad}{key}: *{anchor}{trailing}"));
                }
                G::List(items) => {
                    self.lines.push(format!("{pad}{key}:"));
                    let dash = col + if self.indented { self.unit } else { 0 };
                    for item in items {
                        let G::Map(entries) = item else { continue };
                        let item_path = match entries.first() {
                            Some(("name", G::Leaf(Value::String(name)))) => {
                                here.select("name", name)
                            }
                            _ => here.clone(),
                        };
                        self.map(
                            entries,
                            dash + 2,
                            &item_path,
                            targets,
                            Some(format!("{}- ", " ".repeat(dash))),
                        );
                    }
                }
            }
        }
    }
}

/// A ConfigMap document that is not the one edited.
const OTHER: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: other # keep\ndata:\n  k: \"v\"\n  conf: |\n    x=1\n";

const NEW_VALUES: &[&str] = &[
    "\"v2\"",
    "\"42\"",
    "\"1.5\"",
    "\"yes\"",
    "\"a b\"",
    "\"x: y\"",
    "\"it's\"",
    "\"q\\\"uote\"",
    "\"a,b\"",
    "\"é\"",
    "7",
    "true",
    "\"#hash\"",
    "\"\"",
    "\"null\"",
    "\"3500m\"",
    "8080",
];

/// A generated manifest: its text, the index of the deployment document, the printer's records.
fn manifest(
    (unit, indented, containers, anchors, before, after, seed): (
        usize,
        bool,
        usize,
        bool,
        usize,
        usize,
        u64,
    ),
) -> (String, usize, Printer) {
    let mut dice = Dice(seed);
    let doc = deployment(containers, anchors, &mut dice);
    let mut printer = Printer {
        dice,
        unit,
        indented,
        lines: Vec::new(),
        targets: Vec::new(),
        maps: Vec::new(),
    };
    for _ in 0..before {
        printer.lines.extend(OTHER.lines().map(String::from));
        printer.lines.push("---".into());
    }
    if printer.dice.one_in(2) {
        printer.lines.push("# the deployment".into());
    }
    if let G::Map(entries) = &doc {
        printer.map(entries, 0, &FieldPath::default(), true, None);
    }
    for _ in 0..after {
        printer.lines.push("--- # next".into());
        printer.lines.extend(OTHER.lines().map(String::from));
    }
    (printer.lines.join("\n") + "\n", before, printer)
}

fn styles() -> impl Strategy<Value = (usize, bool, usize, bool, usize, usize, u64)> {
    (
        prop_oneof![Just(2usize), Just(4usize)],
        any::<bool>(),
        1usize..=3,
        any::<bool>(),
        0usize..=2,
        0usize..=2,
        1u64..,
    )
}

fn read(text: &str) -> Result<Vec<Value>, TestCaseError> {
    parse_documents(text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn setting_a_scalar_changes_only_its_line(
        style in styles(),
        pick in any::<prop::sample::Index>(),
        new_value in prop::sample::select(NEW_VALUES),
    ) {
        let (text, doc, printer) = manifest(style);
        let docs = read(&text)?;
        let target = pick.get(&printer.targets);
        prop_assert_eq!(target.path.get(&docs[doc]), Some(&target.value), "generator: {}", text);

        let value: Value = serde_json::from_str(new_value).unwrap();
        let edited = set(&text, "gen.yaml", doc, &target.path, &value)
            .map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;

        let old_lines: Vec<&str> = text.split('\n').collect();
        let new_lines: Vec<&str> = edited.split('\n').collect();
        prop_assert_eq!(old_lines.len(), new_lines.len(), "{}", edited);
        for (i, (old, new)) in old_lines.iter().zip(&new_lines).enumerate() {
            if i != target.line {
                prop_assert_eq!(old, new, "line {} of\n{}", i, edited);
            }
        }
        let mut expected = docs.clone();
        prop_assert!(target.path.set(&mut expected[doc], value.clone()));
        prop_assert_eq!(read(&edited)?, expected, "{}", edited);
    }

    #[test]
    fn adding_a_key_only_inserts_lines(
        style in styles(),
        pick in any::<prop::sample::Index>(),
        new_value in prop::sample::select(NEW_VALUES),
        nested in any::<bool>(),
    ) {
        let (text, doc, printer) = manifest(style);
        let docs = read(&text)?;
        let parent = pick.get(&printer.maps);
        let path = if nested { parent.key("zz").key("new") } else { parent.key("zz") };
        let value: Value = serde_json::from_str(new_value).unwrap();
        let edited = set(&text, "gen.yaml", doc, &path, &value)
            .map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;

        let old_lines: Vec<&str> = text.split('\n').collect();
        let new_lines: Vec<&str> = edited.split('\n').collect();
        let added = new_lines.len() - old_lines.len();
        prop_assert_eq!(added, if nested { 2 } else { 1 });
        let at = old_lines.iter().zip(&new_lines).position(|(o, n)| o != n).unwrap_or(old_lines.len());
        prop_assert_eq!(&new_lines[..at], &old_lines[..at]);
        prop_assert_eq!(&new_lines[at + added..], &old_lines[at..], "{}", edited);

        let mut expected = docs.clone();
        prop_assert!(path.set(&mut expected[doc], value.clone()));
        prop_assert_eq!(read(&edited)?, expected, "{}", edited);
    }
}

#[test]
fn prints_a_sample() {
    let (text, _, printer) = manifest((4, false, 2, true, 1, 1, 7));
    assert!(printer.targets.len() > 20);
    assert!(parse_documents(&text).is_ok(), "{text}");
}
