<h1>hello from {{ .WorkerIP }}</h1>
<p>allocation {{ get (printf "maand/job/%s/worker/%s" .Job .WorkerIP) "hello_allocation_index" }} of job {{ .Job }} {{ .NewVersion }}; peers: {{ get (printf "maand/job/%s/worker/%s" .Job .WorkerIP) "peer_workers" }}</p>
