//! Rollout order of one phase (spec §5.11, internals §7.4, fixed by DESIGN §3.7): the KV
//! `rollout_order` list is filtered to the allocations acting now instead of being discarded when
//! it is not an exact permutation of them.

use std::collections::BTreeSet;

/// Where the resolved order came from (`ROLLOUT_ORDER_SOURCE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderSource {
    Kv,
    Default,
    /// The reverse of the order a failed deploy rolled its allocations in (automatic rollback).
    Rollback,
}

impl OrderSource {
    /// The `ROLLOUT_ORDER_SOURCE` value: `kv`, `default` or `rollback`.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderSource::Kv => "kv",
            OrderSource::Default => "default",
            OrderSource::Rollback => "rollback",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolloutOrder {
    /// Every candidate exactly once.
    pub order: Vec<String>,
    pub source: OrderSource,
    /// Messages to log (`deploy: job "<job>": …`).
    pub warnings: Vec<String>,
    /// The `ROLLOUT_ORDER` env value: the KV string as stored when it was used, else `order`
    /// joined with `,`.
    pub raw: String,
}

/// Resolve the order of one phase.
///
/// * `default_order`: all non-removed allocation IPs of the job in catalog order (worker position,
///   then IP). Candidates not in it are placed after it, in their given order.
/// * `candidates`: the allocations acting in this phase (duplicates collapse).
/// * `kv_value`: `maand/job/<job>:rollout_order`. Split on `,`, trimmed, empties dropped. IPs
///   not acting now are ignored silently; a repeated IP is ignored after its first place with a
///   warning; candidates it does not name are appended in catalog order with a warning naming
///   them. Absent, empty, or naming no candidate at all → catalog order (source `Default`).
pub fn resolve_rollout_order(
    job: &str,
    default_order: &[String],
    candidates: &[String],
    kv_value: Option<&str>,
) -> RolloutOrder {
    let wanted: BTreeSet<&str> = candidates.iter().map(String::as_str).collect();
    let catalog = dedup(default_order.iter().chain(candidates).map(String::as_str).filter(|ip| wanted.contains(ip)));

    let listed: Vec<&str> =
        kv_value.into_iter().flat_map(|v| v.split(',')).map(str::trim).filter(|s| !s.is_empty()).collect();
    let mut warnings = Vec::new();
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    let mut warned: BTreeSet<&str> = BTreeSet::new();
    let mut order: Vec<&str> = Vec::new();
    for ip in &listed {
        if !seen.insert(ip) {
            if warned.insert(ip) {
                warnings.push(format!("deploy: job {job:?}: rollout_order duplicate {ip} ignored"));
            }
            continue;
        }
        if wanted.contains(ip) {
            order.push(ip);
        }
    }
    let source = if order.is_empty() { OrderSource::Default } else { OrderSource::Kv };
    let missing: Vec<&str> = catalog.iter().copied().filter(|ip| !seen.contains(ip)).collect();
    if !listed.is_empty() && !missing.is_empty() {
        warnings.push(format!(
            "deploy: job {job:?}: rollout_order missing allocation {}; appended in catalog order",
            missing.join(", ")
        ));
    }
    order.extend(missing);

    let order: Vec<String> = order.into_iter().map(str::to_string).collect();
    let raw = match (source, kv_value) {
        (OrderSource::Kv, Some(kv)) => kv.to_string(),
        _ => order.join(","),
    };
    RolloutOrder { order, source, warnings, raw }
}

/// Items in first-seen order, each once.
fn dedup<'a>(items: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut seen = BTreeSet::new();
    items.filter(|ip| seen.insert(*ip)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ips(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    const ALL: [&str; 4] = ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"];

    #[test]
    fn absent_or_empty_kv_uses_catalog_order_without_warning() {
        for kv in [None, Some(""), Some(" , ,")] {
            let r = resolve_rollout_order("api", &ips(&ALL), &ips(&["10.0.0.3", "10.0.0.1"]), kv);
            assert_eq!(r.order, ips(&["10.0.0.1", "10.0.0.3"]), "{kv:?}");
            assert_eq!(r.source, OrderSource::Default);
            assert_eq!(r.raw, "10.0.0.1,10.0.0.3");
            assert!(r.warnings.is_empty());
        }
    }

    #[test]
    fn exact_permutation_is_used_as_is() {
        let kv = "10.0.0.4, 10.0.0.2,10.0.0.1 ,10.0.0.3";
        let r = resolve_rollout_order("api", &ips(&ALL), &ips(&ALL), Some(kv));
        assert_eq!(r.order, ips(&["10.0.0.4", "10.0.0.2", "10.0.0.1", "10.0.0.3"]));
        assert_eq!(r.source, OrderSource::Kv);
        assert_eq!(r.raw, kv);
        assert!(r.warnings.is_empty());
    }

    #[test]
    fn partial_subset_keeps_kv_order_and_ignores_other_ips_silently() {
        // Only two allocations changed; the full KV list still orders them (Go fell back to catalog order).
        let r = resolve_rollout_order(
            "api",
            &ips(&ALL),
            &ips(&["10.0.0.1", "10.0.0.3"]),
            Some("10.0.0.4,10.0.0.3,10.0.0.2,10.0.0.1"),
        );
        assert_eq!(r.order, ips(&["10.0.0.3", "10.0.0.1"]));
        assert_eq!(r.source, OrderSource::Kv);
        assert_eq!(r.raw, "10.0.0.4,10.0.0.3,10.0.0.2,10.0.0.1");
        assert!(r.warnings.is_empty());
    }

    #[test]
    fn unknown_ips_are_ignored() {
        let r = resolve_rollout_order("api", &ips(&ALL[..2]), &ips(&ALL[..2]), Some("10.9.9.9,10.0.0.2,10.0.0.1"));
        assert_eq!(r.order, ips(&["10.0.0.2", "10.0.0.1"]));
        assert!(r.warnings.is_empty());
    }

    #[test]
    fn duplicates_are_ignored_with_one_warning_each() {
        let kv = "10.0.0.2,10.0.0.1,10.0.0.2,10.0.0.2,10.0.0.9,10.0.0.9";
        let r = resolve_rollout_order("api", &ips(&ALL[..2]), &ips(&ALL[..2]), Some(kv));
        assert_eq!(r.order, ips(&["10.0.0.2", "10.0.0.1"]));
        assert_eq!(r.source, OrderSource::Kv);
        assert_eq!(
            r.warnings,
            vec![
                "deploy: job \"api\": rollout_order duplicate 10.0.0.2 ignored".to_string(),
                "deploy: job \"api\": rollout_order duplicate 10.0.0.9 ignored".to_string(),
            ]
        );
    }

    #[test]
    fn missing_candidates_are_appended_in_catalog_order_with_a_warning() {
        let r = resolve_rollout_order("api", &ips(&ALL), &ips(&["10.0.0.4", "10.0.0.2", "10.0.0.3"]), Some("10.0.0.3"));
        assert_eq!(r.order, ips(&["10.0.0.3", "10.0.0.2", "10.0.0.4"]));
        assert_eq!(r.source, OrderSource::Kv);
        assert_eq!(r.raw, "10.0.0.3");
        assert_eq!(
            r.warnings,
            vec!["deploy: job \"api\": rollout_order missing allocation 10.0.0.2, 10.0.0.4; appended in catalog order"]
        );
    }

    #[test]
    fn kv_naming_no_candidate_falls_back_to_default_with_a_warning() {
        let r = resolve_rollout_order("api", &ips(&ALL), &ips(&["10.0.0.2"]), Some("10.0.0.1,10.0.0.3"));
        assert_eq!(r.order, ips(&["10.0.0.2"]));
        assert_eq!(r.source, OrderSource::Default);
        assert_eq!(r.raw, "10.0.0.2");
        assert_eq!(r.warnings.len(), 1);
        assert!(r.warnings[0].contains("missing allocation 10.0.0.2"));
    }

    #[test]
    fn stragglers_and_duplicate_candidates() {
        let r = resolve_rollout_order(
            "api",
            &ips(&["10.0.0.2", "10.0.0.1"]),
            &ips(&["10.0.0.7", "10.0.0.1", "10.0.0.7"]),
            None,
        );
        assert_eq!(r.order, ips(&["10.0.0.1", "10.0.0.7"]));
    }

    #[test]
    fn no_candidates_is_an_empty_order() {
        let r = resolve_rollout_order("api", &ips(&ALL), &[], Some("10.0.0.1"));
        assert!(r.order.is_empty());
        assert_eq!(r.source, OrderSource::Default);
        assert_eq!(r.raw, "");
        assert!(r.warnings.is_empty());
        assert_eq!(OrderSource::Kv.as_str(), "kv");
        assert_eq!(OrderSource::Default.as_str(), "default");
    }

    fn ip() -> impl Strategy<Value = String> {
        (1u8..8).prop_map(|n| format!("10.0.0.{n}"))
    }

    proptest! {
        #[test]
        fn resolved_order_is_a_permutation_of_the_candidates(
            default_order in proptest::collection::vec(ip(), 0..8),
            candidates in proptest::collection::vec(ip(), 0..8),
            kv in proptest::option::of(proptest::collection::vec(ip(), 0..10)),
            separator in prop_oneof![Just(","), Just(", "), Just(" ,, ")],
        ) {
            let kv = kv.map(|list| list.join(separator));
            let r = resolve_rollout_order("job", &default_order, &candidates, kv.as_deref());
            let mut got = r.order.clone();
            got.sort();
            let mut want: Vec<String> = candidates.iter().cloned().collect::<BTreeSet<_>>().into_iter().collect();
            want.sort();
            prop_assert_eq!(got, want);
            if r.source == OrderSource::Default {
                prop_assert_eq!(r.raw, r.order.join(","));
            }
        }
    }
}
