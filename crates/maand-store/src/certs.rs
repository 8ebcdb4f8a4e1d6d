//! The bucket CA and leaf certificates (spec/features.md §10.1, internals.md §3.5): RSA keys,
//! the self-signed CA, leaves signed by it, reading a certificate's expiry, and the renewal rule.
//!
//! Keys are RSA (4096 bits; 1024 with `MAAND_TEST=1`) from the `rsa` crate, which also signs
//! (PKCS#1 v1.5, SHA-256) for rcgen, so small test keys work too.

use maand_core::{Error, ErrorKind, Result};
use rand::RngCore;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyUsagePurpose, PublicKeyData,
    SanType, SerialNumber, SignatureAlgorithm, SigningKey, PKCS_RSA_SHA256,
};
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey, EncodeRsaPublicKey};
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use rsa::traits::PublicKeyParts;
use rsa::{Pkcs1v15Sign, RsaPrivateKey};
use std::net::IpAddr;
use time::{Duration, OffsetDateTime};

const CA_VALIDITY_DAYS: i64 = 10 * 365;
const SECONDS_PER_DAY: i64 = 86_400;
/// Certificates start slightly in the past so hosts with a lagging clock accept them.
const CLOCK_SKEW: Duration = Duration::minutes(5);
/// DER DigestInfo prefix of a SHA-256 digest (RFC 8017 §9.2 note 1).
const SHA256_DIGEST_INFO: [u8; 19] =
    [0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20];

/// RSA key size: 4096 bits, 1024 in test mode (`MAAND_TEST=1`).
pub fn key_bits() -> usize {
    if std::env::var("MAAND_TEST").is_ok_and(|v| v == "1") {
        1024
    } else {
        4096
    }
}

fn cert_error(what: impl std::fmt::Display) -> impl Fn(rcgen::Error) -> Error {
    move |e| Error::new(ErrorKind::Unexpected, format!("{what}: {e}"))
}

/// An RSA private key usable as an rcgen signer.
struct RsaSigner {
    key: RsaPrivateKey,
    /// PKCS#1 `RSAPublicKey` DER, the content of the certificate's public key bit string.
    public_der: Vec<u8>,
}

impl RsaSigner {
    fn generate(bits: usize) -> Result<RsaSigner> {
        let key = RsaPrivateKey::new(&mut rand::rngs::OsRng, bits)
            .map_err(|e| Error::new(ErrorKind::Unexpected, format!("generate a {bits}-bit RSA key: {e}")))?;
        RsaSigner::new(key)
    }

    fn new(key: RsaPrivateKey) -> Result<RsaSigner> {
        let public_der = key
            .to_public_key()
            .to_pkcs1_der()
            .map_err(|e| Error::new(ErrorKind::Unexpected, format!("encode an RSA public key: {e}")))?
            .into_vec();
        Ok(RsaSigner { key, public_der })
    }

    /// Parse a PEM private key in PKCS#1 (`RSA PRIVATE KEY`) or PKCS#8 (`PRIVATE KEY`) form.
    fn from_pem(pem: &str) -> Result<RsaSigner> {
        let key = RsaPrivateKey::from_pkcs1_pem(pem).or_else(|_| RsaPrivateKey::from_pkcs8_pem(pem)).map_err(|_| {
            Error::new(ErrorKind::Unexpected, "the CA key is not an RSA private key in PKCS#1 or PKCS#8 PEM")
        })?;
        RsaSigner::new(key)
    }

    fn to_pem(&self, pkcs8: bool) -> Result<String> {
        let pem = if pkcs8 {
            self.key.to_pkcs8_pem(LineEnding::LF).map_err(|e| e.to_string())
        } else {
            self.key.to_pkcs1_pem(LineEnding::LF).map_err(|e| e.to_string())
        };
        pem.map(|p| p.to_string())
            .map_err(|e| Error::new(ErrorKind::Unexpected, format!("encode an RSA private key: {e}")))
    }
}

impl PublicKeyData for RsaSigner {
    fn der_bytes(&self) -> &[u8] {
        &self.public_der
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        &PKCS_RSA_SHA256
    }
}

impl SigningKey for RsaSigner {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        let digest = ring::digest::digest(&ring::digest::SHA256, msg);
        let mut digest_info = SHA256_DIGEST_INFO.to_vec();
        digest_info.extend_from_slice(digest.as_ref());
        self.key
            .sign_with_rng(&mut rand::rngs::OsRng, Pkcs1v15Sign::new_unprefixed(), &digest_info)
            .map_err(|_| rcgen::Error::RemoteKeyError)
    }
}

fn random_serial() -> SerialNumber {
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    SerialNumber::from_slice(&bytes)
}

fn common_name(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn
}

fn validity(params: &mut CertificateParams, days: i64) {
    let now = OffsetDateTime::now_utc();
    params.not_before = now - CLOCK_SKEW;
    params.not_after = now + Duration::days(days);
}

/// A new self-signed bucket CA: (certificate PEM, PKCS#1 key PEM).
pub fn generate_ca(bucket_id: &str) -> Result<(String, String)> {
    generate_ca_with_bits(bucket_id, key_bits())
}

fn generate_ca_with_bits(bucket_id: &str, bits: usize) -> Result<(String, String)> {
    let signer = RsaSigner::generate(bits)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = common_name(bucket_id);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages =
        vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    params.serial_number = Some(random_serial());
    validity(&mut params, CA_VALIDITY_DAYS);
    let cert = params.self_signed(&signer).map_err(cert_error("create the bucket CA"))?;
    Ok((cert.pem(), signer.to_pem(false)?))
}

/// The bucket CA, ready to sign leaves.
pub struct Ca {
    issuer: Issuer<'static, RsaSigner>,
}

impl Ca {
    /// Load the CA from `secrets/ca.crt` and `secrets/ca.key` contents (key in PKCS#1 or PKCS#8).
    /// The key must belong to the certificate.
    pub fn from_pem(crt_pem: &str, key_pem: &str) -> Result<Ca> {
        let signer = RsaSigner::from_pem(key_pem)?;
        let (_, pem) = x509_parser::pem::parse_x509_pem(crt_pem.as_bytes())
            .map_err(|e| Error::new(ErrorKind::Unexpected, format!("the CA certificate is not PEM: {e}")))?;
        let cert = pem
            .parse_x509()
            .map_err(|e| Error::new(ErrorKind::Unexpected, format!("the CA certificate cannot be parsed: {e}")))?;
        let modulus = match cert.public_key().parsed() {
            Ok(x509_parser::public_key::PublicKey::RSA(rsa)) => strip_leading_zeros(rsa.modulus).to_vec(),
            _ => return Err(Error::new(ErrorKind::Unexpected, "the CA certificate does not hold an RSA public key")),
        };
        if modulus != signer.key.n().to_bytes_be() {
            return Err(Error::new(ErrorKind::Unexpected, "secrets/ca.key does not belong to secrets/ca.crt"));
        }
        let issuer = Issuer::from_ca_cert_der(&pem.contents.clone().into(), signer)
            .map_err(cert_error("read the CA certificate"))?;
        Ok(Ca { issuer })
    }

    /// A new leaf: (certificate PEM, key PEM — PKCS#8 `PRIVATE KEY` when `pkcs8`, else PKCS#1).
    /// `ips` become IP SANs (names that are not IP addresses become DNS SANs); validity `ttl_days`.
    pub fn issue_leaf(
        &self,
        common_name: &str,
        ips: &[String],
        ttl_days: i64,
        pkcs8: bool,
    ) -> Result<(String, String)> {
        self.issue_leaf_with_bits(common_name, ips, ttl_days, pkcs8, key_bits())
    }

    fn issue_leaf_with_bits(
        &self,
        cn: &str,
        ips: &[String],
        ttl_days: i64,
        pkcs8: bool,
        bits: usize,
    ) -> Result<(String, String)> {
        if ttl_days < 1 {
            return Err(Error::new(
                ErrorKind::InvalidMaandConf,
                format!("certs_ttl must be at least 1 day, got {ttl_days}"),
            ));
        }
        let signer = RsaSigner::generate(bits)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = common_name(cn);
        params.subject_alt_names = subject_alt_names(ips)?;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        params.serial_number = Some(random_serial());
        params.use_authority_key_identifier_extension = true;
        validity(&mut params, ttl_days);
        let cert =
            params.signed_by(&signer, &self.issuer).map_err(cert_error(format!("sign the certificate for {cn}")))?;
        Ok((cert.pem(), signer.to_pem(pkcs8)?))
    }
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

/// One SAN per distinct address, in order.
fn subject_alt_names(addresses: &[String]) -> Result<Vec<SanType>> {
    let mut sans: Vec<SanType> = Vec::new();
    for address in addresses.iter().map(|a| a.trim()).filter(|a| !a.is_empty()) {
        let san = match address.parse::<IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName(address.to_string().try_into().map_err(|_| {
                Error::new(ErrorKind::Unexpected, format!("{address:?} is neither an IP address nor a DNS name"))
            })?),
        };
        if !sans.contains(&san) {
            sans.push(san);
        }
    }
    Ok(sans)
}

/// What `cat certs` and renewal need from a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    pub not_after_unix: i64,
    pub common_name: String,
}

/// Parse a PEM certificate's expiry and subject common name.
pub fn inspect_cert(crt_pem: &str) -> Result<CertInfo> {
    let invalid = |e: String| Error::new(ErrorKind::Unexpected, format!("invalid certificate: {e}"));
    let (_, pem) = x509_parser::pem::parse_x509_pem(crt_pem.as_bytes()).map_err(|e| invalid(e.to_string()))?;
    let cert = pem.parse_x509().map_err(|e| invalid(e.to_string()))?;
    let common_name =
        cert.subject().iter_common_name().next().and_then(|cn| cn.as_str().ok()).unwrap_or_default().to_string();
    Ok(CertInfo { not_after_unix: cert.validity().not_after.timestamp(), common_name })
}

/// A leaf is renewed once `now >= not_after - buffer days` (buffer 0: once it has expired).
pub fn needs_renewal(not_after_unix: i64, now_unix: i64, renewal_buffer_days: i64) -> bool {
    now_unix >= not_after_unix - renewal_buffer_days.max(0) * SECONDS_PER_DAY
}

#[cfg(test)]
mod tests;
