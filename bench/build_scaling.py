#!/usr/bin/env python3
"""Build benchmark: generates workspaces of 100 and 1,000 workers with 100 jobs (about 10 allocations
per worker) and times `maand build` (first build and unchanged rebuild) with the release binary.
Prints the figures side by side and the 1,000/100 ratios (about 10 means linear growth), plus the
number of KV rows an unchanged rebuild writes (must be 0). Not a test; run: python3 bench/build_scaling.py
"""
import json, os, re, shutil, subprocess, sys, tempfile, time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JOBS = 100
GROUPS = 10


def maand(bucket, *args):
    out = subprocess.run([os.path.join(REPO, "target/release/maand"), *args], cwd=bucket,
                         capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"maand {' '.join(args)} failed: {out.stderr}")
    return out.stdout


def workspace(bucket, workers):
    hosts = [{"host": f"10.{i // 65536}.{i // 256 % 256}.{i % 256}", "labels": [f"g{i % GROUPS}"],
              "memory": "64 gb", "cpu": "32000 mhz", "tags": {"zone": f"z{i % 3}"}} for i in range(workers)]
    with open(os.path.join(bucket, "workspace/workers.json"), "w") as f:
        json.dump(hosts, f)
    for j in range(JOBS):
        d = os.path.join(bucket, f"workspace/jobs/job{j:03}")
        os.makedirs(d)
        manifest = {"version": "1.0.0", "selectors": [f"g{j % GROUPS}"],
                    "resources": {"memory": {"max": "256 mb"}, "cpu": {"max": "500 mhz"},
                                  "ports": {f"job{j:03}_http": {}}}}
        with open(os.path.join(d, "manifest.json"), "w") as f:
            json.dump(manifest, f)
        with open(os.path.join(d, "Makefile"), "w") as f:
            f.write("start:\n\ttrue\nstop:\n\ttrue\nrestart:\n\ttrue\n")
        with open(os.path.join(d, "app.conf.tpl"), "w") as f:
            f.write('port={{ get "maand/bucket" "job%03d_http" }}\n' % j)
        with open(os.path.join(d, "vars.toml"), "w") as f:
            f.write('level = "info"\n')


def measure(workers):
    bucket = tempfile.mkdtemp(prefix=f"maand-bench-{workers}-")
    try:
        maand(bucket, "init")
        workspace(bucket, workers)
        t = time.perf_counter(); first_out = maand(bucket, "build"); first = time.perf_counter() - t
        t = time.perf_counter(); again_out = maand(bucket, "build"); again = time.perf_counter() - t
        allocations = int(re.search(r"(\d+) allocations", first_out).group(1))
        kv_written = int(re.search(r"(\d+) KV changes", again_out).group(1))
        return {"workers": workers, "allocations": allocations, "first": first, "again": again, "kv": kv_written}
    finally:
        shutil.rmtree(bucket, ignore_errors=True)


def main():
    subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "maand"], cwd=REPO, check=True)
    small, large = measure(100), measure(1000)
    print(f"{'':28}{'100 workers':>14}{'1000 workers':>14}{'ratio':>8}")
    print(f"{'allocations':28}{small['allocations']:>14}{large['allocations']:>14}{large['allocations'] / small['allocations']:>8.1f}")
    for key, label in (("first", "first build (s)"), ("again", "unchanged rebuild (s)")):
        print(f"{label:28}{small[key]:>14.2f}{large[key]:>14.2f}{large[key] / small[key]:>8.1f}")
    print(f"{'KV rows written by rebuild':28}{small['kv']:>14}{large['kv']:>14}")
    if small["kv"] or large["kv"]:
        sys.exit("an unchanged rebuild wrote KV rows")


if __name__ == "__main__":
    main()
