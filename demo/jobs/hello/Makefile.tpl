# A tiny web service per worker, rendered by maand for each allocation.
PORT := {{ get "maand/bucket" "hello_http_port" }}
IP := {{ .WorkerIP }}

start:
	mkdir -p data logs
	nohup python3 -m http.server $(PORT) --bind $(IP) --directory www > logs/http.log 2>&1 & echo $$! > data/pid
	echo "started hello $(NEW_VERSION) on $(IP):$(PORT)"

stop:
	-kill $$(cat data/pid) 2>/dev/null; rm -f data/pid

restart: stop start
