//! Encryption of secret KV values (spec/internals.md §3.3): the 32-byte AES-256 key in
//! `secrets/kv.key` and the stored format `enc:v1:` + base64(nonce ‖ ciphertext ‖ tag), GCM with a
//! 12-byte random nonce and no associated data. Secret text never appears in an error.

use crate::paths::BucketPaths;
use aes_gcm::aead::Aead;
use aes_gcm::{Aes256Gcm, Key, KeyInit, Nonce};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use maand_core::{Error, ErrorKind, Result};
use rand::RngCore;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

/// Prefix of every encrypted value.
pub const ENCRYPTED_PREFIX: &str = "enc:v1:";
const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// KV namespaces whose values are stored encrypted: `secrets/job/<job>`.
pub fn is_secret_namespace(ns: &str) -> bool {
    ns.starts_with("secrets/job/")
}

/// Whether a stored value is in the encrypted format.
pub fn is_encrypted(stored: &str) -> bool {
    stored.starts_with(ENCRYPTED_PREFIX)
}

/// The bucket's AES-256 key.
#[derive(Clone)]
pub struct SecretKey([u8; KEY_LEN]);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

impl SecretKey {
    /// Read `secrets/kv.key`: exactly 32 raw bytes.
    pub fn load(paths: &BucketPaths) -> Result<SecretKey> {
        let path = paths.kv_key();
        let bytes = std::fs::read(&path).map_err(|e| {
            Error::new(
                ErrorKind::KvKey,
                format!("{}: {e} (run maand init to create it, or restore it)", path.display()),
            )
        })?;
        let key: [u8; KEY_LEN] = bytes.as_slice().try_into().map_err(|_| {
            Error::new(
                ErrorKind::KvKey,
                format!("{}: the key is {} bytes, expected {KEY_LEN}", path.display(), bytes.len()),
            )
        })?;
        Ok(SecretKey(key))
    }

    /// Create `secrets/kv.key` (32 random bytes, mode 0600) unless it exists; true when created.
    pub fn create_if_missing(paths: &BucketPaths) -> Result<bool> {
        let path = paths.kv_key();
        if path.exists() {
            return Ok(false);
        }
        let io_error = |e: std::io::Error| Error::new(ErrorKind::KvKey, format!("{}: {e}", path.display()));
        crate::private_files::create_private_dir(&paths.secrets())?;
        let mut key = [0u8; KEY_LEN];
        rand::rngs::OsRng.fill_bytes(&mut key);
        let mut file =
            std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path).map_err(io_error)?;
        file.write_all(&key).map_err(io_error)?;
        file.sync_all().map_err(io_error)?;
        Ok(true)
    }

    /// A key from raw bytes (tests and tools).
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> SecretKey {
        SecretKey(bytes)
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&self.0))
    }

    /// Encrypt with a fresh random nonce: `enc:v1:` + base64(nonce ‖ ciphertext ‖ tag).
    pub fn encrypt(&self, plaintext: &str) -> Result<String> {
        Ok(format!("{ENCRYPTED_PREFIX}{}", STANDARD.encode(self.seal(plaintext.as_bytes())?)))
    }

    /// Raw bytes encrypted with a fresh random nonce: nonce ‖ ciphertext ‖ tag.
    pub fn seal(&self, plaintext: &[u8]) -> Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let sealed = self
            .cipher()
            .encrypt(Nonce::from_slice(&nonce), plaintext)
            .map_err(|_| Error::new(ErrorKind::Unexpected, "cannot encrypt the value (too large)"))?;
        let mut raw = Vec::with_capacity(NONCE_LEN + sealed.len());
        raw.extend_from_slice(&nonce);
        raw.extend_from_slice(&sealed);
        Ok(raw)
    }

    /// The bytes [`SecretKey::seal`] encrypted.
    pub fn open(&self, raw: &[u8]) -> Result<Vec<u8>> {
        if raw.len() < NONCE_LEN + TAG_LEN {
            return Err(Error::new(ErrorKind::Unexpected, "the encrypted value is too short"));
        }
        let (nonce, sealed) = raw.split_at(NONCE_LEN);
        self.cipher().decrypt(Nonce::from_slice(nonce), sealed).map_err(|_| {
            Error::new(
                ErrorKind::KvKey,
                "cannot decrypt a value: secrets/kv.key is not the key it was written with, or the value is corrupt",
            )
        })
    }

    /// A keyed digest (HMAC-SHA256, hex) naming content without revealing it: equal contents
    /// get equal names in one bucket, and nobody without the key can test a guess against one.
    pub fn digest(&self, content: &[u8]) -> String {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &self.0);
        let tag = ring::hmac::sign(&key, content);
        tag.as_ref().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Decrypt a stored `enc:v1:` value.
    pub fn decrypt(&self, stored: &str) -> Result<String> {
        let encoded = stored.strip_prefix(ENCRYPTED_PREFIX).ok_or_else(|| {
            Error::new(ErrorKind::Unexpected, "the stored value is not encrypted (no enc:v1: prefix)")
        })?;
        let raw = STANDARD
            .decode(encoded.trim())
            .map_err(|_| Error::new(ErrorKind::Unexpected, "the encrypted value is not valid base64"))?;
        let plain = self.open(&raw)?;
        String::from_utf8(plain).map_err(|_| Error::new(ErrorKind::Unexpected, "a decrypted secret is not UTF-8 text"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket() -> (tempfile::TempDir, BucketPaths) {
        let dir = tempfile::tempdir().unwrap();
        let paths = BucketPaths::new(dir.path());
        (dir, paths)
    }

    #[test]
    fn key_file_is_created_once_with_mode_0600() {
        use std::os::unix::fs::PermissionsExt;
        let (_dir, paths) = bucket();
        assert!(SecretKey::create_if_missing(&paths).unwrap());
        let bytes = std::fs::read(paths.kv_key()).unwrap();
        assert_eq!(bytes.len(), 32);
        assert_eq!(std::fs::metadata(paths.kv_key()).unwrap().permissions().mode() & 0o777, 0o600);
        assert!(!SecretKey::create_if_missing(&paths).unwrap());
        assert_eq!(std::fs::read(paths.kv_key()).unwrap(), bytes, "an existing key is never replaced");
        SecretKey::load(&paths).unwrap();
    }

    #[test]
    fn missing_or_wrong_size_key_is_a_kv_key_error() {
        let (_dir, paths) = bucket();
        let e = SecretKey::load(&paths).unwrap_err();
        assert!(e.is(ErrorKind::KvKey));
        assert!(e.to_string().starts_with("kv encryption key is missing or invalid: "), "{e}");
        std::fs::create_dir_all(paths.secrets()).unwrap();
        std::fs::write(paths.kv_key(), [1u8; 31]).unwrap();
        let e = SecretKey::load(&paths).unwrap_err();
        assert!(e.is(ErrorKind::KvKey));
        assert!(e.to_string().contains("31 bytes, expected 32"), "{e}");
    }

    #[test]
    fn round_trip_with_prefix_and_fresh_nonce() {
        let key = SecretKey::from_bytes([7u8; 32]);
        let a = key.encrypt("s3cr3t value ").unwrap();
        let b = key.encrypt("s3cr3t value ").unwrap();
        assert!(a.starts_with("enc:v1:"));
        assert!(!a.contains("s3cr3t"));
        assert_ne!(a, b, "random nonce per encryption");
        assert_eq!(key.decrypt(&a).unwrap(), "s3cr3t value ");
        assert_eq!(key.decrypt(&b).unwrap(), "s3cr3t value ");
    }

    #[test]
    fn wrong_key_or_garbage_fails_without_revealing_anything() {
        let stored = SecretKey::from_bytes([7u8; 32]).encrypt("top-secret").unwrap();
        let e = SecretKey::from_bytes([8u8; 32]).decrypt(&stored).unwrap_err();
        assert!(e.is(ErrorKind::KvKey));
        assert!(!e.to_string().contains("top-secret"));
        let key = SecretKey::from_bytes([7u8; 32]);
        assert!(key.decrypt("plain").is_err());
        assert!(key.decrypt("enc:v1:!!!").is_err());
        assert!(key.decrypt("enc:v1:AAAA").is_err());
    }

    /// The documented format, decoded independently of `decrypt`.
    #[test]
    fn stored_format_decodes_with_an_independent_aes_gcm() {
        let key_bytes = [42u8; 32];
        let stored = SecretKey::from_bytes(key_bytes).encrypt("hello").unwrap();
        let raw = STANDARD.decode(stored.strip_prefix("enc:v1:").unwrap()).unwrap();
        assert_eq!(raw.len(), 12 + "hello".len() + 16, "nonce ‖ ciphertext ‖ tag");
        let cipher = Aes256Gcm::new_from_slice(&key_bytes).unwrap();
        let plain = cipher.decrypt(Nonce::from_slice(&raw[..12]), &raw[12..]).unwrap();
        assert_eq!(plain, b"hello");
    }

    /// A value sealed by hand in the documented format (as the Go maand writes it) decrypts.
    #[test]
    fn decrypts_values_sealed_outside_maand() {
        let key_bytes = [3u8; 32];
        let nonce = [9u8; 12];
        let sealed = Aes256Gcm::new_from_slice(&key_bytes)
            .unwrap()
            .encrypt(Nonce::from_slice(&nonce), &b"go-secret"[..])
            .unwrap();
        let stored = format!("enc:v1:{}", STANDARD.encode([&nonce[..], &sealed[..]].concat()));
        assert_eq!(SecretKey::from_bytes(key_bytes).decrypt(&stored).unwrap(), "go-secret");
    }

    #[test]
    fn secret_namespaces_are_secrets_job_prefix() {
        assert!(is_secret_namespace("secrets/job/vault"));
        assert!(!is_secret_namespace("vars/job/vault"));
        assert!(!is_secret_namespace("secrets/jobx"));
    }
}
