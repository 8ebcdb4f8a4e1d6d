"""maand status: the files of job directories on this worker with their MD5 (drift check).

usage: python3 - <bucket dir> <skipped top-level dirs, comma-separated> <job>...   (script on stdin)

Prints one JSON object on one line: {"<job>": {"<relative path>": "<md5 hex>", ...}}, or null
for a job whose directory is missing. The skipped directories (the job's data/, logs/, …) are not
entered. Only regular files count; a file that cannot be read is listed as "unreadable: <why>".
"""
import hashlib
import json
import os
import sys


def md5_of(path):
    h = hashlib.md5()
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    except OSError as e:
        return "unreadable: " + (e.strerror or str(e))
    return h.hexdigest()


def listing(root, skipped):
    files = {}
    for dirpath, dirnames, filenames in os.walk(root):
        if dirpath == root:
            dirnames[:] = [d for d in dirnames if d not in skipped]
        for name in filenames:
            path = os.path.join(dirpath, name)
            if os.path.isfile(path):
                files[os.path.relpath(path, root)] = md5_of(path)
    return files


def main(argv):
    base, skipped, jobs = argv[1], set(filter(None, argv[2].split(","))), argv[3:]
    out = {}
    for job in jobs:
        root = os.path.join(base, "jobs", job)
        out[job] = listing(root, skipped) if os.path.isdir(root) else None
    print(json.dumps(out, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
