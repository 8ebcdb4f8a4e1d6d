#!/usr/bin/env bash
# maand demo: a bucket in a temporary directory, three sandbox workers (sshd on 127.0.0.x, each in
# its own mount namespace with a private /opt), the example job `hello` (a small web server per
# worker) built, deployed, changed and rolled out again. Needs root, openssh-server and rsync.
# Usage: bash demo/run.sh        KEEP=1 bash demo/run.sh keeps the bucket and workers running.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
cargo build --quiet --manifest-path "$repo/Cargo.toml" --bin maand
maand="$repo/target/debug/maand"
bucket="$(mktemp -d /tmp/maand-demo.XXXXXX)"
cd "$bucket"
cleanup() { if [ "${KEEP:-0}" != 1 ]; then "$maand" sandbox down >/dev/null 2>&1 || true; rm -rf "$bucket"; fi; }
trap cleanup EXIT

step() { printf '\n== %s\n' "$*"; }
step "bucket $bucket"
"$maand" init
"$maand" sandbox up --workers 3 --labels demo
cp -r "$here/jobs/hello" workspace/jobs/
step "build"
"$maand" build
"$maand" cat allocations
"$maand" cat job_ports
step "deploy (dry-run, then for real)"
"$maand" deploy --dry-run
"$maand" deploy
port="$("$maand" cat job_ports --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["port"])')"
step "the service on each worker"
for ip in $("$maand" cat workers --json | python3 -c 'import json,sys; print(" ".join(w["worker_ip"] for w in json.load(sys.stdin)))'); do
  curl -fsS "http://$ip:$port/index.html" 2>/dev/null || python3 -c "import urllib.request,sys; print(urllib.request.urlopen(sys.argv[1]).read().decode())" "http://$ip:$port/index.html"
done
step "unchanged deploy: nothing to do, no SSH connection"
"$maand" deploy
step "version 1.1.0: rolling restart, one worker at a time, health-gated"
sed -i 's/"version": "1.0.0"/"version": "1.1.0"/' workspace/jobs/hello/manifest.json
"$maand" deploy --build
"$maand" cat deployments
