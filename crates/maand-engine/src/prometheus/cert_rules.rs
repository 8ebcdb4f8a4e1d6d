//! `rules/maand/certs.yaml`: maand's own alert rules over the certificate metrics it pushes
//! (`maand_cert_expiring`, `maand_cert_not_after_seconds`, label `scope` = `ca` | `job`).

pub const CERT_RULES_PATH: &str = "rules/maand/certs.yaml";

pub const CERT_RULES_YAML: &str = r#"groups:
  - name: maand_certs
    rules:
      - alert: maand cert expiring soon
        expr: maand_cert_expiring{scope="job"} == 1
        for: 1h
        labels:
          severity: warning
        annotations:
          summary: 'certificate {{ $labels.cert }} of job {{ $labels.job }} on {{ $labels.worker }} expires soon'
          description: 'Run maand build && maand deploy to renew it (status {{ $labels.status }}).'
      - alert: maand cert expired
        expr: maand_cert_not_after_seconds{scope="job"} < time()
        for: 5m
        labels:
          severity: critical
        annotations:
          summary: 'certificate {{ $labels.cert }} of job {{ $labels.job }} on {{ $labels.worker }} has expired'
          description: 'Run maand build && maand deploy to renew it.'
      - alert: maand ca cert expiring soon
        expr: maand_cert_expiring{scope="ca"} == 1
        for: 1h
        labels:
          severity: critical
        annotations:
          summary: 'the bucket CA certificate ({{ $labels.common_name }}) expires soon'
          description: 'Every leaf certificate depends on it: plan a CA rotation.'
      - alert: maand ca cert expired
        expr: maand_cert_not_after_seconds{scope="ca"} < time()
        for: 5m
        labels:
          severity: critical
        annotations:
          summary: 'the bucket CA certificate ({{ $labels.common_name }}) has expired'
          description: 'Every leaf certificate depends on it: rotate the CA.'
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_parse_as_valid_alerts() {
        let parsed =
            maand_core::prometheus::parse_alerts("maand", "certs.yaml", CERT_RULES_YAML, &Default::default()).unwrap();
        assert_eq!(
            parsed.alerts,
            ["maand cert expiring soon", "maand cert expired", "maand ca cert expiring soon", "maand ca cert expired"]
        );
    }
}
