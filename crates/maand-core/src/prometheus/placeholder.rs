//! Scrape target placeholders: `maand:port/<key>` (every active allocation), `maand:port/<key>/<ip>`
//! (one allocation) and `maand:port/_implicit` (the job's metrics port); anything not starting
//! with `maand:` is a literal `host:port`.

const PORT_PREFIX: &str = "maand:port/";
const IMPLICIT: &str = "_implicit";

/// What a target expands to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetSpec {
    Literal(String),
    /// Port `key` of the job on every active allocation, or only on `ip`.
    Port {
        key: String,
        ip: Option<String>,
    },
}

/// Parse one target of job `job` whose declared port names are `ports`; the error says what is
/// wrong with it.
pub fn parse_target(target: &str, job: &str, ports: &[String]) -> Result<TargetSpec, String> {
    if !target.starts_with("maand:") {
        return Ok(TargetSpec::Literal(target.to_string()));
    }
    let Some(rest) = target.strip_prefix(PORT_PREFIX) else {
        return Err(format!(
            "target {target}: unknown placeholder (use maand:port/<port_key>, maand:port/<port_key>/<worker_ip> or maand:port/_implicit)"
        ));
    };
    let (key, ip) = match rest.split_once('/') {
        Some((key, ip)) if !ip.is_empty() && !ip.contains('/') => (key, Some(ip.to_string())),
        Some(_) => return Err(format!("target {target}: expected maand:port/<port_key>/<worker_ip>")),
        None => (rest, None),
    };
    if key.is_empty() {
        return Err(format!("target {target}: the port key is empty"));
    }
    let key = if key == IMPLICIT { implicit_metrics_port(target, job, ports)? } else { key.to_string() };
    if !ports.contains(&key) {
        let declared = if ports.is_empty() { "none".to_string() } else { ports.join(", ") };
        return Err(format!(
            "target {target}: port {key} is not declared in resources.ports of job {job} (declared: {declared})"
        ));
    }
    Ok(TargetSpec::Port { key, ip })
}

/// `<job>_metrics_port`, else `metrics_port`, else the only `*_metrics_port`.
fn implicit_metrics_port(target: &str, job: &str, ports: &[String]) -> Result<String, String> {
    for preferred in [format!("{job}_metrics_port"), "metrics_port".to_string()] {
        if ports.contains(&preferred) {
            return Ok(preferred);
        }
    }
    let candidates: Vec<&String> = ports.iter().filter(|p| p.ends_with("_metrics_port")).collect();
    match candidates.as_slice() {
        [only] => Ok(only.to_string()),
        [] => Err(format!("target {target}: uses maand:port/_implicit but no metrics port is declared (declare {job}_metrics_port in resources.ports)")),
        several => Err(format!(
            "target {target}: ambiguous metrics ports {} for maand:port/_implicit; name the port instead",
            several.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ports(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn literal_and_port_targets() {
        let p = ports(&["app_http", "app_metrics_port"]);
        assert_eq!(parse_target("10.0.0.9:9100", "app", &p), Ok(TargetSpec::Literal("10.0.0.9:9100".into())));
        assert_eq!(
            parse_target("maand:port/app_http", "app", &p),
            Ok(TargetSpec::Port { key: "app_http".into(), ip: None })
        );
        assert_eq!(
            parse_target("maand:port/app_http/10.0.0.2", "app", &p),
            Ok(TargetSpec::Port { key: "app_http".into(), ip: Some("10.0.0.2".into()) })
        );
        assert_eq!(
            parse_target("maand:port/_implicit", "app", &p),
            Ok(TargetSpec::Port { key: "app_metrics_port".into(), ip: None })
        );
    }

    #[test]
    fn bad_targets_name_the_problem() {
        let p = ports(&["app_http"]);
        let e = parse_target("maand:port/nope", "app", &p).unwrap_err();
        assert!(e.contains("port nope is not declared in resources.ports of job app (declared: app_http)"), "{e}");
        assert!(parse_target("maand:job", "app", &p).unwrap_err().contains("unknown placeholder"));
        assert!(parse_target("maand:port/", "app", &p).unwrap_err().contains("port key is empty"));
        assert!(parse_target("maand:port/a/b/c", "app", &p).is_err());
        let e = parse_target("maand:port/_implicit", "app", &p).unwrap_err();
        assert!(e.contains("no metrics port is declared"), "{e}");
    }

    #[test]
    fn implicit_prefers_job_then_generic_then_only_candidate() {
        let t = "maand:port/_implicit";
        let key = |names: &[&str]| match parse_target(t, "app", &ports(names)) {
            Ok(TargetSpec::Port { key, .. }) => Ok(key),
            other => Err(format!("{other:?}")),
        };
        assert_eq!(key(&["metrics_port", "app_metrics_port"]), Ok("app_metrics_port".into()));
        assert_eq!(key(&["metrics_port", "x_metrics_port"]), Ok("metrics_port".into()));
        assert_eq!(key(&["x_metrics_port"]), Ok("x_metrics_port".into()));
        assert!(key(&["x_metrics_port", "y_metrics_port"]).unwrap_err().contains("ambiguous metrics ports"));
    }
}
