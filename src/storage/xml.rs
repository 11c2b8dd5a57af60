//! The S3 XML documents the storage layer reads and writes: one small
//! module (quick-xml's serde support, which rust-s3 uses too). Documents
//! rust-s3 has types for (CORS) are built with them.

use serde::Deserialize;

/// Text for an XML element's content: `<`, `>`, `&`, quotes, and the
/// characters XML parsers would normalise away (`\r`, `\n`, `\t`) as
/// character references, so a key reaches the store exactly.
pub fn escape(text: &str) -> String {
    quick_xml::escape::escape(text)
        .replace('\r', "&#13;")
        .replace('\n', "&#10;")
        .replace('\t', "&#9;")
}

#[derive(Debug, Deserialize)]
pub struct ListedObject {
    #[serde(rename = "Key")]
    pub key: String,
    #[serde(rename = "Size", default)]
    pub size: i64,
    #[serde(rename = "ETag")]
    pub e_tag: Option<String>,
    #[serde(rename = "LastModified")]
    pub last_modified: Option<String>,
    #[serde(rename = "StorageClass")]
    pub storage_class: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Prefix {
    #[serde(rename = "Prefix")]
    pub prefix: String,
}

/// A ListObjectsV2 page.
#[derive(Debug, Deserialize)]
pub struct ListPage {
    #[serde(rename = "Contents", default)]
    pub contents: Vec<ListedObject>,
    #[serde(rename = "CommonPrefixes", default)]
    pub common_prefixes: Vec<Prefix>,
    #[serde(rename = "IsTruncated", default)]
    pub is_truncated: bool,
    #[serde(rename = "NextContinuationToken")]
    pub next_continuation_token: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct DeleteError {
    #[serde(rename = "Key")]
    pub key: Option<String>,
    #[serde(rename = "Code")]
    pub code: Option<String>,
}

/// A DeleteObjects answer (quiet mode: only the failures).
#[derive(Debug, Deserialize)]
pub struct DeleteResult {
    #[serde(rename = "Error", default)]
    pub errors: Vec<DeleteError>,
}

/// `<Delete><Quiet>true</Quiet><Object><Key>…</Key></Object>…</Delete>`.
pub fn delete_objects(keys: &[String]) -> String {
    let mut out =
        String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Delete><Quiet>true</Quiet>");
    for key in keys {
        out.push_str("<Object><Key>");
        out.push_str(&escape(key));
        out.push_str("</Key></Object>");
    }
    out.push_str("</Delete>");
    out
}

#[derive(Debug, Default, Deserialize)]
pub struct CopyResult {
    #[serde(rename = "ETag")]
    pub etag: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Version {
    #[serde(rename = "Key")]
    pub key: String,
    #[serde(rename = "VersionId")]
    pub version_id: Option<String>,
    #[serde(rename = "IsLatest", default)]
    pub is_latest: bool,
    #[serde(rename = "Size")]
    pub size: Option<i64>,
    #[serde(rename = "ETag")]
    pub etag: Option<String>,
    #[serde(rename = "LastModified")]
    pub last_modified: Option<String>,
}

/// One element of a ListObjectVersions page, in the store's order.
#[derive(Debug, Deserialize)]
pub enum VersionEntry {
    Version(Version),
    DeleteMarker(Version),
    IsTruncated(bool),
    NextKeyMarker(String),
    NextVersionIdMarker(String),
    /// `Name`, `Prefix`, `MaxKeys`, `KeyMarker`, `CommonPrefixes`…
    #[serde(other)]
    Other,
}

/// A ListObjectVersions page. Versions and delete markers interleave (one
/// sorted sequence), so the page is read as one list of elements.
#[derive(Debug, Deserialize)]
pub struct VersionsPage {
    #[serde(rename = "$value", default)]
    pub entries: Vec<VersionEntry>,
}

impl VersionsPage {
    pub fn is_truncated(&self) -> bool {
        self.entries
            .iter()
            .any(|e| matches!(e, VersionEntry::IsTruncated(true)))
    }

    pub fn next_key_marker(&self) -> Option<&str> {
        self.entries.iter().find_map(|e| match e {
            VersionEntry::NextKeyMarker(m) => Some(m.as_str()),
            _ => None,
        })
    }

    pub fn next_version_id_marker(&self) -> Option<&str> {
        self.entries.iter().find_map(|e| match e {
            VersionEntry::NextVersionIdMarker(m) => Some(m.as_str()),
            _ => None,
        })
    }
}

#[derive(Debug, Deserialize)]
pub struct BucketEntry {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "CreationDate")]
    pub creation_date: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct BucketEntries {
    #[serde(rename = "Bucket", default)]
    pub buckets: Vec<BucketEntry>,
}

/// ListBuckets.
#[derive(Debug, Deserialize)]
pub struct BucketList {
    #[serde(rename = "Buckets", default)]
    pub buckets: BucketEntries,
}

#[derive(Debug, Deserialize)]
pub struct CorsRule {
    #[serde(rename = "AllowedOrigin", default)]
    pub allowed_origins: Vec<String>,
    #[serde(rename = "AllowedMethod", default)]
    pub allowed_methods: Vec<String>,
    #[serde(rename = "AllowedHeader", default)]
    pub allowed_headers: Vec<String>,
    #[serde(rename = "ExposeHeader", default)]
    pub expose_headers: Vec<String>,
    #[serde(rename = "MaxAgeSeconds")]
    pub max_age_seconds: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Cors {
    #[serde(rename = "CORSRule", default)]
    pub rules: Vec<CorsRule>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Days {
    #[serde(rename = "Days")]
    pub days: Option<i64>,
    #[serde(rename = "NoncurrentDays")]
    pub noncurrent_days: Option<i64>,
    #[serde(rename = "DaysAfterInitiation")]
    pub days_after_initiation: Option<i64>,
    #[serde(rename = "ExpiredObjectDeleteMarker")]
    pub expired_object_delete_marker: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Filter {
    #[serde(rename = "Prefix")]
    pub prefix: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct LifecycleRule {
    #[serde(rename = "ID")]
    pub id: Option<String>,
    #[serde(rename = "Status")]
    pub status: Option<String>,
    #[serde(rename = "Prefix")]
    pub prefix: Option<String>,
    #[serde(rename = "Filter")]
    pub filter: Option<Filter>,
    #[serde(rename = "Expiration")]
    pub expiration: Option<Days>,
    #[serde(rename = "NoncurrentVersionExpiration")]
    pub noncurrent: Option<Days>,
    #[serde(rename = "AbortIncompleteMultipartUpload")]
    pub abort: Option<Days>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Lifecycle {
    #[serde(rename = "Rule", default)]
    pub rules: Vec<LifecycleRule>,
}

#[derive(Debug, Default, Deserialize)]
pub struct PublicAccessBlock {
    #[serde(rename = "BlockPublicAcls", default)]
    pub block_public_acls: bool,
    #[serde(rename = "IgnorePublicAcls", default)]
    pub ignore_public_acls: bool,
    #[serde(rename = "BlockPublicPolicy", default)]
    pub block_public_policy: bool,
    #[serde(rename = "RestrictPublicBuckets", default)]
    pub restrict_public_buckets: bool,
}

#[derive(Debug, Default, Deserialize)]
pub struct Versioning {
    #[serde(rename = "Status")]
    pub status: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_listings_and_escapes_keys() {
        let page: ListPage = quick_xml::de::from_str(
            r#"<?xml version="1.0"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><IsTruncated>true</IsTruncated><NextContinuationToken>t1</NextContinuationToken><Contents><Key>a/1.txt</Key><Size>3</Size><ETag>"e"</ETag></Contents><Contents><Key>a/2.txt</Key><Size>4</Size></Contents><CommonPrefixes><Prefix>a/c/</Prefix></CommonPrefixes></ListBucketResult>"#,
        )
        .unwrap();
        assert_eq!(page.contents.len(), 2);
        assert_eq!(page.contents[1].size, 4);
        assert!(page.is_truncated);
        assert_eq!(page.common_prefixes[0].prefix, "a/c/");
        let empty: ListPage =
            quick_xml::de::from_str("<ListBucketResult><Name>b</Name></ListBucketResult>").unwrap();
        assert!(empty.contents.is_empty());
        assert!(delete_objects(&["a<&>b".into()]).contains("<Key>a&lt;&amp;&gt;b</Key>"));
        let buckets: BucketList = quick_xml::de::from_str(
            "<ListAllMyBucketsResult><Owner><ID>x</ID></Owner><Buckets><Bucket><Name>one</Name><CreationDate>2020</CreationDate></Bucket><Bucket><Name>two</Name></Bucket></Buckets></ListAllMyBucketsResult>",
        )
        .unwrap();
        assert_eq!(buckets.buckets.buckets.len(), 2);
    }

    #[test]
    fn versions_and_delete_markers_interleave() {
        let page: VersionsPage = quick_xml::de::from_str(
            r#"<?xml version="1.0"?><ListVersionsResult><Name>b</Name><Prefix>k</Prefix><IsTruncated>true</IsTruncated><NextKeyMarker>k</NextKeyMarker><NextVersionIdMarker>v0</NextVersionIdMarker><Version><Key>k</Key><VersionId>v3</VersionId><IsLatest>true</IsLatest><Size>2</Size></Version><DeleteMarker><Key>k</Key><VersionId>v2</VersionId><IsLatest>false</IsLatest></DeleteMarker><Version><Key>k</Key><VersionId>v1</VersionId><IsLatest>false</IsLatest><Size>1</Size></Version></ListVersionsResult>"#,
        )
        .unwrap();
        let kinds: Vec<&str> = page
            .entries
            .iter()
            .filter_map(|e| match e {
                VersionEntry::Version(v) => Some(v.version_id.as_deref().unwrap()),
                VersionEntry::DeleteMarker(v) => Some(v.version_id.as_deref().unwrap()),
                _ => None,
            })
            .collect();
        assert_eq!(kinds, ["v3", "v2", "v1"]);
        assert!(page.is_truncated());
        assert_eq!(page.next_version_id_marker(), Some("v0"));
    }
}

/// An InitiateMultipartUpload answer.
#[derive(Debug, Deserialize)]
pub struct InitiateMultipartUploadResult {
    #[serde(rename = "UploadId")]
    pub upload_id: String,
}

/// A CompleteMultipartUpload answer (a 200 may still carry `<Error>`,
/// which `s3::error_code` finds).
#[derive(Debug, Default, Deserialize)]
pub struct CompleteMultipartUploadResult {
    #[serde(rename = "ETag")]
    pub etag: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Part {
    #[serde(rename = "PartNumber")]
    pub part_number: u32,
    #[serde(rename = "ETag")]
    pub etag: Option<String>,
    #[serde(rename = "Size")]
    pub size: Option<i64>,
    #[serde(rename = "LastModified")]
    pub last_modified: Option<String>,
}

/// A ListParts page.
#[derive(Debug, Deserialize)]
pub struct ListPartsResult {
    #[serde(rename = "Part", default)]
    pub parts: Vec<Part>,
    #[serde(rename = "IsTruncated", default)]
    pub is_truncated: bool,
    #[serde(rename = "NextPartNumberMarker")]
    pub next_part_number_marker: Option<String>,
}

/// `<CompleteMultipartUpload>` of `(part number, ETag)`, in order.
pub fn complete_multipart(parts: &[(u32, String)]) -> String {
    let mut out =
        String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?><CompleteMultipartUpload>");
    for (number, etag) in parts {
        out.push_str(&format!(
            "<Part><PartNumber>{number}</PartNumber><ETag>{}</ETag></Part>",
            escape(etag)
        ));
    }
    out.push_str("</CompleteMultipartUpload>");
    out
}
