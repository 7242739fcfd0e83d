"""The Kubernetes half of the sandbox: a kwok cluster of real control-plane binaries.

``kwokctl --runtime binary`` runs etcd, kube-apiserver, kube-controller-manager, kube-scheduler
and kwok-controller as local processes, every one bound to 127.0.0.1, with RBAC on. The nodes and
kube-system add-ons of a fresh EKS cluster are then created through the real API server.
"""
import base64
import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from . import cache, versions

SERVICE_CIDR = "10.100.0.0/16"
POD_CIDR = "192.168.64.0/18"
AGENT_CONTAINERS = ["cilium-agent"]


class SandboxError(RuntimeError):
    """The sandbox could not be brought up or down; the message says which step and why."""


def kwok_workdir() -> Path:
    return cache.state_dir() / "kwok"


def cluster_dir(name: str) -> Path:
    return kwok_workdir() / "clusters" / name


def exec_shim_dir() -> Path:
    """Folder put first on kwok-controller's PATH: ``cilium``/``cilium-dbg`` there answer execs."""
    return cache.state_dir() / "exec-shims"


def token_webhook_kubeconfig(url: str) -> dict:
    """The kubeconfig-shaped file kube-apiserver's ``--authentication-token-webhook-config-file`` names:
    where to send ``TokenReview``s (Kubernetes docs, "Authenticating", Webhook Token Authentication)."""
    return {"apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": "eks-sandbox-authenticator", "cluster": {"server": url}}],
            "users": [{"name": "kube-apiserver", "user": {}}],
            "contexts": [{"name": "webhook", "context": {"cluster": "eks-sandbox-authenticator",
                                                         "user": "kube-apiserver"}}],
            "current-context": "webhook"}


# kwok v0.8.0's default Stages (kustomize/stage in the sigs.k8s.io/kwok module), as kwokctl's binary runtime
# installs them (pkg/kwokctl/runtime/cluster.go getDefaultNodeStages/getDefaultPodStages: node-initialize,
# the heartbeat with lease, pod-ready, pod-complete, pod-delete).
KWOK_STAGE_FILES = ("node/fast/node-initialize.yaml", "node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
                    "pod/fast/pod-ready.yaml", "pod/fast/pod-complete.yaml", "pod/fast/pod-delete.yaml")
# Pods kwok must leave alone when real Cilium runs (node_runtime.py sets their status): Cilium's own pods,
# which it runs, and every non-hostNetwork pod, whose network it sets up.
REAL_CILIUM_POD_READY_EXCLUSIONS = [
    {"key": ".spec.hostNetwork", "operator": "In", "values": ["true"]},
    {"key": '.metadata.labels["k8s-app"]', "operator": "NotIn",
     "values": ["cilium", "cilium-pre-flight-check", "cilium-pre-flight-check-deployment"]},  # node_runtime.CILIUM_K8S_APPS
    {"key": '.metadata.labels["io.cilium/app"]', "operator": "NotIn", "values": ["operator"]},
    {"key": '.metadata.labels["eks-sandbox.cloudnet.io/run"]', "operator": "NotIn", "values": ["real"]},
]


# ... and which terminating pods kwok must not delete at once: Cilium's, which the node runtime deletes once their
# processes are gone, as a kubelet does (else a new pod could bind the old one's host ports before it exits).
REAL_CILIUM_POD_DELETE_EXCLUSIONS = REAL_CILIUM_POD_READY_EXCLUSIONS[1:]


def real_cilium_stages(stage_dir: Path) -> list:
    """kwok's default Stages with pod-ready and pod-delete narrowed by the exclusions above (kwok's selector:
    ``In`` on an absent field is false, ``NotIn`` true: pkg/utils/expression/selector.go). Giving kwokctl any
    Stage replaces all its defaults (cluster.go: ``if len(stages) == 0 { defaults }``), hence all five."""
    stages = [yaml.safe_load((stage_dir / name).read_text()) for name in KWOK_STAGE_FILES]
    for stage in stages:
        extra = {"pod-ready": REAL_CILIUM_POD_READY_EXCLUSIONS,
                 "pod-delete": REAL_CILIUM_POD_DELETE_EXCLUSIONS}.get(stage["metadata"]["name"], [])
        stage["spec"]["selector"]["matchExpressions"] += extra
    return stages


def kwok_stage_dir() -> Path:
    """kwok's Stage manifests, from the Go module cache (downloaded when the kwok tool was built)."""
    from . import gobuild
    with tempfile.TemporaryDirectory() as scratch:
        downloaded = gobuild._download("kwok", "sigs.k8s.io/kwok", versions.KWOK, cwd=Path(scratch))
    return Path(downloaded["Dir"]) / "kustomize" / "stage"


def kwokctl_config(binaries: dict, bind_address: str = "127.0.0.1", egress_selector_file: Path = None,
                   token_webhook_file: Path = None, stages: list = ()) -> list:
    """The documents passed to ``kwokctl create cluster --config``.

    ``egress_selector_file``: kube-apiserver reaches the kubelets (kwok-controller) through the HTTP
    CONNECT proxy it names (``agent_sim.egress_selector_config``): the EKS-like node addresses are not local.
    ``token_webhook_file``: bearer tokens the API server does not know itself (EKS tokens) are checked
    by the webhook it names (:func:`token_webhook_kubeconfig`), as EKS's API servers do with
    aws-iam-authenticator; the client certificate of the sandbox's kubeconfig keeps working.
    ``stages``: kwok Stages replacing kwok's defaults (``real_cilium_stages``); with them the ``Logs``
    CRD is on too (``kubectl logs`` of the real Cilium pods)."""
    apiserver_args = [{"key": "service-cluster-ip-range", "value": SERVICE_CIDR}]
    if egress_selector_file:
        apiserver_args.append({"key": "egress-selector-config-file", "value": str(egress_selector_file)})
    if token_webhook_file:
        apiserver_args += [{"key": "authentication-token-webhook-config-file", "value": str(token_webhook_file)},
                           {"key": "authentication-token-webhook-version", "value": "v1"}]
    options = {
        "runtime": "binary",
        "bindAddress": bind_address,
        "kubeAuthorization": True,
        "disableQPSLimits": True,
        "kubeApiserverBinary": str(binaries["kube-apiserver"]),
        "kubeControllerManagerBinary": str(binaries["kube-controller-manager"]),
        "kubeSchedulerBinary": str(binaries["kube-scheduler"]),
        "etcdBinary": str(binaries["etcd"]),
        "kwokControllerBinary": str(binaries["kwok"]),
        "enableCRDs": ["Exec", "ClusterExec"] + (["Logs", "ClusterLogs"] if stages else []),
        "kubeVersion": versions.KUBERNETES,
    }
    if "kubectl" in binaries:
        options["kubectlBinary"] = str(binaries["kubectl"])
    return [
        {
            "apiVersion": "config.kwok.x-k8s.io/v1alpha1",
            "kind": "KwokctlConfiguration",
            "options": options,
            "componentsPatches": [
                {"name": "kube-apiserver", "extraArgs": apiserver_args},
                {"name": "kube-controller-manager",
                 "extraArgs": [{"key": "service-cluster-ip-range", "value": SERVICE_CIDR}]},
                # Pod IPs from the VPC range, as the VPC CNI or Cilium ENI IPAM hand out.
                {"name": "kwok-controller", "extraArgs": [{"key": "cidr", "value": POD_CIDR}]},
            ],
        },
    ] + list(stages)


def agent_exec_rules(kubeconfig: Path) -> dict:
    """ClusterExec routing ``kubectl exec`` into Cilium agent containers to the recorded-output replay."""
    shims = exec_shim_dir()
    return {
        "apiVersion": "kwok.x-k8s.io/v1alpha1",
        "kind": "ClusterExec",
        "metadata": {"name": "cilium-agent-replay"},
        "spec": {
            "selector": {"matchNamespaces": ["kube-system"]},
            "execs": [{
                "containers": AGENT_CONTAINERS,
                "local": {
                    "workDir": str(shims),
                    "envs": [
                        {"name": "KUBECONFIG", "value": str(kubeconfig)},
                        {"name": "PATH", "value": f"{shims}:{os.environ.get('PATH', '/usr/bin:/bin')}"},
                        {"name": "PYTHONPATH", "value": str(Path(__file__).resolve().parent.parent)},
                    ],
                },
            }],
        },
    }


def write_exec_shims() -> Path:
    """Executables named like the agent's CLIs. kwok runs them for ``kubectl exec`` into Cilium pods: in a pod
    the node runtime runs for real (its kwok ``Exec`` sets ``EKS_SANDBOX_REAL_POD_DIR``) they run the real
    program in the container (``node_runtime.exec_main``), else they hand their argv to the replay."""
    shims = exec_shim_dir()
    shims.mkdir(parents=True, exist_ok=True)
    for program in ("cilium", "cilium-dbg"):
        text = (f"#!{sys.executable}\n"
                "import os\n"
                "import sys\n"
                "if os.environ.get('EKS_SANDBOX_REAL_POD_DIR'):\n"
                "    from eks_sandbox import node_runtime\n"
                f"    sys.exit(node_runtime.exec_main([{program!r}] + sys.argv[1:]))\n"
                "from eks_sandbox import agent_replay\n"
                f"sys.exit(agent_replay.main([{program!r}] + sys.argv[1:]))\n")
        _replace_executable(shims / program, text)
    return shims


def _replace_executable(path: Path, text: str) -> None:
    """Write ``path`` whole or not at all: the other sandboxes of this state folder (parallel test workers) may
    be running the shim right now, and a rewrite in place would let them exec a half-written file."""
    if path.is_file() and os.access(path, os.X_OK) and path.read_text() == text:
        return
    with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=f".{path.name}.", delete=False) as handle:
        handle.write(text)
    os.chmod(handle.name, 0o755)
    os.replace(handle.name, path)


def _kwokctl(binaries: dict, args: list, env: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    argv = [str(binaries["kwokctl"])] + args
    try:
        result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise SandboxError(f"{' '.join(argv)} did not finish within {timeout}s") from exc
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).splitlines()[-20:])
        raise SandboxError(f"{' '.join(argv)} failed with exit code {result.returncode}:\n{tail}")
    return result


def kwokctl_env(extra_path: Path = None) -> dict:
    env = dict(os.environ, KWOK_WORKDIR=str(kwok_workdir()))
    if extra_path:
        env["PATH"] = f"{extra_path}:{env.get('PATH', '')}"
    return env


def component_pids(name: str) -> dict:
    """Processes kwokctl started for a cluster, from its pid files: component -> pid."""
    pids = {}
    pid_dir = cluster_dir(name) / "pids"
    if pid_dir.is_dir():
        for pid_file in pid_dir.glob("*.pid"):
            try:
                pids[pid_file.stem] = int(pid_file.read_text().strip())
            except ValueError:
                continue
    return pids


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z")


def create(name: str, kubeconfig: Path, binaries: dict, egress_proxy_socket: Path = None,
           token_webhook_url: str = None, real_cilium: bool = False) -> None:
    cfg_path = cache.state_dir() / f"{name}.kwokctl.yaml"
    cfg_path.parent.mkdir(parents=True, exist_ok=True)
    egress_file = webhook_file = None
    if egress_proxy_socket:
        from .agent_sim import egress_selector_config
        egress_file = cache.state_dir() / f"{name}.egress-selector.yaml"
        egress_file.write_text(yaml.safe_dump(egress_selector_config(egress_proxy_socket)))
    if token_webhook_url:
        webhook_file = cache.state_dir() / f"{name}.token-webhook.yaml"
        webhook_file.write_text(yaml.safe_dump(token_webhook_kubeconfig(token_webhook_url)))
    stages = real_cilium_stages(kwok_stage_dir()) if real_cilium else []
    cfg_path.write_text(yaml.safe_dump_all(kwokctl_config(binaries, egress_selector_file=egress_file,
                                                          token_webhook_file=webhook_file, stages=stages)))
    shims = write_exec_shims()
    kubeconfig.parent.mkdir(parents=True, exist_ok=True)
    with _one_create_at_a_time():
        _kwokctl(binaries, ["create", "cluster", "--name", name, "--config", str(cfg_path),
                            "--kubeconfig", str(kubeconfig), "--wait", "120s", "--quiet-pull"],
                 env=kwokctl_env(shims))
    kubeconfig.chmod(0o600)


CREATE_LOCK = Path("/run/cloudnet-cilium-eks/kwokctl-create.lock")


@contextlib.contextmanager
def _one_create_at_a_time():
    """Hold a host-wide lock while kwokctl creates a cluster. kwokctl gives each component the first free port
    counting down from 32767 (GetUnusedPort, pkg/utils/net/unused_port.go at kwok v0.8.0 l.33-45), and checks it
    by listening once: two creates at the same moment (two sandboxes, two state folders, two checkouts) pick the
    same ports, and the second cluster's kwokctl then talks to the first's API server (seen: "x509: certificate
    signed by unknown authority ... kwok-ca", "failed to init crds ... resource not handled"). Once ``--wait``
    returns, the ports are bound and the next create skips them."""
    CREATE_LOCK.parent.mkdir(parents=True, exist_ok=True)
    with open(CREATE_LOCK, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def delete(name: str, binaries: dict, grace: float = 15) -> list:
    """Delete the cluster and make sure none of its processes survive.

    kwokctl signals the components and returns; kube-apiserver takes a few seconds to drain.
    Whatever is still alive after ``grace`` seconds is killed and returned, so callers can report it.
    """
    pids = component_pids(name)
    if cluster_dir(name).exists():
        try:
            _kwokctl(binaries, ["delete", "cluster", "--name", name], env=kwokctl_env(), timeout=120)
        except SandboxError:
            pass  # fall through to killing what is left
    _wait_exit(pids.values(), grace)
    survivors = [f"{component}[{pid}]" for component, pid in pids.items() if alive(pid)]
    for pid in pids.values():
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
    _wait_exit(pids.values(), 10)
    return survivors


def _wait_exit(pids, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)


def is_running(name: str) -> bool:
    pids = component_pids(name)
    return bool(pids) and all(alive(pid) for pid in pids.values())


def describe_components(name: str) -> dict:
    return {component: {"pid": pid, "alive": alive(pid)} for component, pid in sorted(component_pids(name).items())}


def kubeconfig_server(kubeconfig: Path) -> str:
    config = yaml.safe_load(kubeconfig.read_text())
    return config["clusters"][0]["cluster"]["server"]


def kubeconfig_ca_data(kubeconfig: Path) -> str:
    """The API server's CA (base64), as EKS returns it in ``certificateAuthority.data``."""
    config = yaml.safe_load(kubeconfig.read_text())
    cluster_entry = config["clusters"][0]["cluster"]
    if "certificate-authority-data" in cluster_entry:
        return cluster_entry["certificate-authority-data"]
    return base64.b64encode(Path(cluster_entry["certificate-authority"]).read_bytes()).decode()


def dump(obj) -> str:
    return json.dumps(obj, indent=2, sort_keys=True)
