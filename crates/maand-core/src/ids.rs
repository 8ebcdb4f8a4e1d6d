//! Stable identifiers (spec Appendix A, internals §3.1): `job_id`, `alloc_id` and label ids are an
//! MD5-based UUID of a string, identical to the Go maand's `StableJobID` so catalogs stay compatible.

use md5::{Digest, Md5};

/// MD5(s) with `b[6] = (b[6] & 0x0f) | 0x30` and `b[8] = (b[8] & 0x3f) | 0x80`, as lowercase
/// canonical UUID text (`xxxxxxxx-xxxx-3xxx-yxxx-xxxxxxxxxxxx`).
pub fn stable_uuid(s: &str) -> String {
    let digest = Md5::digest(s.as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest);
    b[6] = (b[6] & 0x0f) | 0x30;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

/// `job_id` of a job: `stable_uuid(job)`.
pub fn job_id(job: &str) -> String {
    stable_uuid(job)
}

/// `alloc_id` of a new allocation: `stable_uuid("<job>|<worker_ip>")`.
pub fn alloc_id(job: &str, worker_ip: &str) -> String {
    stable_uuid(&format!("{job}|{worker_ip}"))
}

/// `<label>_label_id` value: `stable_uuid(label)`.
pub fn label_id(label: &str) -> String {
    stable_uuid(label)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_uuid_matches_go_stable_job_id() {
        // Reference values computed independently (MD5 + the two bit fix-ups).
        assert_eq!(stable_uuid("api"), "8a5da52e-d126-347d-b59e-70c05721a8aa");
        assert_eq!(stable_uuid(""), "d41d8cd9-8f00-3204-a980-0998ecf8427e");
        assert_eq!(alloc_id("api", "10.0.0.1"), "67b5a127-3e36-3801-90b6-1bf413398655");
        assert_eq!(job_id("api"), stable_uuid("api"));
        assert_eq!(label_id("api"), stable_uuid("api"));
    }

    #[test]
    fn stable_uuid_has_version_and_variant_bits() {
        for s in ["a", "worker", "zookeeper|10.0.0.9"] {
            let id = stable_uuid(s);
            assert_eq!(id.len(), 36);
            assert_eq!(&id[14..15], "3");
            assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"), "{id}");
        }
    }
}
