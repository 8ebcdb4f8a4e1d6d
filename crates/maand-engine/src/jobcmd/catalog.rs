//! What running job commands needs from the catalog, read once per maand run: the registered
//! commands, every allocation (with its promoted version), the files of jobs that have commands,
//! and workers' own SSH ports.

use crate::deploy::hash_namespace;
use maand_core::manifest::Event;
use maand_core::Result;
use maand_store::catalog::{self, CommandRow, JobFile};
use rusqlite::Connection;
use std::collections::{BTreeMap, BTreeSet};

/// One allocation as a job command sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandAllocation {
    pub alloc_id: String,
    pub job: String,
    pub worker_ip: String,
    pub disabled: bool,
    pub removed: bool,
    /// The build's target version.
    pub new_version: String,
    /// The last promoted version (`0.0.0` before the first promote).
    pub current_version: String,
    pub deployment_seq: i64,
}

#[derive(Debug, Clone, Default)]
pub struct CommandCatalog {
    pub bucket_id: String,
    /// Every `job_commands` row (job, name, event, demand).
    pub commands: Vec<CommandRow>,
    /// Every allocation (removed ones too), ordered by job then worker position.
    pub allocations: Vec<CommandAllocation>,
    /// The catalog files of jobs that have commands.
    pub files: BTreeMap<String, Vec<JobFile>>,
    /// Workers with their own SSH port.
    pub worker_ports: BTreeMap<String, u16>,
}

impl CommandCatalog {
    pub fn load(conn: &Connection) -> Result<CommandCatalog> {
        let commands = catalog::load_job_commands(conn)?;
        let mut allocations = Vec::new();
        for a in catalog::load_allocations(conn)? {
            let row = catalog::get_hash(conn, &hash_namespace(&a.job), &a.alloc_id)?;
            let current_version = row.and_then(|r| r.current_version).unwrap_or_else(|| "0.0.0".into());
            allocations.push(CommandAllocation {
                alloc_id: a.alloc_id,
                job: a.job,
                worker_ip: a.worker_ip,
                disabled: a.disabled,
                removed: a.removed,
                new_version: a.new_version,
                current_version,
                deployment_seq: a.deployment_seq,
            });
        }
        let jobs: BTreeSet<&str> = commands.iter().map(|c| c.job.as_str()).collect();
        let mut files = BTreeMap::new();
        for job in jobs {
            files.insert(job.to_string(), catalog::load_job_files(conn, job)?);
        }
        let worker_ports =
            catalog::load_workers(conn)?.into_iter().filter_map(|w| w.ssh_port.map(|p| (w.worker_ip, p))).collect();
        Ok(CommandCatalog {
            bucket_id: catalog::bucket_row(conn)?.bucket_id,
            commands,
            allocations,
            files,
            worker_ports,
        })
    }

    /// Names of `job`'s commands registered for `event`, sorted (DESIGN §3.8).
    pub fn commands_for(&self, job: &str, event: Event) -> Vec<String> {
        let names: BTreeSet<&str> = self
            .commands
            .iter()
            .filter(|c| c.job == job && c.executed_on == event.as_str())
            .map(|c| c.name.as_str())
            .collect();
        names.into_iter().map(str::to_string).collect()
    }

    /// Jobs registering any command for `event`, in `deployment_seq` then name order.
    pub fn jobs_with(&self, event: Event) -> Vec<String> {
        let jobs: BTreeSet<&str> =
            self.commands.iter().filter(|c| c.executed_on == event.as_str()).map(|c| c.job.as_str()).collect();
        let mut jobs: Vec<(i64, String)> = jobs.into_iter().map(|j| (self.deployment_seq(j), j.to_string())).collect();
        jobs.sort();
        jobs.into_iter().map(|(_, j)| j).collect()
    }

    fn deployment_seq(&self, job: &str) -> i64 {
        self.allocations.iter().filter(|a| a.job == job).map(|a| a.deployment_seq).max().unwrap_or(0)
    }

    /// Jobs this job's commands demand (sorted, own job excluded).
    pub fn upstream(&self, job: &str) -> Vec<String> {
        let set: BTreeSet<&str> = self
            .commands
            .iter()
            .filter(|c| c.job == job && !c.demand_job.is_empty() && c.demand_job != job)
            .map(|c| c.demand_job.as_str())
            .collect();
        set.into_iter().map(str::to_string).collect()
    }

    pub fn allocation(&self, job: &str, worker_ip: &str) -> Option<&CommandAllocation> {
        self.allocations.iter().find(|a| a.job == job && a.worker_ip == worker_ip)
    }

    /// Active allocations' worker IPs of `job`, in catalog order.
    pub fn active_workers(&self, job: &str) -> Vec<String> {
        self.allocations
            .iter()
            .filter(|a| a.job == job && !a.disabled && !a.removed)
            .map(|a| a.worker_ip.clone())
            .collect()
    }

    /// Zero-based index of the allocation among the job's non-removed allocations.
    pub fn position_index(&self, job: &str, worker_ip: &str) -> Option<usize> {
        self.allocations.iter().filter(|a| a.job == job && !a.removed).position(|a| a.worker_ip == worker_ip)
    }

    /// `_modules/<command>.py|.ts|.js` of a job, from its catalog files.
    pub fn script(&self, job: &str, command: &str) -> Option<&JobFile> {
        let files = self.files.get(job)?;
        ["py", "ts", "js"]
            .iter()
            .find_map(|ext| files.iter().find(|f| !f.isdir && f.path == format!("_modules/{command}.{ext}")))
    }
}
