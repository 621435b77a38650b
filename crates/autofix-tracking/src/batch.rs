//! MLflow's `runs/log-batch` limits, enforced on the client side.
//!
//! The server rejects a whole batch when one item breaks a limit, so everything is made to fit
//! before sending: keys are cleaned to the characters MLflow accepts and cut to
//! [`MAX_KEY_CHARS`], values cut to [`MAX_PARAM_VALUE_CHARS`] / [`MAX_TAG_VALUE_CHARS`],
//! non-finite metric values dropped (JSON cannot carry them), and the items split into batches
//! within the count and size limits. Lengths are counted in characters, as MLflow (Python) does.

use serde::{Deserialize, Serialize};

/// Most metrics in one `log-batch` request.
pub const MAX_METRICS: usize = 1000;
/// Most params in one `log-batch` request.
pub const MAX_PARAMS: usize = 100;
/// Most tags in one `log-batch` request.
pub const MAX_TAGS: usize = 100;
/// Most items (metrics + params + tags) in one `log-batch` request.
pub const MAX_ITEMS: usize = 1000;
/// Largest `log-batch` request body, in bytes (MLflow allows 1 MB; the margin covers the
/// envelope and the run id).
pub const MAX_BATCH_BYTES: usize = 1_000_000 - 4_096;
/// Longest param value, in characters.
pub const MAX_PARAM_VALUE_CHARS: usize = 6000;
/// Longest tag value, in characters.
pub const MAX_TAG_VALUE_CHARS: usize = 8000;
/// Longest metric, param or tag key, in characters.
pub const MAX_KEY_CHARS: usize = 250;

/// A metric point: MLflow keeps every (timestamp, step, value) of a key as its history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    /// Metric name.
    pub key: String,
    /// Value.
    pub value: f64,
    /// Milliseconds since the Unix epoch.
    pub timestamp: i64,
    /// Step (kube-autofix: the iteration).
    pub step: i64,
}

/// A run parameter: write-once, MLflow refuses a second value for the same key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Param {
    /// Name.
    pub key: String,
    /// Value (MLflow may omit an empty one).
    #[serde(default)]
    pub value: String,
}

/// A run tag: may be overwritten.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    /// Name.
    pub key: String,
    /// Value (MLflow may omit an empty one).
    #[serde(default)]
    pub value: String,
}

impl Metric {
    /// A point of `key` at step 0, stamped now.
    pub fn now(key: &str, value: f64) -> Metric {
        Metric {
            key: key.to_string(),
            value,
            timestamp: crate::record::now_ms(),
            step: 0,
        }
    }
}

impl Param {
    /// A param.
    pub fn new(key: &str, value: &str) -> Param {
        Param {
            key: key.to_string(),
            value: value.to_string(),
        }
    }
}

impl Tag {
    /// A tag.
    pub fn new(key: &str, value: &str) -> Tag {
        Tag {
            key: key.to_string(),
            value: value.to_string(),
        }
    }
}

/// One `runs/log-batch` request body, within every limit.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Batch {
    /// Metric points.
    pub metrics: Vec<Metric>,
    /// Params.
    pub params: Vec<Param>,
    /// Tags.
    pub tags: Vec<Tag>,
}

impl Batch {
    fn len(&self) -> usize {
        self.metrics.len() + self.params.len() + self.tags.len()
    }
}

/// A key MLflow accepts: characters outside alphanumerics, `_ - . / : ` and space become `_`;
/// at most [`MAX_KEY_CHARS`].
pub fn clean_key(key: &str) -> String {
    let cleaned: String = key
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | ':' | ' ') {
                c
            } else {
                '_'
            }
        })
        .take(MAX_KEY_CHARS)
        .collect();
    if cleaned.is_empty() {
        "_".to_string()
    } else {
        cleaned
    }
}

/// The first `max` characters of `value`, ending in `...` when cut.
pub fn truncate(value: &str, max: usize) -> String {
    if value.chars().count() <= max {
        return value.to_string();
    }
    let kept: String = value.chars().take(max.saturating_sub(3)).collect();
    format!("{kept}...")
}

/// Bytes an item adds to a request body (its JSON plus a separator).
fn size<T: Serialize>(item: &T) -> usize {
    serde_json::to_vec(item).map_or(0, |v| v.len()) + 1
}

/// Cleans every item and splits them into batches within every `log-batch` limit.
///
/// Order is kept within each kind; params come first so a run shows its configuration even
/// when a later batch fails.
pub fn chunk(metrics: &[Metric], params: &[Param], tags: &[Tag]) -> Vec<Batch> {
    let mut batches = Vec::new();
    let mut current = Batch::default();
    let mut bytes = 0;
    let mut push = |item: Item, batches: &mut Vec<Batch>| {
        let item_bytes = match &item {
            Item::Metric(m) => size(m),
            Item::Param(p) => size(p),
            Item::Tag(t) => size(t),
        };
        let full = match &item {
            Item::Metric(_) => current.metrics.len() >= MAX_METRICS,
            Item::Param(_) => current.params.len() >= MAX_PARAMS,
            Item::Tag(_) => current.tags.len() >= MAX_TAGS,
        } || current.len() >= MAX_ITEMS
            || bytes + item_bytes > MAX_BATCH_BYTES;
        if full && current.len() > 0 {
            batches.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes += item_bytes;
        match item {
            Item::Metric(m) => current.metrics.push(m),
            Item::Param(p) => current.params.push(p),
            Item::Tag(t) => current.tags.push(t),
        }
    };
    for p in params {
        let param = Param {
            key: clean_key(&p.key),
            value: truncate(&p.value, MAX_PARAM_VALUE_CHARS),
        };
        push(Item::Param(param), &mut batches);
    }
    for t in tags {
        let tag = Tag {
            key: clean_key(&t.key),
            value: truncate(&t.value, MAX_TAG_VALUE_CHARS),
        };
        push(Item::Tag(tag), &mut batches);
    }
    for m in metrics.iter().filter(|m| m.value.is_finite()) {
        let metric = Metric {
            key: clean_key(&m.key),
            ..m.clone()
        };
        push(Item::Metric(metric), &mut batches);
    }
    if current.len() > 0 {
        batches.push(current);
    }
    batches
}

enum Item {
    Metric(Metric),
    Param(Param),
    Tag(Tag),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metric(i: usize) -> Metric {
        Metric {
            key: format!("m{}", i % 7),
            value: i as f64,
            timestamp: 1,
            step: i as i64,
        }
    }

    fn param(i: usize, len: usize) -> Param {
        Param {
            key: format!("p{i}"),
            value: "v".repeat(len),
        }
    }

    fn tag(i: usize, len: usize) -> Tag {
        Tag {
            key: format!("t{i}"),
            value: "é".repeat(len),
        }
    }

    fn body_len(b: &Batch) -> usize {
        serde_json::to_vec(b).map_or(usize::MAX, |v| v.len())
    }

    #[test]
    fn counts_stay_within_limits_and_nothing_is_lost() {
        let metrics: Vec<Metric> = (0..2500).map(metric).collect();
        let params: Vec<Param> = (0..250).map(|i| param(i, 10)).collect();
        let tags: Vec<Tag> = (0..150).map(|i| tag(i, 10)).collect();
        let batches = chunk(&metrics, &params, &tags);
        for b in &batches {
            assert!(b.metrics.len() <= MAX_METRICS);
            assert!(b.params.len() <= MAX_PARAMS);
            assert!(b.tags.len() <= MAX_TAGS);
            assert!(b.len() <= MAX_ITEMS);
            assert!(body_len(b) <= MAX_BATCH_BYTES);
        }
        let total = |f: fn(&Batch) -> usize| batches.iter().map(f).sum::<usize>();
        assert_eq!(total(|b| b.metrics.len()), 2500);
        assert_eq!(total(|b| b.params.len()), 250);
        assert_eq!(total(|b| b.tags.len()), 150);
        let steps: Vec<i64> = batches
            .iter()
            .flat_map(|b| &b.metrics)
            .map(|m| m.step)
            .collect();
        assert!(steps.windows(2).all(|w| w[0] < w[1]), "order is kept");
    }

    #[test]
    fn large_values_are_cut_and_split_by_size() {
        // 100 params of 6000 chars and 100 tags of 8000 two-byte chars: ~2.2 MB in all.
        let params: Vec<Param> = (0..100).map(|i| param(i, 9000)).collect();
        let tags: Vec<Tag> = (0..100).map(|i| tag(i, 20_000)).collect();
        let batches = chunk(&[], &params, &tags);
        assert!(batches.len() >= 3, "split by bytes: {}", batches.len());
        for b in &batches {
            assert!(body_len(b) <= MAX_BATCH_BYTES, "{}", body_len(b));
            for p in &b.params {
                assert_eq!(p.value.chars().count(), MAX_PARAM_VALUE_CHARS);
                assert!(p.value.ends_with("..."));
            }
            for t in &b.tags {
                assert_eq!(t.value.chars().count(), MAX_TAG_VALUE_CHARS);
            }
        }
        assert_eq!(batches.iter().map(Batch::len).sum::<usize>(), 200);
    }

    #[test]
    fn keys_are_cleaned_and_cut() {
        let long = "k".repeat(400);
        assert_eq!(clean_key(&long).chars().count(), MAX_KEY_CHARS);
        assert_eq!(clean_key("latency_evidence_ms"), "latency_evidence_ms");
        assert_eq!(clean_key("risk/blast radius:x"), "risk/blast radius:x");
        assert_eq!(clean_key("a=b\"c"), "a_b_c");
        assert_eq!(clean_key(""), "_");
    }

    #[test]
    fn short_values_are_kept_and_non_finite_metrics_dropped() {
        assert_eq!(truncate("short", 10), "short");
        assert_eq!(truncate("ééééé", 5), "ééééé");
        assert_eq!(truncate("éééééé", 5), "éé...");
        let metrics = [
            Metric {
                value: f64::NAN,
                ..metric(0)
            },
            Metric {
                value: f64::INFINITY,
                ..metric(1)
            },
            metric(2),
        ];
        let batches = chunk(&metrics, &[], &[]);
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].metrics, vec![metric(2)]);
        assert!(chunk(&[], &[], &[]).is_empty());
    }
}
