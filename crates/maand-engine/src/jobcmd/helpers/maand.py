"""maand job-command helper (embedded in the maand binary, written next to every job command).

Talks to the runtime API of the running maand process (JOB_COMMAND_API_HOST/PORT, authenticated
with JOB_COMMAND_API_TOKEN). Uses only the Python standard library; HTTP calls return objects that
behave like `requests` responses (status_code, text, content, ok, json(), raise_for_status()).
"""

import json
import os
import shlex
import subprocess
import urllib.error
import urllib.parse
import urllib.request

try:  # Scripts that catch requests.HTTPError keep working when requests is installed.
    import requests as _requests

    _HTTPErrorBase = _requests.HTTPError
except Exception:  # pragma: no cover - requests is optional
    _HTTPErrorBase = IOError

DEFAULT_HTTP_TIMEOUT = 60


class HTTPError(_HTTPErrorBase):
    """Raised by Response.raise_for_status() for 4xx/5xx answers."""

    def __init__(self, message, response=None):
        super().__init__(message)
        self.response = response


class Response:
    """The subset of requests.Response that job commands use."""

    def __init__(self, status_code, content, url, headers=None):
        self.status_code = status_code
        self.content = content
        self.url = url
        self.headers = dict(headers or {})
        self.encoding = "utf-8"
        self.reason = ""

    @property
    def text(self):
        return self.content.decode("utf-8", errors="replace")

    @property
    def ok(self):
        return self.status_code < 400

    def __bool__(self):
        return self.ok

    def json(self):
        return json.loads(self.text)

    def raise_for_status(self):
        if self.status_code >= 400:
            kind = "Client" if self.status_code < 500 else "Server"
            raise HTTPError(
                "%s %s Error: %s for url: %s" % (self.status_code, kind, self.text.strip(), self.url),
                response=self,
            )

    def __repr__(self):
        return "<Response [%s]>" % self.status_code


# ---- environment -------------------------------------------------------------------------------


def allocation_id():
    return os.environ.get("ALLOCATION_ID", "")


def allocation_ip():
    return os.environ.get("ALLOCATION_IP", "")


def allocation_index():
    return os.environ.get("ALLOCATION_INDEX", "")


def job_name():
    return os.environ.get("JOB", "")


def command_event():
    return os.environ.get("EVENT", "")


def command_name():
    return os.environ.get("COMMAND", "")


def is_allocation_disabled():
    return os.environ.get("DISABLED", "0") == "1"


# ---- runtime API ---------------------------------------------------------------------------------


def _base_url():
    host = os.environ.get("JOB_COMMAND_API_HOST", "127.0.0.1") or "127.0.0.1"
    port = os.environ.get("JOB_COMMAND_API_PORT", "8080") or "8080"
    return "http://%s:%s" % (host, port)


def _headers():
    return {
        "Content-Type": "application/json",
        "Authorization": "Bearer " + os.environ.get("JOB_COMMAND_API_TOKEN", ""),
        "X-ALLOCATION-ID": allocation_id(),
        "EVENT": command_event(),
        "COMMAND": command_name(),
    }


def _request(method, path, body=None, query=None, timeout=DEFAULT_HTTP_TIMEOUT):
    url = _base_url() + path
    if query:
        url += "?" + urllib.parse.urlencode(query)
    data = None if body is None else json.dumps(body).encode("utf-8")
    req = urllib.request.Request(url, data=data, method=method, headers=_headers())
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return Response(resp.status, resp.read(), url, resp.headers)
    except urllib.error.HTTPError as e:
        return Response(e.code, e.read(), url, e.headers)


def get_store_value(namespace, key):
    return _request("GET", "/kv", {"namespace": namespace, "key": key})


def get_kv_value(namespace, key):
    resp = get_store_value(namespace, key)
    resp.raise_for_status()
    return resp.json()["value"]


def put_job_variable(key, value):
    return _request("PUT", "/kv", {"namespace": "vars/job/" + job_name(), "key": key, "value": value})


def delete_job_variable(key):
    return _request("DELETE", "/kv", {"namespace": "vars/job/" + job_name(), "key": key})


def put_job_secret(key, value):
    return _request("PUT", "/kv/secret", {"namespace": "secrets/job/" + job_name(), "key": key, "value": value})


def delete_job_secret(key):
    return _request("DELETE", "/kv/secret", {"namespace": "secrets/job/" + job_name(), "key": key})


def list_job_keys(namespace=None):
    body = {} if namespace is None else {"namespace": namespace}
    return _request("GET", "/kv/keys", body)


def put_rollout_order(order):
    if isinstance(order, (list, tuple)):
        order = ",".join(str(ip).strip() for ip in order)
    return _request("PUT", "/kv", {"namespace": "maand/job/" + job_name(), "key": "rollout_order", "value": order})


def get_rollout_order():
    return get_store_value("maand/job/" + job_name(), "rollout_order")


def list_command_demands():
    return _request("GET", "/demands", {})


def acquire_semaphore(name, capacity=1, timeout_seconds=600):
    body = {"name": name, "capacity": capacity, "timeout_seconds": timeout_seconds}
    return _request("POST", "/semaphore/acquire", body, timeout=float(timeout_seconds) + 30)


def release_semaphore(name):
    return _request("POST", "/semaphore/release", {"name": name})


def semaphore_status(name):
    return _request("GET", "/semaphore/status", query={"name": name})


# Aliases kept for older job commands.
get_allocation_id = allocation_id
get_allocation_ip = allocation_ip
get_allocation_index = allocation_index
get_event = command_event
get_command = command_name
get_job = job_name
kv_get = get_store_value
kv_put = put_job_variable
kv_put_secret = put_job_secret
get_demands = list_command_demands
put_deploy_order = put_rollout_order
get_deploy_order = get_rollout_order


# ---- SSH to workers ------------------------------------------------------------------------------


def find_bucket_root(start=None):
    """The nearest directory at or above `start` (default: cwd, then this module) with maand.conf."""
    root = os.environ.get("MAAND_BUCKET_ROOT")
    if root and os.path.isfile(os.path.join(root, "maand.conf")):
        return root
    for base in [start or os.getcwd(), os.path.dirname(os.path.abspath(__file__))]:
        current = os.path.abspath(base)
        while True:
            if os.path.isfile(os.path.join(current, "maand.conf")):
                return current
            parent = os.path.dirname(current)
            if parent == current:
                break
            current = parent
    raise RuntimeError("maand.conf not found above %s" % (start or os.getcwd()))


def _conf_value(text, name):
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if "=" not in line:
            continue
        key, value = line.split("=", 1)
        if key.strip() == name:
            return value.strip().strip('"').strip("'")
    return None


def load_ssh():
    """(user, key_path, use_sudo) of the bucket, from maand's environment or maand.conf."""
    user = os.environ.get("MAAND_SSH_USER")
    key = os.environ.get("MAAND_SSH_KEY")
    sudo = os.environ.get("MAAND_SSH_USE_SUDO")
    if user and key and sudo is not None:
        return user, key, sudo == "1"
    root = find_bucket_root()
    with open(os.path.join(root, "maand.conf")) as f:
        text = f.read()
    user = _conf_value(text, "ssh_user") or "agent"
    key_name = _conf_value(text, "ssh_key") or "worker.key"
    key = os.path.join(root, "secrets", key_name)
    if not os.path.exists(key):
        key = os.path.join(root, key_name)
    use_sudo = (_conf_value(text, "use_sudo") or "false").lower() == "true"
    return user, key, use_sudo


def _ssh_port(worker_ip):
    for pair in os.environ.get("MAAND_SSH_PORTS", "").split(","):
        if "=" in pair:
            ip, port = pair.rsplit("=", 1)
            if ip == worker_ip:
                return port
    return os.environ.get("MAAND_SSH_PORT", "22")


def _ssh_options(connect_timeout):
    checking = os.environ.get("MAAND_SSH_HOST_KEY_CHECKING", "accept-new")
    known_hosts = os.environ.get("MAAND_SSH_KNOWN_HOSTS", "")
    options = [
        "BatchMode=yes",
        "IdentitiesOnly=yes",
        "LogLevel=ERROR",
        "ConnectTimeout=%s" % connect_timeout,
        "StrictHostKeyChecking=%s" % checking,
    ]
    if checking == "no":
        options.append("UserKnownHostsFile=/dev/null")
    elif known_hosts:
        options.append("UserKnownHostsFile=%s" % known_hosts)
    args = []
    for option in options:
        args += ["-o", option]
    return args


def run_ssh(worker_ip, remote_cmd, *, timeout=300, check=True, connect_timeout=15):
    """Run `remote_cmd` (a shell command line) on a worker; returns subprocess.CompletedProcess."""
    user, key, use_sudo = load_ssh()
    wrapped = "timeout %d bash -c %s" % (int(timeout), shlex.quote(remote_cmd))
    if use_sudo:
        wrapped = "sudo -E " + wrapped
    host = "[%s]" % worker_ip if ":" in worker_ip else worker_ip
    argv = ["ssh", "-i", key, "-p", str(_ssh_port(worker_ip))] + _ssh_options(connect_timeout)
    argv += ["%s@%s" % (user, host), wrapped]
    return subprocess.run(
        argv, text=True, capture_output=True, check=check, timeout=int(timeout) + int(connect_timeout) + 30
    )


def _bucket_id():
    bucket_id = os.environ.get("MAAND_BUCKET_ID")
    if bucket_id:
        return bucket_id
    return get_kv_value("maand/bucket", "bucket_id")


def run_runner_target(target, *, worker_ip=None, job=None, timeout=300, check=True):
    """`runner.py <target> --jobs <job>` on a worker (default: this allocation)."""
    bucket_id = _bucket_id()
    cmd = "python3 /opt/worker/%s/bin/runner.py %s %s --jobs %s" % (
        bucket_id,
        bucket_id,
        shlex.quote(target),
        shlex.quote(job or job_name()),
    )
    return run_ssh(worker_ip or allocation_ip(), cmd, timeout=timeout, check=check)


def run_make_target(target, *, worker_ip=None, job=None, timeout=300, check=True):
    """`make -C /opt/worker/<bucket>/jobs/<job> <target>` on a worker (default: this allocation)."""
    cmd = "make -C /opt/worker/%s/jobs/%s %s" % (_bucket_id(), shlex.quote(job or job_name()), shlex.quote(target))
    return run_ssh(worker_ip or allocation_ip(), cmd, timeout=timeout, check=check)
