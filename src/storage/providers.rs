//! The S3-compatible providers a storage connection may name
//! (`GET /storage/providers`) and what each implies when a connection is
//! created (`POST /storage/connections`): the endpoint when none is given,
//! the default region and addressing style. Everything is S3 underneath;
//! a provider tag not listed here is accepted like `custom_s3`.

use crate::domain::DomainError;

/// One provider's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Provider {
    pub id: &'static str,
    pub default_region: &'static str,
    /// Path-style addressing (`https://host/bucket/key`) unless the
    /// connection says otherwise.
    pub force_path_style: bool,
    /// The endpoint when the connection names none (`{region}`,
    /// `{accountId}` filled in).
    pub endpoint_template: Option<&'static str>,
}

pub const AWS_S3: Provider = Provider {
    id: "aws_s3",
    default_region: "us-east-1",
    force_path_style: false,
    endpoint_template: Some("https://s3.{region}.amazonaws.com"),
};

pub const CLOUDFLARE_R2: Provider = Provider {
    id: "cloudflare_r2",
    default_region: "auto",
    force_path_style: false,
    endpoint_template: Some("https://{accountId}.r2.cloudflarestorage.com"),
};

pub const MINIO: Provider = Provider {
    id: "minio",
    default_region: "us-east-1",
    force_path_style: true,
    endpoint_template: None,
};

pub const CUSTOM_S3: Provider = Provider {
    id: "custom_s3",
    default_region: "us-east-1",
    force_path_style: true,
    endpoint_template: None,
};

/// The providers `GET /storage/providers` lists, in that order.
pub const PROVIDERS: [Provider; 4] = [AWS_S3, CLOUDFLARE_R2, MINIO, CUSTOM_S3];

/// The canonical id of a provider tag: the SDK's short names (`s3`, `r2`)
/// are its canonical ones (`toCanonicalProviderId` in the SDK).
pub fn canonical(tag: &str) -> &str {
    match tag {
        "s3" => AWS_S3.id,
        "r2" => CLOUDFLARE_R2.id,
        other => other,
    }
}

/// The defaults of a provider tag; an unlisted tag is a custom S3 store.
pub fn defaults(id: &str) -> Provider {
    PROVIDERS
        .into_iter()
        .find(|p| p.id == id)
        .unwrap_or(CUSTOM_S3)
}

/// One field of a connection as a provider needs it: its key in the SDK's
/// input, whether it is required and whether it is a secret.
pub struct Field {
    pub key: &'static str,
    pub description: &'static str,
    pub required: bool,
    pub secret: bool,
    pub value_type: &'static str,
}

const fn field(
    key: &'static str,
    description: &'static str,
    required: bool,
    secret: bool,
    value_type: &'static str,
) -> Field {
    Field {
        key,
        description,
        required,
        secret,
        value_type,
    }
}

/// The connection fields of a provider (`connectionSchema.fields`).
pub fn fields(p: &Provider) -> Vec<Field> {
    let endpoint_required = p.endpoint_template.is_none();
    let mut fields = vec![
        field(
            "config.bucket",
            "bucket the connection uses",
            true,
            false,
            "string",
        ),
        field(
            "config.endpoint",
            match p.id {
                "aws_s3" => "S3 endpoint; default https://s3.<region>.amazonaws.com",
                "cloudflare_r2" => {
                    "R2 endpoint; default https://<accountId>.r2.cloudflarestorage.com"
                }
                _ => "S3 endpoint URL (https; http only with ATHENA_STORAGE_ALLOW_HTTP)",
            },
            endpoint_required,
            false,
            "string",
        ),
        field(
            "config.region",
            "region; the provider's default when absent",
            false,
            false,
            "string",
        ),
        field(
            "config.forcePathStyle",
            "path-style addressing (bucket in the path)",
            false,
            false,
            "boolean",
        ),
        field(
            "config.publicBaseUrl",
            "base URL of public object links",
            false,
            false,
            "string",
        ),
        field(
            "config.defaultPrefix",
            "key prefix the application writes under",
            false,
            false,
            "string",
        ),
        field(
            "config.metadata",
            "free-form metadata kept with the connection",
            false,
            false,
            "object",
        ),
        field(
            "credentials.accessKeyId",
            "access key id",
            true,
            false,
            "string",
        ),
        field(
            "credentials.secretAccessKey",
            "secret access key (sealed at rest, never returned)",
            true,
            true,
            "string",
        ),
        field(
            "credentials.sessionToken",
            "session token of temporary credentials (sealed, never returned)",
            false,
            true,
            "string",
        ),
    ];
    if p.id == CLOUDFLARE_R2.id {
        fields.insert(
            2,
            field(
                "config.accountId",
                "Cloudflare account id; gives the endpoint when none is set",
                false,
                false,
                "string",
            ),
        );
    }
    fields
}

/// The endpoint and region of a new connection: as given, else the
/// provider's (an R2 endpoint needs the account id).
pub fn endpoint_and_region(
    p: &Provider,
    endpoint: Option<String>,
    region: Option<String>,
    account_id: Option<&str>,
) -> Result<(String, String), DomainError> {
    let region = region
        .filter(|r| !r.trim().is_empty())
        .unwrap_or_else(|| p.default_region.to_string());
    let endpoint = match endpoint.filter(|e| !e.trim().is_empty()) {
        Some(e) => e,
        None => match (p.id, account_id) {
            ("aws_s3", _) => format!("https://s3.{region}.amazonaws.com"),
            ("cloudflare_r2", Some(account)) => {
                let ok = !account.is_empty()
                    && account.len() <= 64
                    && account.chars().all(|c| c.is_ascii_alphanumeric());
                if !ok {
                    return Err(DomainError::invalid_field(
                        "accountId",
                        "a Cloudflare account id is up to 64 letters and digits",
                    ));
                }
                format!(
                    "https://{}.r2.cloudflarestorage.com",
                    account.to_ascii_lowercase()
                )
            }
            ("cloudflare_r2", None) => {
                return Err(DomainError::invalid_field(
                    "endpoint",
                    "a cloudflare_r2 connection needs `endpoint` or `accountId`",
                ))
            }
            _ => {
                return Err(DomainError::invalid_field(
                    "endpoint",
                    format!("a {} connection needs an endpoint", p.id),
                ))
            }
        },
    };
    Ok((endpoint, region))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_default_per_provider() {
        let (e, r) = endpoint_and_region(&AWS_S3, None, Some("eu-west-3".into()), None).unwrap();
        assert_eq!(
            (e.as_str(), r.as_str()),
            ("https://s3.eu-west-3.amazonaws.com", "eu-west-3")
        );
        let (e, r) = endpoint_and_region(&AWS_S3, None, None, None).unwrap();
        assert_eq!(
            (e.as_str(), r.as_str()),
            ("https://s3.us-east-1.amazonaws.com", "us-east-1")
        );
        let (e, r) = endpoint_and_region(&CLOUDFLARE_R2, None, None, Some("ABC123")).unwrap();
        assert_eq!(
            (e.as_str(), r.as_str()),
            ("https://abc123.r2.cloudflarestorage.com", "auto")
        );
        assert!(endpoint_and_region(&CLOUDFLARE_R2, None, None, Some("a.b")).is_err());
        assert!(endpoint_and_region(&CLOUDFLARE_R2, None, None, None).is_err());
        assert!(endpoint_and_region(&MINIO, None, None, None).is_err());
        let (e, _) =
            endpoint_and_region(&MINIO, Some("https://minio.example".into()), None, None).unwrap();
        assert_eq!(e, "https://minio.example");
    }

    #[test]
    fn tags_are_canonical_and_unknown_ones_custom() {
        assert_eq!(canonical("s3"), "aws_s3");
        assert_eq!(canonical("r2"), "cloudflare_r2");
        assert_eq!(canonical("wasabi"), "wasabi");
        assert_eq!(defaults("wasabi"), CUSTOM_S3);
        assert_eq!(defaults("minio"), MINIO);
        assert!(fields(&CLOUDFLARE_R2)
            .iter()
            .any(|f| f.key == "config.accountId"));
        assert!(fields(&MINIO)
            .iter()
            .any(|f| f.key == "config.endpoint" && f.required));
        assert!(fields(&AWS_S3)
            .iter()
            .filter(|f| f.secret)
            .all(|f| f.key.starts_with("credentials.")));
    }
}
