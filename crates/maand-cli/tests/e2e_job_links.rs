//! Symbolic links in a job directory that stay inside it reach the workers as links, never
//! followed (issue 14 point 6); their target is part of the job's content.
#![allow(clippy::unwrap_used)]

mod common;
use common::cluster::{Cluster, COUNTING_MAKEFILE};
use serde_json::json;
use std::path::Path;

fn symlink(c: &Cluster, link: &str, target: &str) {
    let path = c.bucket.path(link);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let _ = std::fs::remove_file(&path);
    std::os::unix::fs::symlink(target, path).unwrap();
}

fn link_target(path: &Path) -> String {
    let meta = std::fs::symlink_metadata(path).unwrap();
    assert!(meta.file_type().is_symlink(), "{} is not a symbolic link on the worker", path.display());
    std::fs::read_link(path).unwrap().to_string_lossy().into_owned()
}

#[test]
fn links_inside_the_job_ship_as_links_and_a_new_target_rolls_out() {
    let c = Cluster::up(1);
    let b = &c.bucket;
    b.write("workspace/jobs/app/manifest.json", &json!({"version": "1.0.0", "selectors": ["app"]}).to_string());
    b.write("workspace/jobs/app/Makefile", COUNTING_MAKEFILE);
    b.write("workspace/jobs/app/conf/v1.conf", "one\n");
    b.write("workspace/jobs/app/conf/v2.conf", "two\n");
    symlink(&c, "workspace/jobs/app/current.conf", "conf/v1.conf");
    symlink(&c, "workspace/jobs/app/etc", "conf");
    c.deploy(&["-b"]).ok();
    assert_eq!(link_target(&c.worker_path(0, "jobs/app/current.conf")), "conf/v1.conf");
    assert_eq!(link_target(&c.worker_path(0, "jobs/app/etc")), "conf");
    assert_eq!(c.worker_file(0, "jobs/app/current.conf").unwrap(), "one\n");
    assert_eq!(c.worker_file(0, "jobs/app/etc/v2.conf").unwrap(), "two\n");
    assert_eq!(c.kinds(0, "app"), ["start"]);

    symlink(&c, "workspace/jobs/app/current.conf", "conf/v2.conf");
    c.deploy(&["-b"]).ok();
    assert_eq!(link_target(&c.worker_path(0, "jobs/app/current.conf")), "conf/v2.conf");
    assert_eq!(c.worker_file(0, "jobs/app/current.conf").unwrap(), "two\n");
    assert_eq!(c.kinds(0, "app"), ["start", "restart"], "a new link target is a change");
}
