//! Finding the pod spec and its containers inside a workload object.

use crate::paths::item_segment;
use autofix_core::{FieldPath, WorkloadKind};
use serde_json::Value;

/// The pod spec's lists of containers; ephemeral containers are added by `kubectl debug` and
/// can carry the same privileges.
const CONTAINER_LISTS: [&str; 3] = ["containers", "initContainers", "ephemeralContainers"];

/// Where the pod spec sits in an object of this kind.
pub(crate) fn pod_spec_path(kind: WorkloadKind) -> FieldPath {
    FieldPath::must(kind.pod_spec_prefix())
}

/// One container of a pod spec.
pub(crate) struct Container<'a> {
    /// Its path from the object root, e.g. `spec.template.spec.containers[name=cart]`.
    pub path: FieldPath,
    /// Which list it is in (`containers`, `initContainers` or `ephemeralContainers`).
    pub list: &'static str,
    /// Its `name`, when it has one.
    pub name: Option<&'a str>,
    /// The container object.
    pub value: &'a Value,
}

/// Every container of the object's pod spec, in list order.
pub(crate) fn containers(object: &Value, kind: WorkloadKind) -> Vec<Container<'_>> {
    let spec_path = pod_spec_path(kind);
    let Some(spec) = spec_path.get(object) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for list in CONTAINER_LISTS {
        let Some(items) = spec.get(list).and_then(Value::as_array) else {
            continue;
        };
        for (index, value) in items.iter().enumerate() {
            let mut path = spec_path.key(list);
            path.0.push(item_segment(items, index));
            out.push(Container {
                path,
                list,
                name: value.get("name").and_then(Value::as_str),
                value,
            });
        }
    }
    out
}
