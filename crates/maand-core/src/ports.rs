//! Port assignment (spec §2.4): fixed ports follow the manifests; pool (`{}`) ports keep their
//! previous number while it is inside the pool and not claimed by a fixed port, and otherwise get
//! the lowest free number of the pool. Jobs and port names are processed in sorted order.

use crate::manifest::PortDecl;
use crate::{Error, ErrorKind, Result};
use std::collections::BTreeMap;

type PortKey = (String, String);

/// Assign a number to every (job, port name). `previous` is the last build's assignment.
pub fn assign_ports(
    range: (u16, u16),
    jobs: &[(String, Vec<(String, PortDecl)>)],
    previous: &BTreeMap<PortKey, u16>,
) -> Result<BTreeMap<PortKey, u16>> {
    let mut decls: BTreeMap<PortKey, PortDecl> = BTreeMap::new();
    for (job, ports) in jobs {
        for (name, decl) in ports {
            decls.entry((job.clone(), name.clone())).or_insert(*decl);
        }
    }
    let mut owner: BTreeMap<u16, &PortKey> = BTreeMap::new();
    let mut assigned: BTreeMap<PortKey, u16> = BTreeMap::new();

    for (key, decl) in &decls {
        if let PortDecl::Fixed(port) = decl {
            claim(&mut owner, *port, key)?;
            assigned.insert(key.clone(), *port);
        }
    }
    let in_pool = |p: u16| range.0 <= p && p <= range.1;
    let mut unplaced: Vec<&PortKey> = Vec::new();
    for (key, decl) in &decls {
        if *decl != PortDecl::Pool {
            continue;
        }
        match previous.get(key).copied().filter(|p| in_pool(*p) && !owner.contains_key(p)) {
            Some(port) => {
                owner.insert(port, key);
                assigned.insert(key.clone(), port);
            }
            None => unplaced.push(key),
        }
    }
    let mut candidate = range.0;
    for key in unplaced {
        while candidate <= range.1 && owner.contains_key(&candidate) {
            if candidate == u16::MAX {
                break;
            }
            candidate += 1;
        }
        if candidate > range.1 || owner.contains_key(&candidate) {
            return Err(Error::new(
                ErrorKind::PortRangeExhausted,
                format!(
                    "no free ports in range {}-{} for job {} port {:?}; widen port_min/port_max in workspace/bucket.conf",
                    range.0, range.1, key.0, key.1
                ),
            ));
        }
        owner.insert(candidate, key);
        assigned.insert(key.clone(), candidate);
    }
    Ok(assigned)
}

fn claim<'a>(owner: &mut BTreeMap<u16, &'a PortKey>, port: u16, key: &'a PortKey) -> Result<()> {
    if let Some(first) = owner.get(&port) {
        return Err(Error::new(
            ErrorKind::PortCollision,
            format!(
                "port {port} (job {} port {:?}) is also claimed by job {} port {:?}; give one of them another number",
                key.0, key.1, first.0, first.1
            ),
        ));
    }
    owner.insert(port, key);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decls(list: &[(&str, &[(&str, PortDecl)])]) -> Vec<(String, Vec<(String, PortDecl)>)> {
        list.iter()
            .map(|(job, ports)| (job.to_string(), ports.iter().map(|(n, d)| (n.to_string(), *d)).collect()))
            .collect()
    }

    fn key(job: &str, name: &str) -> PortKey {
        (job.to_string(), name.to_string())
    }

    #[test]
    fn fixed_and_lowest_free_pool_ports() {
        let jobs = decls(&[
            ("b", &[("b_http", PortDecl::Pool)]),
            ("a", &[("a_http", PortDecl::Pool), ("a_db", PortDecl::Fixed(30000))]),
        ]);
        let got = assign_ports((30000, 30010), &jobs, &BTreeMap::new()).unwrap();
        assert_eq!(got[&key("a", "a_db")], 30000);
        assert_eq!(got[&key("a", "a_http")], 30001);
        assert_eq!(got[&key("b", "b_http")], 30002);
        assert_eq!(got.len(), 3);
    }

    #[test]
    fn previous_assignments_are_kept_inside_the_pool() {
        let jobs = decls(&[("a", &[("a_http", PortDecl::Pool)]), ("b", &[("b_http", PortDecl::Pool)])]);
        let previous = BTreeMap::from([(key("b", "b_http"), 30000), (key("a", "a_http"), 30005)]);
        let got = assign_ports((30000, 30010), &jobs, &previous).unwrap();
        assert_eq!((got[&key("a", "a_http")], got[&key("b", "b_http")]), (30005, 30000));
        // outside the pool (a former fixed port) -> reassigned
        let previous = BTreeMap::from([(key("a", "a_http"), 9500)]);
        let got = assign_ports((30000, 30010), &jobs, &previous).unwrap();
        assert_eq!((got[&key("a", "a_http")], got[&key("b", "b_http")]), (30000, 30001));
        // taken by a fixed port now -> reassigned
        let jobs = decls(&[("a", &[("a_http", PortDecl::Pool)]), ("b", &[("b_fixed", PortDecl::Fixed(30005))])]);
        let previous = BTreeMap::from([(key("a", "a_http"), 30005)]);
        let got = assign_ports((30000, 30010), &jobs, &previous).unwrap();
        assert_eq!((got[&key("a", "a_http")], got[&key("b", "b_fixed")]), (30000, 30005));
    }

    #[test]
    fn fixed_ports_may_lie_outside_the_pool() {
        let jobs = decls(&[("k", &[("k_port", PortDecl::Fixed(9092))])]);
        assert_eq!(assign_ports((30000, 30000), &jobs, &BTreeMap::new()).unwrap()[&key("k", "k_port")], 9092);
    }

    #[test]
    fn collisions_name_both_claimants() {
        let jobs = decls(&[("b", &[("pg", PortDecl::Fixed(5432))]), ("a", &[("db", PortDecl::Fixed(5432))])]);
        let e = assign_ports((30000, 30010), &jobs, &BTreeMap::new()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "port collision: port 5432 (job b port \"pg\") is also claimed by job a port \"db\"; give one of them another number"
        );
        let jobs = decls(&[("a", &[("x", PortDecl::Fixed(80)), ("y", PortDecl::Fixed(80))])]);
        assert!(assign_ports((30000, 30010), &jobs, &BTreeMap::new()).unwrap_err().is(ErrorKind::PortCollision));
    }

    #[test]
    fn exhausted_pool() {
        let jobs =
            decls(&[("a", &[("x", PortDecl::Pool), ("y", PortDecl::Pool)]), ("b", &[("z", PortDecl::Fixed(65535))])]);
        let e = assign_ports((65534, 65535), &jobs, &BTreeMap::new()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "port range exhausted: no free ports in range 65534-65535 for job a port \"y\"; widen port_min/port_max in \
             workspace/bucket.conf"
        );
        let one = decls(&[("a", &[("x", PortDecl::Pool)])]);
        assert_eq!(assign_ports((65535, 65535), &one, &BTreeMap::new()).unwrap()[&key("a", "x")], 65535);
    }
}
