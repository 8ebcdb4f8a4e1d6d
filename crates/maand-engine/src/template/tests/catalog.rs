//! Constructs the public job catalog relies on (spec/catalog-jobs.md §1, §2.2), on our own
//! fixture templates.

use super::{run, MapData};

fn catalog_kv() -> MapData {
    MapData::new()
        .with("maand/bucket", "activejobs", "coroot_node_agent, otel_collector ,postgres")
        .with("maand/bucket", "otel_collector_port_http", "4318")
        .with("maand/bucket", "clickhouse_port_native_tls", "9440")
        .with("maand/worker", "otel_collector_workers", "10.0.0.21,10.0.0.22")
        .with("maand/worker", "kafka_controller_workers", "10.0.0.31,10.0.0.32,10.0.0.33")
        .with("maand/worker", "worker_workers", "10.0.0.1,10.0.0.2")
        .with("maand/worker/10.0.0.1", "kafka_controller_allocation_index", "0")
        .with("maand/worker/10.0.0.1", "clickhouse_allocation_index", "1")
        .with("maand/worker/10.0.0.1", "postgres_allocation_index", "1")
        .with("maand/job/postgres", "memory", "8192")
        .with("maand/job/clickhouse", "workers", "")
        .with("vars/bucket/job/otel_collector", "clickhouse", "internal")
        .with("vars/bucket/job/otel_collector", "prometheus", "internal")
        .with("vars/bucket/job/otel_collector", "prometheus_username", "otel")
}

fn render_ok(src: &str) -> String {
    run(src, &catalog_kv()).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn coroot_has_otel_is_reassigned_inside_range() {
    let src = "{{- $hasOtel := false -}}\n\
               {{- range split (get \"maand/bucket\" \"activejobs\") \",\" -}}\n\
               {{- if eq (trim .) \"otel_collector\" -}}{{- $hasOtel = true -}}{{- end -}}\n\
               {{- end -}}\n\
               {{- if $hasOtel }}\n\
               {{- $otelHost := trim (index (split (get \"maand/worker\" \"otel_collector_workers\") \",\") 0) }}\n\
               - --logs-endpoint=http://{{ $otelHost }}:{{ get \"maand/bucket\" \"otel_collector_port_http\" }}/v1/logs\n\
               {{- end }}";
    assert_eq!(render_ok(src), "\n- --logs-endpoint=http://10.0.0.21:4318/v1/logs");
}

#[test]
fn kafka_quorum_voters_use_int_truthiness_of_the_index() {
    let src = "{{- $nodeId := add (int (get (printf \"maand/worker/%s\" .WorkerIP) \"kafka_controller_allocation_index\")) 1 -}}\
               id={{ $nodeId }} voters='{{- range $index, $ip := split (get \"maand/worker\" \"kafka_controller_workers\") \",\" -}}\
               {{ if $index }},{{ end }}{{ add $index 1 }}@{{ $ip }}:29093{{- end -}}'";
    assert_eq!(render_ok(src), "id=1 voters='1@10.0.0.31:29093,2@10.0.0.32:29093,3@10.0.0.33:29093'");
}

#[test]
fn patroni_define_called_with_an_int_and_a_bool_printed_as_true() {
    let src = "{{- define \"pgMemUnit\" -}}{{- $mb := int . -}}\
               {{- if ge $mb 1024 }}{{ div $mb 1024 }}GB{{ else }}{{ $mb }}MB{{ end -}}{{- end -}}\
               {{- define \"pgHbaClients\" -}}{{- range $ip := split (get \"maand/worker\" \"worker_workers\") \",\" }}\n  - host all all {{ $ip }}/32{{ end }}{{- end -}}\
               {{- $sharedMB := max 128 (div (int (get \"maand/job/postgres\" \"memory\")) 4) -}}\
               {{- $clonefrom := eq (get (printf \"maand/worker/%s\" .WorkerIP) \"postgres_allocation_index\") \"1\" -}}\
               shared_buffers: {{ template \"pgMemUnit\" $sharedMB }}\n\
               work_mem: {{ template \"pgMemUnit\" 64 }}\n\
               clonefrom: {{ $clonefrom }} nofailover: {{ not $clonefrom }}\n\
               pg_hba:{{ template \"pgHbaClients\" . }}";
    assert_eq!(
        render_ok(src),
        "shared_buffers: 2GB\nwork_mem: 64MB\nclonefrom: true nofailover: false\npg_hba:\n  - host all all 10.0.0.1/32\n  - host all all 10.0.0.2/32"
    );
}

#[test]
fn otel_and_short_circuits_before_a_missing_key() {
    // prometheus_password does not exist: Go >= 1.18 never evaluates the 4th operand.
    let src = "{{- $cfg := \"vars/bucket/job/otel_collector\" -}}\
               {{- $prom := get $cfg \"prometheus\" -}}\
               {{- if and (ne $prom \"off\") (eq $prom \"external\") (ne (get $cfg \"prometheus_username\") \"\") (ne (get $cfg \"prometheus_password\") \"\") }}external\
               {{- else if and (ne $prom \"off\") (eq $prom \"internal\") }}internal{{ end }}";
    assert_eq!(render_ok(src), "internal");
}

#[test]
fn index_of_split_of_an_empty_value_is_the_empty_string() {
    let src = "host=[{{ trim (index (split (get \"maand/job/clickhouse\" \"workers\") \",\") 0) }}]";
    assert_eq!(render_ok(src), "host=[]");
}

#[test]
fn replica_number_is_zero_padded() {
    let src = "<replica>{{ printf \"%02d\" (add (int (get (printf \"maand/worker/%s\" .WorkerIP) \"clickhouse_allocation_index\")) 1) }}</replica>";
    assert_eq!(render_ok(src), "<replica>02</replica>");
}

#[test]
fn templates_without_actions_render_unchanged() {
    let src = "<pattern>\\p{N}</pattern>\n<pattern>.{12}</pattern>\n<password>${CLICKHOUSE_INTERSERVER_PASSWORD}</password>\n{ lone brace }\n";
    assert_eq!(render_ok(src), src);
    assert_eq!(render_ok(""), "");
}
