//! Who is calling the runtime API (DESIGN §3.9): every job-command process gets its own random
//! token, registered with the allocation, job, event and command it was started for. A request's
//! identity comes from its token, never from the `EVENT`/`COMMAND` headers it sends.

use maand_core::manifest::Event;
use rand::RngCore;
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

/// The allocation and hook one process runs for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    pub alloc_id: String,
    pub job: String,
    pub worker_ip: String,
    pub event: Event,
    pub command: String,
    /// Jobs this job's commands demand (their `maand/job`, `vars/job`, `secrets/job` are readable).
    pub upstream: Vec<String>,
}

/// Live invocations by token.
#[derive(Default)]
pub struct Invocations {
    by_token: Mutex<HashMap<String, Invocation>>,
}

impl Invocations {
    /// Register `invocation` under a fresh 256-bit token (hex) and return the token.
    pub fn register(&self, invocation: Invocation) -> String {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        self.by_token.lock().unwrap_or_else(PoisonError::into_inner).insert(token.clone(), invocation);
        token
    }

    /// The invocation a token belongs to, while its process runs.
    pub fn get(&self, token: &str) -> Option<Invocation> {
        self.by_token.lock().unwrap_or_else(PoisonError::into_inner).get(token).cloned()
    }

    /// Forget a token (its process exited): later requests with it are refused.
    pub fn end(&self, token: &str) {
        self.by_token.lock().unwrap_or_else(PoisonError::into_inner).remove(token);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_secret_and_end() {
        let inv = Invocation {
            alloc_id: "a1".into(),
            job: "app".into(),
            worker_ip: "10.0.0.1".into(),
            event: Event::Cli,
            command: "command_x".into(),
            upstream: vec![],
        };
        let all = Invocations::default();
        let t1 = all.register(inv.clone());
        let t2 = all.register(inv.clone());
        assert_ne!(t1, t2);
        assert_eq!(t1.len(), 64);
        assert_eq!(all.get(&t1), Some(inv));
        all.end(&t1);
        assert_eq!(all.get(&t1), None);
        assert!(all.get(&t2).is_some());
        assert!(all.get("").is_none());
    }
}
