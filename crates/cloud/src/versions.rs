//! The S3 XML answers object_store does not parse for us: `ListObjectVersions` (to delete
//! every version of a key on a versioned bucket) and `GetBucketVersioning`.

use serde::Deserialize;

/// One version or delete marker of a key, from a `ListObjectVersions` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionEntry {
    /// Full key in the bucket (including the store's prefix).
    pub key: String,
    /// Version id (`null` for objects written before versioning was enabled).
    pub version_id: String,
    /// True for a delete marker, false for an object version.
    pub delete_marker: bool,
}

/// One page of a `ListObjectVersions` answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VersionPage {
    /// Versions and delete markers on this page.
    pub entries: Vec<VersionEntry>,
    /// `(key-marker, version-id-marker)` for the next page when the answer was truncated.
    pub next: Option<(String, String)>,
}

/// A `ListObjectVersions` or `GetBucketVersioning` answer that is not the XML we expect.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed S3 XML answer: {0}")]
pub struct XmlError(pub String);

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListVersionsResult {
    #[serde(default)]
    is_truncated: Option<String>,
    #[serde(default)]
    next_key_marker: Option<String>,
    #[serde(default)]
    next_version_id_marker: Option<String>,
    #[serde(default, rename = "Version")]
    versions: Vec<Entry>,
    #[serde(default, rename = "DeleteMarker")]
    delete_markers: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Entry {
    key: String,
    #[serde(default)]
    version_id: Option<String>,
}

/// Parses a `ListObjectVersions` (`GET /bucket?versions`) answer body. Untrusted input:
/// never panics (fuzz target `cloud_list_versions`).
pub fn parse_list_versions(xml: &[u8]) -> Result<VersionPage, XmlError> {
    let text = std::str::from_utf8(xml).map_err(|e| XmlError(e.to_string()))?;
    let r: ListVersionsResult =
        quick_xml::de::from_str(text).map_err(|e| XmlError(e.to_string()))?;
    let truncated = matches!(r.is_truncated.as_deref().map(str::trim), Some("true"));
    let next = if truncated {
        match (r.next_key_marker, r.next_version_id_marker) {
            (Some(k), v) if !k.is_empty() => Some((k, v.unwrap_or_default())),
            _ => {
                return Err(XmlError(
                    "IsTruncated is true but NextKeyMarker is missing".into(),
                ));
            }
        }
    } else {
        None
    };
    let mut entries = Vec::with_capacity(r.versions.len() + r.delete_markers.len());
    for (list, marker) in [(r.versions, false), (r.delete_markers, true)] {
        for e in list {
            entries.push(VersionEntry {
                key: e.key,
                version_id: e.version_id.unwrap_or_else(|| "null".to_string()),
                delete_marker: marker,
            });
        }
    }
    Ok(VersionPage { entries, next })
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct VersioningConfiguration {
    #[serde(default)]
    status: Option<String>,
}

/// Versioning state of a bucket, from `GetBucketVersioning`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Versioning {
    /// Never enabled: a DELETE removes the object.
    Off,
    /// Enabled: a DELETE only adds a delete marker (Backblaze B2 buckets are always so).
    Enabled,
    /// Was enabled, now suspended: old versions remain.
    Suspended,
}

/// Parses a `GetBucketVersioning` answer body.
pub fn parse_versioning(xml: &[u8]) -> Result<Versioning, XmlError> {
    let text = std::str::from_utf8(xml).map_err(|e| XmlError(e.to_string()))?;
    let c: VersioningConfiguration =
        quick_xml::de::from_str(text).map_err(|e| XmlError(e.to_string()))?;
    match c.status.as_deref().map(str::trim) {
        None | Some("") => Ok(Versioning::Off),
        Some("Enabled") => Ok(Versioning::Enabled),
        Some("Suspended") => Ok(Versioning::Suspended),
        Some(other) => Err(XmlError(format!("unknown versioning status {other:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_interleaved_versions_and_markers() {
        let xml = br#"<?xml version="1.0" encoding="UTF-8"?>
<ListVersionsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>b</Name><Prefix>k</Prefix><KeyMarker></KeyMarker><VersionIdMarker></VersionIdMarker>
  <MaxKeys>1000</MaxKeys><IsTruncated>true</IsTruncated>
  <NextKeyMarker>k</NextKeyMarker><NextVersionIdMarker>v3</NextVersionIdMarker>
  <DeleteMarker><Key>k</Key><VersionId>v1</VersionId><IsLatest>true</IsLatest></DeleteMarker>
  <Version><Key>k</Key><VersionId>v2</VersionId><IsLatest>false</IsLatest><Size>3</Size></Version>
  <DeleteMarker><Key>k</Key><VersionId>v0</VersionId><IsLatest>false</IsLatest></DeleteMarker>
  <Version><Key>k</Key><VersionId>v3</VersionId><IsLatest>false</IsLatest><Size>3</Size></Version>
</ListVersionsResult>"#;
        let page = parse_list_versions(xml).unwrap();
        assert_eq!(page.next, Some(("k".into(), "v3".into())));
        let versions: Vec<_> = page.entries.iter().filter(|e| !e.delete_marker).collect();
        let markers: Vec<_> = page.entries.iter().filter(|e| e.delete_marker).collect();
        assert_eq!(versions.len(), 2);
        assert_eq!(markers.len(), 2);
        assert_eq!(markers[0].version_id, "v1");
    }

    #[test]
    fn empty_and_broken() {
        let page = parse_list_versions(
            b"<ListVersionsResult><IsTruncated>false</IsTruncated></ListVersionsResult>",
        )
        .unwrap();
        assert!(page.entries.is_empty() && page.next.is_none());
        assert!(
            parse_list_versions(
                b"<ListVersionsResult><IsTruncated>true</IsTruncated></ListVersionsResult>"
            )
            .is_err()
        );
        assert!(parse_list_versions(b"<ListVersionsResult><Version><VersionId>x</VersionId></Version></ListVersionsResult>").is_err());
        assert!(parse_list_versions(b"\xff\xfe").is_err());
        assert!(parse_list_versions(b"").is_err());
    }

    #[test]
    fn versioning_states() {
        let c = |s: &str| parse_versioning(s.as_bytes());
        assert_eq!(c("<VersioningConfiguration/>"), Ok(Versioning::Off));
        assert_eq!(
            c("<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>"),
            Ok(Versioning::Enabled)
        );
        assert_eq!(
            c("<VersioningConfiguration><Status>Suspended</Status></VersioningConfiguration>"),
            Ok(Versioning::Suspended)
        );
        assert!(
            c("<VersioningConfiguration><Status>Maybe</Status></VersioningConfiguration>").is_err()
        );
    }
}
