//! End to end with Debian's real Prometheus server on sandbox workers: a `prometheus` server job on
//! one worker, an `app` job serving `/metrics` on two others. After `maand deploy` the server
//! scrapes both app targets, loads the app's alert and maand's certificate alerts, serves the
//! rendered runbook from `consoles/`, and holds the remote-written certificate metrics; a third app
//! worker appears as a target after build + `maand deploy --jobs prometheus`.
#![allow(clippy::unwrap_used)]

mod common;
use common::cluster::Cluster;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const PROMETHEUS: &str = "/usr/bin/prometheus";

const PROMETHEUS_MAKEFILE: &str = r#"PORT := {{ get "maand/bucket" "prometheus_port_http" }}
IP := {{ .WorkerIP }}

start:
	mkdir -p data/prometheus logs
	nohup /usr/bin/prometheus --config.file=prometheus.yml --storage.tsdb.path=data/prometheus --web.listen-address=$(IP):$(PORT) --web.enable-remote-write-receiver --web.enable-lifecycle --web.console.templates=consoles --web.console.libraries=consoles > logs/prometheus.log 2>&1 < /dev/null & echo $$! > data/pid

stop:
	-pid=$$(cat data/pid 2>/dev/null); kill $$pid 2>/dev/null; for i in $$(seq 50); do kill -0 $$pid 2>/dev/null || break; sleep 0.1; done; rm -f data/pid

reload:
	kill -HUP $$(cat data/pid)

restart: stop start
"#;

const PROMETHEUS_YML: &str = r#"global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ['{{ .WorkerIP }}:{{ get "maand/bucket" "prometheus_port_http" }}']
{{ scrapeConfigs }}

{{ ruleFiles }}"#;

const APP_MAKEFILE: &str = r#"PORT := {{ get "maand/bucket" "app_metrics_port" }}
IP := {{ .WorkerIP }}

start:
	mkdir -p data logs
	nohup python3 -m http.server $(PORT) --bind $(IP) --directory www > logs/http.log 2>&1 < /dev/null & echo $$! > data/pid

stop:
	-kill $$(cat data/pid) 2>/dev/null; rm -f data/pid

restart: stop start
"#;

const APP_SCRAPE: &str = "- job_name: maand:job\n  static_configs:\n    - targets: ['maand:port/_implicit']\n      labels: {maand_job: 'maand:job'}\n";
const APP_ALERTS: &str = "groups:\n  - name: app\n    rules:\n      - alert: app down\n        expr: up{job=\"app\"} == 0\n        for: 1m\n        annotations:\n          summary: '{{ $labels.instance }} is down'\n          runbook: app-down\n";
const APP_RUNBOOK: &str =
    "# App down\n\nCheck the process on `{{ $labels.instance }}` and run `maand job restart app`.\n";

fn http_probe(port: &str, path: &str) -> Value {
    json!({"checks": [{"type": "http", "port": port, "path": path}], "timeout_seconds": 2, "wait": {"attempts": 40, "interval_seconds": 1}})
}

fn write_jobs(c: &Cluster) {
    let b = &c.bucket;
    let prom = json!({
        "version": "2.42.0", "selectors": ["prometheus"], "restart_policy": "reload",
        "resources": {"ports": {"prometheus_port_http": {}}},
        "health_check": http_probe("prometheus_port_http", "/-/ready"),
    });
    b.write("workspace/jobs/prometheus/manifest.json", &prom.to_string());
    b.write("workspace/jobs/prometheus/Makefile.tpl", PROMETHEUS_MAKEFILE);
    b.write("workspace/jobs/prometheus/prometheus.yml.tpl", PROMETHEUS_YML);
    let app = json!({
        "version": "1.0.0", "selectors": ["app"],
        "resources": {"ports": {"app_metrics_port": {}}},
        "certs": {"tls": {"subject": {"common_name": "app"}}},
        "health_check": http_probe("app_metrics_port", "/metrics"),
    });
    b.write("workspace/jobs/app/manifest.json", &app.to_string());
    b.write("workspace/jobs/app/Makefile.tpl", APP_MAKEFILE);
    b.write("workspace/jobs/app/www/metrics", "# TYPE app_requests_total counter\napp_requests_total 7\n");
    b.write("workspace/jobs/app/_prometheus/scrape.yaml", APP_SCRAPE);
    b.write("workspace/jobs/app/_prometheus/alerts/app.yaml", APP_ALERTS);
    b.write("workspace/jobs/app/_prometheus/runbooks/app-down.md", APP_RUNBOOK);
    // A console page Prometheus renders itself, and one kept out of the index.
    b.write("workspace/jobs/app/_prometheus/dashboards/app.html", "<p>{{ \"rendered by prometheus\" }}</p>\n");
    b.write("workspace/jobs/app/_prometheus/dashboards/detail.html", "<p>detail</p>\n");
    b.write("workspace/jobs/app/_prometheus/dashboards/.dashboardignore", "detail.html\n");
}

/// Give sandbox worker i the labels `labels[i]` in workers.json.
fn label_workers(c: &Cluster, labels: &[&[&str]]) {
    let mut workers: Value = serde_json::from_str(&c.bucket.read("workspace/workers.json")).unwrap();
    for (w, l) in workers.as_array_mut().unwrap().iter_mut().zip(labels) {
        w["labels"] = json!(l);
    }
    c.bucket.write("workspace/workers.json", &workers.to_string());
}

fn get(url: &str) -> Result<(u16, String), String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(5)))
        .http_status_as_error(false)
        .proxy(None)
        .build()
        .into();
    let mut response = agent.get(url).call().map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    Ok((status, response.body_mut().read_to_string().map_err(|e| e.to_string())?))
}

fn api(base: &str, path: &str) -> Value {
    let (status, body) = get(&format!("{base}{path}")).unwrap();
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

/// Poll `check` every 500 ms until it returns Some, for at most `limit`.
fn wait_for<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(started.elapsed() < limit, "timed out after {limit:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The app job's active targets: (scrape URL, health).
fn app_targets(base: &str) -> Vec<(String, String)> {
    let targets = api(base, "/api/v1/targets?state=active");
    targets["data"]["activeTargets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["labels"]["job"] == "app")
        .map(|t| (t["scrapeUrl"].as_str().unwrap().to_string(), t["health"].as_str().unwrap().to_string()))
        .collect()
}

#[test]
fn real_prometheus_scrapes_alerts_runbooks_and_cert_metrics() {
    if !std::path::Path::new(PROMETHEUS).exists() {
        println!("SKIPPED: {PROMETHEUS} is not installed (apt-get install prometheus)");
        return;
    }
    let c = Cluster::up(4);
    label_workers(&c, &[&["prometheus"], &["app"], &["app"], &[]]);
    write_jobs(&c);
    c.bucket.build().ok();
    let out = c.deploy(&[]).ok();
    assert!(out.stderr.contains("prometheus: certificate metrics pushed to"), "{}", out.stderr);

    let port = c.bucket.kv("maand/bucket", "prometheus_port_http").unwrap();
    let app_port = c.bucket.kv("maand/bucket", "app_metrics_port").unwrap();
    let base = format!("http://{}:{port}", c.ip(0));
    assert!(c.worker_file(0, "jobs/prometheus/rules/maand/certs.yaml").is_some());
    assert!(c.worker_file(0, "jobs/prometheus/_prometheus/scrape.yaml").is_none());

    // Both app workers are scraped and up.
    let expected: Vec<String> = [1, 2].iter().map(|&i| format!("http://{}:{app_port}/metrics", c.ip(i))).collect();
    wait_for("both app targets up", Duration::from_secs(30), || {
        let mut up: Vec<String> =
            app_targets(&base).into_iter().filter(|(_, h)| h == "up").map(|(url, _)| url).collect();
        up.sort();
        (up == expected).then_some(())
    });

    // The app's alert and maand's certificate alerts are loaded, the alert with its runbook link.
    let rules = api(&base, "/api/v1/rules");
    let all: Vec<&Value> =
        rules["data"]["groups"].as_array().unwrap().iter().flat_map(|g| g["rules"].as_array().unwrap()).collect();
    let names: Vec<&str> = all.iter().map(|r| r["name"].as_str().unwrap()).collect();
    for name in ["app down", "maand cert expiring soon", "maand cert expired", "maand ca cert expired"] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    let app_down = all.iter().find(|r| r["name"] == "app down").unwrap();
    let runbook_url = format!("{base}/consoles/runbooks/app/app-down.html");
    assert_eq!(app_down["annotations"]["runbook_url"], runbook_url.as_str());

    // The runbook page is served (template literals kept as text), and the index links it.
    let (status, page) = get(&runbook_url).unwrap();
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("<h1>App down</h1>"), "{page}");
    assert!(page.contains("{{ $labels.instance }}"), "{page}");
    let (status, index) = get(&format!("{base}/consoles/runbooks/index.html")).unwrap();
    assert_eq!(status, 200);
    assert!(index.contains("app/app-down.html"), "{index}");

    // Dashboards are copied for Prometheus to render, with an index of the listed ones.
    let (status, dashboard) = get(&format!("{base}/consoles/dashboards/app/app.html")).unwrap();
    assert_eq!((status, dashboard.trim()), (200, "<p>rendered by prometheus</p>"));
    let (_, index) = get(&format!("{base}/consoles/dashboards/index.html")).unwrap();
    assert!(index.contains("app/app.html") && !index.contains("detail.html"), "{index}");

    // The remote-written certificate metrics can be queried: the CA and both app leaves.
    let series = wait_for("maand_cert_not_after_seconds", Duration::from_secs(10), || {
        let v = api(&base, "/api/v1/query?query=maand_cert_not_after_seconds");
        let result = v["data"]["result"].as_array().unwrap().clone();
        (result.len() >= 3).then_some(result)
    });
    assert!(series.iter().any(|s| s["metric"]["scope"] == "ca"), "{series:?}");
    let leaves: Vec<&Value> = series.iter().filter(|s| s["metric"]["job"] == "app").collect();
    assert_eq!(leaves.len(), 2, "{series:?}");
    assert!(leaves.iter().all(|s| s["metric"]["cert"] == "tls" && s["metric"]["status"] == "ok"), "{leaves:?}");
    let not_after: f64 = leaves[0]["value"][1].as_str().unwrap().parse().unwrap();
    assert!(not_after > 1.7e9, "{not_after}");

    // `maand cat prometheus scrape` shows what the server got.
    let scrape = c.bucket.cat(&["prometheus", "scrape"]);
    assert_eq!(scrape[0]["static_configs"][0]["targets"].as_array().unwrap().len(), 2, "{scrape:?}");

    // A third app worker: build, then refresh only the server.
    label_workers(&c, &[&["prometheus"], &["app"], &["app"], &["app"]]);
    c.bucket.build().ok();
    c.deploy(&["--jobs", "prometheus"]).ok();
    let third = format!("http://{}:{app_port}/metrics", c.ip(3));
    wait_for("the third app target", Duration::from_secs(15), || {
        let targets = app_targets(&base);
        (targets.len() == 3 && targets.iter().any(|(url, _)| *url == third)).then_some(())
    });
}
