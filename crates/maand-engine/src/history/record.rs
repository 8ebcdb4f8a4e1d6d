//! Recording a run in the history: a row inserted when the run starts (result `running`, with the
//! command line, who and the pid holding the bucket lock) and completed when it ends with what it
//! did per job — or dropped when it changed nothing. A run killed on the way keeps its `running`
//! row; readers show it as `aborted` once its process no longer holds the lock.

use super::who;
use crate::bucket::Bucket;
use crate::output::Reporter;
use maand_core::Result;
use maand_store::catalog::{self, NewRun, RunJobRow};
use serde::Serialize;
use std::time::{SystemTime, UNIX_EPOCH};

/// What kind of run changed the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunKind {
    Deploy,
    /// `maand job <target>`.
    Job,
    Gc,
    Rollback,
}

impl RunKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RunKind::Deploy => "deploy",
            RunKind::Job => "job",
            RunKind::Gc => "gc",
            RunKind::Rollback => "rollback",
        }
    }
}

/// How a run, or one job in it, ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunResult {
    Ok,
    Failed,
    /// Stopped between batches by SIGINT/SIGTERM.
    Interrupted,
    /// A job the run did not act on (an earlier deployment_seq failed, …).
    Skipped,
}

impl RunResult {
    pub fn as_str(self) -> &'static str {
        match self {
            RunResult::Ok => "ok",
            RunResult::Failed => "failed",
            RunResult::Interrupted => "interrupted",
            RunResult::Skipped => "skipped",
        }
    }
}

/// What a run did to one job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobOutcome {
    pub job: String,
    /// The version promoted before the run (`None`: never deployed; several: comma-joined).
    pub version_from: Option<String>,
    /// The version the run rolled out (`None`: the allocations were stopped).
    pub version_to: Option<String>,
    /// Worker IPs acted on.
    pub allocations: Vec<String>,
    /// Worker IPs promoted by the run.
    pub promoted: Vec<String>,
    pub result: RunResult,
    pub reason: Option<String>,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOutcome {
    pub result: RunResult,
    pub reason: Option<String>,
    pub jobs: Vec<JobOutcome>,
}

impl RunOutcome {
    /// A run that ended with an error before it could say what it did.
    pub fn error(e: &maand_core::Error) -> RunOutcome {
        RunOutcome { result: RunResult::Failed, reason: Some(e.to_string()), jobs: Vec::new() }
    }

    /// The run's result from its jobs': interrupted when one was, else failed naming the failed
    /// jobs, else ok.
    pub fn from_jobs(jobs: Vec<JobOutcome>, interrupted: bool) -> RunOutcome {
        let failed: Vec<&str> = jobs.iter().filter(|j| j.result == RunResult::Failed).map(|j| j.job.as_str()).collect();
        let (result, reason) = if interrupted {
            (RunResult::Interrupted, Some("interrupted between batches".to_string()))
        } else if !failed.is_empty() {
            (RunResult::Failed, Some(format!("failed: {}", failed.join(", "))))
        } else {
            (RunResult::Ok, None)
        };
        RunOutcome { result, reason, jobs }
    }
}

/// A run recorded as started; [`RunRecorder::end`] completes (or drops) its row.
#[derive(Debug)]
pub struct RunRecorder {
    id: i64,
}

impl RunRecorder {
    /// Record that a run of `kind` starts now (call it with the bucket lock held): this process's
    /// command line, `user@host` and pid, result `running`.
    pub fn begin(bucket: &Bucket, kind: RunKind, target: Option<&str>) -> Result<RunRecorder> {
        let run = NewRun {
            kind: kind.as_str().to_string(),
            target: target.map(str::to_string),
            argv: std::env::args().collect(),
            user: who::user(),
            host: who::host(),
            pid: std::process::id(),
            started_ms: now_ms(),
        };
        let id = catalog::insert_run(&bucket.connect()?, &run)?;
        Ok(RunRecorder { id })
    }

    /// The run's id in the history.
    pub fn id(&self) -> i64 {
        self.id
    }

    /// Complete the row with `outcome`, or drop it when `outcome` is `None` (the run changed
    /// nothing). A failure to write is reported through `out`; it never changes the run's result.
    pub fn end(self, bucket: &Bucket, outcome: Option<RunOutcome>, out: &dyn Reporter) {
        let written = bucket.connect().and_then(|conn| match &outcome {
            None => catalog::delete_run(&conn, self.id),
            Some(o) => catalog::finish_run(
                &conn,
                self.id,
                now_ms(),
                o.result.as_str(),
                o.reason.as_deref(),
                &o.jobs.iter().map(job_row).collect::<Vec<_>>(),
            ),
        });
        if let Err(e) = written {
            out.message(&format!("history: run {} could not be recorded: {e}", self.id));
        }
    }
}

fn job_row(j: &JobOutcome) -> RunJobRow {
    RunJobRow {
        job: j.job.clone(),
        version_from: j.version_from.clone(),
        version_to: j.version_to.clone(),
        allocations: j.allocations.clone(),
        promoted: j.promoted.clone(),
        result: j.result.as_str().to_string(),
        reason: j.reason.clone(),
    }
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)).unwrap_or(0)
}
