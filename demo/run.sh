#!/usr/bin/env bash
# maand demo: a bucket in a temporary directory, three sandbox workers (sshd on 127.0.0.x in
# private mount namespaces), the example job `hello` built and placed. Needs root, openssh-server
# and rsync. Usage: bash demo/run.sh   (KEEP=1 keeps the bucket and workers running)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
cargo build --quiet --manifest-path "$repo/Cargo.toml" --bin maand
maand="$repo/target/debug/maand"
bucket="$(mktemp -d /tmp/maand-demo.XXXXXX)"
cd "$bucket"
cleanup() { if [ "${KEEP:-0}" != 1 ]; then "$maand" sandbox down >/dev/null 2>&1 || true; rm -rf "$bucket"; fi; }
trap cleanup EXIT

echo "== bucket $bucket"
"$maand" init
"$maand" sandbox up --workers 3 --labels demo
cp -r "$here/jobs/hello" workspace/jobs/
"$maand" build
"$maand" cat workers
"$maand" cat allocations
"$maand" cat job_ports
"$maand" cat certs
echo "== the demo job's KV as its allocations will see it"
"$maand" cat kv --jobs hello
