//! TLS trust for https targets: the public web roots plus the system's store (where company
//! CAs live), an extra CA file (`--ca-cert`), or no verification at all (`--insecure`).

use crate::config::TlsOptions;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{pem::PemObject, CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::path::PathBuf;
use std::sync::Arc;

/// Why the TLS settings are unusable.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The CA file could not be read or holds no certificate.
    #[error("--ca-cert {path}: {reason}; give a PEM file with one or more -----BEGIN CERTIFICATE----- blocks")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Builds the connector for `opts`.
pub fn connector(opts: &TlsOptions) -> Result<tokio_rustls::TlsConnector, TlsError> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions");
    let config = if opts.insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny(provider())))
            .with_no_client_auth()
    } else {
        let mut roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        // The system store is best effort: a missing or partly unreadable one is not an error.
        let native = rustls_native_certs::load_native_certs();
        roots.add_parsable_certificates(native.certs);
        if let Some(path) = &opts.ca_cert {
            let err = |reason: String| TlsError::CaFile {
                path: path.clone(),
                reason,
            };
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .map_err(|e| err(e.to_string()))?
                .collect::<Result<_, _>>()
                .map_err(|e| err(format!("not valid PEM ({e})")))?;
            if certs.is_empty() {
                return Err(err("no certificate in the file".into()));
            }
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(err("no usable CA certificate in the file".into()));
            }
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// `--insecure`: trusts any certificate, but still checks that the handshake is signed by it.
#[derive(Debug)]
struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
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

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn ca_file_errors_name_the_flag_and_file() {
        let missing = TlsOptions {
            ca_cert: Some("/nonexistent/ca.pem".into()),
            insecure: false,
        };
        let e = connector(&missing)
            .err()
            .expect("a missing file is an error")
            .to_string();
        assert!(e.contains("--ca-cert /nonexistent/ca.pem"), "{e}");
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(b"not a certificate").unwrap();
        let e = connector(&TlsOptions {
            ca_cert: Some(f.path().into()),
            insecure: false,
        })
        .err()
        .expect("a file without a certificate is an error")
        .to_string();
        assert!(e.contains("no certificate"), "{e}");
    }

    #[test]
    fn a_generated_ca_is_accepted() {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(cert.cert.pem().as_bytes()).unwrap();
        assert!(connector(&TlsOptions {
            ca_cert: Some(f.path().into()),
            insecure: false
        })
        .is_ok());
    }
}
