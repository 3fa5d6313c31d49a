//! HTTPS and WSS on the listening port (`--tls-cert`, `--tls-key`), with rustls and its ring
//! provider.
//!
//! The certificate chain and key live in a [`CertStore`], which rustls asks for the current
//! certificate at every handshake. [`CertStore::reload`] (on SIGHUP) reads both files again and
//! swaps them in only if they load and match: new handshakes then use the new certificate, open
//! connections keep theirs, and a broken file leaves the old certificate in place.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// Why a certificate or key could not be loaded. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the TLS {what} file {path}: {source}")]
    Read {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the TLS certificate file {path} holds no PEM certificate (`-----BEGIN CERTIFICATE-----`)"
    )]
    NoCertificate { path: PathBuf },
    #[error("the TLS certificate file {path} is not valid PEM: {reason}")]
    BadCertificate { path: PathBuf, reason: String },
    #[error("the TLS key file {path} holds no usable PEM private key (PKCS#8, PKCS#1 or SEC1): {reason}")]
    BadKey { path: PathBuf, reason: String },
    #[error("the TLS key {key} does not fit the certificate {cert}: {reason}")]
    Mismatch {
        cert: PathBuf,
        key: PathBuf,
        reason: String,
    },
    #[error("setting up TLS: {0}")]
    Setup(String),
}

/// The crypto provider: ring, chosen explicitly so that no process-wide default is needed.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Where the certificate chain and key are read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TlsFiles {
    /// Reads and checks both files: a chain of at least one certificate, a private key the
    /// provider can sign with, and a key that belongs to the first certificate.
    pub fn load(&self) -> Result<CertifiedKey, TlsError> {
        let cert_pem = read(&self.cert, "certificate")?;
        let key_pem = read(&self.key, "key")?;
        let chain = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| TlsError::BadCertificate {
                path: self.cert.clone(),
                reason: err.to_string(),
            })?;
        if chain.is_empty() {
            return Err(TlsError::NoCertificate {
                path: self.cert.clone(),
            });
        }
        let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|err| TlsError::BadKey {
            path: self.key.clone(),
            reason: err.to_string(),
        })?;
        let signing_key = provider()
            .key_provider
            .load_private_key(key)
            .map_err(|err| TlsError::BadKey {
                path: self.key.clone(),
                reason: err.to_string(),
            })?;
        let certified = CertifiedKey::new(chain, signing_key);
        certified.keys_match().map_err(|err| TlsError::Mismatch {
            cert: self.cert.clone(),
            key: self.key.clone(),
            reason: err.to_string(),
        })?;
        Ok(certified)
    }
}

fn read(path: &Path, what: &'static str) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_path_buf(),
        source,
    })
}

/// The certificate handshakes are answered with, replaceable while the server runs.
pub struct CertStore {
    files: TlsFiles,
    current: RwLock<Arc<CertifiedKey>>,
}

impl fmt::Debug for CertStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertStore")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl CertStore {
    /// Loads `files` once; an error names the file at fault.
    pub fn open(files: TlsFiles) -> Result<Arc<Self>, TlsError> {
        let certified = files.load()?;
        Ok(Arc::new(Self {
            files,
            current: RwLock::new(Arc::new(certified)),
        }))
    }

    /// The files this store reads.
    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// Reads the files again. On success new handshakes use the new certificate; on failure
    /// the current one stays and the error is returned.
    pub fn reload(&self) -> Result<(), TlsError> {
        let certified = self.files.load()?;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(certified);
        Ok(())
    }

    /// [`CertStore::reload`], logged: what SIGHUP does.
    pub fn reload_and_log(&self) {
        match self.reload() {
            Ok(()) => tracing::info!(
                cert = %self.files.cert.display(),
                key = %self.files.key.display(),
                "TLS certificate reloaded; new connections use it"
            ),
            Err(err) => tracing::error!(
                error = %err,
                "TLS certificate not reloaded; the previous certificate stays in use"
            ),
        }
    }

    fn current(&self) -> Arc<CertifiedKey> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// The listener's TLS settings: every handshake uses the store's current certificate.
    pub fn server_tls(self: &Arc<Self>) -> Result<ServerTls, TlsError> {
        Ok(ServerTls {
            default: server_config(Arc::clone(self) as Arc<dyn ResolvesServerCert>)?,
            challenge: None,
        })
    }
}

/// A rustls server configuration answering with `resolver`'s certificate. HTTP/1.1 only (the
/// server speaks nothing else), announced by ALPN.
pub fn server_config(
    resolver: Arc<dyn ResolvesServerCert>,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|err| TlsError::Setup(err.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// What the listener needs to speak TLS: the configuration of ordinary handshakes and, with
/// ACME, the one that answers the certificate authority's TLS-ALPN-01 validation handshakes.
#[derive(Clone)]
pub struct ServerTls {
    default: Arc<rustls::ServerConfig>,
    challenge: Option<Arc<rustls::ServerConfig>>,
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTls")
            .field("acme", &self.challenge.is_some())
            .finish_non_exhaustive()
    }
}

impl ServerTls {
    /// Settings with a validation configuration for TLS-ALPN-01 (see [`crate::acme`]).
    pub fn with_challenge(
        default: Arc<rustls::ServerConfig>,
        challenge: Arc<rustls::ServerConfig>,
    ) -> Self {
        Self {
            default,
            challenge: Some(challenge),
        }
    }

    /// The configuration for a handshake that opened with `hello`, and whether it is an ACME
    /// validation (which serves nothing once the handshake is done).
    pub fn config_for(&self, hello: &ClientHello<'_>) -> (Arc<rustls::ServerConfig>, bool) {
        match &self.challenge {
            Some(challenge) if rustls_acme::is_tls_alpn_challenge(hello) => {
                (Arc::clone(challenge), true)
            }
            _ => (Arc::clone(&self.default), false),
        }
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

/// The TLS files of a configuration: both, or neither (the flags require each other).
pub fn files_of(cert: Option<&Path>, key: Option<&Path>) -> Result<Option<TlsFiles>, TlsError> {
    match (cert, key) {
        (Some(cert), Some(key)) => Ok(Some(TlsFiles {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
        })),
        (None, None) => Ok(None),
        (Some(_), None) => Err(TlsError::Setup(
            "--tls-cert needs --tls-key (LABBOARD_TLS_KEY) too".into(),
        )),
        (None, Some(_)) => Err(TlsError::Setup(
            "--tls-key needs --tls-cert (LABBOARD_TLS_CERT) too".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Pair {
        dir: tempfile::TempDir,
    }

    impl Pair {
        fn new() -> Self {
            Self {
                dir: tempfile::tempdir().unwrap(),
            }
        }

        /// Writes a fresh self-signed certificate and its key as `name.crt` / `name.key`.
        fn write(&self, name: &str) -> (TlsFiles, Vec<u8>) {
            let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
            let files = TlsFiles {
                cert: self.dir.path().join(format!("{name}.crt")),
                key: self.dir.path().join(format!("{name}.key")),
            };
            std::fs::write(&files.cert, cert.cert.pem()).unwrap();
            std::fs::write(&files.key, cert.signing_key.serialize_pem()).unwrap();
            (files, cert.cert.der().to_vec())
        }
    }

    #[test]
    fn a_matching_pair_loads_and_reloads() {
        let pair = Pair::new();
        let (files, der) = pair.write("a");
        let store = CertStore::open(files.clone()).unwrap();
        assert_eq!(store.current().cert[0].as_ref(), der.as_slice());
        // Replace the files, reload: the new certificate is served.
        let (other, other_der) = pair.write("b");
        std::fs::copy(&other.cert, &files.cert).unwrap();
        std::fs::copy(&other.key, &files.key).unwrap();
        store.reload().unwrap();
        assert_eq!(store.current().cert[0].as_ref(), other_der.as_slice());
        assert!(store.server_tls().is_ok());
    }

    #[test]
    fn a_broken_file_on_reload_keeps_the_old_certificate() {
        let pair = Pair::new();
        let (files, der) = pair.write("a");
        let store = CertStore::open(files.clone()).unwrap();
        std::fs::write(&files.cert, "-----BEGIN CERTIFICATE-----\nnot base64!\n").unwrap();
        let err = store.reload().unwrap_err().to_string();
        assert!(err.contains(&files.cert.display().to_string()), "{err}");
        assert_eq!(store.current().cert[0].as_ref(), der.as_slice());
    }

    #[test]
    fn errors_name_the_file_at_fault() {
        let pair = Pair::new();
        let (a, _) = pair.write("a");
        let (b, _) = pair.write("b");

        let missing = TlsFiles {
            cert: pair.dir.path().join("missing.crt"),
            key: a.key.clone(),
        };
        let err = missing.load().unwrap_err().to_string();
        assert!(
            err.contains("missing.crt") && err.contains("cannot read"),
            "{err}"
        );

        let empty = pair.dir.path().join("empty.crt");
        std::fs::write(&empty, "no pem here\n").unwrap();
        let err = TlsFiles {
            cert: empty,
            key: a.key.clone(),
        }
        .load()
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("empty.crt") && err.contains("no PEM certificate"),
            "{err}"
        );

        // A certificate where the key should be.
        let err = TlsFiles {
            cert: a.cert.clone(),
            key: a.cert.clone(),
        }
        .load()
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("a.crt") && err.contains("private key"),
            "{err}"
        );

        // Two valid files that do not belong together.
        let err = TlsFiles {
            cert: a.cert.clone(),
            key: b.key.clone(),
        }
        .load()
        .unwrap_err()
        .to_string();
        assert!(err.contains("does not fit"), "{err}");
    }

    #[test]
    fn both_files_or_neither() {
        let cert = Path::new("c.pem");
        let key = Path::new("k.pem");
        assert_eq!(files_of(None, None).unwrap(), None);
        assert!(files_of(Some(cert), Some(key)).unwrap().is_some());
        let err = files_of(Some(cert), None).unwrap_err().to_string();
        assert!(err.contains("--tls-key"), "{err}");
        let err = files_of(None, Some(key)).unwrap_err().to_string();
        assert!(err.contains("--tls-cert"), "{err}");
    }
}
