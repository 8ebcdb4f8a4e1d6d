#!/usr/bin/env python3
"""Deploy benchmark: 5 jobs on 20 sandbox workers (real sshd per worker on this machine).

Times the release `maand` for: build, first deploy, unchanged (no-op) deploy, and a one-file
change rolled out to every worker; and runs a peer doing the same work with Ansible (ansible-core
from PyPI, installed into a private virtualenv under /tmp if absent): copy the 5 job directories to
every worker and run `make start` (first run), then the same playbook again (Ansible's idempotent
re-run = the no-op case). Prints both side by side with ratios (peer / maand). Needs root,
openssh-server and rsync. Not a test. Run: python3 bench/deploy_bench.py
"""
import json, os, shutil, subprocess, sys, tempfile, time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAAND = os.path.join(REPO, "target/release/maand")
WORKERS, JOBS = 20, 5
VENV = "/tmp/maand-bench-ansible"

MAKEFILE = "start:\n\tmkdir -p data\n\techo start >> data/events\nstop:\n\techo stop >> data/events\n" \
           "restart:\n\tmkdir -p data\n\techo restart >> data/events\n"


def run(cmd, cwd, env=None):
    t = time.perf_counter()
    out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env)
    took = time.perf_counter() - t
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{out.stdout}\n{out.stderr}")
    return took, out.stdout


def ansible():
    exe = os.path.join(VENV, "bin/ansible-playbook")
    if not os.path.exists(exe):
        subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
        subprocess.run([os.path.join(VENV, "bin/pip"), "install", "-q", "ansible-core"], check=True)
    return exe


def main():
    subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "maand"], cwd=REPO, check=True)
    playbook_exe = ansible()
    bucket = tempfile.mkdtemp(prefix="maand-deploy-bench-")
    try:
        run([MAAND, "init"], bucket)
        run([MAAND, "sandbox", "up", "--workers", str(WORKERS), "--labels", "app"], bucket)
        for j in range(JOBS):
            d = os.path.join(bucket, f"workspace/jobs/job{j}")
            os.makedirs(d)
            json.dump({"version": "1.0.0", "selectors": ["app"], "max_concurrent_upgrades": WORKERS}, open(os.path.join(d, "manifest.json"), "w"))
            open(os.path.join(d, "Makefile"), "w").write(MAKEFILE)
            open(os.path.join(d, "app.conf.tpl"), "w").write("ip={{ .WorkerIP }}\n")
            for k in range(20):
                open(os.path.join(d, f"file{k}.txt"), "w").write("x" * 2048)
        build, _ = run([MAAND, "build"], bucket)
        first, _ = run([MAAND, "deploy"], bucket)
        noop, _ = run([MAAND, "deploy"], bucket)
        open(os.path.join(bucket, "workspace/jobs/job0/file0.txt"), "w").write("changed")
        change, _ = run([MAAND, "deploy", "--build"], bucket)
        print(f"maand: build {build:.2f} s, first deploy {first:.2f} s, unchanged deploy {noop:.2f} s, "
              f"one file changed {change:.2f} s; now the Ansible peer (takes minutes)...", flush=True)

        # The peer: the same files and lifecycle with Ansible, on the same workers.
        workers = json.load(open(os.path.join(bucket, "workspace/workers.json")))
        inv = os.path.join(bucket, "inventory.ini")
        with open(inv, "w") as f:
            f.write("[app]\n")
            for w in workers:
                f.write(f"{w['host']} ansible_port={w['port']}\n")
        key = os.path.join(bucket, "secrets/sandbox.key")
        tasks = []
        for j in range(JOBS):
            src = os.path.join(bucket, f"workspace/jobs/job{j}/")
            tasks += [
                {"name": f"copy job{j}", "ansible.builtin.copy": {"src": src, "dest": f"/opt/peer/job{j}/"}},
                {"name": f"render job{j}", "ansible.builtin.copy": {"content": "ip={{ inventory_hostname }}\n", "dest": f"/opt/peer/job{j}/app.conf"}},
                {"name": f"start job{j}", "ansible.builtin.command": {"cmd": f"make -s -C /opt/peer/job{j} start", "creates": f"/opt/peer/job{j}/data/events"}},
            ]
        pb = os.path.join(bucket, "playbook.json")
        json.dump([{"hosts": "app", "gather_facts": False, "tasks": tasks}], open(pb, "w"))
        env = dict(os.environ, ANSIBLE_HOST_KEY_CHECKING="False", ANSIBLE_FORKS=str(WORKERS))
        cmd = [playbook_exe, "-i", inv, "-u", "root", "--private-key", key, pb]
        peer_first, _ = run(cmd, bucket, env)
        peer_noop, _ = run(cmd, bucket, env)
    finally:
        subprocess.run([MAAND, "sandbox", "down"], cwd=bucket, capture_output=True)
        shutil.rmtree(bucket, ignore_errors=True)
    print(f"{WORKERS} sandbox workers, {JOBS} jobs (20 files each + a template)")
    print(f"{'':24}{'maand (s)':>10}{'ansible (s)':>13}{'ansible/maand':>15}")
    print(f"{'build':24}{build:>10.2f}{'-':>13}{'-':>15}")
    print(f"{'first deploy':24}{first:>10.2f}{peer_first:>13.2f}{peer_first / first:>15.1f}")
    print(f"{'unchanged deploy':24}{noop:>10.2f}{peer_noop:>13.2f}{peer_noop / noop:>15.1f}")
    print(f"{'one file changed (+build)':24}{change:>10.2f}{'-':>13}{'-':>15}")


if __name__ == "__main__":
    main()
