//! Tests of the CA, leaf issuing, certificate inspection and the renewal rule.

use super::*;
use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::RsaPublicKey;
use std::path::Path;
use std::process::Command;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;

const TEST_BITS: usize = 1024;

fn test_mode() {
    std::env::set_var("MAAND_TEST", "1");
}

fn der_of(pem: &str) -> Vec<u8> {
    x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap().1.contents
}

fn with_cert<T>(pem: &str, f: impl FnOnce(&X509Certificate<'_>) -> T) -> T {
    let der = der_of(pem);
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    f(&cert)
}

fn pem_label(pem: &str) -> String {
    pem.lines().next().unwrap().trim_start_matches("-----BEGIN ").trim_end_matches("-----").to_string()
}

/// PKCS#1 v1.5 SHA-256 signature check of `cert` against `issuer`, done with the rsa crate.
fn signed_by(cert_pem: &str, issuer_pem: &str) -> bool {
    let issuer_der = der_of(issuer_pem);
    let (_, issuer) = x509_parser::parse_x509_certificate(&issuer_der).unwrap();
    let public = RsaPublicKey::from_pkcs1_der(&issuer.public_key().subject_public_key.data).unwrap();
    with_cert(cert_pem, |cert| {
        let digest = ring::digest::digest(&ring::digest::SHA256, cert.tbs_certificate.as_ref());
        let mut info = SHA256_DIGEST_INFO.to_vec();
        info.extend_from_slice(digest.as_ref());
        public.verify(Pkcs1v15Sign::new_unprefixed(), &info, &cert.signature_value.data).is_ok()
    })
}

fn openssl_available() -> bool {
    Command::new("openssl").arg("version").output().is_ok_and(|o| o.status.success())
}

fn openssl_verify(dir: &Path, ca_pem: &str, leaf_pem: &str) -> (bool, String) {
    std::fs::write(dir.join("ca.pem"), ca_pem).unwrap();
    std::fs::write(dir.join("leaf.pem"), leaf_pem).unwrap();
    let out = Command::new("openssl")
        .args(["verify", "-auth_level", "0", "-CAfile"])
        .arg(dir.join("ca.pem"))
        .arg(dir.join("leaf.pem"))
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

#[test]
fn key_bits_follow_test_mode() {
    test_mode();
    assert_eq!(key_bits(), 1024);
}

#[test]
fn ca_is_self_signed_rsa_pkcs1_with_bucket_id_cn() {
    test_mode();
    let (crt, key) = generate_ca("bucket-123").unwrap();
    assert_eq!(pem_label(&crt), "CERTIFICATE");
    assert_eq!(pem_label(&key), "RSA PRIVATE KEY");
    let parsed = RsaPrivateKey::from_pkcs1_pem(&key).unwrap();
    assert_eq!(parsed.n().bits(), 1024);
    with_cert(&crt, |cert| {
        assert!(cert.is_ca());
        let cn = cert.subject().iter_common_name().next().unwrap().as_str().unwrap();
        assert_eq!(cn, "bucket-123");
        assert_eq!(cert.subject(), cert.issuer());
        let ku = cert.key_usage().unwrap().unwrap().value;
        assert!(ku.key_cert_sign() && ku.digital_signature() && ku.key_encipherment());
        let days = (cert.validity().not_after.timestamp() - OffsetDateTime::now_utc().unix_timestamp()) / 86_400;
        assert!((3649..=3650).contains(&days), "{days}");
        assert!(cert.tbs_certificate.raw_serial().len() >= 15);
    });
    assert!(signed_by(&crt, &crt));
    assert_eq!(inspect_cert(&crt).unwrap().common_name, "bucket-123");
}

#[test]
fn leaf_is_signed_by_the_ca_with_ip_sans_and_key_usage() {
    test_mode();
    let (ca_crt, ca_key) = generate_ca("bucket-1").unwrap();
    let ca = Ca::from_pem(&ca_crt, &ca_key).unwrap();
    let ips = vec!["127.0.0.1".to_string(), "10.0.0.5".to_string(), "127.0.0.1".to_string()];
    let (crt, key) = ca.issue_leaf("api", &ips, 30, false).unwrap();
    assert_eq!(pem_label(&crt), "CERTIFICATE");
    assert_eq!(pem_label(&key), "RSA PRIVATE KEY");
    assert!(signed_by(&crt, &ca_crt));
    let (other_crt, _) = generate_ca("other").unwrap();
    assert!(!signed_by(&crt, &other_crt));
    with_cert(&crt, |cert| {
        assert!(!cert.is_ca());
        assert_eq!(cert.subject().iter_common_name().next().unwrap().as_str().unwrap(), "api");
        let issuer_cn = cert.issuer().iter_common_name().next().unwrap().as_str().unwrap();
        assert_eq!(issuer_cn, "bucket-1");
        let sans = &cert.subject_alternative_name().unwrap().unwrap().value.general_names;
        let ips: Vec<&[u8]> = sans
            .iter()
            .map(|n| match n {
                GeneralName::IPAddress(ip) => *ip,
                other => panic!("unexpected SAN {other:?}"),
            })
            .collect();
        assert_eq!(ips, vec![&[127, 0, 0, 1][..], &[10, 0, 0, 5][..]]);
        let ku = cert.key_usage().unwrap().unwrap().value;
        assert!(ku.digital_signature() && ku.key_encipherment() && !ku.key_cert_sign());
        assert!(cert.extended_key_usage().unwrap().is_none(), "no EKU");
    });
    let info = inspect_cert(&crt).unwrap();
    assert_eq!(info.common_name, "api");
    let days = (info.not_after_unix - OffsetDateTime::now_utc().unix_timestamp()) as f64 / 86_400.0;
    assert!((29.9..=30.0).contains(&days), "{days}");
}

#[test]
fn leaf_key_format_follows_pkcs8_flag() {
    test_mode();
    let (ca_crt, ca_key) = generate_ca("b").unwrap();
    let ca = Ca::from_pem(&ca_crt, &ca_key).unwrap();
    let (_, key8) = ca.issue_leaf("x", &["10.0.0.1".to_string()], 1, true).unwrap();
    assert_eq!(pem_label(&key8), "PRIVATE KEY");
    RsaPrivateKey::from_pkcs8_pem(&key8).unwrap();
    let (_, key1) = ca.issue_leaf("x", &["10.0.0.1".to_string()], 1, false).unwrap();
    assert_eq!(pem_label(&key1), "RSA PRIVATE KEY");
}

#[test]
fn ca_accepts_pkcs8_key_and_rejects_a_foreign_key() {
    test_mode();
    let (ca_crt, ca_key) = generate_ca("b").unwrap();
    let pkcs8 = RsaPrivateKey::from_pkcs1_pem(&ca_key).unwrap().to_pkcs8_pem(LineEnding::LF).unwrap();
    let ca = Ca::from_pem(&ca_crt, &pkcs8).unwrap();
    let (crt, _) = ca.issue_leaf("x", &[], 1, false).unwrap();
    assert!(signed_by(&crt, &ca_crt));

    let (_, foreign_key) = generate_ca("other").unwrap();
    let e = Ca::from_pem(&ca_crt, &foreign_key).err().unwrap();
    assert!(e.to_string().contains("does not belong"), "{e}");
    assert!(Ca::from_pem("garbage", &ca_key).is_err());
    assert!(Ca::from_pem(&ca_crt, "garbage").is_err());
}

#[test]
fn hostnames_become_dns_sans_and_ttl_must_be_positive() {
    test_mode();
    let (ca_crt, ca_key) = generate_ca("b").unwrap();
    let ca = Ca::from_pem(&ca_crt, &ca_key).unwrap();
    let (crt, _) = ca.issue_leaf("x", &["127.0.0.1".to_string(), "db1.internal".to_string()], 1, false).unwrap();
    with_cert(&crt, |cert| {
        let sans = &cert.subject_alternative_name().unwrap().unwrap().value.general_names;
        assert_eq!(sans[1], GeneralName::DNSName("db1.internal"));
    });
    assert!(ca.issue_leaf("x", &[], 0, false).is_err());
}

#[test]
fn openssl_verifies_the_chain() {
    if !openssl_available() {
        eprintln!("openssl not installed: chain check skipped");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (ca_crt, ca_key) = generate_ca_with_bits("bucket-ossl", TEST_BITS).unwrap();
    let ca = Ca::from_pem(&ca_crt, &ca_key).unwrap();
    let (leaf, _) = ca.issue_leaf_with_bits("svc", &["127.0.0.1".to_string()], 5, true, TEST_BITS).unwrap();
    let (ok, text) = openssl_verify(dir.path(), &ca_crt, &leaf);
    assert!(ok, "{text}");
    let (other, _) = generate_ca_with_bits("other", TEST_BITS).unwrap();
    let (ok, _) = openssl_verify(dir.path(), &other, &leaf);
    assert!(!ok, "a leaf must not verify against another CA");
}

/// A CA made by another tool (as the Go maand did) signs leaves that chain to it.
#[test]
fn leaves_chain_to_a_ca_made_by_openssl() {
    if !openssl_available() {
        eprintln!("openssl not installed: foreign CA check skipped");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "10", "-subj", "/O=Example/CN=legacy-bucket"])
        .arg("-keyout")
        .arg(dir.path().join("ca.key"))
        .arg("-out")
        .arg(dir.path().join("ca.crt"))
        .output()
        .unwrap();
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    let ca_crt = std::fs::read_to_string(dir.path().join("ca.crt")).unwrap();
    let ca_key = std::fs::read_to_string(dir.path().join("ca.key")).unwrap();
    let ca = Ca::from_pem(&ca_crt, &ca_key).unwrap();
    let (leaf, _) = ca.issue_leaf_with_bits("svc", &["10.1.2.3".to_string()], 5, false, TEST_BITS).unwrap();
    let (ok, text) = openssl_verify(dir.path(), &ca_crt, &leaf);
    assert!(ok, "{text}");
}

#[test]
fn inspect_rejects_garbage() {
    assert!(inspect_cert("not a cert").is_err());
    assert!(inspect_cert("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").is_err());
}

#[test]
fn renewal_boundaries() {
    let day = 86_400;
    let not_after = 1_000 * day;
    assert!(!needs_renewal(not_after, not_after - 1, 0));
    assert!(needs_renewal(not_after, not_after, 0), "expired at NotAfter");
    assert!(!needs_renewal(not_after, not_after - 7 * day - 1, 7));
    assert!(needs_renewal(not_after, not_after - 7 * day, 7), "inside the buffer");
    assert!(!needs_renewal(not_after, not_after - 1, -3), "negative buffer counts as 0");
}
