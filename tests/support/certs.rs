//! Test certificates made with rcgen: a CA that signs a server certificate
//! for `127.0.0.1`/`localhost` and client certificates whose subject CN is the
//! identity name. Shared by the root crate's and mmapctl's TLS tests.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// A certificate and its private key, both PEM.
#[derive(Debug, Clone)]
pub struct Pem {
    pub cert: String,
    pub key: String,
}

/// A certificate authority that can sign server and client certificates.
pub struct Ca {
    /// The CA's own certificate (what clients or the server trust).
    pub cert: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    /// A fresh self-signed CA named `name`.
    pub fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().expect("CA key");
        let cert = params.self_signed(&key).expect("self-sign CA").pem();
        Ca {
            cert,
            issuer: Issuer::new(params, key),
        }
    }

    /// A server certificate valid for `127.0.0.1` and `localhost`.
    pub fn server(&self) -> Pem {
        self.sign(
            "mmapd",
            vec!["127.0.0.1".to_owned(), "localhost".to_owned()],
            ExtendedKeyUsagePurpose::ServerAuth,
        )
    }

    /// A client certificate whose subject CN is `name`.
    pub fn client(&self, name: &str) -> Pem {
        self.sign(name, Vec::new(), ExtendedKeyUsagePurpose::ClientAuth)
    }

    fn sign(&self, cn: &str, sans: Vec<String>, usage: ExtendedKeyUsagePurpose) -> Pem {
        let mut params = CertificateParams::new(sans).expect("params");
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.issuer).expect("sign");
        Pem {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }
}

/// Writes `text` to `dir/name` and returns the path, for flags and env vars.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write PEM");
    path
}
