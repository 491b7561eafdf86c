//! TLS for LDAPS and StartTLS: a lab CA and a server certificate made at start (rcgen), or
//! the operator's own files. Clients trust the lab CA through the PEM file it writes.

use std::path::Path;
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A server identity ready for rustls, and the CA certificate clients should trust.
#[derive(Clone)]
pub struct TlsIdentity {
    pub config: Arc<ServerConfig>,
    /// PEM of the CA that issued the server certificate (the certificate itself when the
    /// operator's files carry no chain).
    pub ca_pem: String,
}

impl std::fmt::Debug for TlsIdentity {
    // the key is in the config: never printed
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsIdentity").field("ca_pem", &self.ca_pem).finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("making the lab certificates: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("{path}: {message}")]
    File { path: String, message: String },
}

#[allow(deprecated)] // ring on purpose: docs/security.md, "ring, not AWS-LC, for TLS"
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Makes a lab CA and a server certificate for `names` (DNS names and IP addresses).
pub fn generate(names: &[String], org: &str) -> Result<TlsIdentity, TlsError> {
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, org);
    dn.push(DnType::CommonName, format!("{org} lab CA"));
    ca.distinguished_name = dn;
    let ca_cert = ca.self_signed(&ca_key)?;
    let ca_pem = ca_cert.pem();
    let issuer = Issuer::new(ca, ca_key);

    let leaf_key = KeyPair::generate()?;
    let mut leaf = CertificateParams::new(names.to_vec())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, names.first().cloned().unwrap_or_else(|| "localhost".into()));
    leaf.distinguished_name = dn;
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer)?;
    let chain = vec![leaf_cert.der().clone(), ca_cert.der().clone()];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    Ok(TlsIdentity { config: Arc::new(config), ca_pem })
}

/// A PEM file, at most 1 MiB of it (a device or a huge file is refused, not read whole).
fn read_pem(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    const PEM_MAX: u64 = 1 << 20;
    let mut out = Vec::new();
    std::fs::File::open(path)?.take(PEM_MAX + 1).read_to_end(&mut out)?;
    if out.len() as u64 > PEM_MAX {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "larger than the 1 MiB the lab reads"));
    }
    Ok(out)
}

/// Loads the operator's certificate chain and key (PEM files).
pub fn load(cert: &Path, key: &Path) -> Result<TlsIdentity, TlsError> {
    let file_err = |p: &Path, m: String| TlsError::File { path: p.display().to_string(), message: m };
    let cert_pem = read_pem(cert).map_err(|e| file_err(cert, e.to_string()))?;
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(&cert_pem).collect::<Result<_, _>>().map_err(|e| file_err(cert, e.to_string()))?;
    if certs.is_empty() {
        return Err(file_err(cert, "no CERTIFICATE in the file".into()));
    }
    let key_pem = read_pem(key).map_err(|e| file_err(key, e.to_string()))?;
    let key_der = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| file_err(key, format!("no usable PRIVATE KEY: {e}")))?;
    let ca_pem = pem_of(certs.last().expect("non-empty"));
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)?;
    Ok(TlsIdentity { config: Arc::new(config), ca_pem })
}

fn pem_of(der: &CertificateDer<'_>) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}
