//! TLS to PostgreSQL: the ONE place that builds the connector of every
//! connection the gateway opens to a database (the catalog and its change
//! feed, tenant pools, direct URIs, provider URIs, clones' checks, Docker
//! instances' readiness probe).
//!
//! rustls (ring) through `tokio-postgres-rustls`, with libpq's meaning of
//! `sslmode`:
//!
//! | `sslmode` | here |
//! |---|---|
//! | `disable` | plain TCP |
//! | `allow`, `prefer` (libpq's default, also ours) | TLS when the server offers it, else plain; the certificate is not checked |
//! | `require` | TLS or no connection; the certificate is NOT checked (libpq's meaning: encryption, not authentication) |
//! | `verify-ca` | TLS; the chain must lead to the operator's bundle (the host name is not compared, so the public roots are not trusted here: without a bundle, use verify-full) |
//! | `verify-full` | TLS; trusted chain AND the certificate names the URI's host |
//!
//! Trusted roots: the webpki (Mozilla) roots plus the operator's bundle
//! (`ATHENA_PG_SSL_ROOT_CERT`, a PEM file). A URI never names a file
//! (`sslrootcert` is refused, `../shared/docs/security.md` §1).
//! `channel_binding=require` (tokio-postgres reads it) needs SCRAM with
//! `tls-server-end-point` binding, so it only succeeds over TLS.
//! `allow` is treated as `prefer` (TLS first), a documented difference
//! from libpq (plain first).

use crate::domain::DomainError;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio_postgres_rustls::MakeRustlsConnect;

/// The env var naming the operator's extra trusted roots (PEM).
pub const ROOT_CERT_ENV: &str = "ATHENA_PG_SSL_ROOT_CERT";

/// libpq's `sslmode`, as the gateway applies it (table in the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    /// `prefer` and `allow`.
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    /// libpq's value (case-insensitive); `None` for anything else.
    pub fn parse(value: &str) -> Option<SslMode> {
        Some(match value.to_ascii_lowercase().as_str() {
            "disable" => SslMode::Disable,
            "allow" | "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }

    /// The libpq spelling (for `pg_dump`/`pg_restore` conninfo strings).
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    /// What tokio-postgres negotiates: the verification is the connector's.
    pub fn wire(self) -> tokio_postgres::config::SslMode {
        match self {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            _ => tokio_postgres::config::SslMode::Require,
        }
    }

    /// Whether a connection in this mode is TLS or nothing.
    pub fn demands_tls(self) -> bool {
        matches!(
            self,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull
        )
    }
}

/// The rustls configurations, one per kind of check.
struct Roots {
    bundle: Option<PathBuf>,
    no_verify: ClientConfig,
    verify_ca: ClientConfig,
    verify_full: ClientConfig,
}

/// The trust roots of this gateway (webpki + the operator's bundle): `Copy`,
/// so it travels inside [`super::PoolSettings`] to every pool. Built once
/// per distinct bundle in a process (a test process runs several servers).
#[derive(Clone, Copy)]
pub struct PgTls(&'static Roots);

impl std::fmt::Debug for PgTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgTls")
            .field("bundle", &self.0.bundle)
            .finish()
    }
}

impl PartialEq for PgTls {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self.0, other.0)
    }
}

impl Default for PgTls {
    /// The webpki roots only.
    fn default() -> Self {
        PgTls::load(None).expect("the webpki roots build a TLS configuration")
    }
}

type Cached = (Option<PathBuf>, Vec<u8>, &'static Roots);

impl PgTls {
    /// The roots with the PEM bundle at `bundle` added (`None`: webpki
    /// only). A missing, unreadable or certificate-less file is an error
    /// (start-up refuses it rather than failing every verify-* later).
    pub fn load(bundle: Option<&Path>) -> Result<PgTls, String> {
        static CACHE: Mutex<Vec<Cached>> = Mutex::new(Vec::new());
        let pem = match bundle {
            Some(path) => std::fs::read(path)
                .map_err(|e| format!("{ROOT_CERT_ENV} ({}): {e}", path.display()))?,
            None => Vec::new(),
        };
        let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, _, roots)) = cache
            .iter()
            .find(|(p, content, _)| p.as_deref() == bundle && *content == pem)
        {
            return Ok(PgTls(roots));
        }
        let roots: &'static Roots = Box::leak(Box::new(build(bundle, &pem)?));
        cache.push((bundle.map(Path::to_path_buf), pem, roots));
        Ok(PgTls(roots))
    }

    /// The operator's bundle, for libpq tools (`PGSSLROOTCERT`).
    pub fn bundle(&self) -> Option<&Path> {
        self.0.bundle.as_deref()
    }

    /// The connector for a connection in `mode` (for `disable` it is never
    /// asked to encrypt; tokio-postgres wants one all the same).
    pub fn connector(&self, mode: SslMode) -> MakeRustlsConnect {
        MakeRustlsConnect::new(
            match mode {
                SslMode::Disable | SslMode::Prefer | SslMode::Require => &self.0.no_verify,
                SslMode::VerifyCa => &self.0.verify_ca,
                SslMode::VerifyFull => &self.0.verify_full,
            }
            .clone(),
        )
    }

    /// Connects one client outside a pool (the connection is driven by a
    /// spawned task, which ends with it).
    pub async fn connect(
        &self,
        config: &tokio_postgres::Config,
        mode: SslMode,
    ) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
        let (client, connection) = config.connect(self.connector(mode)).await?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(client)
    }
}

fn build(bundle: Option<&Path>, pem: &[u8]) -> Result<Roots, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut store = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = bundle {
        let shown = path.display();
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| format!("{ROOT_CERT_ENV} ({shown}): {e}"))?;
            store
                .add(cert)
                .map_err(|e| format!("{ROOT_CERT_ENV} ({shown}): {e}"))?;
            added += 1;
        }
        if added == 0 {
            return Err(format!(
                "{ROOT_CERT_ENV} ({shown}): no PEM certificate in the file"
            ));
        }
    }
    let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider.clone())
        .build()
        .map_err(|e| format!("PostgreSQL TLS roots: {e}"))?;
    // verify-ca compares no host name, so it trusts the operator's bundle
    // only: with the public roots any publicly issued certificate (one for
    // a domain the attacker owns) would pass. libpq refuses the same
    // combination (`sslrootcert=system` demands verify-full).
    let bundle_only = match bundle {
        None => None,
        Some(_) => {
            let mut own = RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(pem).flatten() {
                let _ = own.add(cert);
            }
            Some(
                WebPkiServerVerifier::builder_with_provider(Arc::new(own), provider.clone())
                    .build()
                    .map_err(|e| format!("PostgreSQL TLS roots: {e}"))?,
            )
        }
    };
    let base = || {
        ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("PostgreSQL TLS: {e}"))
    };
    Ok(Roots {
        bundle: bundle.map(Path::to_path_buf),
        no_verify: base()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider.clone())))
            .with_no_client_auth(),
        verify_ca: base()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyName {
                chain: bundle_only,
                signatures: webpki.clone(),
            }))
            .with_no_client_auth(),
        verify_full: base()?.with_webpki_verifier(webpki).with_no_client_auth(),
    })
}

/// `require`/`prefer`: any certificate (libpq's meaning), but the handshake
/// signatures are still checked, so the key exchange is with the holder of
/// the presented certificate (what channel binding relies on).
#[derive(Debug)]
struct NoVerify(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the chain check against the operator's bundle only (none
/// configured: refused, use verify-full), the host name not compared (the
/// name check comes after the chain check, so a name mismatch means the
/// chain was trusted).
#[derive(Debug)]
struct AnyName {
    chain: Option<Arc<WebPkiServerVerifier>>,
    /// Handshake signatures (independent of the roots).
    signatures: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Err(rustls::Error::General(format!(
                "sslmode=verify-ca trusts only the operator's bundle ({ROOT_CERT_ENV}), and none \
                 is configured; use sslmode=verify-full (public roots, host name checked)"
            )));
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.signatures.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.signatures.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.signatures.supported_verify_schemes()
    }
}

/// A connection failure caused by TLS (an untrusted or misnamed
/// certificate, a failed handshake, a server without TLS for a mode that
/// demands it) as a message safe to show; `None` for any other failure.
pub fn tls_failure(e: &tokio_postgres::Error, mode: SslMode) -> Option<String> {
    let text = e.to_string();
    if !text.starts_with("error performing TLS handshake") {
        return None;
    }
    // The rustls error, when there is one, says what was wrong (an io::Error
    // hides its inner error from `source()`: look inside).
    let mut cause: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    let mut why = None;
    while let Some(c) = cause {
        let inner = c
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .map(|i| i as &(dyn std::error::Error + 'static));
        if let Some(tls) = inner
            .and_then(|i| i.downcast_ref::<rustls::Error>())
            .or_else(|| c.downcast_ref::<rustls::Error>())
        {
            why = Some(tls.to_string());
            break;
        }
        why.get_or_insert_with(|| c.to_string());
        cause = inner.or_else(|| c.source());
    }
    let hint = match mode {
        SslMode::VerifyFull => format!(
            "; the certificate must lead to a webpki root or to the operator's bundle \
             ({ROOT_CERT_ENV}) and name the URI's host"
        ),
        SslMode::VerifyCa => {
            format!("; the certificate must lead to the operator's bundle ({ROOT_CERT_ENV})")
        }
        _ => String::new(),
    };
    Some(format!(
        "TLS with the database failed (sslmode={}): {}{hint}",
        mode.as_str(),
        why.unwrap_or(text)
    ))
}

/// A stored or admin-given URI as a connection config and its TLS mode.
/// tokio-postgres knows `disable|prefer|require` only, so `sslmode` is
/// read (and removed) here; the rest is tokio-postgres' parser. No
/// `sslmode`: `prefer`, libpq's default.
pub fn config_from_uri(uri: &str) -> Result<(tokio_postgres::Config, SslMode), DomainError> {
    let invalid = || DomainError::Invalid("the PostgreSQL URI is not valid".into());
    let mut mode = None;
    let mut take = |v: &str| -> Result<(), DomainError> {
        let parsed = SslMode::parse(v).ok_or_else(|| {
            DomainError::Invalid("the PostgreSQL URI's sslmode is not a libpq sslmode".into())
        })?;
        if mode.replace(parsed).is_some() {
            return Err(invalid());
        }
        Ok(())
    };
    let rest = if uri.contains("://") {
        match uri.split_once('?') {
            None => uri.to_string(),
            Some((base, query)) => {
                let mut kept = Vec::new();
                for pair in query.split('&').filter(|p| !p.is_empty()) {
                    match pair.split_once('=') {
                        Some(("sslmode", v)) => take(v)?,
                        _ => kept.push(pair),
                    }
                }
                if kept.is_empty() {
                    base.to_string()
                } else {
                    format!("{base}?{}", kept.join("&"))
                }
            }
        }
    } else {
        // key=value form: an unquoted `sslmode=…` word.
        let mut kept = Vec::new();
        for word in uri.split_whitespace() {
            match word.strip_prefix("sslmode=") {
                Some(v) => take(v)?,
                None => kept.push(word),
            }
        }
        kept.join(" ")
    };
    let extracted = mode.is_some();
    let mode = mode.unwrap_or(SslMode::Prefer);
    let mut config: tokio_postgres::Config = rest.parse().map_err(|_| invalid())?;
    // An `sslmode` tokio-postgres read but the plain spellings above did
    // not (a percent-encoded key, `sslmode = require` with spaces): refused,
    // never silently weakened to `prefer`.
    if !extracted && config.get_ssl_mode() != tokio_postgres::config::SslMode::Prefer {
        return Err(DomainError::Invalid(
            "the PostgreSQL URI's sslmode must be written as a plain `sslmode=<mode>` parameter"
                .into(),
        ));
    }
    config.ssl_mode(mode.wire());
    Ok((config, mode))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libpq_modes_are_read_before_tokio_postgres() {
        for (uri, mode) in [
            ("postgres://u:p@h/d", SslMode::Prefer),
            ("postgres://u:p@h/d?sslmode=disable", SslMode::Disable),
            ("postgres://u:p@h/d?sslmode=allow", SslMode::Prefer),
            (
                "postgres://u:p@h/d?sslmode=require&channel_binding=require",
                SslMode::Require,
            ),
            (
                "postgres://u:p@h/d?application_name=x&sslmode=verify-ca",
                SslMode::VerifyCa,
            ),
            (
                "postgres://u:p@h/d?sslmode=VERIFY-FULL&hostaddr=127.0.0.1",
                SslMode::VerifyFull,
            ),
            (
                "host=h user=u sslmode=verify-full dbname=d",
                SslMode::VerifyFull,
            ),
        ] {
            let (config, got) = config_from_uri(uri).unwrap_or_else(|e| panic!("{uri}: {e:?}"));
            assert_eq!(got, mode, "{uri}");
            assert_eq!(config.get_ssl_mode(), mode.wire(), "{uri}");
        }
        let (config, _) =
            config_from_uri("postgres://u:p@h/d?sslmode=require&channel_binding=require").unwrap();
        assert_eq!(
            config.get_channel_binding(),
            tokio_postgres::config::ChannelBinding::Require
        );
        for bad in [
            "postgres://u:p@h/d?sslmode=bogus",
            "postgres://u:p@h/d?sslmode=require&sslmode=disable",
            // Spellings tokio-postgres reads as `require`: refused, not `prefer`.
            "postgres://u:p@h/d?ssl%6Dode=require",
            "host=h user=u sslmode = require dbname=d",
            "host=h user=u sslmode='require' dbname=d",
        ] {
            assert!(config_from_uri(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn roots_are_built_once_per_bundle() {
        assert_eq!(PgTls::default(), PgTls::default());
        let missing = PgTls::load(Some(Path::new("/nonexistent/ca.pem"))).unwrap_err();
        assert!(missing.contains(ROOT_CERT_ENV), "{missing}");
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls/ca.crt");
        let a = PgTls::load(Some(&fixture)).unwrap();
        assert_eq!(a, PgTls::load(Some(&fixture)).unwrap());
        assert_ne!(a, PgTls::default());
        assert_eq!(a.bundle(), Some(fixture.as_path()));
    }
}
