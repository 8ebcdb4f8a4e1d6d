<h1>hello from {{ .WorkerIP }}</h1>
<p>job {{ .Job }} version {{ .NewVersion }}, allocation {{ get (printf "maand/job/%s/worker/%s" .Job .WorkerIP) "hello_allocation_index" }}; peers: {{ get (printf "maand/job/%s/worker/%s" .Job .WorkerIP) "peer_workers" }}</p>
