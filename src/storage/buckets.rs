//! Buckets on a tenant's S3 store (`POST /storage/buckets/…`): list,
//! create, delete, and the bucket sub-resources (CORS, lifecycle, policy,
//! public-access block) through signed requests.

use super::s3::{Call, Store};
use super::service::{Connection, Storage};
use super::xml::{self, escape};
use crate::domain::DomainError;
use http::Method;
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Debug, Deserialize)]
pub struct BucketRequest {
    #[serde(flatten)]
    pub connection: Connection,
    pub bucket: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct CorsRuleInput {
    pub allowed_origins: Vec<String>,
    pub allowed_methods: Vec<String>,
    #[serde(default)]
    pub allowed_headers: Vec<String>,
    #[serde(default)]
    pub expose_headers: Vec<String>,
    pub max_age_seconds: Option<i64>,
}

#[derive(Debug, Deserialize)]
pub struct SetCorsRequest {
    #[serde(flatten)]
    pub bucket: BucketRequest,
    pub rules: Vec<CorsRuleInput>,
}

#[derive(Debug, Deserialize)]
pub struct LifecycleRuleInput {
    pub id: Option<String>,
    pub status: Option<String>,
    pub prefix: Option<String>,
    pub expiration_days: Option<i64>,
    pub noncurrent_version_expiration_days: Option<i64>,
    pub abort_incomplete_multipart_upload_days: Option<i64>,
    pub expired_object_delete_marker: Option<bool>,
}

#[derive(Debug, Deserialize)]
pub struct SetLifecycleRequest {
    #[serde(flatten)]
    pub bucket: BucketRequest,
    pub rules: Vec<LifecycleRuleInput>,
}

#[derive(Debug, Deserialize)]
pub struct SetPolicyRequest {
    #[serde(flatten)]
    pub bucket: BucketRequest,
    pub policy: Value,
}

#[derive(Debug, Deserialize)]
pub struct SetPublicAccessRequest {
    #[serde(flatten)]
    pub bucket: BucketRequest,
    #[serde(default)]
    pub block_public_acls: bool,
    #[serde(default)]
    pub ignore_public_acls: bool,
    #[serde(default)]
    pub block_public_policy: bool,
    #[serde(default)]
    pub restrict_public_buckets: bool,
}

const METHODS: [&str; 5] = ["GET", "PUT", "POST", "DELETE", "HEAD"];

/// A rule list's bounds and each value's shape (S3 takes at most 100
/// CORS rules and 1,000 lifecycle rules).
fn check_list(
    field: &str,
    values: &[String],
    allowed: impl Fn(&str) -> bool,
) -> Result<(), DomainError> {
    if values.len() > 100
        || values.iter().any(|v| {
            v.is_empty() || v.len() > 256 || v.chars().any(char::is_control) || !allowed(v)
        })
    {
        return Err(DomainError::invalid_field(
            field,
            "1-100 non-empty values of at most 256 characters",
        ));
    }
    Ok(())
}

fn cors_document(rules: &[CorsRuleInput]) -> Result<String, DomainError> {
    if rules.is_empty() || rules.len() > 100 {
        return Err(DomainError::invalid_field("rules", "1-100 CORS rules"));
    }
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?><CORSConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
    for r in rules {
        if r.allowed_origins.is_empty() || r.allowed_methods.is_empty() {
            return Err(DomainError::invalid_field(
                "rules",
                "each rule needs allowed_origins and allowed_methods",
            ));
        }
        check_list("allowed_origins", &r.allowed_origins, |_| true)?;
        check_list("allowed_methods", &r.allowed_methods, |m| {
            METHODS.contains(&m)
        })?;
        check_list("allowed_headers", &r.allowed_headers, |_| true)?;
        check_list("expose_headers", &r.expose_headers, |_| true)?;
        out.push_str("<CORSRule>");
        for (tag, values) in [
            ("AllowedOrigin", &r.allowed_origins),
            ("AllowedMethod", &r.allowed_methods),
            ("AllowedHeader", &r.allowed_headers),
            ("ExposeHeader", &r.expose_headers),
        ] {
            for v in values {
                out.push_str(&format!("<{tag}>{}</{tag}>", escape(v)));
            }
        }
        if let Some(age) = r.max_age_seconds {
            if !(0..=86_400 * 365).contains(&age) {
                return Err(DomainError::invalid_field(
                    "max_age_seconds",
                    "0 to one year",
                ));
            }
            out.push_str(&format!("<MaxAgeSeconds>{age}</MaxAgeSeconds>"));
        }
        out.push_str("</CORSRule>");
    }
    out.push_str("</CORSConfiguration>");
    Ok(out)
}

fn lifecycle_document(rules: &[LifecycleRuleInput]) -> Result<String, DomainError> {
    if rules.is_empty() || rules.len() > 1000 {
        return Err(DomainError::invalid_field(
            "rules",
            "1-1000 lifecycle rules",
        ));
    }
    let days = |field: &str, d: Option<i64>| match d {
        Some(n) if !(1..=36_500).contains(&n) => {
            Err(DomainError::invalid_field(field, "1-36500 days"))
        }
        _ => Ok(d),
    };
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?><LifecycleConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
    for (i, r) in rules.iter().enumerate() {
        let id = r.id.clone().unwrap_or_else(|| format!("rule-{}", i + 1));
        if id.is_empty() || id.len() > 255 {
            return Err(DomainError::invalid_field("id", "1-255 characters"));
        }
        let status = match r
            .status
            .as_deref()
            .unwrap_or("Enabled")
            .to_ascii_lowercase()
            .as_str()
        {
            "enabled" => "Enabled",
            "disabled" => "Disabled",
            _ => return Err(DomainError::invalid_field("status", "Enabled or Disabled")),
        };
        let expiration = days("expiration_days", r.expiration_days)?;
        let noncurrent = days(
            "noncurrent_version_expiration_days",
            r.noncurrent_version_expiration_days,
        )?;
        let abort = days(
            "abort_incomplete_multipart_upload_days",
            r.abort_incomplete_multipart_upload_days,
        )?;
        if expiration.is_none()
            && noncurrent.is_none()
            && abort.is_none()
            && r.expired_object_delete_marker.is_none()
        {
            return Err(DomainError::invalid_field("rules", "each rule needs an action (expiration_days, noncurrent_version_expiration_days, abort_incomplete_multipart_upload_days or expired_object_delete_marker)"));
        }
        out.push_str(&format!(
            "<Rule><ID>{}</ID><Filter><Prefix>{}</Prefix></Filter><Status>{status}</Status>",
            escape(&id),
            escape(r.prefix.as_deref().unwrap_or(""))
        ));
        match (expiration, r.expired_object_delete_marker) {
            (Some(d), _) => out.push_str(&format!("<Expiration><Days>{d}</Days></Expiration>")),
            (None, Some(m)) => out.push_str(&format!("<Expiration><ExpiredObjectDeleteMarker>{m}</ExpiredObjectDeleteMarker></Expiration>")),
            _ => {}
        }
        if let Some(d) = noncurrent {
            out.push_str(&format!("<NoncurrentVersionExpiration><NoncurrentDays>{d}</NoncurrentDays></NoncurrentVersionExpiration>"));
        }
        if let Some(d) = abort {
            out.push_str(&format!("<AbortIncompleteMultipartUpload><DaysAfterInitiation>{d}</DaysAfterInitiation></AbortIncompleteMultipartUpload>"));
        }
        out.push_str("</Rule>");
    }
    out.push_str("</LifecycleConfiguration>");
    Ok(out)
}

impl Storage {
    async fn bucket_target(
        &self,
        client: Option<&str>,
        r: &BucketRequest,
    ) -> Result<(Store, String), DomainError> {
        self.locate(client, &r.connection, r.bucket.as_deref())
            .await
    }

    /// GET of a bucket sub-resource (`?cors`, `?lifecycle` …); `None`
    /// when it is not configured.
    async fn sub_get(
        &self,
        store: &Store,
        bucket: &str,
        resource: &'static str,
    ) -> Result<Option<super::s3::Reply>, DomainError> {
        let call = Call::new(Method::GET, Some(bucket), None).query(resource, "");
        let reply = self.s3.exchange(store, call).await?;
        match reply.status {
            200..=299 => Ok(Some(reply)),
            // A sub-resource that is not configured answers 404 with its own
            // code (`NoSuchCORSConfiguration` …) or none: an empty
            // configuration, not an error. A missing bucket is one.
            404 if super::s3::error_code(&reply.body).as_deref() != Some("NoSuchBucket") => {
                Ok(None)
            }
            _ => Err(super::s3::s3_error(&reply, bucket)),
        }
    }

    async fn sub_delete(
        &self,
        store: &Store,
        bucket: &str,
        resource: &'static str,
    ) -> Result<(), DomainError> {
        let call = Call::new(Method::DELETE, Some(bucket), None).query(resource, "");
        self.s3.send(store, call, bucket).await.map(drop)
    }

    async fn sub_put(
        &self,
        store: &Store,
        bucket: &str,
        resource: &'static str,
        content_type: &'static str,
        body: String,
    ) -> Result<(), DomainError> {
        let call = Call::new(Method::PUT, Some(bucket), None)
            .query(resource, "")
            .document(content_type, body)?;
        self.s3.send(store, call, bucket).await.map(drop)
    }

    pub async fn list_buckets(
        &self,
        client: Option<&str>,
        c: Connection,
    ) -> Result<Value, DomainError> {
        let (store, _) = self.store_of(client, &c).await?;
        let list: xml::BucketList = self
            .s3
            .send(&store, Call::new(Method::GET, None, None), "buckets")
            .await?
            .xml()?;
        let buckets: Vec<Value> = list
            .buckets
            .buckets
            .iter()
            .map(|b| json!({ "name": b.name, "creation_date": b.creation_date }))
            .collect();
        Ok(json!({ "count": buckets.len(), "buckets": buckets }))
    }

    pub async fn create_bucket(
        &self,
        client: Option<&str>,
        r: BucketRequest,
    ) -> Result<Value, DomainError> {
        let (store, bucket) = self.bucket_target(client, &r).await?;
        let mut call = Call::new(Method::PUT, Some(&bucket), None);
        // AWS wants the region named outside us-east-1; other stores
        // (SeaweedFS, R2 `auto`) reject or ignore it.
        if store.endpoint.host.ends_with(".amazonaws.com") && store.region != "us-east-1" {
            call = call.document(
                "application/xml",
                format!(
                    "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><LocationConstraint>{}</LocationConstraint></CreateBucketConfiguration>",
                    escape(&store.region)
                ),
            )?;
        }
        self.s3.send(&store, call, &bucket).await?;
        Ok(json!({ "bucket": bucket, "created": true }))
    }

    pub async fn delete_bucket(
        &self,
        client: Option<&str>,
        r: BucketRequest,
    ) -> Result<Value, DomainError> {
        let (store, bucket) = self.bucket_target(client, &r).await?;
        // Some stores (SeaweedFS) delete a bucket with its objects: a
        // non-empty bucket is refused here first, as S3 does.
        let page = self.list_page(&store, &bucket, "", None, None, 1).await?;
        if !page.contents.is_empty() {
            return Err(DomainError::Invalid(format!(
                "bucket `{bucket}` is not empty; delete its objects first"
            )));
        }
        let call = Call::new(Method::DELETE, Some(&bucket), None);
        self.s3.send(&store, call, &bucket).await?;
        Ok(json!({ "bucket": bucket, "deleted": true }))
    }

    pub async fn bucket_cors(
        &self,
        client: Option<&str>,
        r: BucketRequest,
    ) -> Result<Value, DomainError> {
        let (store, bucket) = self.bucket_target(client, &r).await?;
        let cors: xml::Cors = match self.sub_get(&store, &bucket, "cors").await? {
            Some(reply) => reply.xml()?,
            None => xml::Cors::default(),
        };
        let rules: Vec<Value> = cors
            .rules
            .iter()
            .map(|r| {
                json!({
                    "allowed_origins": r.allowed_origins, "allowed_methods": r.allowed_methods,
                    "allowed_headers": r.allowed_headers, "expose_headers": r.expose_headers,
                    "max_age_seconds": r.max_age_seconds,
                })
            })
            .collect();
        Ok(json!({ "bucket": bucket, "configured": !rules.is_empty(), "rules": rules }))
    }

    pub async fn set_bucket_cors(
        &self,
        client: Option<&str>,
        r: SetCorsRequest,
    ) -> Result<Value, DomainError> {
        let document = cors_document(&r.rules)?;
        let (store, bucket) = self.bucket_target(client, &r.bucket).await?;
        self.sub_put(&store, &bucket, "cors", "application/xml", document)
            .await?;
        self.bucket_cors(client, r.bucket).await
    }

    pub async fn delete_bucket_cors(
        &self,
        client: Option<&str>,
        r: BucketRequest,
    ) -> Result<Value, DomainError> {
        let (store, bucket) = self.bucket_target(client, &r).await?;
        self.sub_delete(&store, &bucket, "cors").await?;
        Ok(json!({ "bucket": bucket, "deleted": true }))
    }

    pub async fn bucket_lifecycle(
        &self,
        client: Option<&str>,
        r: BucketRequest,
    ) -> Result<Value, DomainError> {
        let (store, bucket) = self.bucket_target(client, &r).await?;
        let lifecycle: xml::Lifecycle = match self.sub_get(&store, &bucket, "lifecycle").await? {
            Some(reply) => reply.xml()?,
            None => xml::Lifecycle::default(),
        };
        let rules: Vec<Value> = lifecycle
            .rules
            .iter()
            .map(|r| {
                let exp = r.expiration.as_ref();
                json!({
                    "id": r.id, "status": r.status,
                    "prefix": r.filter.as_ref().and_then(|f| f.prefix.clone()).or_else(|| r.prefix.clone()).unwrap_or_default(),
                    "expiration_days": exp.and_then(|e| e.days),
                    "expired_object_delete_marker": exp.and_then(|e| e.expired_object_delete_marker),
                    "noncurrent_version_expiration_days": r.noncurrent.as_ref().and_then(|n| n.noncurrent_days),
                    "abort_incomplete_multipart_upload_days": r.abort.as_ref().and_then(|a| a.days_after_initiation),
                })
            })
            .collect();
        Ok(json!({ "bucket": bucket, "configured": !rules.is_empty(), "rules": rules }))
    }

    pub async fn set_bucket_lifecycle(
        &self,
        client: Option<&str>,
        r: SetLifecycleRequest,
    ) -> Result<Value, DomainError> {
        let document = lifecycle_document(&r.rules)?;
        let (store, bucket) = self.bucket_target(client, &r.bucket).await?;
        self.sub_put(&store, &bucket, "lifecycle", "application/xml", document)
            .await?;
        self.bucket_lifecycle(client, r.bucket).await
    }

    pub async fn delete_bucket_lifecycle(
        &self,
        client: Option<&str>,
        r: BucketRequest,
    ) -> Result<Value, DomainError> {
        let (store, bucket) = self.bucket_target(client, &r).await?;
        self.sub_delete(&store, &bucket, "lifecycle").await?;
        Ok(json!({ "bucket": bucket, "deleted": true }))
    }

    pub async fn bucket_policy(
        &self,
        client: Option<&str>,
        r: BucketRequest,
    ) -> Result<Value, DomainError> {
        let (store, bucket) = self.bucket_target(client, &r).await?;
        let policy = match self.sub_get(&store, &bucket, "policy").await? {
            Some(reply) => Some(serde_json::from_slice::<Value>(&reply.body).map_err(|_| {
                DomainError::ServiceUnavailable(
                    "the S3 store answered a policy that is not JSON".into(),
                )
            })?),
            None => None,
        };
        Ok(json!({ "bucket": bucket, "configured": policy.is_some(), "policy": policy }))
    }

    pub async fn set_bucket_policy(
        &self,
        client: Option<&str>,
        r: SetPolicyRequest,
    ) -> Result<Value, DomainError> {
        let policy = match &r.policy {
            Value::String(text) => serde_json::from_str::<Value>(text)
                .map_err(|_| DomainError::invalid_field("policy", "a JSON policy document"))?,
            other => other.clone(),
        };
        if !policy.is_object() || policy.to_string().len() > 20_480 {
            return Err(DomainError::invalid_field(
                "policy",
                "a JSON object of at most 20 KiB",
            ));
        }
        let (store, bucket) = self.bucket_target(client, &r.bucket).await?;
        self.sub_put(
            &store,
            &bucket,
            "policy",
            "application/json",
            policy.to_string(),
        )
        .await?;
        self.bucket_policy(client, r.bucket).await
    }

    pub async fn delete_bucket_policy(
        &self,
        client: Option<&str>,
        r: BucketRequest,
    ) -> Result<Value, DomainError> {
        let (store, bucket) = self.bucket_target(client, &r).await?;
        self.sub_delete(&store, &bucket, "policy").await?;
        Ok(json!({ "bucket": bucket, "deleted": true }))
    }

    pub async fn public_access(
        &self,
        client: Option<&str>,
        r: BucketRequest,
    ) -> Result<Value, DomainError> {
        let (store, bucket) = self.bucket_target(client, &r).await?;
        let reply = self.sub_get(&store, &bucket, "publicAccessBlock").await?;
        let configured = reply.is_some();
        let block: xml::PublicAccessBlock = match reply {
            Some(reply) => reply.xml()?,
            None => xml::PublicAccessBlock::default(),
        };
        Ok(json!({
            "bucket": bucket, "configured": configured,
            "block_public_acls": block.block_public_acls,
            "ignore_public_acls": block.ignore_public_acls,
            "block_public_policy": block.block_public_policy,
            "restrict_public_buckets": block.restrict_public_buckets,
        }))
    }

    pub async fn set_public_access(
        &self,
        client: Option<&str>,
        r: SetPublicAccessRequest,
    ) -> Result<Value, DomainError> {
        let (store, bucket) = self.bucket_target(client, &r.bucket).await?;
        let document = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><PublicAccessBlockConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><BlockPublicAcls>{}</BlockPublicAcls><IgnorePublicAcls>{}</IgnorePublicAcls><BlockPublicPolicy>{}</BlockPublicPolicy><RestrictPublicBuckets>{}</RestrictPublicBuckets></PublicAccessBlockConfiguration>",
            r.block_public_acls, r.ignore_public_acls, r.block_public_policy, r.restrict_public_buckets
        );
        self.sub_put(
            &store,
            &bucket,
            "publicAccessBlock",
            "application/xml",
            document,
        )
        .await?;
        self.public_access(client, r.bucket).await
    }

    pub async fn delete_public_access(
        &self,
        client: Option<&str>,
        r: BucketRequest,
    ) -> Result<Value, DomainError> {
        let (store, bucket) = self.bucket_target(client, &r).await?;
        self.sub_delete(&store, &bucket, "publicAccessBlock")
            .await?;
        Ok(json!({ "bucket": bucket, "deleted": true }))
    }

    /// A bucket's reachability and versioning status (`/debug/s3`,
    /// `connections/test`): HEAD bucket, then `?versioning`.
    pub async fn probe_bucket(
        &self,
        store: &Store,
        bucket: &str,
    ) -> Result<Option<String>, DomainError> {
        self.s3
            .send(store, Call::new(Method::HEAD, Some(bucket), None), bucket)
            .await?;
        let versioning = match self.sub_get(store, bucket, "versioning").await {
            Ok(Some(reply)) => reply.xml::<xml::Versioning>().ok().and_then(|v| v.status),
            _ => None,
        };
        Ok(Some(versioning.unwrap_or_else(|| "Disabled".into())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_check_and_escape_their_input() {
        let rule = |origins: Vec<&str>, methods: Vec<&str>| CorsRuleInput {
            allowed_origins: origins.into_iter().map(String::from).collect(),
            allowed_methods: methods.into_iter().map(String::from).collect(),
            allowed_headers: vec![],
            expose_headers: vec![],
            max_age_seconds: Some(60),
        };
        let doc = cors_document(&[rule(vec!["https://a.example/<x>"], vec!["GET"])]).unwrap();
        assert!(doc.contains("<AllowedOrigin>https://a.example/&lt;x&gt;</AllowedOrigin>"));
        assert!(cors_document(&[rule(vec!["*"], vec!["TRACE"])]).is_err());
        assert!(cors_document(&[]).is_err());
        let lc = |days| LifecycleRuleInput {
            id: None,
            status: Some("enabled".into()),
            prefix: Some("tmp/".into()),
            expiration_days: days,
            noncurrent_version_expiration_days: None,
            abort_incomplete_multipart_upload_days: None,
            expired_object_delete_marker: None,
        };
        let doc = lifecycle_document(&[lc(Some(7))]).unwrap();
        assert!(doc.contains("<ID>rule-1</ID><Filter><Prefix>tmp/</Prefix></Filter><Status>Enabled</Status><Expiration><Days>7</Days></Expiration>"));
        assert!(lifecycle_document(&[lc(None)]).is_err());
        assert!(lifecycle_document(&[lc(Some(0))]).is_err());
    }
}
