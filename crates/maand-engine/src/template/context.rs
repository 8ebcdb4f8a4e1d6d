//! The dot context of a job template (spec/features.md §7.1) and its Go shape: the original's
//! `AllocationData` struct with an embedded `WorkerData`, so field promotion and `{{ . }}`
//! printing behave as in Go.

use std::rc::Rc;

use super::value::{StructField, StructValue, Value};

/// The values a template sees as `.AllocationID`, `.Job`, … for one allocation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TemplateContext {
    pub allocation_id: String,
    pub job: String,
    /// Last promoted version (`0.0.0` initially).
    pub current_version: String,
    /// Build target version.
    pub new_version: String,
    pub worker_ip: String,
    pub worker_id: String,
    /// Worker labels, sorted.
    pub labels: Vec<String>,
    /// `/opt/worker/<bucket_id>`
    pub bucket_path: String,
    /// `/opt/worker/<bucket_id>/jobs/<job>`
    pub job_path: String,
    pub bucket_id: String,
    pub update_seq: i64,
}

impl TemplateContext {
    /// The context as a Go struct value: `AllocationData{AllocationID, Job, CurrentVersion,
    /// NewVersion, WorkerData{BucketID, WorkerID, WorkerIP, Labels, UpdateSeq}, BucketPath, JobPath}`.
    pub(crate) fn to_value(&self) -> Value {
        let field = |name: &'static str, value: Value| StructField { name, value, embedded: false };
        let text = |s: &str| Value::string(s);
        let worker = StructValue {
            type_name: "deploy.WorkerData",
            fields: vec![
                field("BucketID", text(&self.bucket_id)),
                field("WorkerID", text(&self.worker_id)),
                field("WorkerIP", text(&self.worker_ip)),
                field("Labels", Value::strings(self.labels.clone())),
                field("UpdateSeq", Value::Int(self.update_seq)),
            ],
        };
        Value::Struct(Rc::new(StructValue {
            type_name: "deploy.AllocationData",
            fields: vec![
                field("AllocationID", text(&self.allocation_id)),
                field("Job", text(&self.job)),
                field("CurrentVersion", text(&self.current_version)),
                field("NewVersion", text(&self.new_version)),
                StructField { name: "WorkerData", value: Value::Struct(Rc::new(worker)), embedded: true },
                field("BucketPath", text(&self.bucket_path)),
                field("JobPath", text(&self.job_path)),
            ],
        }))
    }
}
