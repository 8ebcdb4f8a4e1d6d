//! The Prometheus integration's pipelines (spec/features.md §10.2): the live view of the catalog
//! the scrape configs expand against, the server job's assembled files (rules, runbooks,
//! dashboards), the certificate metrics pushed by remote-write after a deploy, and the data behind
//! `maand cat prometheus`.

mod cert_metrics;
mod cert_rules;
mod dashboards;
mod html;
mod inspect;
mod live;
mod remote_write;
mod runbooks;
mod server;

pub use cert_metrics::push_after_deploy;
pub use inspect::{find_bucket_root, prometheus_file, prometheus_jobs, prometheus_scrape, ScrapeView};
pub use live::LiveCatalog;
pub use server::ServerAssets;
