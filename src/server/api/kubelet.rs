//! The API server's client of node agents (`kubectl logs` goes through it, see
//! [`logs`](super::logs)): a random bearer token for the user [`KUBELET_CLIENT_USER`],
//! registered in the server's own tokens so that agents check it with a TokenReview, and
//! a TLS configuration that does not verify the agents' self-signed certificates (as
//! kube-apiserver without `--kubelet-certificate-authority`) but does check the
//! handshake's signatures.

use super::auth::{User, KUBELET_CLIENT_USER};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::sync::Arc;

/// The API server's client of node agents: its bearer token and TLS configuration.
pub struct KubeletClient {
    pub(crate) token: String,
    pub(crate) tls: Arc<rustls::ClientConfig>,
}

impl std::fmt::Debug for KubeletClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeletClient").finish_non_exhaustive()
    }
}

impl KubeletClient {
    /// A client with a fresh random token (register it with [`KubeletClient::user`] in the
    /// server's tokens) and a TLS configuration that does not verify agents'
    /// certificates.
    pub fn new() -> Self {
        // The ring provider, named explicitly as `pki` does (rustls 0.23.48 deprecates
        // it for lack of post-quantum key exchange).
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .expect("the ring provider supports rustls' default TLS versions")
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyServerCert(provider)))
            .with_no_client_auth();
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        KubeletClient {
            token: super::pki::new_token(),
            tls: Arc::new(tls),
        }
    }

    /// The token the server presents to agents.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The user the token stands for: [`KUBELET_CLIENT_USER`], no groups (authentication
    /// adds `system:authenticated`).
    pub fn user() -> User {
        User {
            name: KUBELET_CLIENT_USER.to_string(),
            uid: KUBELET_CLIENT_USER.to_string(),
            groups: Vec::new(),
        }
    }
}

impl Default for KubeletClient {
    fn default() -> Self {
        Self::new()
    }
}

/// Accepts any server certificate (agents' are self-signed and unknown to the server),
/// but checks the handshake signatures with the certificate presented.
#[derive(Debug)]
struct AnyServerCert(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyServerCert {
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

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
