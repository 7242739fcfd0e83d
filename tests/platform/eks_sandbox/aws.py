"""The AWS side of the EKS look-alike: moto's server, an EKS API proxy in front of it, and seeding.

Clients never talk to moto directly. They talk to :class:`EksApiProxy`, which

* answers ``GET /cluster-versions`` (EKS ``DescribeClusterVersions``, which moto lacks and
  eksctl >= 0.202 calls before anything else) from the table :data:`EKS_VERSIONS`;
* patches the ``cluster`` object of ``DescribeCluster``/``CreateCluster``/``DeleteCluster``
  answers for clusters registered with it: ``endpoint`` becomes the kwok API server, and
  ``certificateAuthority`` its CA, so ``aws eks update-kubeconfig`` / ``eksctl utils
  write-kubeconfig`` point at the sandbox (moto makes up a random endpoint and a CA that is not
  even base64, and cannot be told otherwise);
* forwards every other request unchanged (method, path, headers, body) to moto.
* on demand, answers chosen AWS operations with errors instead of forwarding them (fault
  injection, see :class:`Faults`): ``PUT /__eks_sandbox__/faults`` with
  ``{"operation": "eks:DescribeCluster", "count": 3, "status": 429}`` makes the next 3 calls of
  that operation (``"*"``: any) fail with 429 ThrottlingException (503: ServiceUnavailable...);
  ``GET`` shows what is left and what was served, ``DELETE`` clears them. :func:`inject_faults`.

Run-time state lives in ``state_dir()/aws``: ``moto.json``/``moto.log`` and
``eks-proxy.json``/``eks-proxy.log`` (pid + port of each process, so that a separate
``python -m eks_sandbox aws down`` can stop them).
"""
import argparse
import base64
import http.client
import json
import logging
import os
import random
import re
import shlex
import signal
import socket
import string
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import date, datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

from . import eks_api, versions
from .cache import state_dir

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
DEFAULT_REGION = "us-east-1"
DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
OWNERSHIP_TAG = ("cloudnet.cilium_eks/managed", "true")
EKSCTL_VERSION = (versions.EKSCTL or "0.220.0").lstrip("v")
VPC_CIDR = "192.168.0.0/16"  # eksctl's default
SERVICE_CIDR = "10.100.0.0/16"  # what EKS picks for a 192.168.0.0/16 VPC; kube-dns is 10.100.0.10
ADMIN_PATH = "/__eks_sandbox__"  # the proxy's own API; no AWS path starts like this
# Seconds an admin call (moto reset, proxy rules) may take: a reset of a full moto is slow on a loaded machine.
ADMIN_TIMEOUT = 60
MOTO_ADMIN_PATH = "/__eks_sandbox_moto__"  # eks_sandbox.moto_eks's (forwarded to moto like any other path)
PACKAGE_PARENT = Path(__file__).resolve().parent.parent  # so a child can `python -m eks_sandbox.aws`
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never via a proxy


def aws_state_dir() -> Path:
    return state_dir() / "aws"


def client_env(endpoint: str, region: str = DEFAULT_REGION) -> dict:
    """Environment for boto3 (botocore >= 1.31 honours AWS_ENDPOINT_URL), the AWS CLI, eksctl."""
    no_proxy = [p for p in os.environ.get("NO_PROXY", "").split(",") if p]
    return {
        "AWS_ENDPOINT_URL": endpoint,
        **DUMMY_CREDENTIALS,
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,  # the Go SDK (eksctl) reads this one
        "AWS_EC2_METADATA_DISABLED": "true",  # no IMDS probing for region or credentials
        "NO_PROXY": ",".join(dict.fromkeys(no_proxy + [LOOPBACK, "localhost"])),
    }


# --------------------------------------------------------------------------------------------
# Background processes: moto and the proxy
# --------------------------------------------------------------------------------------------

_CHILDREN: dict = {}  # pid -> Popen of processes this interpreter started, so any instance can reap


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def _answers(url: str, timeout: float = 1.0) -> bool:
    try:
        with _OPENER.open(url, timeout=timeout) as response:
            return response.status < 500
    except urllib.error.HTTPError as err:
        return err.code < 500
    except OSError:
        return False


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
    tmp.replace(path)


def _cmdline(pid: int):
    """The command line of ``pid`` ('' when gone or a zombie), None where there is no /proc."""
    if not Path("/proc").is_dir():
        return None
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def group_members(pgid: int) -> list:
    """Live (not zombie) processes of process group ``pgid``."""
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return []
        except PermissionError:
            pass
        return [pgid]
    members = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        state, _ppid, pgrp = stat[stat.rindex(")") + 2:].split()[:3]
        if int(pgrp) == pgid and state not in ("Z", "X"):
            members.append(int(entry.name))
    return members


def _wait_group_gone(pgid: int, seconds: float, child=None) -> bool:
    deadline = time.monotonic() + seconds
    while True:
        if child is not None:
            child.poll()  # reap the leader if it is our child
        if not group_members(pgid):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)


def _terminate_group(pgid: int, grace: float) -> None:
    """SIGTERM the group, SIGKILL what is left after ``grace`` seconds; reap our own child."""
    child = _CHILDREN.pop(pgid, None)
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            break
        if _wait_group_gone(pgid, wait, child):
            break
    if child is not None:
        child.wait(timeout=5)


class ManagedServer:
    """A server run as ``argv`` in its own process group, bound to 127.0.0.1 on a free port.

    Its pid and port are kept in ``<state>/<name>.json``, its output in ``<state>/<name>.log``.
    """

    name = ""
    marker = ""  # a piece of the command line: a recorded pid whose command lacks it is not ours
    ready_path = "/"

    def __init__(self, state: Path = None, python: str = None):
        self.dir = Path(state) if state else aws_state_dir()
        self.python = python or sys.executable

    # What subclasses define.
    def argv(self, port: int) -> list:
        raise NotImplementedError

    def child_env(self) -> dict:
        return dict(os.environ)

    def extra_record(self) -> dict:
        return {}

    # Paths and record.
    @property
    def state_file(self) -> Path:
        return self.dir / f"{self.name}.json"

    @property
    def log_file(self) -> Path:
        return self.dir / f"{self.name}.log"

    def record(self):
        return _read_json(self.state_file)

    @property
    def endpoint(self):
        record = self.record()
        return record["endpoint"] if record else None

    def _is_ours(self, pid: int) -> bool:
        command = _cmdline(pid)
        if command is None:  # no /proc: trust the record
            return bool(group_members(pid))
        return self.marker in command

    # Life cycle.
    def status(self) -> dict:
        record = self.record()
        if not record:
            return {"name": self.name, "running": False}
        running = self._is_ours(record["pid"])
        return {**record, "name": self.name, "running": running,
                "responding": running and _answers(record["endpoint"] + self.ready_path)}

    def start(self, timeout: float = 30.0) -> dict:
        """Start (or reuse when running and responding); returns :meth:`status`."""
        current = self.status()
        if current["running"] and current["responding"]:
            return current
        self.stop()
        self.dir.mkdir(parents=True, exist_ok=True)
        for _attempt in range(3):  # a free port can be taken between probing and binding
            port = _free_port()
            with open(self.log_file, "wb") as output:
                child = subprocess.Popen(self.argv(port), stdin=subprocess.DEVNULL, stdout=output,
                                         stderr=subprocess.STDOUT, env=self.child_env(),
                                         start_new_session=True)
            _CHILDREN[child.pid] = child
            endpoint = f"http://{LOOPBACK}:{port}"
            _write_json(self.state_file, {"pid": child.pid, "port": port, "endpoint": endpoint,
                                          "log": str(self.log_file), "started": time.time(),
                                          **self.extra_record()})
            deadline = time.monotonic() + timeout
            while child.poll() is None and time.monotonic() < deadline:
                if _answers(endpoint + self.ready_path, timeout=0.5):
                    return self.status()
                time.sleep(0.05)
            exited = child.poll() is not None
            self.stop()
            if not exited:
                raise TimeoutError(f"{self.name} did not answer within {timeout}s; see {self.log_file}")
        tail = self.log_file.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"{self.name} exited at start; {self.log_file}:\n{tail}")

    def stop(self, grace: float = 10.0) -> bool:
        """Stop the process group and forget it. True when something was running. Idempotent."""
        record = self.record()
        if not record:
            return False
        pid = record["pid"]
        running = self._is_ours(pid)
        if running:
            _terminate_group(pid, grace)
        elif pid in _CHILDREN:
            _CHILDREN.pop(pid).wait(timeout=5)
        self.state_file.unlink(missing_ok=True)
        return running


class MotoServer(ManagedServer):
    """moto's server on 127.0.0.1, extended for eksctl's stacks (``python -m eks_sandbox.moto_eks``: EKS
    CloudFormation models, CloudFormation fidelity, stack failures on demand). moto accepts any
    credentials unless INITIAL_NO_AUTH_ACTION_COUNT is set, so that variable is kept out of its
    environment."""

    name = "moto"
    marker = "eks_sandbox.moto_eks"
    ready_path = "/moto-api/"

    def argv(self, port: int) -> list:
        return [self.python, "-m", "eks_sandbox.moto_eks", "-H", LOOPBACK, "-p", str(port)]

    def child_env(self) -> dict:
        env = dict(os.environ)
        env.pop("INITIAL_NO_AUTH_ACTION_COUNT", None)
        env["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"  # so AmazonEKSClusterPolicy & co. can be attached
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PACKAGE_PARENT), env.get("PYTHONPATH")) if p)
        return env

    def client_env(self, region: str = DEFAULT_REGION) -> dict:
        return client_env(self.endpoint, region)

    def reset(self) -> None:
        """Forget every record (moto's ``/moto-api/reset``)."""
        request = urllib.request.Request(self.endpoint + "/moto-api/reset", method="POST")
        _OPENER.open(request, timeout=ADMIN_TIMEOUT).close()


class EksProxyServer(ManagedServer):
    """:class:`EksApiProxy` in a child process (``python -m eks_sandbox.aws serve-proxy``)."""

    name = "eks-proxy"
    marker = "eks_sandbox.aws"
    ready_path = ADMIN_PATH

    def __init__(self, upstream: str = None, state: Path = None, python: str = None):
        super().__init__(state, python)
        self.upstream = upstream

    def argv(self, port: int) -> list:
        if not self.upstream:
            raise ValueError("EksProxyServer needs the upstream (moto) endpoint to start")
        return [self.python, "-m", "eks_sandbox.aws", "serve-proxy", "--upstream", self.upstream,
                "--port", str(port)]

    def child_env(self) -> dict:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PACKAGE_PARENT), env.get("PYTHONPATH")) if p)
        return env

    def extra_record(self) -> dict:
        return {"upstream": self.upstream}

    def start(self, timeout: float = 30.0) -> dict:
        current = self.status()
        if current["running"] and current.get("upstream") != self.upstream:
            self.stop()  # moto was restarted on another port
        return super().start(timeout)


# --------------------------------------------------------------------------------------------
# EKS DescribeClusterVersions
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class EksVersion:
    version: str
    released: date
    end_of_standard_support: date
    end_of_extended_support: date
    platform_version: str
    patch_version: str


# EKS's calendar (14 months of standard support, then 12 of extended). Release dates up to 1.34
# are AWS's published ones; 1.35's and the platform and patch versions are best estimates.
EKS_VERSIONS = (
    EksVersion("1.35", date(2026, 1, 27), date(2027, 3, 27), date(2028, 3, 27), "eks.8", "1.35.3"),
    EksVersion("1.34", date(2025, 10, 2), date(2026, 12, 2), date(2027, 12, 2), "eks.13", "1.34.4"),
    EksVersion("1.33", date(2025, 5, 29), date(2026, 7, 29), date(2027, 7, 29), "eks.24", "1.33.10"),
    EksVersion("1.32", date(2025, 1, 23), date(2026, 3, 23), date(2027, 3, 23), "eks.32", "1.32.13"),
    EksVersion("1.31", date(2024, 9, 26), date(2025, 11, 26), date(2026, 11, 26), "eks.49", "1.31.14"),
)
DEFAULT_EKS_VERSION = "1.34"
NODE_AMI_BUILD = "20261110"  # date part of AL2023 EKS AMI release versions


def _midnight(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp())


def _patch_version(row: EksVersion) -> str:
    """The sandbox's own Kubernetes patch for its minor, so EKS and the API server agree."""
    sandbox = versions.KUBERNETES.lstrip("v")
    return sandbox if sandbox.rsplit(".", 1)[0] == row.version else row.patch_version


def node_release_version(k8s_version: str) -> str:
    """An AL2023 EKS AMI release version, e.g. ``1.34.4-20261110``."""
    row = next((r for r in EKS_VERSIONS if r.version == k8s_version), None)
    return f"{_patch_version(row) if row else k8s_version + '.0'}-{NODE_AMI_BUILD}"


def version_status(row: EksVersion, today: date) -> str:
    if today < row.end_of_standard_support:
        return "STANDARD_SUPPORT"
    if today < row.end_of_extended_support:
        return "EXTENDED_SUPPORT"
    return "UNSUPPORTED"


def cluster_versions(now: datetime = None) -> list:
    """Every released version in EKS's wire shape (timestamps as epoch seconds), newest first."""
    today = (now or datetime.now(timezone.utc)).date()
    rows = []
    for row in EKS_VERSIONS:
        if row.released > today:
            continue
        status = version_status(row, today)
        rows.append({
            "clusterVersion": row.version,
            "clusterType": "eks",
            "defaultPlatformVersion": row.platform_version,
            "defaultVersion": row.version == DEFAULT_EKS_VERSION,
            "releaseDate": _midnight(row.released),
            "endOfStandardSupportDate": _midnight(row.end_of_standard_support),
            "endOfExtendedSupportDate": _midnight(row.end_of_extended_support),
            "status": status,  # deprecated field; eksctl still reads it
            "versionStatus": status,
            "kubernetesPatchVersion": _patch_version(row),
        })
    return rows


class ApiError(Exception):
    """An error EKS answers as ``{"message": ...}`` with its type in ``x-amzn-ErrorType``."""

    def __init__(self, kind: str, message: str, status: int = 400):
        super().__init__(message)
        self.kind, self.message, self.status = kind, message, status


def describe_cluster_versions(query: dict, now: datetime = None) -> dict:
    """Answer a DescribeClusterVersions query (``parse_qs`` form) like EKS does."""
    def flag(name):
        return (query.get(name) or ["false"])[-1].lower() == "true"

    def one(name):
        return (query.get(name) or [None])[-1]

    wanted = set(query.get("clusterVersions", []))
    if wanted and flag("includeAll"):
        raise ApiError("InvalidParameterException", "includeAll and clusterVersions cannot be used together")
    status = one("versionStatus") or one("status")  # status is the deprecated lower-case spelling
    status = status.upper().replace("-", "_") if status else None
    try:
        max_results = int(one("maxResults") or 100)
        start = int(base64.urlsafe_b64decode(one("nextToken")).decode()) if one("nextToken") else 0
    except ValueError:
        raise ApiError("InvalidParameterException", "invalid maxResults or nextToken") from None
    if not 1 <= max_results <= 100:
        raise ApiError("InvalidParameterException", "maxResults must be between 1 and 100")

    rows = [row for row in cluster_versions(now)
            if one("clusterType") in (None, row["clusterType"])
            and (not flag("defaultOnly") or row["defaultVersion"])
            and (row["clusterVersion"] in wanted if wanted
                 else flag("includeAll") or row["versionStatus"] != "UNSUPPORTED")
            and status in (None, row["versionStatus"])]
    page = rows[start:start + max_results]
    answer = {"clusterVersions": page}
    if start + max_results < len(rows):
        answer["nextToken"] = base64.urlsafe_b64encode(str(start + max_results).encode()).decode()
    return answer


# --------------------------------------------------------------------------------------------
# The proxy
# --------------------------------------------------------------------------------------------

HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
              "transfer-encoding", "upgrade", "expect", "content-length"}


def patch_cluster(cluster: dict, override: dict) -> dict:
    """Make moto's cluster record point at the sandbox API server and fill what moto leaves out."""
    cluster["endpoint"] = override["endpoint"]
    if override.get("certificateAuthorityData"):
        cluster["certificateAuthority"] = {"data": override["certificateAuthorityData"]}
    platform = {row.version: row.platform_version for row in EKS_VERSIONS}.get(cluster.get("version"))
    if platform:
        cluster["platformVersion"] = platform  # moto always says eks.4
    cluster.setdefault("accessConfig", {"authenticationMode": "API_AND_CONFIG_MAP"})
    cluster.setdefault("upgradePolicy", {"supportType": "EXTENDED"})
    cluster.setdefault("health", {"issues": []})
    return cluster


# EKS is a REST API: its operations are told apart by method and path, not by an Action parameter
# (paths of the EKS API reference). The ones moto lacks are eks_api.EksApi.ROUTES, appended below.
EKS_OPERATIONS = [
    ("GET", re.compile(r"^/cluster-versions$"), "DescribeClusterVersions"),
    ("GET", re.compile(r"^/clusters$"), "ListClusters"),
    ("POST", re.compile(r"^/clusters$"), "CreateCluster"),
    ("GET", re.compile(r"^/clusters/[^/]+$"), "DescribeCluster"),
    ("DELETE", re.compile(r"^/clusters/[^/]+$"), "DeleteCluster"),
    ("POST", re.compile(r"^/clusters/[^/]+/update-config$"), "UpdateClusterConfig"),
    ("GET", re.compile(r"^/clusters/[^/]+/node-groups$"), "ListNodegroups"),
    ("POST", re.compile(r"^/clusters/[^/]+/node-groups$"), "CreateNodegroup"),
    ("GET", re.compile(r"^/clusters/[^/]+/node-groups/[^/]+$"), "DescribeNodegroup"),
    ("DELETE", re.compile(r"^/clusters/[^/]+/node-groups/[^/]+$"), "DeleteNodegroup"),
    ("POST", re.compile(r"^/clusters/[^/]+/node-groups/[^/]+/update-config$"), "UpdateNodegroupConfig"),
    ("POST", re.compile(r"^/clusters/[^/]+/node-groups/[^/]+/update-version$"), "UpdateNodegroupVersion"),
    ("GET", re.compile(r"^/clusters/[^/]+/fargate-profiles$"), "ListFargateProfiles"),
    ("POST", re.compile(r"^/clusters/[^/]+/fargate-profiles$"), "CreateFargateProfile"),
    ("GET", re.compile(r"^/clusters/[^/]+/fargate-profiles/[^/]+$"), "DescribeFargateProfile"),
    ("DELETE", re.compile(r"^/clusters/[^/]+/fargate-profiles/[^/]+$"), "DeleteFargateProfile"),
    ("GET", re.compile(r"^/clusters/[^/]+/identity-provider-configs$"), "ListIdentityProviderConfigs"),
    ("GET", re.compile(r"^/clusters/[^/]+/pod-identity-associations$"), "ListPodIdentityAssociations"),
    ("GET", re.compile(r"^/tags/.+$"), "ListTagsForResource"),
    ("POST", re.compile(r"^/tags/.+$"), "TagResource"),
    ("DELETE", re.compile(r"^/tags/.+$"), "UntagResource"),
] + list(eks_api.EksApi.ROUTES)
_KEY_RE = re.compile(r"Credential=([^/,\s]+)/")
_SCOPE_RE = re.compile(r"Credential=[^/]+/\d{8}/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request")
# Error codes by protocol: REST/JSON services (EKS) and the query ones (EC2, IAM, STS, CloudFormation).
FAULT_CODES = {429: ("ThrottlingException", "Throttling"), 500: ("ServerException", "InternalFailure"),
               503: ("ServiceUnavailableException", "ServiceUnavailable")}


def region_of(headers) -> str:
    """The region a signed AWS request is for (its SigV4 credential scope)."""
    scope = _SCOPE_RE.search(headers.get("Authorization", ""))
    return scope.group("region") if scope else DEFAULT_REGION


def operation_of(method: str, path: str, headers, body: bytes) -> str:
    """``service:Operation`` of a signed AWS request (``eks:DescribeCluster``, ``cloudformation:DescribeStacks``)."""
    scope = _SCOPE_RE.search(headers.get("Authorization", ""))
    service = scope.group("service") if scope else "?"
    target = headers.get("X-Amz-Target")
    if target:
        return f"{service}:{target.rsplit('.', 1)[-1]}"
    if service == "eks":
        bare = urlsplit(path).path
        name = next((op for verb, pattern, op in EKS_OPERATIONS if verb == method and pattern.match(bare)), "?")
        return f"eks:{name}"
    query = parse_qs(urlsplit(path).query)
    if "application/x-www-form-urlencoded" in headers.get("Content-Type", ""):
        query.update(parse_qs(body.decode("utf-8", "replace")))
    return f"{service}:{(query.get('Action') or ['?'])[0]}"


class Faults:
    """Errors to answer instead of forwarding: ``{"operation", "count", "status", "code"}`` rules, used up in order.

    ``served`` counts the errors given per operation, so a test can tell how many times a client tried."""

    def __init__(self):
        self.rules: list = []
        self.served: dict = {}

    def add(self, rule: dict) -> dict:
        status = int(rule.get("status", 429))
        if status not in FAULT_CODES and not rule.get("code"):
            raise ApiError("InvalidParameterException", f"status {status}: give a code, or one of {sorted(FAULT_CODES)}")
        if not rule.get("operation") or int(rule.get("count", 1)) < 1:
            raise ApiError("InvalidParameterException", "operation (service:Operation or *) and count >= 1 are required")
        added = {"operation": rule["operation"], "count": int(rule.get("count", 1)), "status": status,
                 "code": rule.get("code")}
        self.rules.append(added)
        return added

    def take(self, operation: str):
        """The rule answering this call (its count used up by one), or None."""
        for rule in self.rules:
            if rule["operation"] in ("*", operation) and rule["count"] > 0:
                rule["count"] -= 1
                self.served[operation] = self.served.get(operation, 0) + 1
                return rule
        return None

    def report(self) -> dict:
        return {"pending": [r for r in self.rules if r["count"] > 0], "served": dict(self.served)}

    def clear(self) -> None:
        self.rules, self.served = [], {}


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 120
    server: "_ProxyHTTPServer"

    def _handle(self) -> None:
        body = self._read_body()
        path = urlsplit(self.path).path
        proxy = self.server.proxy
        try:
            if path == ADMIN_PATH or path.startswith(ADMIN_PATH + "/"):
                self._send_json(*proxy.admin(self.command, path[len(ADMIN_PATH):], body))
                return
            operation = operation_of(self.command, self.path, self.headers, body)
            proxy.record_caller(self.headers, operation)
            if self._inject_fault(operation):
                return
            region = region_of(self.headers)
            if path == "/cluster-versions" and self.command == "GET":
                self._send_json(200, describe_cluster_versions(parse_qs(urlsplit(self.path).query), proxy.now()))
                return
            answer = proxy.eks_api.handle(self.command, self.path, body, region) if operation.startswith("eks:") \
                else None
            if answer is not None:
                self._send_json(*answer)
            else:
                self._forward(body)
            proxy.changed(operation, region)
        except (ApiError, eks_api.EksApiError) as err:
            self._send_json(err.status, {"message": err.message}, {"x-amzn-ErrorType": err.kind})

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _handle

    def _inject_fault(self, operation: str) -> bool:
        """Answer with the error of a fault rule matching ``operation``; False when none does."""
        rule = self.server.proxy.take_fault(operation)
        if rule is None:
            return False
        rest_json, query = FAULT_CODES.get(rule["status"], (rule["code"], rule["code"]))
        message = f"injected by the eks_sandbox proxy for {operation}"
        if operation.startswith("eks:"):
            self._send_json(rule["status"], {"message": message}, {"x-amzn-ErrorType": rule["code"] or rest_json})
            return True
        # The query protocols' error Type: Sender for the caller's faults (4xx), Receiver for the
        # service's (5xx), as AWS answers them (botocore parsers.py reads it as Error.Type).
        kind = "Sender" if rule["status"] < 500 else "Receiver"
        data = (f"<ErrorResponse><Error><Type>{kind}</Type><Code>{rule['code'] or query}</Code>"
                f"<Message>{message}</Message></Error><RequestId>fault</RequestId></ErrorResponse>").encode()
        self.send_response(rule["status"])
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        return True

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                chunk = self.rfile.read(size + 2)[:size]  # chunk + CRLF
                if not size:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers
                        pass
                    return b"".join(chunks)
                chunks.append(chunk)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _forward(self, body: bytes) -> None:
        proxy = self.server.proxy
        upstream = http.client.HTTPConnection(proxy.upstream.hostname, proxy.upstream.port, timeout=120)
        try:
            upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for key, value in self.headers.items():
                if key.lower() not in HOP_BY_HOP:
                    upstream.putheader(key, value)
            if body or "Content-Length" in self.headers:
                upstream.putheader("Content-Length", str(len(body)))
            upstream.endheaders(body or None)
            response = upstream.getresponse()
            data = response.read()
            headers = response.getheaders()
        except OSError as err:
            self._send_json(502, {"message": f"eks_sandbox proxy: upstream {proxy.upstream.geturl()}: {err}"})
            return
        finally:
            upstream.close()
        if response.status == 200 and self.command != "HEAD":
            data = proxy.rewrite(urlsplit(self.path).path, data)
        self.send_response_only(response.status, response.reason)
        for key, value in headers:
            if key.lower() not in HOP_BY_HOP:
                self.send_header(key, value)
        length = dict((k.lower(), v) for k, v in headers).get("content-length", "0")
        self.send_header("Content-Length", length if self.command == "HEAD" else str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        self.log_request(response.status, len(data))

    def _send_json(self, status: int, payload: dict, headers: dict = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("x-amzn-RequestId", "%032x" % random.getrandbits(128))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def log_message(self, format, *args) -> None:  # noqa: A002 - the base class's name
        if not self.server.proxy.quiet:
            super().log_message(format, *args)


class _ProxyHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    proxy: "EksApiProxy"


class MotoClient:
    """The few calls the proxy itself makes to moto (never through fault rules): EKS clusters as moto
    has them, STS GetCallerIdentity for a presigned query, and moto_eks's admin API."""

    def __init__(self, upstream: str):
        self.upstream = upstream.rstrip("/")

    def _request(self, method: str, path: str, service: str = None, region: str = DEFAULT_REGION,
                 body: dict = None, access_key: str = DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"]):
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if service:  # moto routes a loopback request by the service in its credential scope
            headers["Authorization"] = (f"AWS4-HMAC-SHA256 Credential={access_key}/20260101/{region}/{service}/"
                                        "aws4_request, SignedHeaders=host, Signature=0")
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.upstream + path, data=data, method=method, headers=headers)
        try:
            with _OPENER.open(request, timeout=30) as answer:
                return answer.status, answer.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()

    def describe_cluster(self, name: str, region: str):
        status, data = self._request("GET", f"/clusters/{quote(name, safe='')}", "eks", region)
        return json.loads(data)["cluster"] if status == 200 else None

    def set_version(self, name: str, region: str, version: str, platform_version: str) -> None:
        status, data = self._request("PUT", f"{MOTO_ADMIN_PATH}/clusters/{region}/{quote(name, safe='')}",
                                     body={"version": version, "platformVersion": platform_version})
        if status != 200:
            raise ApiError("ServerException", f"moto could not update cluster {name}: {data[:200]!r}", 500)

    def sts(self, query: str, region: str) -> str:
        key = (parse_qs(query).get("X-Amz-Credential") or ["testing/"])[-1].split("/")[0]
        return self._request("GET", "/?" + query, "sts", region, access_key=key)[1].decode(errors="replace")

    def set_platform(self, settings: dict) -> dict:
        status, data = self._request("PUT", f"{MOTO_ADMIN_PATH}/platform", body=settings)
        if status != 200:
            raise ApiError("InvalidParameterException",
                           f"moto did not take the platform settings (is it eks_sandbox.moto_eks?): {data[:200]!r}")
        return json.loads(data)


class EksApiProxy:
    """Stdlib HTTP reverse proxy in front of moto (see the module docstring for what it adds).

    ``start()`` serves from a thread of this process (tests); :class:`EksProxyServer` runs it as a
    process of its own (the sandbox). Its admin API, under ``/__eks_sandbox__``:

    * ``PUT /clusters/<name>`` with ``{"endpoint": ..., "certificateAuthorityData": ...}`` registers
      what a cluster's DescribeCluster reports; ``GET`` lists the upstream and registered clusters;
    * ``PUT /platform`` with ``{"endpoint", "certificateAuthorityData", "kubeconfig", "region"}``: the
      sandbox's API server, reported by every cluster not registered by name and by the clusters moto
      creates from then on (told to ``eks_sandbox.moto_eks``); with ``kubeconfig``, EKS add-ons apply
      their kube-system objects there and :class:`nodegroups.NodegroupReconciler` keeps one kwok Node
      per desired node of every node group;
    * ``POST /authenticate``: the kube-apiserver's token webhook (``eks_api.EksApi.authenticate``);
    * ``PUT|GET|DELETE /faults``: see :class:`Faults`.
    """

    # Calls after which node groups may have changed: the reconciler looks at once.
    NODEGROUP_CHANGES = {"cloudformation:CreateStack", "cloudformation:DeleteStack", "cloudformation:UpdateStack",
                         "eks:CreateNodegroup", "eks:DeleteNodegroup", "eks:UpdateNodegroupConfig",
                         "eks:DeleteCluster", "eks:CreateCluster"}

    def __init__(self, upstream: str, port: int = 0, host: str = LOOPBACK, clock=None, quiet: bool = False):
        self.upstream = urlsplit(upstream)
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self.quiet = quiet
        self.clusters: dict = {}
        self.platform: dict = {}
        self.faults = Faults()
        self.callers: list = []  # (access key id, operation, client) of the latest signed calls
        self.moto = MotoClient(upstream)
        self.eks_api = eks_api.EksApi(self.moto.describe_cluster, self.moto.set_version, self.moto.sts,
                                      clock=self.clock)
        self.reconciler = None
        self._lock = threading.Lock()
        self._thread = None
        self.httpd = _ProxyHTTPServer((host, port), _ProxyHandler)
        self.httpd.proxy = self

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def now(self) -> datetime:
        return self.clock()

    def serve_forever(self) -> None:
        self.httpd.serve_forever(poll_interval=0.2)

    def start(self) -> "EksApiProxy":
        self._thread = threading.Thread(target=self.serve_forever, name="eks-api-proxy", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self.reconciler is not None:
            self.reconciler.stop()
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self.httpd.server_close()

    def admin(self, method: str, path: str, body: bytes) -> tuple:
        parts = [p for p in path.split("/") if p]
        if parts == ["authenticate"] and method == "POST":  # outside the lock: it asks moto's STS
            return 200, self.eks_api.authenticate(json.loads(body or b"{}"))
        if parts == ["platform"]:
            return 200, self.set_platform(json.loads(body or b"{}")) if method == "PUT" else dict(self.platform)
        with self._lock:
            if method in ("GET", "HEAD") and not parts:
                return 200, {"upstream": self.upstream.geturl(), "clusters": dict(self.clusters),
                             "platform": dict(self.platform),
                             "reconciler": self.reconciler_status()}
            if parts == ["callers"]:
                seen = list(self.callers)
                if method == "DELETE":
                    self.callers.clear()
                return 200, {"callers": seen}
            if parts == ["faults"]:
                if method == "PUT":
                    return 200, self.faults.add(json.loads(body or b"{}"))
                if method == "DELETE":
                    self.faults.clear()
                return 200, self.faults.report()
            if len(parts) == 2 and parts[0] == "clusters":
                name = parts[1]
                if method == "PUT":
                    override = json.loads(body or b"{}")
                    if not override.get("endpoint"):
                        raise ApiError("InvalidParameterException", "endpoint is required")
                    self.clusters[name] = override
                    return 200, {"cluster": name, **override}
                if method == "GET" and name in self.clusters:
                    return 200, {"cluster": name, **self.clusters[name]}
                if method == "DELETE" and self.clusters.pop(name, None) is not None:
                    return 200, {"cluster": name}
                raise ApiError("ResourceNotFoundException", f"no override for cluster {name}", 404)
        raise ApiError("InvalidRequestException", f"unknown admin call {method} {path}", 404)

    def set_platform(self, settings: dict) -> dict:
        """Register the sandbox's API server (see the class docstring); idempotent."""
        if not settings.get("endpoint"):
            raise ApiError("InvalidParameterException", "endpoint is required")
        self.moto.set_platform({k: settings.get(k) for k in ("endpoint", "certificateAuthorityData")})
        kubeconfig = settings.get("kubeconfig")
        with self._lock:
            self.platform = {k: settings.get(k) for k in ("endpoint", "certificateAuthorityData", "kubeconfig",
                                                          "region", "vpc_cni_manifest")}
            self.eks_api.vpc_cni_manifest = settings.get("vpc_cni_manifest")
            if kubeconfig:
                from .nodegroups import NodegroupReconciler

                self.eks_api.kube = eks_api.KubeObjects(kubeconfig)
                if self.reconciler is None or self.reconciler.kubeconfig != str(kubeconfig):
                    if self.reconciler is not None:
                        self.reconciler.stop()
                    self.reconciler = NodegroupReconciler(self.upstream.geturl(), kubeconfig,
                                                          regions=[settings.get("region") or DEFAULT_REGION]).start()
                self.reconciler.wake()
            return dict(self.platform)

    def reconciler_status(self):
        if self.reconciler is None:
            return None
        return {"rounds": self.reconciler.rounds, "last_error": self.reconciler.last_error,
                "regions": sorted(self.reconciler.regions)}

    def changed(self, operation: str, region: str) -> None:
        """After a forwarded or answered call: wake the node group reconciler when it may have work."""
        if self.reconciler is not None and operation in self.NODEGROUP_CHANGES:
            self.reconciler.wake(region)

    CALLERS_KEPT = 2000

    def record_caller(self, headers, operation: str) -> None:
        """Who made a signed call: the access key id of its SigV4 credential scope and the client (the first
        product of its User-Agent: ``Boto3``, ``aws-sdk-go-v2`` for eksctl...), so a test can tell which credentials
        each client used. Moto itself accepts any key."""
        key = _KEY_RE.search(headers.get("Authorization", ""))
        if key:
            agent = (headers.get("User-Agent") or "?").split("/", 1)[0].split(" ", 1)[0]
            with self._lock:
                self.callers.append({"access_key": key.group(1), "operation": operation, "client": agent})
                del self.callers[:-self.CALLERS_KEPT]

    def take_fault(self, operation: str):
        """The fault rule that answers this call instead of moto, if any (see :class:`Faults`)."""
        with self._lock:
            return self.faults.take(operation)

    def rewrite(self, path: str, data: bytes) -> bytes:
        """Patch the ``cluster`` of a successful answer under ``/clusters``: the override registered for
        its name, else the platform's API server (see the class docstring)."""
        if not path.startswith("/clusters") or path.count("/") > 2:
            return data
        try:
            answer = json.loads(data)
        except ValueError:
            return data
        cluster = answer.get("cluster") if isinstance(answer, dict) else None
        with self._lock:
            override = self.clusters.get(cluster.get("name")) if isinstance(cluster, dict) else None
            if override is None and isinstance(cluster, dict) and self.platform.get("endpoint"):
                override = self.platform
        if not override:
            return data
        patch_cluster(cluster, override)
        return json.dumps(answer).encode()


def register_cluster_endpoint(proxy_endpoint: str, cluster_name: str, api_server_url: str,
                              ca_data: str = None) -> bool:
    """Tell the proxy what DescribeCluster reports for ``cluster_name``. False if not a proxy."""
    payload = {"endpoint": api_server_url}
    if ca_data:
        payload["certificateAuthorityData"] = ca_data
    request = urllib.request.Request(f"{proxy_endpoint}{ADMIN_PATH}/clusters/{quote(cluster_name, safe='')}",
                                     data=json.dumps(payload).encode(), method="PUT",
                                     headers={"Content-Type": "application/json"})
    try:
        _OPENER.open(request, timeout=ADMIN_TIMEOUT).close()
        return True
    except urllib.error.HTTPError as err:
        if err.code == 404:  # plain moto
            return False
        raise


def inject_faults(proxy_endpoint: str, operation: str = None, count: int = 1, status: int = 429,
                  code: str = None) -> dict:
    """Make the proxy answer the next ``count`` calls of ``operation`` with an error; ``operation=None``
    clears every rule. Returns the proxy's fault report (``pending`` rules, errors ``served`` so far)."""
    if operation is None:
        request = urllib.request.Request(f"{proxy_endpoint}{ADMIN_PATH}/faults", method="DELETE")
    else:
        rule = {"operation": operation, "count": count, "status": status, **({"code": code} if code else {})}
        request = urllib.request.Request(f"{proxy_endpoint}{ADMIN_PATH}/faults", data=json.dumps(rule).encode(),
                                         method="PUT", headers={"Content-Type": "application/json"})
    with _OPENER.open(request, timeout=ADMIN_TIMEOUT) as answer:
        answer.read()
    return fault_report(proxy_endpoint)


def callers(proxy_endpoint: str, clear: bool = False) -> list:
    """The calls the proxy saw (``access_key``, ``operation``, ``client``), oldest first; ``clear`` empties the record
    after reading it."""
    request = urllib.request.Request(f"{proxy_endpoint}{ADMIN_PATH}/callers", method="DELETE" if clear else "GET")
    with _OPENER.open(request, timeout=ADMIN_TIMEOUT) as answer:
        return json.loads(answer.read())["callers"]


def fail_stack(endpoint: str, stack: str = None, logical_id: str = None, reason: str = None,
               operation: str = "create", count: int = 1) -> dict:
    """Make the next ``count`` CloudFormation stacks named like ``stack`` (a glob) fail the way
    CloudFormation fails them (``eks_sandbox.moto_eks``): ``create`` ends ROLLBACK_COMPLETE with a
    CREATE_FAILED event on ``logical_id`` saying ``reason``, ``delete`` ends DELETE_FAILED.
    ``stack=None`` clears every rule. ``endpoint``: the proxy's or moto's. Returns the rules left and
    the failures served."""
    url = f"{endpoint}{MOTO_ADMIN_PATH}/stack-failures"
    if stack is None:
        request = urllib.request.Request(url, method="DELETE")
    else:
        rule = {"stack": stack, "logical_id": logical_id, "reason": reason, "operation": operation, "count": count}
        request = urllib.request.Request(url, data=json.dumps(rule).encode(), method="PUT",
                                         headers={"Content-Type": "application/json"})
    with _OPENER.open(request, timeout=ADMIN_TIMEOUT) as answer:
        answer.read()
    with _OPENER.open(url, timeout=ADMIN_TIMEOUT) as answer:
        return json.loads(answer.read())


def fault_report(proxy_endpoint: str) -> dict:
    with _OPENER.open(f"{proxy_endpoint}{ADMIN_PATH}/faults", timeout=ADMIN_TIMEOUT) as answer:
        return json.loads(answer.read())


# --------------------------------------------------------------------------------------------
# Seeding: what eksctl + EKS leave behind for a fresh cluster
# --------------------------------------------------------------------------------------------

TAINT_EFFECTS = {"NoSchedule": "NO_SCHEDULE", "NoExecute": "NO_EXECUTE", "PreferNoSchedule": "PREFER_NO_SCHEDULE"}
CLUSTER_POLICIES = ("AmazonEKSClusterPolicy", "AmazonEKSVPCResourceController")
NODE_POLICIES = ("AmazonEC2ContainerRegistryReadOnly", "AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy",
                 "AmazonSSMManagedInstanceCore")
# Nodegroup keys: the sandbox's spelling, then eksctl's ClusterConfig managedNodeGroups spelling.
NODEGROUP_KEYS = {
    "instance_types": ("instance_types", "instanceTypes"),
    "instance_type": ("instance_type", "instanceType"),
    "min": ("min", "minSize"),
    "desired": ("desired", "desiredCapacity"),
    "max": ("max", "maxSize"),
    "volume_size": ("volume_size", "volumeSize"),
}


def _trust(service: str, *actions: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": [service]}, "Action": list(actions or ["sts:AssumeRole"])}]})


def _cfn_name(stack: str, logical_id: str, limit: int) -> tuple:
    """(prefix, full name) of a CloudFormation physical name ``<stack>-<logicalId>-<RANDOM>``."""
    prefix = f"{stack}-{logical_id}"[:limit - 14]
    return prefix, f"{prefix}-{''.join(random.choices(string.ascii_uppercase + string.digits, k=13))}"


def _tag_list(tags: dict) -> list:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def _tag_spec(kind: str, tags: dict) -> list:
    return [{"ResourceType": kind, "Tags": _tag_list(tags)}]


def _tag_dict(tags) -> dict:
    return {t["Key"]: t["Value"] for t in tags or []}


def _taint(taint) -> dict:
    """A taint for EKS from ``{"key", "value", "effect": "NoExecute"}`` or ``"key=value:NoExecute"``."""
    if isinstance(taint, str):
        rest, effect = taint.rsplit(":", 1)
        key, _sep, value = rest.partition("=")
        taint = {"key": key, "value": value, "effect": effect}
    effect = TAINT_EFFECTS.get(taint["effect"], taint["effect"])
    return {"key": taint["key"], **({"value": taint["value"]} if taint.get("value") else {}), "effect": effect}


def nodegroup_request(spec) -> dict:
    """Normalise a nodegroup spec: a name, or a dict in the sandbox's or eksctl's spelling."""
    spec = {"name": spec} if isinstance(spec, str) else dict(spec)
    value = {}
    for field, keys in NODEGROUP_KEYS.items():
        value[field] = next((spec[k] for k in keys if spec.get(k) is not None), None)
    types = value["instance_types"] or [value["instance_type"] or "m5.large"]  # eksctl's default
    desired = value["desired"] if value["desired"] is not None else 2
    low = value["min"] if value["min"] is not None else desired
    high = value["max"] if value["max"] is not None else max(desired, low)
    if not low <= desired <= high:
        raise ValueError(f"nodegroup {spec['name']}: need min <= desired <= max, got {low}/{desired}/{high}")
    graviton = all(re.fullmatch(r"[a-z]+\d+g[a-z]*", t.split(".")[0]) for t in types)  # m6g, c7gn, ...
    return {
        "name": spec["name"],
        "instance_types": list(types),
        "scaling": {"minSize": low, "maxSize": high, "desiredSize": desired},
        "labels": dict(spec.get("labels") or {}),
        "taints": [_taint(t) for t in spec.get("taints") or []],
        "tags": dict(spec.get("tags") or {}),
        "volume_size": value["volume_size"] or 80,
        "capacity_type": "SPOT" if spec.get("spot") else "ON_DEMAND",
        "ami_type": "AL2023_ARM_64_STANDARD" if graviton else "AL2023_x86_64_STANDARD",
    }


class _Seeder:
    def __init__(self, endpoint: str, region: str, cluster: str, tags: dict):
        import boto3  # here: the proxy child process does not need boto3

        session = boto3.session.Session(aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                                        aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                                        region_name=region)
        self.ec2, self.iam, self.eks, self.sts = (session.client(s, endpoint_url=endpoint)
                                                  for s in ("ec2", "iam", "eks", "sts"))
        self.region, self.cluster = region, cluster
        self.stack = f"eksctl-{cluster}-cluster"
        self.tags = tags  # what eksctl puts on its CloudFormation stacks, hence on every resource
        self.created: list = []

    def role(self, stack: str, logical_id: str, service: str, policies, actions=()) -> str:
        prefix, name = _cfn_name(stack, logical_id, 64)
        for page in self.iam.get_paginator("list_roles").paginate():
            for role in page["Roles"]:
                if role["RoleName"].startswith(prefix + "-"):
                    return role["Arn"]
        arn = self.iam.create_role(RoleName=name, AssumeRolePolicyDocument=_trust(service, *actions),
                                   Tags=_tag_list({**self.tags, "Name": f"{stack}/{logical_id}"}))["Role"]["Arn"]
        for policy in policies:
            try:
                self.iam.attach_role_policy(RoleName=name, PolicyArn=f"arn:aws:iam::aws:policy/{policy}")
            except self.iam.exceptions.NoSuchEntityException:
                log.warning("moto has no AWS managed policy %s (MOTO_IAM_LOAD_MANAGED_POLICIES)", policy)
        self.created.append(f"iam-role/{name}")
        return arn

    def vpc(self) -> str:
        name = f"{self.stack}/VPC"
        found = self.ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": [name]}])["Vpcs"]
        if found:
            return found[0]["VpcId"]
        vpc = self.ec2.create_vpc(CidrBlock=VPC_CIDR,
                                  TagSpecifications=_tag_spec("vpc", {**self.tags, "Name": name}))["Vpc"]["VpcId"]
        self.ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
        self.created.append(f"vpc/{vpc}")
        return vpc

    def subnets(self, vpc: str) -> dict:
        """eksctl's layout: one public and one private /19 per AZ (public first), in up to 3 AZs."""
        zones = sorted(z["ZoneName"] for z in self.ec2.describe_availability_zones(
            Filters=[{"Name": "state", "Values": ["available"]}])["AvailabilityZones"])[:3]
        existing = {_tag_dict(s.get("Tags")).get("Name"): s["SubnetId"] for s in self.ec2.describe_subnets(
            Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]}
        layout = {"public": [], "private": []}
        for offset, kind in enumerate(layout):
            role_tag = "kubernetes.io/role/elb" if kind == "public" else "kubernetes.io/role/internal-elb"
            for index, zone in enumerate(zones):
                name = f"{self.stack}/Subnet{kind.title()}{zone.upper().replace('-', '')}"
                subnet = existing.get(name)
                if subnet is None:
                    cidr = f"192.168.{32 * (index + offset * len(zones))}.0/19"
                    subnet = self.ec2.create_subnet(
                        VpcId=vpc, CidrBlock=cidr, AvailabilityZone=zone,
                        TagSpecifications=_tag_spec("subnet", {**self.tags, "Name": name, role_tag: "1"}),
                    )["Subnet"]["SubnetId"]
                    if kind == "public":
                        self.ec2.modify_subnet_attribute(SubnetId=subnet, MapPublicIpOnLaunch={"Value": True})
                    self.created.append(f"subnet/{subnet}")
                layout[kind].append(subnet)
        return layout

    def security_group(self, vpc: str, prefix: str, name: str, description: str, tags: dict) -> str:
        found = self.ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc]},
                                                           {"Name": "group-name", "Values": [prefix + "-*"]}])
        if found["SecurityGroups"]:
            return found["SecurityGroups"][0]["GroupId"]
        group = self.ec2.create_security_group(GroupName=name, Description=description, VpcId=vpc,
                                               TagSpecifications=_tag_spec("security-group", tags))["GroupId"]
        self.created.append(f"security-group/{group}")
        return group

    def cluster_security_groups(self, vpc: str) -> dict:
        groups = {}
        for key, logical_id, description in (
                ("control_plane", "ControlPlaneSecurityGroup",
                 "Communication between the control plane and worker nodegroups"),
                ("shared_node", "ClusterSharedNodeSecurityGroup", "Communication between all nodes in the cluster")):
            prefix, name = _cfn_name(self.stack, logical_id, 255)
            groups[key] = self.security_group(vpc, prefix, name, description,
                                              {**self.tags, "Name": f"{self.stack}/{logical_id}"})
        # The one EKS creates itself, which managed nodes get: EKS's tags only.
        prefix = f"eks-cluster-sg-{self.cluster}"
        name = f"{prefix}-{random.randrange(10 ** 9, 10 ** 10)}"
        before = len(self.created)
        groups["cluster"] = self.security_group(
            vpc, prefix, name,
            "EKS created security group applied to ENI that is attached to EKS Control Plane master nodes, "
            "as well as any managed workloads.",
            {"Name": name, "aws:eks:cluster-name": self.cluster, f"kubernetes.io/cluster/{self.cluster}": "owned"})
        if len(self.created) > before:  # EKS's default rule: members talk to each other freely
            self.ec2.authorize_security_group_ingress(GroupId=groups["cluster"], IpPermissions=[
                {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": groups["cluster"]}]}])
        return groups

    def eks_cluster(self, version: str, role_arn: str, vpc: str, subnets: dict, groups: dict,
                    service_cidr: str) -> dict:
        try:
            return self.eks.describe_cluster(name=self.cluster)["cluster"]
        except self.eks.exceptions.ResourceNotFoundException:
            pass
        # EKS adds vpcId and clusterSecurityGroupId to resourcesVpcConfig; the request shape has no
        # room for them but moto stores and returns what it is sent, so add them to the sent body.

        def add_vpc_facts(params, **_kwargs):
            body = json.loads(params["body"])
            body["resourcesVpcConfig"].update(vpcId=vpc, clusterSecurityGroupId=groups["cluster"])
            params["body"] = json.dumps(body).encode()

        event = "before-call.eks.CreateCluster"
        self.eks.meta.events.register(event, add_vpc_facts, unique_id="eks-sandbox-vpc-facts")
        try:
            cluster = self.eks.create_cluster(
                name=self.cluster, version=version, roleArn=role_arn,
                resourcesVpcConfig={"subnetIds": subnets["public"] + subnets["private"],
                                    "securityGroupIds": [groups["control_plane"]],
                                    "endpointPublicAccess": True, "endpointPrivateAccess": False,
                                    "publicAccessCidrs": ["0.0.0.0/0"]},
                kubernetesNetworkConfig={"serviceIpv4Cidr": service_cidr, "ipFamily": "ipv4"},
                accessConfig={"authenticationMode": "API_AND_CONFIG_MAP",
                              "bootstrapClusterCreatorAdminPermissions": True},
                tags={**self.tags, "Name": f"{self.stack}/ControlPlane"},
            )["cluster"]
        finally:
            self.eks.meta.events.unregister(event, unique_id="eks-sandbox-vpc-facts")
        self.created.append(f"eks-cluster/{self.cluster}")
        return cluster

    def launch_template(self, stack: str, ng: dict, cluster_sg: str) -> str:
        try:
            self.ec2.describe_launch_templates(LaunchTemplateNames=[stack])
            return stack
        except self.ec2.exceptions.ClientError as err:
            if "NotFound" not in err.response["Error"]["Code"]:
                raise
        self.ec2.create_launch_template(
            LaunchTemplateName=stack,
            LaunchTemplateData={
                "BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "Ebs": {
                    "VolumeSize": ng["volume_size"], "VolumeType": "gp3", "Iops": 3000, "Throughput": 125}}],
                "MetadataOptions": {"HttpPutResponseHopLimit": 2, "HttpTokens": "required"},
                "SecurityGroupIds": [cluster_sg],
            },
            TagSpecifications=_tag_spec("launch-template", {**self.tags, "Name": f"{stack}/LaunchTemplate"}))
        self.created.append(f"launch-template/{stack}")
        return stack

    def nodegroup(self, ng: dict, version: str, subnets: list, cluster_sg: str) -> str:
        stack = f"eksctl-{self.cluster}-nodegroup-{ng['name']}"
        role_arn = self.role(stack, "NodeInstanceRole", "ec2.amazonaws.com", NODE_POLICIES)
        existing = self.eks.list_nodegroups(clusterName=self.cluster)["nodegroups"]
        if ng["name"] in existing:
            return role_arn
        template = self.launch_template(stack, ng, cluster_sg)
        self.eks.create_nodegroup(
            clusterName=self.cluster, nodegroupName=ng["name"], nodeRole=role_arn, subnets=subnets,
            scalingConfig=ng["scaling"], instanceTypes=ng["instance_types"], amiType=ng["ami_type"],
            capacityType=ng["capacity_type"], version=version, releaseVersion=node_release_version(version),
            launchTemplate={"name": template, "version": "1"},
            labels={"alpha.eksctl.io/cluster-name": self.cluster, "alpha.eksctl.io/nodegroup-name": ng["name"],
                    **ng["labels"]},
            taints=ng["taints"],
            tags={**self.tags, "alpha.eksctl.io/nodegroup-name": ng["name"],
                  "alpha.eksctl.io/nodegroup-type": "managed", **ng["tags"]},
        )
        self.created.append(f"eks-nodegroup/{ng['name']}")
        return role_arn


def seed_eks(endpoint: str, region: str, cluster_name: str, k8s_version: str, nodegroups,
             api_server_url: str = None, tags: dict = None, *, ca_data: str = None, managed: bool = False,
             service_cidr: str = SERVICE_CIDR) -> dict:
    """Create in moto (through ``endpoint``: moto or the proxy) what a fresh eksctl-made cluster is.

    IAM roles for the control plane and each node group, a VPC with a public and a private subnet
    in each of 2-3 AZs, eksctl's control-plane and shared-node security groups and the cluster
    security group EKS makes, the EKS cluster and its managed node groups. ``nodegroups`` items
    are names or dicts (see :func:`nodegroup_request`); ``tags`` are the cluster config's
    ``metadata.tags``; ``managed`` adds the collection's ownership tag. With ``api_server_url``
    (and ``ca_data``, base64 PEM like EKS's) and a proxy endpoint, DescribeCluster reports the
    sandbox API server. Idempotent: what exists is found by name and left alone; ``created``
    lists what this call created.
    """
    stack_tags = {"alpha.eksctl.io/cluster-name": cluster_name,
                  "eksctl.cluster.k8s.io/v1alpha1/cluster-name": cluster_name,
                  "alpha.eksctl.io/cluster-oidc-enabled": "false",
                  "alpha.eksctl.io/eksctl-version": EKSCTL_VERSION,
                  **(tags or {}), **(dict([OWNERSHIP_TAG]) if managed else {})}
    requests = [nodegroup_request(spec) for spec in nodegroups or []]
    seeder = _Seeder(endpoint, region, cluster_name, stack_tags)
    cluster_role = seeder.role(seeder.stack, "ServiceRole", "eks.amazonaws.com", CLUSTER_POLICIES,
                               actions=("sts:AssumeRole", "sts:TagSession"))
    vpc = seeder.vpc()
    subnets = seeder.subnets(vpc)
    groups = seeder.cluster_security_groups(vpc)
    cluster = seeder.eks_cluster(k8s_version, cluster_role, vpc, subnets, groups, service_cidr)
    node_roles = {ng["name"]: seeder.nodegroup(ng, cluster["version"], subnets["public"], groups["cluster"])
                  for ng in requests}
    overridden = bool(api_server_url) and register_cluster_endpoint(endpoint, cluster_name, api_server_url, ca_data)
    return {
        "cluster": cluster_name, "region": region, "cluster_arn": cluster["arn"],
        "account": cluster["arn"].split(":")[4], "version": cluster["version"],
        "cluster_role_arn": cluster_role, "node_role_arns": node_roles,
        "vpc_id": vpc, "subnet_ids": subnets,
        "security_group_ids": {k: groups[k] for k in ("control_plane", "shared_node")},
        "cluster_security_group_id": groups["cluster"],
        "nodegroups": sorted(seeder.eks.list_nodegroups(clusterName=cluster_name)["nodegroups"]),
        "endpoint_override": overridden, "created": seeder.created,
    }


def seed_addons(endpoint: str, region: str, cluster_name: str, versions_by_addon: dict) -> list:
    """Record EKS add-ons of a seeded cluster, as eksctl's create leaves them (through the proxy, which
    applies their kube-system objects as EKS's add-on manager, field manager ``eks``). Add-ons whose
    version the proxy does not offer (an old VPC CNI tag a test asks for) are left out. Returns the
    names recorded."""
    import boto3

    eks = boto3.session.Session(aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                                aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                                region_name=region).client("eks", endpoint_url=endpoint)
    recorded = []
    for name, version in versions_by_addon.items():
        if version and version in eks_api.ADDONS.get(name, {}).get("versions", ()):
            eks.create_addon(clusterName=cluster_name, addonName=name, addonVersion=version)
            recorded.append(name)
    return recorded


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items() if k != "ResponseMetadata"}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value.isoformat() if isinstance(value, datetime) else value


def eks_describe(endpoint: str, region: str, name: str):
    """``{"cluster": ..., "nodegroups": {name: ...}}`` as JSON-ready dicts, None if no such cluster."""
    import boto3

    eks = boto3.session.Session(aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                                aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                                region_name=region).client("eks", endpoint_url=endpoint)
    try:
        cluster = eks.describe_cluster(name=name)["cluster"]
    except eks.exceptions.ResourceNotFoundException:
        return None
    names = [n for page in eks.get_paginator("list_nodegroups").paginate(clusterName=name)
             for n in page["nodegroups"]]
    nodegroups = {n: eks.describe_nodegroup(clusterName=name, nodegroupName=n)["nodegroup"] for n in names}
    return _jsonable({"cluster": cluster, "nodegroups": nodegroups})


# --------------------------------------------------------------------------------------------
# What the sandbox's up/down/status call
# --------------------------------------------------------------------------------------------

def start_servers(state: Path = None) -> dict:
    """Start moto (``eks_sandbox.moto_eks``) and the EKS proxy in front of it, or reuse them when running.

    ``state`` is the folder holding their pid/port records (default: ``state_dir()/aws``); one
    folder per sandbox keeps two sandboxes from sharing, or stopping, each other's moto."""
    moto = MotoServer(state=state).start()
    proxy = EksProxyServer(upstream=moto["endpoint"], state=state).start()
    return {"endpoint": proxy["endpoint"], "moto_endpoint": moto["endpoint"],
            "pids": {"moto": moto["pid"], "proxy": proxy["pid"]}}


def token_webhook_url(proxy_endpoint: str) -> str:
    """Where kube-apiserver sends TokenReviews for EKS tokens (the proxy's ``/authenticate``)."""
    return f"{proxy_endpoint}{ADMIN_PATH}/authenticate"


def register_platform(proxy_endpoint: str, api_server_url: str, ca_data: str = None, kubeconfig=None,
                      region: str = DEFAULT_REGION, vpc_cni_manifest=None) -> dict:
    """Tell the proxy (and through it moto) the sandbox's API server: every EKS cluster reports it,
    and with ``kubeconfig`` add-ons deploy there and kwok Nodes follow the node groups. ``vpc_cni_manifest``: the
    AWS VPC CNI's own manifest, which the vpc-cni add-on of its version then deploys (aws-node run for real)."""
    payload = {"endpoint": api_server_url, "certificateAuthorityData": ca_data,
               "kubeconfig": str(kubeconfig) if kubeconfig else None, "region": region,
               "vpc_cni_manifest": str(vpc_cni_manifest) if vpc_cni_manifest else None}
    request = urllib.request.Request(f"{proxy_endpoint}{ADMIN_PATH}/platform", data=json.dumps(payload).encode(),
                                     method="PUT", headers={"Content-Type": "application/json"})
    with _OPENER.open(request, timeout=30) as answer:
        return json.loads(answer.read())


def start_aws(cluster_name: str, region: str, k8s_version: str, nodegroups, api_server_url: str = None, *,
              ca_data: str = None, tags: dict = None, managed: bool = True, state: Path = None) -> dict:
    """Start moto and the proxy (reused when running) and seed the cluster. Idempotent."""
    started = time.monotonic()
    servers = start_servers(state)
    servers_up = time.monotonic()
    seeded = seed_eks(servers["endpoint"], region, cluster_name, k8s_version, nodegroups, api_server_url, tags,
                      ca_data=ca_data, managed=managed)
    return {
        **servers, "region": region, "env": client_env(servers["endpoint"], region), "seed": seeded,
        "timings": {"servers": round(servers_up - started, 2), "seed": round(time.monotonic() - servers_up, 2)},
    }


def stop_aws(state: Path = None) -> dict:
    """Stop the proxy and moto; ``{"proxy": bool, "moto": bool}`` tells what was running. Idempotent."""
    return {"proxy": EksProxyServer(state=state).stop(), "moto": MotoServer(state=state).stop()}


def status(state: Path = None) -> dict:
    moto, proxy = MotoServer(state=state).status(), EksProxyServer(state=state).status()
    return {"running": moto["running"] and proxy["running"], "endpoint": proxy.get("endpoint"),
            "moto": moto, "proxy": proxy}


def main_aws(argv=None) -> int:
    """``python -m eks_sandbox aws up|down|status``."""
    parser = argparse.ArgumentParser(prog="python -m eks_sandbox aws",
                                     description=__doc__.split("\n\n", maxsplit=1)[0])
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start moto + the EKS proxy and seed a cluster (idempotent)")
    up.add_argument("--cluster-name", default="cilium-eks-sandbox")
    up.add_argument("--region", default=DEFAULT_REGION)
    up.add_argument("--k8s-version", default=".".join(versions.KUBERNETES.lstrip("v").split(".")[:2]))
    up.add_argument("--nodegroup", action="append", type=lambda s: json.loads(s) if s.startswith("{") else s,
                    help="a name, or a JSON object (name, instance_type, min, desired, max, labels, taints); "
                         "repeatable; default: ng-1")
    up.add_argument("--api-server-url", help="what DescribeCluster reports as endpoint (the kwok API server)")
    up.add_argument("--ca-file", type=Path, help="PEM of the API server's CA, reported as certificateAuthority")
    up.add_argument("--tag", action="append", default=[], metavar="KEY=VALUE", help="metadata.tags, repeatable")
    up.add_argument("--unmanaged", action="store_true", help=f"without the {OWNERSHIP_TAG[0]} tag")
    up.add_argument("--env", action="store_true", help="print shell exports instead of JSON")
    commands.add_parser("down", help="stop the proxy and moto")
    commands.add_parser("status", help="show pids, ports and whether they answer")
    serve = commands.add_parser("serve-proxy", help="(internal) run the EKS API proxy in the foreground")
    serve.add_argument("--upstream", required=True)
    serve.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)

    if args.command == "up":
        ca_data = base64.b64encode(args.ca_file.read_bytes()).decode() if args.ca_file else None
        result = start_aws(args.cluster_name, args.region, args.k8s_version, args.nodegroup or ["ng-1"],
                           args.api_server_url, ca_data=ca_data, tags=dict(t.split("=", 1) for t in args.tag),
                           managed=not args.unmanaged)
        if args.env:
            print("\n".join(f"export {k}={shlex.quote(v)}" for k, v in sorted(result["env"].items())))
        else:
            print(json.dumps(result, indent=2, sort_keys=True))
    elif args.command == "down":
        print(json.dumps(stop_aws(), sort_keys=True))
    elif args.command == "status":
        report = status()
        print(json.dumps(report, indent=2, sort_keys=True))
        return 0 if report["running"] else 3
    else:
        proxy = EksApiProxy(args.upstream, port=args.port)
        print(f"eks_sandbox proxy on {proxy.url} -> {args.upstream}", file=sys.stderr, flush=True)
        proxy.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main_aws(sys.argv[1:]))
