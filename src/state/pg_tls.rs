//! TLS to the PostgreSQL state store: `sslmode` and `sslrootcert` of `[state] url` with libpq's
//! meanings, over rustls (the stack reqwest already uses).
//!
//! The `postgres` client knows only `disable`, `prefer` and `require`, and refuses parameters it
//! does not know, so the URL's two TLS parameters are read here and taken out before it parses the
//! rest; the mode then decides how the server's certificate is checked:
//!
//! | sslmode       | encrypted                  | certificate checked                        |
//! |---------------|----------------------------|--------------------------------------------|
//! | `disable`     | never                      | -                                          |
//! | `prefer`      | when the server offers TLS | no                                         |
//! | `require`     | always (else no connection)| no (as `verify-ca` when `sslrootcert` is set) |
//! | `verify-ca`   | always                     | signed by a trusted CA                     |
//! | `verify-full` | always                     | signed by a trusted CA and names the host  |
//!
//! Trusted CAs: the `sslrootcert` file, else the system's roots.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{WebPkiServerVerifier, verify_server_cert_signed_by_trust_anchor};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::path::PathBuf;
use std::sync::Arc;
use tokio_postgres_rustls::MakeRustlsConnect;

/// `sslmode`, as libpq reads it (its default: `prefer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Option<SslMode> {
        Some(match value {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }

    /// The word of the URL.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// A `[state] url` read: the `postgres` client's configuration and how TLS is to be used.
#[derive(Debug, Clone)]
pub struct ConnectSpec {
    pub config: postgres::Config,
    pub ssl_mode: SslMode,
    /// `sslrootcert`: the CA certificates (PEM) to trust instead of the system's.
    pub root_cert: Option<PathBuf>,
}

impl ConnectSpec {
    /// Reads a `postgres://` URL. Errors never quote the URL (it holds the password).
    pub fn parse(raw: &str) -> Result<ConnectSpec, String> {
        let mut url =
            url::Url::parse(raw).map_err(|e| format!("not a PostgreSQL connection URL ({e})"))?;
        let mut ssl_mode = SslMode::Prefer;
        let mut root_cert = None;
        let mut rest = Vec::new();
        for (key, value) in url.query_pairs() {
            match key.as_ref() {
                "sslmode" => {
                    ssl_mode = SslMode::parse(&value).ok_or_else(|| {
                        format!(
                            "sslmode={value} is not one of disable, prefer, require, verify-ca, \
                             verify-full"
                        )
                    })?;
                }
                "sslrootcert" if !value.is_empty() => root_cert = Some(PathBuf::from(&*value)),
                _ => rest.push((key.into_owned(), value.into_owned())),
            }
        }
        if rest.is_empty() {
            url.set_query(None);
        } else {
            url.query_pairs_mut().clear().extend_pairs(rest);
        }
        let mut config: postgres::Config = url
            .as_str()
            .parse()
            .map_err(|e: postgres::Error| format!("not a PostgreSQL connection URL ({e})"))?;
        config.ssl_mode(match ssl_mode {
            SslMode::Disable => postgres::config::SslMode::Disable,
            SslMode::Prefer => postgres::config::SslMode::Prefer,
            // The client's `require` never falls back to a plain connection; the certificate
            // checks are the connector's (below).
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
                postgres::config::SslMode::Require
            }
        });
        Ok(ConnectSpec {
            config,
            ssl_mode,
            root_cert,
        })
    }

    /// `host:port` of the (first) server, for messages.
    pub fn server(&self) -> String {
        let host = match self.config.get_hosts().first() {
            Some(postgres::config::Host::Tcp(host)) => host.clone(),
            Some(postgres::config::Host::Unix(path)) => path.display().to_string(),
            None => "localhost".to_string(),
        };
        let port = self.config.get_ports().first().copied().unwrap_or(5432);
        format!("{host}:{port}")
    }

    /// The TLS connector for this mode (`disable` never uses it).
    pub fn connector(&self) -> Result<MakeRustlsConnect, String> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("setting up TLS: {e}"))?;
        // libpq: `require` with a root certificate verifies as `verify-ca` does.
        let verifier: Arc<dyn ServerCertVerifier> = match (self.ssl_mode, &self.root_cert) {
            (SslMode::Disable | SslMode::Prefer, _) | (SslMode::Require, None) => {
                Arc::new(NoHostCheck {
                    roots: None,
                    provider,
                })
            }
            (SslMode::Require | SslMode::VerifyCa, _) => Arc::new(NoHostCheck {
                roots: Some(Arc::new(self.roots()?)),
                provider,
            }),
            (SslMode::VerifyFull, _) => {
                WebPkiServerVerifier::builder_with_provider(Arc::new(self.roots()?), provider)
                    .build()
                    .map_err(|e| format!("setting up TLS: {e}"))?
            }
        };
        let config = builder
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Ok(MakeRustlsConnect::new(config))
    }

    /// The `sslrootcert` file's certificates, else the system's.
    fn roots(&self) -> Result<RootCertStore, String> {
        let mut roots = RootCertStore::empty();
        match &self.root_cert {
            Some(path) => {
                let shown = path.display();
                let certs = CertificateDer::pem_file_iter(path)
                    .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| format!("sslrootcert {shown}: {e}"))?;
                let (added, _) = roots.add_parsable_certificates(certs);
                if added == 0 {
                    return Err(format!("sslrootcert {shown}: no certificate in it"));
                }
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                roots.add_parsable_certificates(found.certs);
                if roots.is_empty() {
                    return Err(format!(
                        "sslmode={} needs trusted CA certificates: the system has none \
                         ({} error(s) reading them); name a CA file with sslrootcert=PATH",
                        self.ssl_mode.as_str(),
                        found.errors.len()
                    ));
                }
            }
        }
        Ok(roots)
    }
}

/// Every mode that does not compare the host name. Without `roots` (`prefer`, `require`) the
/// connection is encrypted and the handshake's signatures are checked against the certificate the
/// server sent, but nothing says who that server is (libpq's meaning); with them (`verify-ca`)
/// the certificate must also chain to a trusted CA and be in date for server use.
#[derive(Debug)]
struct NoHostCheck {
    roots: Option<Arc<RootCertStore>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for NoHostCheck {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Some(roots) = &self.roots {
            let cert = ParsedCertificate::try_from(end_entity)?;
            verify_server_cert_signed_by_trust_anchor(
                &cert,
                roots,
                intermediates,
                now,
                self.provider.signature_verification_algorithms.all,
            )?;
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tls_parameters_are_read_and_the_rest_passed_on() {
        let spec = ConnectSpec::parse(
            "postgres://app:pw@db.internal:6432/cs?sslmode=verify-full&sslrootcert=/etc/ca.pem\
             &connect_timeout=3",
        )
        .expect("valid");
        assert_eq!(spec.ssl_mode, SslMode::VerifyFull);
        assert_eq!(spec.root_cert, Some(PathBuf::from("/etc/ca.pem")));
        assert_eq!(
            spec.config.get_connect_timeout(),
            Some(&std::time::Duration::from_secs(3))
        );
        assert_eq!(
            spec.config.get_ssl_mode(),
            postgres::config::SslMode::Require
        );
        assert_eq!(spec.server(), "db.internal:6432");
        // libpq's default.
        let spec = ConnectSpec::parse("postgres://app@db/cs").expect("valid");
        assert_eq!(spec.ssl_mode, SslMode::Prefer);
        assert_eq!(spec.server(), "db:5432");
        for mode in ["disable", "prefer", "require", "verify-ca"] {
            let url = format!("postgres://app@db/cs?sslmode={mode}");
            assert_eq!(
                ConnectSpec::parse(&url).expect(mode).ssl_mode.as_str(),
                mode
            );
        }
        let err = ConnectSpec::parse("postgres://app:pw-3@db/cs?sslmode=allow").expect_err("allow");
        assert!(
            err.contains("sslmode=allow") && !err.contains("pw-3"),
            "{err}"
        );
    }

    #[test]
    fn a_missing_root_certificate_is_named() {
        let spec = ConnectSpec::parse(
            "postgres://app@db/cs?sslmode=verify-ca&sslrootcert=/nonexistent/ca.pem",
        )
        .expect("valid");
        let err = spec.connector().map(|_| ()).expect_err("no such file");
        assert!(err.contains("sslrootcert /nonexistent/ca.pem"), "{err}");
    }
}
