//! Throwaway CA and server certificate for the simulator, generated at start with rcgen.

use std::net::IpAddr;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::SimError;

/// A CA plus a server certificate signed by it, ready for rustls.
pub struct SimCerts {
    /// The CA certificate in PEM, for the kubeconfig's `certificate-authority-data`.
    pub ca_pem: String,
    /// The server's rustls configuration (h2 + http/1.1 ALPN, like kube-apiserver).
    pub server_config: Arc<rustls::ServerConfig>,
}

fn cert_err(e: impl std::fmt::Display) -> SimError {
    SimError::Tls(e.to_string())
}

/// Generates a fresh CA and a server certificate valid for `localhost`, `127.0.0.1` and `ip`.
pub fn generate(ip: IpAddr) -> Result<SimCerts, SimError> {
    install_crypto_provider();
    let now = time::OffsetDateTime::now_utc();

    let ca_key = KeyPair::generate().map_err(cert_err)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(cert_err)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "gather-agent-sim-ca");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca_params.not_before = now - time::Duration::hours(1);
    ca_params.not_after = now + time::Duration::days(365);
    let ca_cert = ca_params.self_signed(&ca_key).map_err(cert_err)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let server_key = KeyPair::generate().map_err(cert_err)?;
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(cert_err)?;
    params
        .distinguished_name
        .push(DnType::CommonName, "gather-agent-sim");
    let mut sans = vec![
        SanType::DnsName("localhost".try_into().map_err(cert_err)?),
        SanType::IpAddress(IpAddr::from([127, 0, 0, 1])),
    ];
    if ip != IpAddr::from([127, 0, 0, 1]) && !ip.is_unspecified() {
        sans.push(SanType::IpAddress(ip));
    }
    params.subject_alt_names = sans;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(30);
    let server_cert = params.signed_by(&server_key, &issuer).map_err(cert_err)?;

    let chain = vec![CertificateDer::from(server_cert.der().to_vec())];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der()));
    let mut server_config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(cert_err)?;
    server_config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];

    Ok(SimCerts {
        ca_pem: ca_cert.pem(),
        server_config: Arc::new(server_config),
    })
}

/// Installs `ring` as the process-level rustls crypto provider, if none is installed yet.
///
/// The simulator does not depend on the runtime crate, so it has its own copy of this
/// one-liner; both install the same provider, so whichever runs first wins harmlessly.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
