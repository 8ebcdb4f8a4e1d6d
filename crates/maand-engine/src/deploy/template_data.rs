//! The KV as templates see it: reads limited to the allocation's namespaces (spec §6.4), secrets
//! and leaf private keys decrypted, `maand` accepted as the legacy name of `maand/bucket`; plus the
//! Prometheus fragments when rendering the Prometheus server job. With `masking`, every value
//! stored encrypted (secrets, private keys) reads as [`MASK`] (what plans and diffs show), and
//! either way it notes whether such a value was read.

use crate::template::TemplateData;
use maand_core::kv_access::{canonical_namespace, is_encrypted_at_rest, readable_namespaces};
use maand_store::kv::KvStore;
use maand_store::secrets::SecretKey;
use std::cell::Cell;

/// What a secret value reads as when rendering for a plan.
pub const MASK: &str = "********";

pub struct KvTemplateData<'a> {
    pub kv: &'a KvStore,
    pub key: Option<&'a SecretKey>,
    pub job: String,
    allowed: Vec<String>,
    prometheus: Option<&'a PrometheusFragments>,
    masking: bool,
    secret_read: Cell<bool>,
}

/// What `{{ scrapeConfigs }}` and `{{ ruleFiles }}` expand to in the Prometheus server job.
#[derive(Debug, Clone, Default)]
pub struct PrometheusFragments {
    pub scrape_configs: String,
    pub rule_files: String,
}

impl<'a> KvTemplateData<'a> {
    pub fn new(kv: &'a KvStore, key: Option<&'a SecretKey>, job: &str, worker_ip: &str, upstream: &[String]) -> Self {
        Self::with_namespaces(kv, key, job, readable_namespaces(job, worker_ip, upstream))
    }

    /// Reads limited to `allowed` (the build-time `_prometheus/scrape.yaml.tpl` map).
    pub fn with_namespaces(kv: &'a KvStore, key: Option<&'a SecretKey>, job: &str, allowed: Vec<String>) -> Self {
        KvTemplateData {
            kv,
            key,
            job: job.to_string(),
            allowed,
            prometheus: None,
            masking: false,
            secret_read: Cell::new(false),
        }
    }

    /// Serve `scrapeConfigs` / `ruleFiles` from `fragments` (the Prometheus server job).
    pub fn with_prometheus(mut self, fragments: Option<&'a PrometheusFragments>) -> Self {
        self.prometheus = fragments;
        self
    }

    /// Every secret value reads as [`MASK`] (a missing one is still missing).
    pub fn masking(mut self) -> Self {
        self.masking = true;
        self
    }

    /// Whether a render through this data read a secret value.
    pub fn secret_read(&self) -> bool {
        self.secret_read.get()
    }

    fn fragments(&self, function: &str) -> Result<&'a PrometheusFragments, String> {
        self.prometheus.ok_or_else(|| {
            format!(
                "{function} is only available in the templates of the Prometheus server job (a job shipping prometheus.yml.tpl); job {} is not one",
                self.job
            )
        })
    }

    fn namespace(&self, ns: &str) -> Result<String, String> {
        let ns = canonical_namespace(ns).to_string();
        if self.allowed.contains(&ns) {
            Ok(ns)
        } else {
            Err(format!("{ns} namespace is not available for job {}", self.job))
        }
    }

    fn read(&self, ns: &str, key: &str) -> Result<Option<String>, String> {
        if is_encrypted_at_rest(ns, key) {
            let Some(secret_key) = self.key else {
                return Err("kv encryption key is missing or invalid: secrets cannot be read".into());
            };
            let value = self.kv.get_secret(secret_key, ns, key).map_err(|e| e.to_string())?;
            self.secret_read.set(self.secret_read.get() || value.is_some());
            return Ok(value.map(|v| if self.masking { MASK.to_string() } else { v }));
        }
        Ok(self.kv.get(ns, key).map(str::to_string))
    }
}

impl TemplateData for KvTemplateData<'_> {
    fn get(&self, ns: &str, key: &str) -> Result<Option<String>, String> {
        let ns = self.namespace(ns)?;
        self.read(&ns, key)
    }

    fn keys(&self, ns: &str) -> Result<Vec<String>, String> {
        let ns = self.namespace(ns)?;
        Ok(self.kv.keys(&ns))
    }

    fn get_secret(&self, key: &str) -> Result<Option<String>, String> {
        self.read(&format!("secrets/job/{}", self.job), key)
    }

    fn scrape_configs(&self) -> Result<String, String> {
        Ok(self.fragments("scrapeConfigs")?.scrape_configs.clone())
    }

    fn rule_files(&self) -> Result<String, String> {
        Ok(self.fragments("ruleFiles")?.rule_files.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_read_secrets_and_leaf_keys_in_plaintext() {
        let key = SecretKey::from_bytes([4u8; 32]);
        let mut kv = KvStore::default();
        let ns = "maand/job/api/worker/10.0.0.1";
        kv.put_secret(&key, ns, "certs/tls.key", "KEY PEM").unwrap();
        kv.put(ns, "certs/tls.crt", "CRT PEM");
        kv.put_secret(&key, "secrets/job/api", "password", "pw").unwrap();
        let data = KvTemplateData::new(&kv, Some(&key), "api", "10.0.0.1", &[]);
        assert_eq!(data.get(ns, "certs/tls.key").unwrap().as_deref(), Some("KEY PEM"));
        assert_eq!(data.get(ns, "certs/tls.crt").unwrap().as_deref(), Some("CRT PEM"));
        assert_eq!(data.get_secret("password").unwrap().as_deref(), Some("pw"));
        let keyless = KvTemplateData::new(&kv, None, "api", "10.0.0.1", &[]);
        let e = keyless.get(ns, "certs/tls.key").unwrap_err();
        assert!(e.contains("kv encryption key is missing"), "{e}");
        assert!(!e.contains("KEY PEM"));
    }
}
