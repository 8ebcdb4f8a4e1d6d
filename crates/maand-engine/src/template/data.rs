//! What a template may read: the KV namespaces allowed for the allocation being rendered, its
//! job's secrets and the Prometheus fragments. Implemented by the deploy pipeline (and by test
//! fixtures); the template functions only call through this trait.

/// KV access for one allocation's templates (spec/features.md §6.4, §7.2).
pub trait TemplateData {
    /// The value of `key` in namespace `ns`, decrypted if `ns` is a secrets namespace.
    /// `Err(msg)` when the namespace is not readable by this allocation
    /// (`"<ns> namespace is not available for job <job>"`); `Ok(None)` when the key is missing.
    fn get(&self, ns: &str, key: &str) -> Result<Option<String>, String>;
    /// The live keys of `ns`, sorted (DESIGN §3.8); `Err` as for [`TemplateData::get`].
    fn keys(&self, ns: &str) -> Result<Vec<String>, String>;
    /// A secret of the current job (`secrets/job/<job>`), decrypted; `Ok(None)` when missing.
    fn get_secret(&self, key: &str) -> Result<Option<String>, String>;
    /// The YAML fragment of expanded Prometheus scrape configs (`scrapeConfigs`).
    fn scrape_configs(&self) -> Result<String, String>;
    /// The `rule_files:` YAML fragment (`ruleFiles`).
    fn rule_files(&self) -> Result<String, String>;
}
