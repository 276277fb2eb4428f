//! The API server's PKI, as k3s keeps it: a private certificate authority, a serving
//! certificate signed by it, and kubeconfigs that trust that CA.
//!
//! `kubectl` only sends bearer tokens over HTTPS, so the API server always serves TLS.
//! [`Pki::load_or_create`] keeps, under `DIR/tls/`:
//!
//! | file | what | mode |
//! | --- | --- | --- |
//! | `ca.crt`, `ca.key` | the cluster CA (ECDSA P-256, 10 years) | 0644, 0600 |
//! | `serving.crt`, `serving.key` | the API server's certificate (ECDSA P-256, 1 year) | 0644, 0600 |
//!
//! The CA is created on first start and then reused for ever, so kubeconfigs written
//! once keep working. The serving certificate is reissued from that CA whenever it no
//! longer fits: a subject alternative name asked for is not in it, it expires within 90
//! days, it is not signed by the CA, or its key does not match it. Every check is made
//! with the same verifier a client uses (webpki), not by reading fields back.
//!
//! A CA made elsewhere may be put in place of `ca.crt`/`ca.key` before first start, as
//! long as its key is PKCS #8 (`-----BEGIN PRIVATE KEY-----`) and its subject has one
//! attribute per RDN (as nearly all do); the serving certificate is then issued from it.
//!
//! [`write_kubeconfig`] writes the file `kubectl` reads, and [`new_token`] makes bearer
//! tokens for it.

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use rand::RngCore as _;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, DnValue,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose, SanType,
    SerialNumber,
};
use rustls::client::danger::ServerCertVerifier as _;
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use serde::Serialize;

/// How long a new CA is valid.
const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// How long a new serving certificate is valid.
const SERVING_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);
/// A serving certificate expiring sooner than this is reissued at start.
const RENEW_BEFORE: Duration = Duration::from_secs(90 * 24 * 3600);
/// New certificates start this long before now, for clocks a little behind ours.
const BACKDATE: Duration = Duration::from_secs(3600);
/// The names every serving certificate covers.
const ALWAYS_SANS: [&str; 3] = ["localhost", "127.0.0.1", "::1"];
/// The label put in front of a wildcard SAN to check that a certificate covers it.
const WILDCARD_PROBE: &str = "plimsoll-san-probe";

/// What can go wrong keeping the PKI or writing a kubeconfig.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// Reading, writing or creating a file or directory failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A file holds something unusable: corrupt PEM, a key of the wrong kind, a
    /// certificate that does not match its key, a CA whose certificates do not verify.
    #[error("{}: {reason}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong with it (with a line number where there is one).
        reason: String,
    },
    /// A subject alternative name asked for is neither an IP address nor a DNS name.
    #[error("invalid TLS subject alternative name {san:?}: {reason}")]
    InvalidSan {
        /// The name as given.
        san: String,
        /// Why it is refused.
        reason: String,
    },
    /// Generating a key or certificate failed.
    #[error("generating {what}: {source}")]
    Generate {
        /// What was being generated.
        what: &'static str,
        /// The cause.
        source: rcgen::Error,
    },
    /// rustls refused the certificate and key.
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    /// The kubeconfig could not be serialised.
    #[error("serialising kubeconfig {}: {reason}", path.display())]
    Kubeconfig {
        /// The kubeconfig's path.
        path: PathBuf,
        /// The cause.
        reason: String,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> PkiError + '_ {
    move |source| PkiError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn invalid(path: &Path, reason: impl Into<String>) -> PkiError {
    PkiError::Invalid {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn generate_err(what: &'static str) -> impl FnOnce(rcgen::Error) -> PkiError {
    move |source| PkiError::Generate { what, source }
}

/// The API server's CA and TLS configurations (see the [module docs](self)).
pub struct Pki {
    ca_pem: String,
    server: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
    sans: Vec<String>,
}

impl fmt::Debug for Pki {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pki")
            .field("sans", &self.sans)
            .finish_non_exhaustive()
    }
}

impl Pki {
    /// Under `dir/tls/`: creates on first start a CA (`ca.crt`, `ca.key`) and a serving
    /// certificate (`serving.crt`, `serving.key`) signed by it, keys mode 0600; later
    /// starts reuse them; if the SANs needed are not all covered by the existing serving
    /// certificate (or it expires within 90 days, or no longer matches its key or the
    /// CA), issues a new one from the same CA, so old kubeconfigs keep working.
    ///
    /// SANs: always `localhost`, `127.0.0.1`, `::1`, plus `sans`: IP addresses (IPv6
    /// with or without brackets) or DNS names (`*.example.com` wildcards allowed), e.g.
    /// the listen address and `--tls-san` values. Unspecified addresses (`0.0.0.0`,
    /// `::`) and empty strings are skipped.
    ///
    /// Errors name the file at fault: a CA file missing while the other is present,
    /// corrupt PEM (with its line), a CA key that is not PKCS #8 or does not match
    /// `ca.crt`. A corrupt serving certificate or key is an error too (it is not
    /// overwritten silently); delete both to have them reissued.
    pub fn load_or_create(dir: &Path, sans: &[String]) -> Result<Pki, PkiError> {
        let names = normalize_sans(sans)?;
        let tls_dir = dir.join("tls");
        create_private_dir(&tls_dir)?;
        let provider = ring_provider();

        let ca = load_or_create_ca(&tls_dir, &provider)?;
        let verifier = verifier_for(&ca.der, &provider)?;
        let serving = load_or_issue_serving(&tls_dir, &ca, &names, &verifier, &provider)?;

        let mut server = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(vec![serving.cert], serving.key)?;
        server.alpn_protocols = vec![b"http/1.1".to_vec()];

        let mut roots = RootCertStore::empty();
        roots.add(ca.der.clone())?;
        let mut client = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        client.alpn_protocols = vec![b"http/1.1".to_vec()];

        Ok(Pki {
            ca_pem: ca.pem,
            server: Arc::new(server),
            client: Arc::new(client),
            sans: names.iter().map(|n| n.text.clone()).collect(),
        })
    }

    /// The CA certificate, PEM (as in `ca.crt`, and base64-encoded in kubeconfigs).
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The subject alternative names the serving certificate was checked to cover
    /// (the defaults first, then those asked for, normalised and deduplicated).
    pub fn sans(&self) -> &[String] {
        &self.sans
    }

    /// The rustls server configuration: the serving certificate, no client
    /// certificates, ALPN `http/1.1` only, the ring provider.
    pub fn server_config(&self) -> Arc<ServerConfig> {
        self.server.clone()
    }

    /// A rustls client configuration trusting only this CA (ALPN `http/1.1`), for tests
    /// and in-process clients.
    pub fn client_config(&self) -> Arc<ClientConfig> {
        self.client.clone()
    }
}

/// One subject alternative name, parsed.
struct San {
    /// As shown to people (IPv6 without brackets, DNS names lower-cased).
    text: String,
    kind: SanKind,
    /// The name a client would verify to check this SAN is covered (for a wildcard, a
    /// name under it).
    probe: ServerName<'static>,
}

enum SanKind {
    Ip(IpAddr),
    Dns(String),
}

impl San {
    fn to_rcgen(&self) -> Result<SanType, PkiError> {
        Ok(match &self.kind {
            SanKind::Ip(ip) => SanType::IpAddress(*ip),
            SanKind::Dns(name) => {
                SanType::DnsName(name.as_str().try_into().map_err(|e: rcgen::Error| {
                    PkiError::InvalidSan {
                        san: name.clone(),
                        reason: e.to_string(),
                    }
                })?)
            }
        })
    }
}

fn parse_san(raw: &str) -> Result<Option<San>, PkiError> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Ok(None);
    }
    let unbracketed = trimmed
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(trimmed);
    if let Ok(ip) = unbracketed.parse::<IpAddr>() {
        if ip.is_unspecified() {
            return Ok(None);
        }
        return Ok(Some(San {
            text: ip.to_string(),
            kind: SanKind::Ip(ip),
            probe: ServerName::IpAddress(ip.into()),
        }));
    }
    let name = trimmed.trim_end_matches('.').to_ascii_lowercase();
    let bad = |reason: &str| PkiError::InvalidSan {
        san: raw.to_string(),
        reason: reason.to_string(),
    };
    let base = name.strip_prefix("*.").unwrap_or(&name);
    if base.contains('*') {
        return Err(bad(
            "a wildcard may only be a whole first label (*.example.com)",
        ));
    }
    let probe_name = if base.len() == name.len() {
        name.clone()
    } else {
        format!("{WILDCARD_PROBE}.{base}")
    };
    let probe = match ServerName::try_from(probe_name) {
        Ok(probe @ ServerName::DnsName(_)) => probe,
        _ => return Err(bad("not an IP address or a valid DNS name")),
    };
    Ok(Some(San {
        text: name.clone(),
        kind: SanKind::Dns(name),
        probe,
    }))
}

fn normalize_sans(sans: &[String]) -> Result<Vec<San>, PkiError> {
    let mut out: Vec<San> = Vec::new();
    for raw in ALWAYS_SANS
        .iter()
        .copied()
        .chain(sans.iter().map(String::as_str))
    {
        if let Some(san) = parse_san(raw)? {
            if !out.iter().any(|s| s.text == san.text) {
                out.push(san);
            }
        }
    }
    Ok(out)
}

/// The ring crypto provider, named explicitly so that no process-wide default is needed
/// (and none is ambiguous when another crate enables a second provider).
#[allow(deprecated)] // rustls 0.23.48 deprecates it for lack of post-quantum key exchange
fn ring_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The CA, loaded or created.
struct Ca {
    pem: String,
    der: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
}

/// A serving certificate and its key.
struct Serving {
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
}

fn now_since_epoch() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
}

fn random_serial() -> SerialNumber {
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes[0] &= 0x7f; // positive
    bytes[0] |= 0x01; // and no leading zero byte
    SerialNumber::from_slice(&bytes)
}

/// Validity from an hour ago for `validity`.
fn set_validity(params: &mut CertificateParams, validity: Duration) {
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    let now = now_since_epoch();
    params.not_before = epoch + now.saturating_sub(BACKDATE);
    params.not_after = epoch + now + validity;
}

fn load_or_create_ca(tls_dir: &Path, provider: &Arc<CryptoProvider>) -> Result<Ca, PkiError> {
    let crt_path = tls_dir.join("ca.crt");
    let key_path = tls_dir.join("ca.key");
    match (exists(&crt_path)?, exists(&key_path)?) {
        (false, false) => create_ca(&crt_path, &key_path),
        (true, true) => load_ca(&crt_path, &key_path, provider),
        (false, true) => Err(invalid(
            &crt_path,
            format!(
                "missing while {} exists; restore it, or remove the key to create a new CA \
                 (kubeconfigs of the old one will stop working)",
                key_path.display()
            ),
        )),
        (true, false) => Err(invalid(
            &key_path,
            format!(
                "missing while {} exists; restore it, or remove the certificate to create a \
                 new CA (kubeconfigs of the old one will stop working)",
                crt_path.display()
            ),
        )),
    }
}

fn create_ca(crt_path: &Path, key_path: &Path) -> Result<Ca, PkiError> {
    let key = KeyPair::generate().map_err(generate_err("CA key"))?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::CommonName,
        format!("plimsoll-server-ca@{}", now_since_epoch().as_secs()),
    );
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
    ];
    params.serial_number = Some(random_serial());
    set_validity(&mut params, CA_VALIDITY);
    let cert = params
        .self_signed(&key)
        .map_err(generate_err("CA certificate"))?;
    // The key first: a crash between the two writes leaves a key without a
    // certificate, which `load_or_create_ca` reports rather than silently replacing.
    write_atomic(key_path, key.serialize_pem().as_bytes(), 0o600)?;
    write_atomic(crt_path, cert.pem().as_bytes(), 0o644)?;
    tracing::info!(path = %crt_path.display(), "created a new cluster CA");
    Ok(Ca {
        pem: cert.pem(),
        der: cert.der().clone(),
        issuer: Issuer::new(params, key),
    })
}

fn load_ca(
    crt_path: &Path,
    key_path: &Path,
    provider: &Arc<CryptoProvider>,
) -> Result<Ca, PkiError> {
    let crt_text = read_text(crt_path)?;
    let der = first_cert(crt_path, &crt_text)?;
    let key_text = read_text(key_path)?;
    let pkcs8 = pkcs8_key(key_path, &key_text)?;
    let key = KeyPair::try_from(pkcs8.secret_pkcs8_der())
        .map_err(|e| invalid(key_path, format!("unusable CA key: {e}")))?;
    check_key_matches(crt_path, &der, PrivateKeyDer::Pkcs8(pkcs8), provider)?;
    let subject = parse_ca_subject(&der).map_err(|reason| invalid(crt_path, reason))?;
    let mut params = CertificateParams::default();
    params.distinguished_name = subject.name;
    params.key_identifier_method = match subject.key_id {
        Some(id) => KeyIdMethod::PreSpecified(id),
        None => KeyIdMethod::Sha256,
    };
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    // Re-encoded from the DER: the CA certificate alone, whatever else ca.crt holds
    // (for a CA made here, the same text as the file).
    let pem = pem_of("CERTIFICATE", &der);
    Ok(Ca {
        pem,
        der,
        issuer: Issuer::new(params, key),
    })
}

/// Fails unless `key` is the private key of `cert`.
fn check_key_matches(
    cert_path: &Path,
    cert: &CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
    provider: &Arc<CryptoProvider>,
) -> Result<(), PkiError> {
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| invalid(cert_path, format!("its key is unusable: {e}")))?;
    let certified = rustls::sign::CertifiedKey::new(vec![cert.clone()], signing);
    certified
        .keys_match()
        .map_err(|e| invalid(cert_path, format!("does not match its key: {e}")))
}

fn verifier_for(
    ca: &CertificateDer<'static>,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<WebPkiServerVerifier>, PkiError> {
    let mut roots = RootCertStore::empty();
    roots.add(ca.clone())?;
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| PkiError::Tls(rustls::Error::General(e.to_string())))
}

/// Whether `cert` verifies, against the CA, for every name in `names` at time `at`.
fn covers(
    verifier: &WebPkiServerVerifier,
    cert: &CertificateDer<'_>,
    names: &[San],
    at: Duration,
) -> Result<(), String> {
    for san in names {
        verifier
            .verify_server_cert(cert, &[], &san.probe, &[], UnixTime::since_unix_epoch(at))
            .map_err(|e| format!("{}: {e}", san.text))?;
    }
    Ok(())
}

fn load_or_issue_serving(
    tls_dir: &Path,
    ca: &Ca,
    names: &[San],
    verifier: &WebPkiServerVerifier,
    provider: &Arc<CryptoProvider>,
) -> Result<Serving, PkiError> {
    let crt_path = tls_dir.join("serving.crt");
    let key_path = tls_dir.join("serving.key");
    if exists(&crt_path)? && exists(&key_path)? {
        let cert = first_cert(&crt_path, &read_text(&crt_path)?)?;
        let key = any_key(&key_path, &read_text(&key_path)?)?;
        let now = now_since_epoch();
        let fits = check_key_matches(&crt_path, &cert, key.clone_key(), provider)
            .map_err(|e| e.to_string())
            .and_then(|()| covers(verifier, &cert, names, now))
            .and_then(|()| {
                covers(verifier, &cert, names, now + RENEW_BEFORE)
                    .map_err(|e| format!("expires within 90 days ({e})"))
            });
        match fits {
            Ok(()) => return Ok(Serving { cert, key }),
            Err(why) => {
                tracing::info!(path = %crt_path.display(), reason = %why, "reissuing the serving certificate");
            }
        }
    }
    let serving = issue_serving(ca, names)?;
    covers(verifier, &serving.cert, names, now_since_epoch()).map_err(|e| {
        invalid(
            &tls_dir.join("ca.crt"),
            format!("a certificate issued by this CA does not verify against it: {e}"),
        )
    })?;
    write_atomic(
        &key_path,
        pem_of("PRIVATE KEY", serving.key.secret_der()).as_bytes(),
        0o600,
    )?;
    write_atomic(
        &crt_path,
        pem_of("CERTIFICATE", &serving.cert).as_bytes(),
        0o644,
    )?;
    Ok(serving)
}

fn issue_serving(ca: &Ca, names: &[San]) -> Result<Serving, PkiError> {
    let key = KeyPair::generate().map_err(generate_err("serving key"))?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "plimsoll");
    dn.push(DnType::CommonName, "plimsoll");
    params.distinguished_name = dn;
    params.subject_alt_names = names.iter().map(San::to_rcgen).collect::<Result<_, _>>()?;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    params.serial_number = Some(random_serial());
    set_validity(&mut params, SERVING_VALIDITY);
    let cert = params
        .signed_by(&key, &ca.issuer)
        .map_err(generate_err("serving certificate"))?;
    Ok(Serving {
        cert: cert.der().clone(),
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    })
}

// ---------------------------------------------------------------------------------------
// Files

fn exists(path: &Path) -> Result<bool, PkiError> {
    match fs::metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_err(path)(e)),
    }
}

fn read_text(path: &Path) -> Result<String, PkiError> {
    let bytes = fs::read(path).map_err(io_err(path))?;
    String::from_utf8(bytes).map_err(|_| invalid(path, "not PEM text (not UTF-8)"))
}

fn create_private_dir(path: &Path) -> Result<(), PkiError> {
    if path.is_dir() {
        return Ok(());
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder.create(path).map_err(io_err(path))
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, synced,
/// then renamed over `path`. `mode` applies on Unix.
fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), PkiError> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .ok_or_else(|| invalid(path, "not a file path"))?
        .to_string_lossy()
        .into_owned();
    let tmp = parent.join(format!(
        ".{file_name}.tmp-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    ));
    let result = (|| {
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(mode);
        }
        #[cfg(not(unix))]
        let _ = mode;
        let mut file = options.open(&tmp).map_err(io_err(&tmp))?;
        file.write_all(bytes).map_err(io_err(&tmp))?;
        file.sync_all().map_err(io_err(&tmp))?;
        fs::rename(&tmp, path).map_err(io_err(path))?;
        // Make the rename durable; best effort (not every platform can sync a directory).
        if let Ok(dir) = fs::File::open(&parent) {
            let _ = dir.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

// ---------------------------------------------------------------------------------------
// PEM

/// One PEM block.
struct PemBlock {
    label: String,
    der: Vec<u8>,
}

/// Parses every PEM block of `text`; text outside blocks is ignored (as OpenSSL does).
/// Errors name `path` and the line.
fn pem_blocks(path: &Path, text: &str) -> Result<Vec<PemBlock>, PkiError> {
    let mut blocks = Vec::new();
    let mut current: Option<(String, usize, String)> = None; // label, first line, base64
    for (index, raw) in text.lines().enumerate() {
        let line_no = index + 1;
        let line = raw.trim();
        match &mut current {
            None => {
                if let Some(rest) = line.strip_prefix("-----BEGIN ") {
                    let label = rest.strip_suffix("-----").ok_or_else(|| {
                        invalid(path, format!("line {line_no}: malformed PEM BEGIN line"))
                    })?;
                    current = Some((label.to_string(), line_no, String::new()));
                } else if line.starts_with("-----END ") {
                    return Err(invalid(
                        path,
                        format!("line {line_no}: PEM END line without a BEGIN"),
                    ));
                }
            }
            Some((label, start, b64)) => {
                if let Some(rest) = line.strip_prefix("-----END ") {
                    let end = rest.strip_suffix("-----").unwrap_or(rest);
                    if end != label {
                        return Err(invalid(
                            path,
                            format!(
                                "line {line_no}: PEM block {label:?} (line {start}) ends with {end:?}"
                            ),
                        ));
                    }
                    let der = base64::engine::general_purpose::STANDARD
                        .decode(b64.as_bytes())
                        .map_err(|e| {
                            invalid(
                                path,
                                format!(
                                    "lines {start}-{line_no}: PEM block {label:?} is not valid base64: {e}"
                                ),
                            )
                        })?;
                    if der.is_empty() {
                        return Err(invalid(
                            path,
                            format!("line {start}: PEM block {label:?} is empty"),
                        ));
                    }
                    blocks.push(PemBlock {
                        label: std::mem::take(label),
                        der,
                    });
                    current = None;
                } else if line.starts_with("-----BEGIN ") {
                    return Err(invalid(
                        path,
                        format!(
                            "line {line_no}: PEM block {label:?} (line {start}) is not closed before the next BEGIN"
                        ),
                    ));
                } else if line.contains(':') {
                    // RFC 1421 headers (Proc-Type, DEK-Info): an encrypted key.
                    return Err(invalid(
                        path,
                        format!(
                            "line {line_no}: PEM headers (an encrypted key?) are not supported"
                        ),
                    ));
                } else {
                    b64.push_str(line);
                }
            }
        }
    }
    if let Some((label, start, _)) = current {
        return Err(invalid(
            path,
            format!("line {start}: PEM block {label:?} has no END line"),
        ));
    }
    Ok(blocks)
}

fn pem_of(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn first_cert(path: &Path, text: &str) -> Result<CertificateDer<'static>, PkiError> {
    let block = pem_blocks(path, text)?
        .into_iter()
        .find(|b| b.label == "CERTIFICATE")
        .ok_or_else(|| invalid(path, "no CERTIFICATE PEM block"))?;
    // Check it parses as a certificate now rather than in the middle of a handshake.
    parse_tbs(&block.der).map_err(|e| invalid(path, format!("not a certificate: {e}")))?;
    Ok(CertificateDer::from(block.der))
}

/// The private key of a file, as PKCS #8 (what rcgen can sign with).
fn pkcs8_key(path: &Path, text: &str) -> Result<PrivatePkcs8KeyDer<'static>, PkiError> {
    match any_key(path, text)? {
        PrivateKeyDer::Pkcs8(key) => Ok(key),
        _ => Err(invalid(
            path,
            "the CA key must be PKCS #8 (-----BEGIN PRIVATE KEY-----); convert it with \
             `openssl pkcs8 -topk8 -nocrypt`",
        )),
    }
}

fn any_key(path: &Path, text: &str) -> Result<PrivateKeyDer<'static>, PkiError> {
    for block in pem_blocks(path, text)? {
        let key = match block.label.as_str() {
            "PRIVATE KEY" => PrivateKeyDer::Pkcs8(block.der.into()),
            "EC PRIVATE KEY" => PrivateKeyDer::Sec1(block.der.into()),
            "RSA PRIVATE KEY" => PrivateKeyDer::Pkcs1(block.der.into()),
            "ENCRYPTED PRIVATE KEY" => {
                return Err(invalid(path, "encrypted private keys are not supported"));
            }
            _ => continue,
        };
        return Ok(key);
    }
    Err(invalid(path, "no private key PEM block"))
}

// ---------------------------------------------------------------------------------------
// Just enough DER to reuse a CA: its subject name and subject key identifier.

/// One DER element.
struct Tlv<'a> {
    tag: u8,
    body: &'a [u8],
}

fn read_tlv<'a>(input: &mut &'a [u8]) -> Result<Tlv<'a>, String> {
    let (&tag, rest) = input.split_first().ok_or("truncated DER")?;
    if tag & 0x1f == 0x1f {
        return Err("unsupported DER tag".into());
    }
    let (&first, mut rest) = rest.split_first().ok_or("truncated DER")?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return Err("bad DER length".into());
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        rest = &rest[n..];
        len
    };
    if rest.len() < len {
        return Err("truncated DER".into());
    }
    let (body, after) = rest.split_at(len);
    *input = after;
    Ok(Tlv { tag, body })
}

fn expect<'a>(input: &mut &'a [u8], tag: u8, what: &str) -> Result<&'a [u8], String> {
    let tlv = read_tlv(input)?;
    if tlv.tag != tag {
        return Err(format!("expected {what}"));
    }
    Ok(tlv.body)
}

/// The parts of a TBSCertificate this module needs: subject and extensions.
struct Tbs<'a> {
    subject: &'a [u8],
    extensions: Option<&'a [u8]>,
}

fn parse_tbs(der: &[u8]) -> Result<Tbs<'_>, String> {
    let mut input = der;
    let mut cert = expect(&mut input, 0x30, "Certificate")?;
    if !input.is_empty() {
        return Err("trailing data after the certificate".into());
    }
    let mut tbs = expect(&mut cert, 0x30, "TBSCertificate")?;
    let mut first = read_tlv(&mut tbs)?;
    if first.tag == 0xa0 {
        first = read_tlv(&mut tbs)?;
    }
    if first.tag != 0x02 {
        return Err("expected serialNumber".into());
    }
    expect(&mut tbs, 0x30, "signature algorithm")?;
    expect(&mut tbs, 0x30, "issuer")?;
    expect(&mut tbs, 0x30, "validity")?;
    let subject = expect(&mut tbs, 0x30, "subject")?;
    expect(&mut tbs, 0x30, "subjectPublicKeyInfo")?;
    let mut extensions = None;
    while !tbs.is_empty() {
        let tlv = read_tlv(&mut tbs)?;
        if tlv.tag == 0xa3 {
            let mut body = tlv.body;
            extensions = Some(expect(&mut body, 0x30, "Extensions")?);
        }
    }
    Ok(Tbs {
        subject,
        extensions,
    })
}

fn decode_oid(body: &[u8]) -> Result<Vec<u64>, String> {
    let mut arcs = Vec::new();
    let mut value: u64 = 0;
    for (i, &b) in body.iter().enumerate() {
        if value > (u64::MAX >> 7) {
            return Err("OID arc too large".into());
        }
        value = (value << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (value / 40).min(2);
                arcs.push(first);
                arcs.push(value - first * 40);
            } else {
                arcs.push(value);
            }
            value = 0;
        } else if i + 1 == body.len() {
            return Err("truncated OID".into());
        }
    }
    if arcs.is_empty() {
        return Err("empty OID".into());
    }
    Ok(arcs)
}

/// A CA certificate's subject, as rcgen needs it to issue certificates under it.
struct CaSubject {
    name: DistinguishedName,
    key_id: Option<Vec<u8>>,
}

fn parse_ca_subject(der: &[u8]) -> Result<CaSubject, String> {
    let tbs = parse_tbs(der).map_err(|e| format!("not a certificate: {e}"))?;
    let mut name = DistinguishedName::new();
    let mut seen: Vec<Vec<u64>> = Vec::new();
    let mut rdns = tbs.subject;
    while !rdns.is_empty() {
        let mut set = expect(&mut rdns, 0x31, "RelativeDistinguishedName")?;
        let mut atv = expect(&mut set, 0x30, "AttributeTypeAndValue")?;
        if !set.is_empty() {
            return Err("the CA's subject has a multi-valued RDN, which cannot be reused".into());
        }
        let oid = decode_oid(expect(&mut atv, 0x06, "attribute type")?)?;
        let value = read_tlv(&mut atv)?;
        let text = || {
            std::str::from_utf8(value.body)
                .map(str::to_string)
                .map_err(|_| "a subject attribute is not valid text".to_string())
        };
        let unsupported = |e: rcgen::Error| format!("unsupported subject attribute: {e}");
        let dn_value = match value.tag {
            0x0c => DnValue::Utf8String(text()?),
            0x13 => DnValue::PrintableString(text()?.try_into().map_err(unsupported)?),
            0x16 => DnValue::Ia5String(text()?.try_into().map_err(unsupported)?),
            0x14 => DnValue::TeletexString(text()?.try_into().map_err(unsupported)?),
            0x1e => DnValue::BmpString(
                rcgen::string::BmpString::from_utf16be(value.body.to_vec()).map_err(unsupported)?,
            ),
            0x1c => DnValue::UniversalString(
                rcgen::string::UniversalString::from_utf32be(value.body.to_vec())
                    .map_err(unsupported)?,
            ),
            tag => {
                return Err(format!(
                    "unsupported subject attribute string type {tag:#04x}"
                ));
            }
        };
        if seen.contains(&oid) {
            return Err(
                "the CA's subject repeats an attribute type, which cannot be reused".into(),
            );
        }
        seen.push(oid.clone());
        name.push(DnType::CustomDnType(oid), dn_value);
    }
    let mut key_id = None;
    if let Some(mut exts) = tbs.extensions {
        while !exts.is_empty() {
            let mut ext = expect(&mut exts, 0x30, "Extension")?;
            let oid = decode_oid(expect(&mut ext, 0x06, "extension id")?)?;
            let mut next = read_tlv(&mut ext)?;
            if next.tag == 0x01 {
                next = read_tlv(&mut ext)?;
            }
            if next.tag != 0x04 {
                return Err("expected extension value".into());
            }
            if oid == [2, 5, 29, 14] {
                let mut value = next.body;
                key_id = Some(expect(&mut value, 0x04, "subject key identifier")?.to_vec());
            }
        }
    }
    Ok(CaSubject { name, key_id })
}

// ---------------------------------------------------------------------------------------
// Kubeconfig and tokens

#[derive(Serialize)]
struct Kubeconfig<'a> {
    #[serde(rename = "apiVersion")]
    api_version: &'a str,
    kind: &'a str,
    clusters: Vec<NamedCluster<'a>>,
    users: Vec<NamedUser<'a>>,
    contexts: Vec<NamedContext<'a>>,
    #[serde(rename = "current-context")]
    current_context: &'a str,
    preferences: std::collections::BTreeMap<String, String>,
}

#[derive(Serialize)]
struct NamedCluster<'a> {
    name: &'a str,
    cluster: Cluster<'a>,
}

#[derive(Serialize)]
struct Cluster<'a> {
    server: &'a str,
    #[serde(rename = "certificate-authority-data")]
    certificate_authority_data: String,
}

#[derive(Serialize)]
struct NamedUser<'a> {
    name: &'a str,
    user: UserEntry<'a>,
}

#[derive(Serialize)]
struct UserEntry<'a> {
    token: &'a str,
}

#[derive(Serialize)]
struct NamedContext<'a> {
    name: &'a str,
    context: Context<'a>,
}

#[derive(Serialize)]
struct Context<'a> {
    cluster: &'a str,
    user: &'a str,
}

/// Writes a kubeconfig (YAML, mode 0600) with one cluster named `context` (`server_url`,
/// `certificate-authority-data` = base64 of `ca_pem`), one user named `user` with
/// `token`, and one context named `context` joining them, set as `current-context`.
///
/// The parent directory is created if missing. The write is atomic (a temporary file in
/// the same directory, synced, then renamed), so a reader never sees half a file; an
/// existing file at `path` is replaced whole.
pub fn write_kubeconfig(
    path: &Path,
    context: &str,
    server_url: &str,
    ca_pem: &str,
    user: &str,
    token: &str,
) -> Result<(), PkiError> {
    let config = Kubeconfig {
        api_version: "v1",
        kind: "Config",
        clusters: vec![NamedCluster {
            name: context,
            cluster: Cluster {
                server: server_url,
                certificate_authority_data: base64::engine::general_purpose::STANDARD
                    .encode(ca_pem.as_bytes()),
            },
        }],
        users: vec![NamedUser {
            name: user,
            user: UserEntry { token },
        }],
        contexts: vec![NamedContext {
            name: context,
            context: Context {
                cluster: context,
                user,
            },
        }],
        current_context: context,
        preferences: Default::default(),
    };
    let yaml = serde_yaml::to_string(&config).map_err(|e| PkiError::Kubeconfig {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    if let Some(parent) = path.parent() {
        if !parent.as_os_str().is_empty() {
            fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
    }
    write_atomic(path, yaml.as_bytes(), 0o600)
}

/// A fresh random bearer token: 32 bytes from the operating system's generator, as 64
/// lower-case hex digits.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    /// A directory under the system's temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            let path = std::env::temp_dir().join(format!(
                "plimsoll-pki-{tag}-{}-{:016x}",
                std::process::id(),
                rand::random::<u64>()
            ));
            fs::create_dir_all(&path).unwrap();
            TempDir(path)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn read(path: &Path) -> String {
        fs::read_to_string(path).unwrap()
    }

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt as _;
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn creates_then_reuses_the_ca_and_serving_cert() {
        let dir = TempDir::new("reuse");
        let pki = Pki::load_or_create(&dir.0, &[]).unwrap();
        let tls = dir.0.join("tls");
        for f in ["ca.crt", "ca.key", "serving.crt", "serving.key"] {
            assert!(tls.join(f).is_file(), "{f} missing");
        }
        #[cfg(unix)]
        {
            assert_eq!(mode(&tls.join("ca.key")), 0o600);
            assert_eq!(mode(&tls.join("serving.key")), 0o600);
            assert_eq!(mode(&tls), 0o700);
        }
        assert!(pki.ca_pem().starts_with("-----BEGIN CERTIFICATE-----"));
        assert_eq!(pki.ca_pem(), read(&tls.join("ca.crt")));
        assert_eq!(pki.sans(), ["localhost", "127.0.0.1", "::1"]);
        let serving = read(&tls.join("serving.crt"));

        let again = Pki::load_or_create(&dir.0, &[]).unwrap();
        assert_eq!(again.ca_pem(), pki.ca_pem());
        assert_eq!(
            read(&tls.join("serving.crt")),
            serving,
            "serving cert reissued needlessly"
        );
    }

    #[test]
    fn a_new_san_reissues_the_serving_cert_from_the_same_ca() {
        let dir = TempDir::new("san");
        let first = Pki::load_or_create(&dir.0, &["10.1.2.3".into()]).unwrap();
        let tls = dir.0.join("tls");
        let serving = read(&tls.join("serving.crt"));
        let ca_key = read(&tls.join("ca.key"));

        // Already covered (defaults, duplicates, brackets): no reissue.
        let same = Pki::load_or_create(
            &dir.0,
            &[
                "10.1.2.3".into(),
                "[::1]".into(),
                "LOCALHOST".into(),
                "0.0.0.0".into(),
            ],
        )
        .unwrap();
        assert_eq!(read(&tls.join("serving.crt")), serving);
        assert_eq!(same.ca_pem(), first.ca_pem());

        let more = Pki::load_or_create(
            &dir.0,
            &[
                "10.1.2.3".into(),
                "api.example.com".into(),
                "*.apps.example.com".into(),
            ],
        )
        .unwrap();
        assert_ne!(read(&tls.join("serving.crt")), serving, "not reissued");
        assert_eq!(more.ca_pem(), first.ca_pem(), "CA changed");
        assert_eq!(read(&tls.join("ca.key")), ca_key, "CA key changed");

        // The new certificate verifies for every name, against the CA of the first start.
        let provider = ring_provider();
        let ca_der = first_cert(Path::new("ca"), first.ca_pem()).unwrap();
        let verifier = verifier_for(&ca_der, &provider).unwrap();
        let cert = first_cert(Path::new("s"), &read(&tls.join("serving.crt"))).unwrap();
        let names = normalize_sans(&[
            "10.1.2.3".into(),
            "api.example.com".into(),
            "*.apps.example.com".into(),
        ])
        .unwrap();
        covers(&verifier, &cert, &names, now_since_epoch()).unwrap();
        let web = ServerName::try_from("web.apps.example.com").unwrap();
        verifier
            .verify_server_cert(&cert, &[], &web, &[], UnixTime::now())
            .unwrap();
        let other = ServerName::try_from("other.example.org").unwrap();
        assert!(verifier
            .verify_server_cert(&cert, &[], &other, &[], UnixTime::now())
            .is_err());

        // Now the SAN set shrinks back: the bigger certificate still covers it.
        let cert_text = read(&tls.join("serving.crt"));
        Pki::load_or_create(&dir.0, &[]).unwrap();
        assert_eq!(read(&tls.join("serving.crt")), cert_text);
    }

    #[test]
    fn a_mismatched_or_foreign_serving_cert_is_reissued() {
        let dir = TempDir::new("mismatch");
        Pki::load_or_create(&dir.0, &[]).unwrap();
        let tls = dir.0.join("tls");
        // A key that is not the certificate's.
        let other = KeyPair::generate().unwrap();
        fs::write(tls.join("serving.key"), other.serialize_pem()).unwrap();
        let pki = Pki::load_or_create(&dir.0, &[]).unwrap();
        let key = read(&tls.join("serving.key"));
        assert_ne!(key, other.serialize_pem());
        // A self-signed certificate (not from the CA) is replaced too.
        let selfsigned = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        fs::write(tls.join("serving.crt"), selfsigned.cert.pem()).unwrap();
        fs::write(
            tls.join("serving.key"),
            selfsigned.signing_key.serialize_pem(),
        )
        .unwrap();
        let again = Pki::load_or_create(&dir.0, &[]).unwrap();
        assert_ne!(read(&tls.join("serving.crt")), selfsigned.cert.pem());
        assert_eq!(again.ca_pem(), pki.ca_pem());
    }

    #[test]
    fn corrupt_files_are_errors_naming_file_and_line() {
        let dir = TempDir::new("corrupt");
        Pki::load_or_create(&dir.0, &[]).unwrap();
        let tls = dir.0.join("tls");
        let good_crt = read(&tls.join("ca.crt"));

        fs::write(
            tls.join("ca.crt"),
            "-----BEGIN CERTIFICATE-----\nnot base64!!\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let err = Pki::load_or_create(&dir.0, &[]).unwrap_err().to_string();
        assert!(err.contains("ca.crt") && err.contains("lines 1-3"), "{err}");

        fs::write(tls.join("ca.crt"), "-----BEGIN CERTIFICATE-----\nMIIB\n").unwrap();
        let err = Pki::load_or_create(&dir.0, &[]).unwrap_err().to_string();
        assert!(
            err.contains("ca.crt") && err.contains("line 1") && err.contains("no END"),
            "{err}"
        );

        fs::write(tls.join("ca.crt"), "hello\n").unwrap();
        let err = Pki::load_or_create(&dir.0, &[]).unwrap_err().to_string();
        assert!(
            err.contains("ca.crt") && err.contains("no CERTIFICATE"),
            "{err}"
        );

        // Valid base64, not a certificate.
        fs::write(
            tls.join("ca.crt"),
            pem_of("CERTIFICATE", b"\x30\x03\x02\x01\x01"),
        )
        .unwrap();
        let err = Pki::load_or_create(&dir.0, &[]).unwrap_err().to_string();
        assert!(
            err.contains("ca.crt") && err.contains("not a certificate"),
            "{err}"
        );

        // A CA key that is not the CA certificate's.
        fs::write(tls.join("ca.crt"), &good_crt).unwrap();
        let good_key = read(&tls.join("ca.key"));
        fs::write(
            tls.join("ca.key"),
            KeyPair::generate().unwrap().serialize_pem(),
        )
        .unwrap();
        let err = Pki::load_or_create(&dir.0, &[]).unwrap_err().to_string();
        assert!(
            err.contains("ca.crt") && err.contains("does not match"),
            "{err}"
        );

        // A missing half of the CA.
        fs::write(tls.join("ca.key"), &good_key).unwrap();
        fs::remove_file(tls.join("ca.crt")).unwrap();
        let err = Pki::load_or_create(&dir.0, &[]).unwrap_err().to_string();
        assert!(err.contains("ca.crt") && err.contains("missing"), "{err}");
        fs::write(tls.join("ca.crt"), &good_crt).unwrap();

        // A corrupt serving key is an error, not silently replaced.
        fs::write(
            tls.join("serving.key"),
            "-----BEGIN PRIVATE KEY-----\n%%%\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        let err = Pki::load_or_create(&dir.0, &[]).unwrap_err().to_string();
        assert!(
            err.contains("serving.key") && err.contains("base64"),
            "{err}"
        );
        fs::remove_file(tls.join("serving.key")).unwrap();
        Pki::load_or_create(&dir.0, &[]).unwrap();
    }

    #[test]
    fn bad_sans_are_refused() {
        let dir = TempDir::new("badsan");
        for bad in [
            "not a name",
            "a*b.example.com",
            "*.*.example.com",
            "under_score!",
        ] {
            let err = Pki::load_or_create(&dir.0, &[bad.into()]).unwrap_err();
            assert!(matches!(err, PkiError::InvalidSan { .. }), "{bad}: {err}");
        }
    }

    #[test]
    fn reuses_a_ca_made_elsewhere() {
        // A CA with a multi-attribute PrintableString subject and a SHA-1-style key id,
        // as other tools make them.
        let dir = TempDir::new("foreign");
        let tls = dir.0.join("tls");
        fs::create_dir_all(&tls).unwrap();
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(
            DnType::CountryName,
            DnValue::PrintableString("DE".try_into().unwrap()),
        );
        dn.push(DnType::OrganizationName, "Example");
        dn.push(DnType::CommonName, "example-ca");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
        params.key_identifier_method = KeyIdMethod::PreSpecified(vec![7; 20]);
        let cert = params.self_signed(&key).unwrap();
        fs::write(tls.join("ca.crt"), cert.pem()).unwrap();
        fs::write(tls.join("ca.key"), key.serialize_pem()).unwrap();
        let pki = Pki::load_or_create(&dir.0, &["10.0.0.1".into()]).unwrap();
        assert_eq!(pki.ca_pem(), cert.pem());
        let subject = parse_ca_subject(cert.der()).unwrap();
        assert_eq!(subject.key_id, Some(vec![7; 20]));
    }

    #[tokio::test]
    async fn handshake_with_client_config() {
        let dir = TempDir::new("handshake");
        let pki = Pki::load_or_create(&dir.0, &[]).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(pki.server_config());
        let server = tokio::spawn(async move {
            for _ in 0..2 {
                let (tcp, _) = listener.accept().await.unwrap();
                if let Ok(mut tls) = acceptor.accept(tcp).await {
                    let mut buf = [0u8; 4];
                    tls.read_exact(&mut buf).await.unwrap();
                    tls.write_all(b"pong").await.unwrap();
                    tls.shutdown().await.unwrap();
                }
            }
        });
        let connector = tokio_rustls::TlsConnector::from(pki.client_config());
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let name = ServerName::try_from("127.0.0.1").unwrap();
        let mut tls = connector.connect(name, tcp).await.unwrap();
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
        tls.write_all(b"ping").await.unwrap();
        let mut answer = Vec::new();
        tls.read_to_end(&mut answer).await.unwrap();
        assert_eq!(answer, b"pong");

        // A name the certificate does not cover fails verification.
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let name = ServerName::try_from("example.org").unwrap();
        let err = connector.connect(name, tcp).await.unwrap_err();
        assert!(err.to_string().contains("certificate"), "{err}");
        server.await.unwrap();
    }

    #[test]
    fn kubeconfig_has_the_expected_fields() {
        let dir = TempDir::new("kubeconfig");
        let pki = Pki::load_or_create(&dir.0, &[]).unwrap();
        let path = dir.0.join("sub/dir/kubeconfig.yaml");
        let token = new_token();
        write_kubeconfig(
            &path,
            "plimsoll",
            "https://127.0.0.1:6443",
            pki.ca_pem(),
            "admin",
            &token,
        )
        .unwrap();
        #[cfg(unix)]
        assert_eq!(mode(&path), 0o600);
        let doc: serde_yaml::Value = serde_yaml::from_str(&read(&path)).unwrap();
        assert_eq!(doc["apiVersion"], "v1");
        assert_eq!(doc["kind"], "Config");
        assert_eq!(doc["current-context"], "plimsoll");
        let cluster = &doc["clusters"][0];
        assert_eq!(cluster["name"], "plimsoll");
        assert_eq!(cluster["cluster"]["server"], "https://127.0.0.1:6443");
        let ca = base64::engine::general_purpose::STANDARD
            .decode(
                cluster["cluster"]["certificate-authority-data"]
                    .as_str()
                    .unwrap(),
            )
            .unwrap();
        assert_eq!(ca, pki.ca_pem().as_bytes());
        assert_eq!(doc["users"][0]["name"], "admin");
        assert_eq!(doc["users"][0]["user"]["token"], token.as_str());
        assert_eq!(doc["contexts"][0]["name"], "plimsoll");
        assert_eq!(doc["contexts"][0]["context"]["cluster"], "plimsoll");
        assert_eq!(doc["contexts"][0]["context"]["user"], "admin");

        // Rewriting replaces it whole; no temporary files are left behind.
        write_kubeconfig(
            &path,
            "other",
            "https://[::1]:6443",
            pki.ca_pem(),
            "admin",
            "t",
        )
        .unwrap();
        let doc: serde_yaml::Value = serde_yaml::from_str(&read(&path)).unwrap();
        assert_eq!(doc["current-context"], "other");
        assert_eq!(fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
    }

    #[test]
    fn tokens_are_fresh_hex() {
        let a = new_token();
        let b = new_token();
        assert_eq!(a.len(), 64);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(a, b);
    }

    fn kubectl() -> Option<&'static str> {
        let ok = Command::new("kubectl")
            .args(["version", "--client"])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if ok {
            Some("kubectl")
        } else {
            eprintln!("kubectl not found: skipping");
            None
        }
    }

    #[test]
    fn kubectl_reads_the_kubeconfig() {
        let Some(kubectl) = kubectl() else { return };
        let dir = TempDir::new("kubectl-view");
        let pki = Pki::load_or_create(&dir.0, &[]).unwrap();
        let path = dir.0.join("kubeconfig");
        write_kubeconfig(
            &path,
            "plimsoll",
            "https://127.0.0.1:6443",
            pki.ca_pem(),
            "admin",
            "tok",
        )
        .unwrap();
        let out = Command::new(kubectl)
            .arg("config")
            .arg("view")
            .arg("--kubeconfig")
            .arg(&path)
            .args(["--raw", "-o", "json"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(doc["current-context"], "plimsoll");
        assert_eq!(
            doc["clusters"][0]["cluster"]["server"],
            "https://127.0.0.1:6443"
        );
        assert_eq!(
            doc["clusters"][0]["cluster"]["certificate-authority-data"],
            base64::engine::general_purpose::STANDARD.encode(pki.ca_pem())
        );
        assert_eq!(doc["users"][0]["user"]["token"], "tok");
        assert_eq!(doc["contexts"][0]["context"]["user"], "admin");
    }

    /// kubectl (Go's TLS and x509) trusts the CA, accepts the serving certificate for
    /// 127.0.0.1 and sends the token.
    #[test]
    fn kubectl_talks_tls_to_the_serving_certificate() {
        let Some(kubectl) = kubectl() else { return };
        let dir = TempDir::new("kubectl-tls");
        let pki = Pki::load_or_create(&dir.0, &[]).unwrap();
        let rt = tokio::runtime::Runtime::new().unwrap();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(pki.server_config());
        let token = new_token();
        let expected = format!("authorization: bearer {token}");
        // Requests seen, and how many carried the token. (The kubectl here may be a
        // dispatcher that asks /version itself before running the real kubectl, so serve
        // every connection until kubectl exits.)
        let seen = Arc::new(std::sync::Mutex::new((0usize, 0usize)));
        let counts = seen.clone();
        let server = rt.spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else { continue };
                let acceptor = acceptor.clone();
                let expected = expected.clone();
                let counts = counts.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match tls.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
                    {
                        let mut counts = counts.lock().unwrap();
                        counts.0 += 1;
                        counts.1 += usize::from(head.contains(&expected));
                    }
                    let body = r#"{"major":"1","minor":"32","gitVersion":"v1.32.0-plimsoll"}"#;
                    let response = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = tls.write_all(response.as_bytes()).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        let path = dir.0.join("kubeconfig");
        write_kubeconfig(
            &path,
            "plimsoll",
            &format!("https://{addr}"),
            pki.ca_pem(),
            "admin",
            &token,
        )
        .unwrap();
        let out = Command::new(kubectl)
            .arg("--kubeconfig")
            .arg(&path)
            .arg("--cache-dir")
            .arg(dir.0.join("cache"))
            .args(["--request-timeout=20s", "get", "--raw", "/version"])
            .output()
            .unwrap();
        server.abort();
        let (requests, with_token) = *seen.lock().unwrap();
        assert!(
            out.status.success(),
            "kubectl failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("v1.32.0-plimsoll"));
        assert!(requests > 0);
        assert_eq!(
            with_token, requests,
            "kubectl did not send the bearer token"
        );
    }
}
