//! The KV as templates see it: reads limited to the allocation's namespaces (spec §6.4), secrets
//! decrypted, `maand` accepted as the legacy name of `maand/bucket`.

use crate::template::TemplateData;
use maand_core::kv_access::{canonical_namespace, readable_namespaces};
use maand_store::kv::KvStore;
use maand_store::secrets::{is_secret_namespace, SecretKey};

pub struct KvTemplateData<'a> {
    pub kv: &'a KvStore,
    pub key: Option<&'a SecretKey>,
    pub job: String,
    allowed: Vec<String>,
}

impl<'a> KvTemplateData<'a> {
    pub fn new(kv: &'a KvStore, key: Option<&'a SecretKey>, job: &str, worker_ip: &str, upstream: &[String]) -> Self {
        KvTemplateData { kv, key, job: job.to_string(), allowed: readable_namespaces(job, worker_ip, upstream) }
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
        if is_secret_namespace(ns) {
            let Some(secret_key) = self.key else {
                return Err("kv encryption key is missing or invalid: secrets cannot be read".into());
            };
            return self.kv.get_secret(secret_key, ns, key).map_err(|e| e.to_string());
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
        Err("scrapeConfigs is not available yet in this maand build (Prometheus integration)".into())
    }

    fn rule_files(&self) -> Result<String, String> {
        Err("ruleFiles is not available yet in this maand build (Prometheus integration)".into())
    }
}
