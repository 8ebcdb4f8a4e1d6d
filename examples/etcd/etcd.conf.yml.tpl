{{- $client := get "maand/bucket" "etcd_client_port" -}}
{{- $peer := get "maand/bucket" "etcd_peer_port" -}}
{{- $vars := printf "vars/job/%s" .Job -}}
# etcd configuration of {{ .WorkerIP }}, rendered by maand from etcd.conf.yml.tpl: edit the
# template or vars.toml in the bucket, never this file on the worker.
name: {{ .Job }}-{{ .WorkerIP }}
data-dir: {{ .JobPath }}/data/etcd

listen-client-urls: http://{{ .WorkerIP }}:{{ $client }}
advertise-client-urls: http://{{ .WorkerIP }}:{{ $client }}
listen-peer-urls: http://{{ .WorkerIP }}:{{ $peer }}
initial-advertise-peer-urls: http://{{ .WorkerIP }}:{{ $peer }}

# Every active allocation of the job (KV maand/job/<job> "workers"). Only read when the member
# bootstraps with an empty data directory; afterwards membership lives in the data directory.
initial-cluster: {{ range $i, $ip := split (get (printf "maand/job/%s" .Job) "workers") "," }}{{ if $i }},{{ end }}{{ $.Job }}-{{ $ip }}=http://{{ $ip }}:{{ $peer }}{{ end }}
initial-cluster-state: new
initial-cluster-token: {{ .Job }}-{{ .BucketID }}

heartbeat-interval: {{ get $vars "heartbeat_interval" }}
election-timeout: {{ get $vars "election_timeout" }}
snapshot-count: {{ get $vars "snapshot_count" }}
quota-backend-bytes: {{ get $vars "quota_backend_bytes" }}
# A member that comes back from a restart asks before campaigning, so it cannot depose a healthy
# leader by starting an election of its own.
pre-vote: true

enable-v2: false
logger: zap
log-outputs: [stderr]
