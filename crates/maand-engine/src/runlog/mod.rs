//! Structured run logs (spec/features.md §10.3, §3.12): the writer every maand invocation uses to
//! record commands and events in `logs/`, and the reader behind `maand logs show`.
//!
//! Writer: [`RunLog`] appends one line per event to `logs/<worker>.log` (`logs/maand.log` for
//! bucket-local lines) and to `logs/runs/<run_id>/`, in `kv` or `json` format. Reader: [`show`].

mod event;
mod human;
mod parse;
mod record;
mod render;
mod show;
mod timestamp;
mod writer;

pub use event::{summarize_cmd, LogCtx, LogEvent, REDACTED};
pub use parse::parse_line;
pub use record::{LogRecord, EVENT_COMMAND_BEGIN, EVENT_COMMAND_END, EVENT_COMMAND_OUTPUT};
pub use show::{show, ShowFormat, ShowOptions};
pub(crate) use timestamp::{human_timestamp, utc_timestamp};
pub use writer::{log_name, RunLog, BUCKET_LOG_NAME};
