#!/usr/bin/env python3
"""maand worker-side runner: runs a Makefile target for jobs deployed on this worker.

usage: python3 runner.py <bucket_id> <target> [--jobs a,b]

Reads jobs.json next to bin/ ([{"job": name, "disabled": 0|1}, ...]) and runs
`make -s -C <bucket dir>/jobs/<job> <target>` for each selected job, streaming its output.
Without --jobs, start/restart run only enabled jobs and other targets run every job. A job named
in --jobs that is not deployed here is an error (exit 2); a failing target stops the run with
make's exit status.
"""
import json
import os
import subprocess
import sys


def main(argv):
    if len(argv) < 3:
        print("usage: runner.py <bucket_id> <target> [--jobs a,b]", file=sys.stderr)
        return 2
    bucket_id, target = argv[1], argv[2]
    wanted = None
    if len(argv) >= 5 and argv[3] == "--jobs":
        wanted = [j.strip() for j in argv[4].split(",") if j.strip()]
    base = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if os.path.basename(base) != bucket_id:
        base = os.path.join("/opt/worker", bucket_id)
    try:
        with open(os.path.join(base, "jobs.json")) as f:
            entries = json.load(f)
    except (OSError, ValueError) as e:
        print(f"runner: cannot read {base}/jobs.json: {e}; run maand deploy", file=sys.stderr)
        return 2
    deployed = {e["job"]: int(e.get("disabled", 0)) for e in entries}
    if wanted is None:
        if target in ("start", "restart"):
            jobs = [j for j, disabled in deployed.items() if not disabled]
        else:
            jobs = list(deployed)
    else:
        missing = [j for j in wanted if j not in deployed]
        if missing:
            print(f"runner: job(s) {', '.join(missing)} not deployed on this worker; run maand deploy", file=sys.stderr)
            return 2
        jobs = wanted
    for job in jobs:
        path = os.path.join(base, "jobs", job)
        if not os.path.isdir(path):
            print(f"runner: {path} is missing; run maand deploy", file=sys.stderr)
            return 2
        sys.stdout.flush()
        code = subprocess.call(["make", "-s", "-C", path, target])
        if code != 0:
            print(f"runner: make {target} failed for job {job} (exit {code})", file=sys.stderr)
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
