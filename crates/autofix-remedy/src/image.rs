//! Container image references and kustomize `images:` overrides.

use serde_json::Value;

/// An image reference split as kustomize splits it: `name[:tag][@digest]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ImageRef {
    pub name: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl ImageRef {
    pub fn parse(image: &str) -> ImageRef {
        let (rest, digest) = match image.split_once('@') {
            Some((rest, digest)) => (rest, Some(digest.to_string())),
            None => (image, None),
        };
        // A `:` before the last `/` is a registry port, not a tag.
        let last_part = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_part..].rfind(':') {
            Some(i) => (
                &rest[..last_part + i],
                Some(rest[last_part + i + 1..].to_string()),
            ),
            None => (rest, None),
        };
        ImageRef {
            name: name.to_string(),
            tag,
            digest,
        }
    }

    pub fn render(&self) -> String {
        let mut out = self.name.clone();
        if let Some(tag) = &self.tag {
            out.push(':');
            out.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            out.push('@');
            out.push_str(digest);
        }
        out
    }
}

/// One kustomize `images:` entry: `name`, and optionally `newName`, `newTag`, `digest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ImageOverride {
    pub name: String,
    pub new_name: Option<String>,
    pub new_tag: Option<String>,
    pub digest: Option<String>,
}

impl ImageOverride {
    /// Reads an entry; `None` when it has no `name`.
    pub fn from_value(entry: &Value) -> Option<ImageOverride> {
        // `newTag: 1.2` is read as a number; kustomize uses the text.
        let text = |key: &str| match entry.get(key)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        };
        Some(ImageOverride {
            name: text("name")?,
            new_name: text("newName"),
            new_tag: text("newTag"),
            digest: text("digest"),
        })
    }

    /// The image after this override, or `None` when it does not apply to `image`.
    pub fn apply(&self, image: &str) -> Option<String> {
        let mut parsed = ImageRef::parse(image);
        if parsed.name != self.name {
            return None;
        }
        if let Some(name) = &self.new_name {
            parsed.name = name.clone();
        }
        if let Some(digest) = &self.digest {
            parsed.tag = None;
            parsed.digest = Some(digest.clone());
        } else if let Some(tag) = &self.new_tag {
            parsed.tag = Some(tag.clone());
            parsed.digest = None;
        }
        Some(parsed.render())
    }

    /// True when the override changes something (an entry with only `name` changes nothing).
    pub fn changes_image(&self) -> bool {
        self.new_name.is_some() || self.new_tag.is_some() || self.digest.is_some()
    }

    /// The fields of this entry to set so that `before` (the image this override receives)
    /// becomes `wanted`; `Err` explains what cannot be done by setting fields.
    pub fn edits_for(
        &self,
        before: &str,
        wanted: &str,
    ) -> Result<Vec<(&'static str, Value)>, String> {
        let before = ImageRef::parse(before);
        let wanted = ImageRef::parse(wanted);
        let mut edits = Vec::new();
        let name_now = self.new_name.as_ref().unwrap_or(&before.name);
        if &wanted.name != name_now {
            edits.push(("newName", Value::String(wanted.name.clone())));
        }
        match (&wanted.digest, &wanted.tag) {
            (Some(_), Some(_)) => {
                return Err(
                    "the new image has both a tag and a digest, which kustomize cannot express"
                        .into(),
                );
            }
            (Some(digest), None) => {
                if self.digest.as_ref() != Some(digest) {
                    edits.push(("digest", Value::String(digest.clone())));
                }
            }
            (None, Some(tag)) => {
                if self.digest.is_some() {
                    return Err("the override pins a digest; remove it by hand to use a tag".into());
                }
                // `newTag` also drops a digest the image had.
                let tag_now = self.new_tag.as_ref().or(before.tag.as_ref());
                let digest_now = before.digest.as_ref().filter(|_| self.new_tag.is_none());
                if tag_now != Some(tag) || digest_now.is_some() {
                    edits.push(("newTag", Value::String(tag.clone())));
                }
            }
            (None, None) => {
                if self.digest.is_some() || self.new_tag.is_some() {
                    return Err(
                        "the new image has no tag but the override sets one; edit it by hand"
                            .into(),
                    );
                }
            }
        }
        Ok(edits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn splits_registry_ports_tags_and_digests() {
        let r = ImageRef::parse("reg.example.com:5000/team/app:1.2@sha256:abc");
        assert_eq!(r.name, "reg.example.com:5000/team/app");
        assert_eq!(r.tag.as_deref(), Some("1.2"));
        assert_eq!(r.digest.as_deref(), Some("sha256:abc"));
        assert_eq!(r.render(), "reg.example.com:5000/team/app:1.2@sha256:abc");
        assert_eq!(ImageRef::parse("reg:5000/app").tag, None);
    }

    #[test]
    fn applies_overrides_like_kustomize() {
        let o =
            ImageOverride::from_value(&json!({"name": "app", "newName": "reg/app", "newTag": 2}))
                .unwrap();
        assert_eq!(o.apply("app:1").as_deref(), Some("reg/app:2"));
        assert_eq!(o.apply("other:1"), None);
        let d = ImageOverride::from_value(&json!({"name": "app", "digest": "sha256:x"})).unwrap();
        assert_eq!(d.apply("app:1").as_deref(), Some("app@sha256:x"));
    }

    #[test]
    fn plans_the_fields_to_set() {
        let o =
            ImageOverride::from_value(&json!({"name": "reg/app", "newTag": "2.14.00"})).unwrap();
        assert_eq!(
            o.edits_for("reg/app:latest", "reg/app:2.14.0").unwrap(),
            vec![("newTag", json!("2.14.0"))]
        );
        assert_eq!(
            o.edits_for("reg/app:latest", "mirror/app:2.14.00").unwrap(),
            vec![("newName", json!("mirror/app"))]
        );
        let pinned =
            ImageOverride::from_value(&json!({"name": "reg/app", "digest": "sha256:x"})).unwrap();
        assert!(pinned.edits_for("reg/app:1", "reg/app:2").is_err());
    }
}
