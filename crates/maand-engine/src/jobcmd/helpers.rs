//! The helper libraries embedded in the maand binary and written next to every job command
//! (spec §8.6, §8.7): `maand.py` (Python standard library only), `maand.js` (Node and Bun) and
//! `maand.ts` (Bun). They never count in a job's content hash (`rollout::is_helper_file`).

use maand_core::Result;
use std::path::Path;

pub const MAAND_PY: &str = include_str!("helpers/maand.py");
pub const MAAND_JS: &str = include_str!("helpers/maand.js");
pub const MAAND_TS: &str = include_str!("helpers/maand.ts");

/// Write the three helpers (0644) into `modules_dir` (a staged directory, created when missing).
pub fn write_helpers(modules_dir: &Path) -> Result<()> {
    for (name, content) in [("maand.py", MAAND_PY), ("maand.js", MAAND_JS), ("maand.ts", MAAND_TS)] {
        crate::deploy::write_staged(&modules_dir.join(name), content.as_bytes(), 0o644)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use maand_core::rollout::is_helper_file;

    /// Every function and alias of spec §8.6 (plus the legacy deploy-order names) is defined.
    #[test]
    fn python_helper_has_every_name() {
        let names = [
            "allocation_id",
            "allocation_ip",
            "allocation_index",
            "job_name",
            "command_event",
            "command_name",
            "is_allocation_disabled",
            "get_store_value",
            "get_kv_value",
            "put_job_variable",
            "delete_job_variable",
            "put_job_secret",
            "delete_job_secret",
            "list_job_keys",
            "put_rollout_order",
            "get_rollout_order",
            "list_command_demands",
            "acquire_semaphore",
            "release_semaphore",
            "semaphore_status",
            "get_allocation_id",
            "get_allocation_ip",
            "get_allocation_index",
            "get_event",
            "get_command",
            "get_job",
            "kv_get",
            "kv_put",
            "kv_put_secret",
            "get_demands",
            "find_bucket_root",
            "load_ssh",
            "run_ssh",
            "run_runner_target",
            "run_make_target",
            "put_deploy_order",
            "get_deploy_order",
        ];
        for name in names {
            assert!(
                MAAND_PY.contains(&format!("def {name}(")) || MAAND_PY.contains(&format!("\n{name} = ")),
                "maand.py lacks {name}"
            );
        }
        assert!(!MAAND_PY.contains("import requests\n"), "maand.py must not need requests");
    }

    /// Every name of spec §8.7 is exported by both JS helpers.
    #[test]
    fn js_helpers_export_every_name() {
        let names = [
            "allocationId",
            "allocationIp",
            "allocationIndex",
            "isAllocationDisabled",
            "commandEvent",
            "commandName",
            "jobName",
            "getStoreValue",
            "putRolloutOrder",
            "getRolloutOrder",
            "putJobVariable",
            "putJobSecret",
            "listJobKeys",
            "deleteJobVariable",
            "deleteJobSecret",
            "listCommandDemands",
            "acquireSemaphore",
            "releaseSemaphore",
            "semaphoreStatus",
            "getAllocationId",
            "getAllocationIp",
            "getAllocationIndex",
            "getEvent",
            "getCommand",
            "getJob",
            "kvGet",
            "kvPut",
            "kvPutSecret",
            "getDemands",
        ];
        for name in names {
            assert!(MAAND_TS.contains(&format!("export const {name} ")), "maand.ts lacks {name}");
            assert!(
                MAAND_JS.contains(&format!("  {name},")) || MAAND_JS.contains(&format!("  {name}: ")),
                "maand.js lacks {name}"
            );
        }
    }

    #[test]
    fn helpers_do_not_count_in_hashes() {
        for name in ["maand.py", "maand.js", "maand.ts"] {
            assert!(is_helper_file(&format!("_modules/{name}")), "{name}");
        }
    }
}
