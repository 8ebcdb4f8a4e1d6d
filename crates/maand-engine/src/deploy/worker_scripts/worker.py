#!/usr/bin/env python3
"""maand worker-side sync check: is this worker at the bucket's deploy state?

usage: python3 worker.py <bucket_id> <worker_id> <update_seq>

Compares worker.json next to bin/ and exits 0 when it matches; otherwise prints the reason and
exits 1 (another bucket deployed here), 2 (another worker's files, or worker.json unreadable) or
3 (an older or newer deploy: update_seq differs).
"""
import json
import os
import sys


def main(argv):
    if len(argv) != 4:
        print("usage: worker.py <bucket_id> <worker_id> <update_seq>", file=sys.stderr)
        return 3
    bucket_id, worker_id, update_seq = argv[1], argv[2], argv[3]
    base = os.path.join("/opt/worker", bucket_id)
    try:
        with open(os.path.join(base, "worker.json")) as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        print(f"cannot read {base}/worker.json: {e}", file=sys.stderr)
        return 2
    if data.get("bucket_id") != bucket_id:
        print(f"worker.json belongs to bucket {data.get('bucket_id')}, not {bucket_id}", file=sys.stderr)
        return 1
    if data.get("worker_id") != worker_id:
        print(f"worker.json belongs to worker {data.get('worker_id')}, not {worker_id}", file=sys.stderr)
        return 2
    if str(data.get("update_seq")) != str(update_seq):
        print(f"worker is at update_seq {data.get('update_seq')}, the bucket is at {update_seq}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
