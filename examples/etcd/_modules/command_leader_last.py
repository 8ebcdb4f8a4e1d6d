"""pre_deploy: roll the etcd members out leader last.

Asks every member whether it leads (its /metrics gauges etcd_server_is_leader and
etcd_server_has_leader; short timeouts, all members at once) and stores the rollout order maand
follows for this deploy:

  1. allocations maand found unhealthy (UNHEALTHY_ALLOCATIONS, comma-separated IPs, may be unset),
  2. members that did not answer (down, starting, or not deployed yet),
  3. followers,
  4. the current leader.

Restarting the broken members first restores quorum margin before a healthy member goes down, and
restarting the leader last costs exactly one leader election per rollout. On the first deploy no
member answers yet, and the order is the catalog's. maand runs this once per allocation; the
first allocation computes the order, the others have nothing to add.
"""
import os
import sys
import threading
import urllib.request

import maand

TIMEOUT_SECONDS = 1.5


def member_status(ip, port):
    """{"has_leader": bool, "is_leader": bool} from the member's Prometheus metrics, or None.

    etcd serves /metrics on its client URL in every build (Debian's etcd 3.4 lacks the JSON
    gateway of /v3/maintenance/status), and reading it needs nothing but the standard library.
    """
    url = "http://%s:%s/metrics" % (ip, port)
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:
            text = response.read().decode("utf-8", "replace")
    except Exception as e:  # refused, timed out, not serving yet: all mean "no answer"
        print("%s: no status (%s)" % (ip, e))
        return None
    gauges = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] in ("etcd_server_has_leader", "etcd_server_is_leader"):
            gauges[parts[0]] = parts[1] == "1"
    if len(gauges) != 2:
        print("%s: no status (metrics without etcd_server_has_leader/etcd_server_is_leader)" % ip)
        return None
    return {"has_leader": gauges["etcd_server_has_leader"], "is_leader": gauges["etcd_server_is_leader"]}


def statuses(ips, port):
    """Every member's status, asked in parallel so a hung member costs one timeout in total."""
    found = {}

    def ask(ip):
        found[ip] = member_status(ip, port)

    threads = [threading.Thread(target=ask, args=(ip,)) for ip in ips]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return found


def rollout_order(workers, unhealthy, found):
    """The order and, per member, why it is where it is."""
    first = [ip for ip in unhealthy if ip in workers]
    rest = [ip for ip in workers if ip not in first]
    # A member that answers without knowing a leader counts as not answering.
    silent = [ip for ip in rest if not found.get(ip) or not found[ip]["has_leader"]]
    leaders = [ip for ip in rest if ip not in silent and found[ip]["is_leader"]]
    followers = [ip for ip in rest if ip not in silent and ip not in leaders]
    reasons = (
        [(ip, "unhealthy") for ip in first]
        + [(ip, "no answer") for ip in silent]
        + [(ip, "follower") for ip in followers]
        + [(ip, "leader") for ip in leaders]
    )
    return [ip for ip, _ in reasons], reasons


def main():
    job = maand.job_name()
    workers = [w for w in maand.get_kv_value("maand/job/%s" % job, "workers").split(",") if w]
    if not workers or maand.allocation_ip() != workers[0]:
        return 0
    port = maand.get_kv_value("maand/bucket", "etcd_client_port")
    unhealthy = []
    for ip in os.environ.get("UNHEALTHY_ALLOCATIONS", "").split(","):
        ip = ip.strip()
        if ip and ip not in unhealthy:
            unhealthy.append(ip)
    order, reasons = rollout_order(workers, unhealthy, statuses(workers, port))
    print("rollout order: " + ", ".join("%s (%s)" % r for r in reasons))
    maand.put_rollout_order(order).raise_for_status()
    return 0


if __name__ == "__main__":
    sys.exit(main())
