#!/usr/bin/env python3
"""maand worker-side runner: runs a Makefile target for jobs deployed on this worker.

usage: python3 runner.py <bucket_id> <target> [--jobs a,b] [--swap]
       python3 runner.py <bucket_id> --swap-only --jobs a,b

Reads jobs.json next to bin/ ([{"job": name, "disabled": 0|1}, ...]) and runs
`make -s -C <bucket dir>/jobs/<job> <target>` for each selected job, streaming its output.
Without --jobs, start/restart run only enabled jobs and other targets run every job. A job named
in --jobs that is not deployed here is an error (exit 2); a failing target stops the run with
make's exit status.

--swap first makes jobs/<job>/ equal to the files a deploy shipped into jobs/.<job>.next/
(leaving the job's data/, logs/ and bin/ alone); --swap-only does only that. Each job's step
holds the lock jobs/.<job>.lock, so two steps never overlap on one allocation.
"""
import contextlib
import fcntl
import json
import os
import subprocess
import sys

USAGE = "usage: runner.py <bucket_id> <target> [--jobs a,b] [--swap] | <bucket_id> --swap-only --jobs a,b"
# Never deleted or overwritten by a swap: the job's runtime directories and what never ships.
KEPT = ["/data", "/logs", "/bin", "/_modules", "/_prometheus", "*.tpl"]


def swap(base, job):
    """Make jobs/<job>/ equal to the shipped jobs/.<job>.next/ (when there is one)."""
    side = os.path.join(base, "jobs", "." + job + ".next")
    live = os.path.join(base, "jobs", job)
    if not os.path.isdir(side):
        return 0
    os.makedirs(live, exist_ok=True)
    # --checksum: a changed file of the same size shipped within the same second as the live one
    # would look unchanged to rsync's size-and-time check.
    args = ["rsync", "-a", "--checksum", "--delete"] + ["--exclude=" + k for k in KEPT] + [side + "/", live + "/"]
    code = subprocess.call(args)
    if code != 0:
        print(f"runner: swapping the shipped files of job {job} into place failed (rsync exit {code})", file=sys.stderr)
    return code


def main(argv):
    args = argv[1:]
    if len(args) < 2:
        print(USAGE, file=sys.stderr)
        return 2
    bucket_id, target = args[0], args[1]
    wanted = None
    do_swap = target == "--swap-only"
    rest = args[2:]
    while rest:
        if rest[0] == "--jobs" and len(rest) >= 2:
            wanted = [j.strip() for j in rest[1].split(",") if j.strip()]
            rest = rest[2:]
        elif rest[0] == "--swap":
            do_swap = True
            rest = rest[1:]
        else:
            print(USAGE, file=sys.stderr)
            return 2
    if target == "--swap-only" and wanted is None:
        print(USAGE, file=sys.stderr)
        return 2
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
        with job_lock(base, job):
            code = run_job(base, job, target, do_swap)
        if code != 0:
            return code
    return 0


@contextlib.contextmanager
def job_lock(base, job):
    """Hold jobs/.<job>.lock: two lifecycle steps never overlap on one allocation (another maand
    run waits here; the remote time limit bounds the wait)."""
    with open(os.path.join(base, "jobs", "." + job + ".lock"), "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"runner: job {job} is busy with another lifecycle step; waiting", file=sys.stderr)
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def run_job(base, job, target, do_swap):
    if do_swap:
        code = swap(base, job)
        if code != 0 or target == "--swap-only":
            return code
    path = os.path.join(base, "jobs", job)
    if not os.path.isdir(path):
        print(f"runner: {path} is missing; run maand deploy", file=sys.stderr)
        return 2
    sys.stdout.flush()
    code = subprocess.call(["make", "-s", "-C", path, target])
    if code != 0:
        print(f"runner: make {target} failed for job {job} (exit {code})", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv))
