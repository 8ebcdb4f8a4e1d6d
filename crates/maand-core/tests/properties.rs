//! Property tests of maand-core: parsers never panic on arbitrary input (text and structurally
//! generated JSON/TOML), port assignment invariants, deployment waves respect demand edges, and
//! version ordering is a total order that survives display + parse.
#![allow(clippy::unwrap_used)]

use maand_core::bucket_conf::{parse_bucket_jobs_conf, parse_string_table};
use maand_core::disabled::parse_disabled;
use maand_core::globs::{glob_matches, validate_glob};
use maand_core::manifest::{parse_manifest, PortDecl};
use maand_core::ports::assign_ports;
use maand_core::units::format_number;
use maand_core::version::{parse_version, Version};
use maand_core::waves::deployment_seq;
use maand_core::workers::parse_workers;
use maand_core::ErrorKind;
use proptest::prelude::*;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// Every key any of our JSON files knows, at any level, so random trees hit real code paths.
const KEYS: &[&str] = &[
    "version",
    "selectors",
    "max_concurrent_upgrades",
    "max_concurrent_starts",
    "update_parallel_count",
    "deploy_parallel_count",
    "min_allocations_count",
    "restart_policy",
    "restart_globs",
    "resources",
    "memory",
    "cpu",
    "min",
    "max",
    "ports",
    "http_port",
    "commands",
    "command_x",
    "command_y",
    "executed_on",
    "demands",
    "job",
    "command",
    "config",
    "min_version",
    "max_version",
    "health_check",
    "checks",
    "type",
    "port",
    "path",
    "expect_status",
    "scheme",
    "timeout_seconds",
    "wait",
    "attempts",
    "interval_seconds",
    "certs",
    "tls",
    "pkcs8",
    "one",
    "subject",
    "common_name",
    "remote_timeout_seconds",
    "rollback_on_failure",
    "host",
    "hostname",
    "labels",
    "tags",
    "position",
    "jobs",
    "workers",
    "allocations",
    "api",
];

/// Strings that mean something somewhere (units, versions, events, policies, globs, port names).
const WORDS: &[&str] = &[
    "",
    " ",
    "4 gb",
    "512",
    "-1 mb",
    "2 ghz",
    "1.5 tb",
    "8 kb",
    "1.0.0",
    "v2.1",
    "2.0.0-rc1",
    "unknown",
    "1.2.3.4",
    "cli",
    "post_build",
    "pre_deploy",
    "health_check",
    "always",
    "reload",
    "never",
    "*.conf",
    "[x",
    "**/a",
    "tcp",
    "http",
    "ssh",
    "/",
    "https",
    "http_port",
    "api",
    "command_x",
    "command_y",
    "10.0.0.1",
    "worker",
    "WEB",
];

fn arb_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-70000i64..70000).prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map(Value::Number).unwrap_or(Value::Null)),
        prop::sample::select(WORDS).prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
    ]
}

fn arb_json() -> impl Strategy<Value = Value> {
    arb_leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..6)
                .prop_map(|pairs| { Value::Object(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()) }),
        ]
    })
}

/// An object whose keys come from KEYS and whose values are random trees.
fn arb_object() -> impl Strategy<Value = Value> {
    prop::collection::vec((prop::sample::select(KEYS), arb_json()), 0..10)
        .prop_map(|pairs| Value::Object(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect::<Map<_, _>>()))
}

fn arb_toml_value() -> impl Strategy<Value = toml::Value> {
    let leaf = prop_oneof![
        prop::sample::select(WORDS).prop_map(|s| toml::Value::String(s.to_string())),
        ".{0,10}".prop_map(toml::Value::String),
        any::<i64>().prop_map(toml::Value::Integer),
        any::<f64>().prop_map(toml::Value::Float),
        any::<bool>().prop_map(toml::Value::Boolean),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(toml::Value::Array),
            prop::collection::btree_map("[a-z_]{1,6}", inner, 0..4)
                .prop_map(|m| toml::Value::Table(m.into_iter().collect())),
        ]
    })
}

fn arb_toml_text() -> impl Strategy<Value = String> {
    prop::collection::btree_map("[a-z_]{1,8}", arb_toml_value(), 0..6)
        .prop_map(|m| toml::to_string(&m.into_iter().collect::<toml::Table>()).unwrap_or_default())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn parsers_never_panic_on_text(text in ".{0,200}") {
        let _ = parse_workers(&text, &mut Vec::new());
        let _ = parse_manifest("api", &text, &mut Vec::new());
        let _ = parse_string_table("f", &text, ErrorKind::InvalidBucketConf);
        let _ = parse_bucket_jobs_conf("f", &text);
        let _ = parse_disabled(&text, &mut Vec::new());
    }

    #[test]
    fn json_parsers_never_panic_on_structured_input(
        manifest in arb_object(),
        workers in prop::collection::vec(prop_oneof![arb_object(), arb_json()], 0..5),
        disabled in arb_object(),
        any_json in arb_json(),
    ) {
        let _ = parse_manifest("api", &manifest.to_string(), &mut Vec::new());
        let _ = parse_manifest("api", &any_json.to_string(), &mut Vec::new());
        let _ = parse_workers(&Value::Array(workers).to_string(), &mut Vec::new());
        let _ = parse_workers(&any_json.to_string(), &mut Vec::new());
        let _ = parse_disabled(&disabled.to_string(), &mut Vec::new());
        let _ = parse_disabled(&any_json.to_string(), &mut Vec::new());
    }

    #[test]
    fn toml_parsers_never_panic_on_structured_input(text in arb_toml_text()) {
        let _ = parse_string_table("f", &text, ErrorKind::InvalidJobVars);
        let _ = parse_bucket_jobs_conf("f", &text);
    }

    #[test]
    fn string_tables_keep_every_string(map in prop::collection::btree_map("[a-z_]{1,8}", ".{0,10}", 0..6)) {
        let table: toml::Table = map.iter().map(|(k, v)| (k.clone(), toml::Value::String(v.clone()))).collect();
        let parsed = parse_string_table("f", &toml::to_string(&table).unwrap(), ErrorKind::InvalidBucketConf).unwrap();
        prop_assert_eq!(parsed, map);
    }

    #[test]
    fn globs_never_panic(pattern in ".{0,16}", path in "[a-z/.*?]{0,16}") {
        let _ = validate_glob(&pattern);
        let _ = glob_matches(&pattern, &path);
    }

    #[test]
    fn literal_globs_match_themselves(path in "[a-z]{1,4}(/[a-z]{1,4}){0,3}") {
        prop_assert!(glob_matches(&path, &path));
        let base = path.rsplit('/').next().unwrap().to_string();
        prop_assert!(glob_matches(&base, &path));
        prop_assert!(glob_matches("**", &path));
    }

    #[test]
    fn integral_numbers_format_as_integers(n in 0u32..1_000_000) {
        prop_assert_eq!(format_number(f64::from(n)), n.to_string());
    }
}

// ---- ports ----------------------------------------------------------------------------------

type Jobs = Vec<(String, Vec<(String, PortDecl)>)>;
type PortCase = ((u16, u16), Jobs, BTreeMap<(String, String), u16>);

fn arb_port_jobs(lo: u16, hi: u16) -> impl Strategy<Value = Jobs> {
    let decl = prop_oneof![
        3 => Just(PortDecl::Pool),
        1 => (lo.saturating_sub(3)..=hi.saturating_add(3)).prop_map(PortDecl::Fixed),
    ];
    prop::collection::btree_map("[a-e]", prop::collection::btree_map("[a-d]_port", decl, 0..4), 0..5)
        .prop_map(|jobs| jobs.into_iter().map(|(job, ports)| (job, ports.into_iter().collect())).collect())
}

fn arb_port_case() -> impl Strategy<Value = PortCase> {
    (1000u16..1100, 0u16..20).prop_flat_map(|(lo, width)| {
        let hi = lo + width;
        let previous = prop::collection::btree_map(("[a-e]", "[a-d]_port"), (lo - 5)..(hi + 5), 0..8);
        (Just((lo, hi)), arb_port_jobs(lo, hi), previous)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn port_assignment_invariants((range, jobs, previous) in arb_port_case()) {
        let fixed: Vec<u16> = jobs.iter().flat_map(|(_, p)| p.iter().filter_map(|(_, d)| match d { PortDecl::Fixed(n) => Some(*n), PortDecl::Pool => None })).collect();
        let fixed_unique = fixed.iter().collect::<BTreeSet<_>>().len() == fixed.len();
        let pool_count = jobs.iter().flat_map(|(_, p)| p.iter()).filter(|(_, d)| *d == PortDecl::Pool).count();
        let fixed_in_pool = fixed.iter().filter(|p| (range.0..=range.1).contains(p)).collect::<BTreeSet<_>>().len();
        let free = usize::from(range.1 - range.0) + 1 - fixed_in_pool;

        match assign_ports(range, &jobs, &previous) {
            Ok(assigned) => {
                let numbers: BTreeSet<u16> = assigned.values().copied().collect();
                prop_assert_eq!(numbers.len(), assigned.len(), "no two ports share a number");
                for (job, ports) in &jobs {
                    for (name, decl) in ports {
                        let got = assigned[&(job.clone(), name.clone())];
                        match decl {
                            PortDecl::Fixed(n) => prop_assert_eq!(got, *n),
                            PortDecl::Pool => {
                                prop_assert!(range.0 <= got && got <= range.1);
                                if let Some(prev) = previous.get(&(job.clone(), name.clone())) {
                                    let prev_free = (range.0..=range.1).contains(prev) && !fixed.contains(prev);
                                    let prev_unique = previous.iter().filter(|(_, p)| *p == prev).count() == 1;
                                    if prev_free && prev_unique {
                                        prop_assert_eq!(got, *prev, "an unclaimed previous pool port is kept");
                                    }
                                }
                            }
                        }
                    }
                }
                prop_assert_eq!(assigned.len(), jobs.iter().map(|(_, p)| p.len()).sum::<usize>());
                let again = assign_ports(range, &jobs, &assigned).unwrap();
                prop_assert_eq!(again, assigned, "stable when re-run on its own output");
            }
            Err(e) => {
                if e.is(ErrorKind::PortCollision) {
                    prop_assert!(!fixed_unique);
                } else {
                    prop_assert!(e.is(ErrorKind::PortRangeExhausted), "{}", e);
                    prop_assert!(fixed_unique && pool_count > free);
                }
            }
        }
        if fixed_unique && pool_count <= free {
            prop_assert!(assign_ports(range, &jobs, &previous).is_ok());
        }
    }
}

// ---- deployment waves -----------------------------------------------------------------------

/// Job `i` may demand jobs with a smaller index (acyclic by construction); names are shuffled so
/// name order is not a topological order.
fn arb_dag() -> impl Strategy<Value = (Vec<String>, Vec<(usize, usize)>, Vec<bool>)> {
    (1usize..9).prop_flat_map(|n| {
        let names = Just((0..n).map(|i| format!("job{i}")).collect::<Vec<_>>()).prop_shuffle();
        let edges = prop::collection::vec((0..n, 0..n), 0..(n * 2))
            .prop_map(|pairs| pairs.into_iter().filter(|(a, b)| a > b).collect::<Vec<_>>());
        let seeded = prop::collection::vec(any::<bool>(), n);
        (names, edges, seeded)
    })
}

fn manifests(names: &[String], edges: &[(usize, usize)], seeded: &[bool]) -> BTreeMap<String, maand_core::Manifest> {
    names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let mut commands = vec![format!(
                r#""command_s": {{"executed_on": ["{}"]}}"#,
                if seeded[i] { "cli" } else { "post_build" }
            )];
            for (k, (_, up)) in edges.iter().filter(|(from, _)| *from == i).enumerate() {
                commands.push(format!(
                    r#""command_d{k}": {{"executed_on": ["cli"], "demands": {{"job": "{}", "command": "command_s"}}}}"#,
                    names[*up]
                ));
            }
            let json = format!(r#"{{"version": "1", "commands": {{{}}}}}"#, commands.join(","));
            (name.clone(), parse_manifest(name, &json, &mut Vec::new()).unwrap())
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn waves_follow_demand_edges((names, edges, seeded) in arb_dag()) {
        let m = manifests(&names, &edges, &seeded);
        maand_core::demands::validate_demands(&m).unwrap();
        let seq = deployment_seq(&m).unwrap();
        prop_assert_eq!(seq.len(), names.len());
        for (from, up) in &edges {
            prop_assert!(seq[&names[*from]] > seq[&names[*up]], "{} must deploy after {}", names[*from], names[*up]);
        }
        for (i, name) in names.iter().enumerate() {
            if !edges.iter().any(|(from, _)| *from == i) {
                prop_assert_eq!(seq[name], 0);
            }
        }
    }

    #[test]
    fn cycles_are_always_rejected((names, mut edges, seeded) in arb_dag(), extra in any::<prop::sample::Index>()) {
        prop_assume!(!edges.is_empty());
        let (from, up) = edges[extra.index(edges.len())];
        edges.push((up, from));
        let e = deployment_seq(&manifests(&names, &edges, &seeded)).unwrap_err();
        prop_assert!(e.is(ErrorKind::CircularJobCommandDependency));
        let path: Vec<&str> = e.detail.split(" (").next().unwrap().split(" -> ").collect();
        prop_assert!(path.len() >= 3 && path.first() == path.last(), "{}", e.detail);
    }
}

// ---- versions -------------------------------------------------------------------------------

fn arb_version() -> impl Strategy<Value = Version> {
    let part = prop_oneof![0u64..4, any::<u64>()];
    (part.clone(), part.clone(), part, prop::option::of("[0-9A-Za-z][0-9A-Za-z.-]{0,6}"))
        .prop_map(|(major, minor, patch, pre)| Version { major, minor, patch, pre })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn version_display_round_trips(v in arb_version()) {
        prop_assert_eq!(parse_version(&v.to_string()).unwrap(), v.clone());
        prop_assert_eq!(parse_version(&format!(" v{v} ")).unwrap(), v);
    }

    #[test]
    fn version_order_is_total(a in arb_version(), b in arb_version(), c in arb_version()) {
        use std::cmp::Ordering::*;
        prop_assert_eq!(a.cmp(&b), b.cmp(&a).reverse());
        prop_assert_eq!(a.cmp(&b) == Equal, a == b);
        if a <= b && b <= c {
            prop_assert!(a <= c);
        }
        if a.pre.is_some() && b.pre.is_none() && (a.major, a.minor, a.patch) == (b.major, b.minor, b.patch) {
            prop_assert!(a < b, "a prerelease sorts before its release");
        }
    }
}
