"""A real (kernel) stand-in for Cilium's EDT datapath: two network namespaces, a veth, a shaper.

The sandbox's pods are kwok fakes: no packet ever flows between them. To measure a bandwidth limit
for real, this module builds, on this machine's kernel:

* two network namespaces (client, server) joined by a veth pair, addressed from a private /30 that
  exists only inside them (nothing is routed from or to the host);
* an iperf3 server (and netserver when installed) in the server namespace;
* the server side's egress shaped by ``tc`` to a rate: ``fq maxrate`` (the qdisc Cilium's EDT model
  relies on) when the kernel has sch_fq, else ``tbf`` (token bucket).

Wiring to the sandbox (``bind_namespace``): a kwok ``ClusterExec`` for the test's namespace routes
``kubectl exec`` into the client pod to shims named ``iperf3`` / ``netperf`` put in the folder that
is first on kwok-controller's PATH. A shim (``python -m eks_sandbox.netns_datapath tool <name> ...``)

1. finds the pod whose IP is the measurement's target, reads its ``kubernetes.io/egress-bandwidth``
   annotation, and shapes the server veth to that rate (times ``CEKBW_RATE_FACTOR``, 1 by default:
   a factor of 2 plays a datapath that enforces the wrong limit);
2. adds the pod IP as a /32 on the server veth (inside the namespaces only), so the unchanged
   command (``iperf3 -c <pod IP> -R -J``) reaches the server namespace;
3. runs the real tool inside the client namespace and hands its output back through kwok.

Everything else the bandwidth test reads comes from the sandbox itself: ``agent_sim`` routes execs
(node network proxy, one kwok ``Exec`` per agent pod) and writes the CiliumEndpoints, whose IDs
``agent_replay`` reads back for ``cilium-dbg bpf bandwidth list``.

Everything here needs root, iproute2 and iperf3: ``unavailable_reason()`` names the missing piece.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zlib
from pathlib import Path

from . import cluster

PREFIX = "cekbw"
SUBNET = "10.213"  # 10.213.<slot>.0/30, only ever configured inside the namespaces we create
ENV_CLIENT_NS = "CEKBW_CLIENT_NS"
ENV_SERVER_NS = "CEKBW_SERVER_NS"
ENV_SERVER_IF = "CEKBW_SERVER_IF"
ENV_CLIENT_IF = "CEKBW_CLIENT_IF"
ENV_FACTOR = "CEKBW_RATE_FACTOR"
ENV_STATE = "CEKBW_STATE_FILE"
EGRESS_ANNOTATION = "kubernetes.io/egress-bandwidth"
TOOLS = ("iperf3", "netperf")


def _run(argv, check=True, timeout=60, **kwargs):
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=check, **kwargs)


def _real_binary(name):
    """The tool's real path, skipping the exec-shim folder (where a shim of the same name lives)."""
    shim_dir = str(cluster.exec_shim_dir())
    path = os.pathsep.join(p for p in os.environ.get("PATH", "/usr/bin:/bin").split(os.pathsep)
                           if p and os.path.abspath(p) != os.path.abspath(shim_dir))
    return shutil.which(name, path=path + os.pathsep + "/usr/sbin:/usr/bin:/sbin:/bin")


def unavailable_reason():
    """None when namespaces, veth, tc shaping and iperf3 all work here; else which piece is missing."""
    if os.geteuid() != 0:
        return "netns datapath needs root (ip netns add)"
    for tool, package in (("ip", "iproute2"), ("tc", "iproute2"), ("iperf3", "iperf3")):
        if not _real_binary(tool):
            return f"netns datapath needs `{tool}` (Debian package {package}: scripts/install_debs.sh)"
    probe = f"{PREFIX}-probe{os.getpid() % 10000}"
    try:
        result = _run(["ip", "netns", "add", probe], check=False)
        if result.returncode != 0:
            return f"cannot create a network namespace: {result.stderr.strip()}"
        result = _run(["ip", "-n", probe, "link", "add", "p0", "type", "veth", "peer", "name", "p1"], check=False)
        if result.returncode != 0:
            return f"cannot create a veth pair: {result.stderr.strip()}"
        if shaper_kind(probe, "p0") is None:
            return "neither the fq nor the tbf qdisc is available in this kernel"
    finally:
        _run(["ip", "netns", "del", probe], check=False)
    return None


def shaper_kind(netns, dev):
    """``fq`` when the kernel has sch_fq (probed on ``dev``), else ``tbf``, else None."""
    for kind, args in (("fq", ["fq", "maxrate", "10mbit"]), ("tbf", ["tbf", "rate", "10mbit", "burst", "32kb",
                                                                     "latency", "50ms"])):
        if _run(["ip", "netns", "exec", netns, "tc", "qdisc", "replace", "dev", dev, "root"] + args,
                check=False).returncode == 0:
            _run(["ip", "netns", "exec", netns, "tc", "qdisc", "del", "dev", dev, "root"], check=False)
            return kind
    return None


class NetnsPair:
    """Client and server namespaces joined by a veth; the server's egress can be shaped."""

    def __init__(self, tag: str):
        if not tag.isalnum() or len(tag) > 6:
            raise ValueError("tag: up to 6 letters/digits (interface names are limited to 15 characters)")
        self.tag = tag
        self.client_ns = f"{PREFIX}-{tag}-c"
        self.server_ns = f"{PREFIX}-{tag}-s"
        self.client_if = f"{PREFIX}{tag}c"
        self.server_if = f"{PREFIX}{tag}s"
        slot = zlib.crc32(tag.encode()) % 250 + 1
        self.client_ip = f"{SUBNET}.{slot}.1"
        self.server_ip = f"{SUBNET}.{slot}.2"
        self.kind = None
        self.rate_bps = None

    # ------------------------------------------------------------------------------ lifecycle
    def exists(self) -> bool:
        names = _run(["ip", "netns", "list"]).stdout.split()
        return self.client_ns in names or self.server_ns in names

    def up(self) -> "NetnsPair":
        self.down()
        steps = [
            ["ip", "netns", "add", self.client_ns],
            ["ip", "netns", "add", self.server_ns],
            ["ip", "-n", self.client_ns, "link", "add", self.client_if, "type", "veth", "peer", "name",
             self.server_if, "netns", self.server_ns],
            ["ip", "-n", self.client_ns, "addr", "add", f"{self.client_ip}/30", "dev", self.client_if],
            ["ip", "-n", self.server_ns, "addr", "add", f"{self.server_ip}/30", "dev", self.server_if],
        ]
        for ns, dev in ((self.client_ns, self.client_if), (self.server_ns, self.server_if)):
            steps += [["ip", "-n", ns, "link", "set", "lo", "up"], ["ip", "-n", ns, "link", "set", dev, "up"]]
        try:
            for argv in steps:
                _run(argv)
            self.kind = shaper_kind(self.server_ns, self.server_if)
            self._start_servers()
        except BaseException:
            self.down()
            raise
        return self

    def _start_servers(self):
        pidfile = f"/run/{self.server_ns}.iperf3.pid"
        _run(["ip", "netns", "exec", self.server_ns, _real_binary("iperf3"), "-s", "-D", "-I", pidfile])
        netserver = _real_binary("netserver")
        if netserver:
            _run(["ip", "netns", "exec", self.server_ns, netserver, "-D"], check=False)

    def _server_pids(self):
        result = _run(["ip", "netns", "pids", self.server_ns], check=False)
        return [int(p) for p in result.stdout.split() if p.isdigit()] if result.returncode == 0 else []

    def down(self):
        """Stop the daemons of the server namespace and delete both namespaces (the veth goes with them)."""
        for pid in self._server_pids():
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        for ns in (self.client_ns, self.server_ns):
            _run(["ip", "netns", "del", ns], check=False)
        pidfile = Path(f"/run/{self.server_ns}.iperf3.pid")
        if pidfile.exists():
            pidfile.unlink()

    # ------------------------------------------------------------------------------- datapath
    def shape(self, rate_bps: int):
        """Limit what the server sends to ``rate_bps`` (fq maxrate, else tbf)."""
        kind = self.kind or shaper_kind(self.server_ns, self.server_if)
        if kind == "fq":
            args = ["fq", "maxrate", f"{int(rate_bps)}bit"]
        else:
            # burst: at least one MTU-sized TSO chunk and ~5 ms of traffic, so tbf does not starve TCP
            burst = max(32 * 1024, int(rate_bps / 8 * 0.005))
            args = ["tbf", "rate", f"{int(rate_bps)}bit", "burst", str(burst), "latency", "50ms"]
        _run(["ip", "netns", "exec", self.server_ns, "tc", "qdisc", "replace", "dev", self.server_if, "root"] + args)
        self.kind, self.rate_bps = kind, int(rate_bps)

    def qdisc(self) -> str:
        return _run(["ip", "netns", "exec", self.server_ns, "tc", "qdisc", "show", "dev", self.server_if]).stdout

    def add_server_address(self, ip: str):
        """Make ``ip`` (a pod IP) answer in the server namespace and reachable from the client one."""
        _run(["ip", "-n", self.server_ns, "addr", "replace", f"{ip}/32", "dev", self.server_if])
        _run(["ip", "-n", self.client_ns, "route", "replace", f"{ip}/32", "dev", self.client_if])

    def run_client(self, argv, timeout=120):
        binary = _real_binary(argv[0])
        if not binary:
            raise FileNotFoundError(argv[0])
        return _run(["ip", "netns", "exec", self.client_ns, binary] + list(argv[1:]), check=False, timeout=timeout)

    def env(self, factor: float = 1.0) -> dict:
        return {ENV_CLIENT_NS: self.client_ns, ENV_SERVER_NS: self.server_ns, ENV_CLIENT_IF: self.client_if,
                ENV_SERVER_IF: self.server_if, ENV_FACTOR: str(factor)}

    @classmethod
    def from_env(cls, env) -> "NetnsPair":
        pair = cls.__new__(cls)
        pair.client_ns, pair.server_ns = env[ENV_CLIENT_NS], env[ENV_SERVER_NS]
        pair.client_if, pair.server_if = env[ENV_CLIENT_IF], env[ENV_SERVER_IF]
        pair.kind, pair.rate_bps, pair.tag = None, None, ""
        return pair


# ------------------------------------------------------------------------------ sandbox wiring

def write_tool_shims() -> Path:
    """``iperf3`` / ``netperf`` in the exec-shim folder (first on kwok-controller's PATH)."""
    shims = cluster.exec_shim_dir()
    shims.mkdir(parents=True, exist_ok=True)
    for program in TOOLS:
        path = shims / program
        path.write_text(
            f"#!{sys.executable}\n"
            "import sys\n"
            "from eks_sandbox import netns_datapath\n"
            f"sys.exit(netns_datapath.tool_main([{program!r}] + sys.argv[1:]))\n")
        path.chmod(0o755)
    return shims


def exec_rule_name(namespace: str) -> str:
    """Name of the ClusterExec that binds ``namespace``'s pods to the namespace pair."""
    return f"cekbw-{namespace}"[:63]


def pair_for_sandbox(name: str) -> "NetnsPair":
    """The namespace pair of a sandbox (tags are limited to 6 characters: a hash of the name and of
    the state folder, so sandboxes of one name under two ``$CILIUM_EKS_STATE`` folders do not meet)."""
    from . import cache
    return NetnsPair(f"{zlib.crc32(f'{cache.state_dir()}/{name}'.encode()):08x}"[:6])


def bind_namespace(api_client, namespace: str, pair: NetnsPair, kubeconfig: str, factor: float = 1.0,
                   containers=("netperf",)) -> str:
    """ClusterExec routing execs into ``namespace``'s pods to the tool shims run in ``pair``'s client namespace.

    Cluster-scoped, so it can exist before the namespace does (the module creates its namespace).
    Returns the ClusterExec's name.
    """
    from kubernetes import client

    write_tool_shims()
    name = exec_rule_name(namespace)
    envs = [{"name": k, "value": v} for k, v in pair.env(factor).items()]
    envs += [{"name": "KUBECONFIG", "value": str(kubeconfig)},
             {"name": "PYTHONPATH", "value": str(Path(__file__).resolve().parent.parent)},
             {"name": "CEKBW_POD_NAMESPACE", "value": namespace}]
    body = {"apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "ClusterExec", "metadata": {"name": name},
            "spec": {"selector": {"matchNamespaces": [namespace]},
                     "execs": [{"containers": list(containers), "local": {"envs": envs}}]}}
    custom = client.CustomObjectsApi(api_client)
    try:
        custom.delete_cluster_custom_object("kwok.x-k8s.io", "v1alpha1", "clusterexecs", name)
    except client.exceptions.ApiException as exc:
        if exc.status != 404:
            raise
    custom.create_cluster_custom_object("kwok.x-k8s.io", "v1alpha1", "clusterexecs", body)
    return name


def unbind_namespace(api_client, name: str):
    from kubernetes import client

    try:
        client.CustomObjectsApi(api_client).delete_cluster_custom_object("kwok.x-k8s.io", "v1alpha1",
                                                                         "clusterexecs", name)
    except client.exceptions.ApiException as exc:
        if exc.status != 404:
            raise


def _target(argv):
    for flag in ("-c", "-H"):
        if flag in argv and argv.index(flag) + 1 < len(argv):
            return argv[argv.index(flag) + 1]
    return None


def sync_from_cluster(pair: NetnsPair, namespace: str, target_ip: str, factor: float, env=None) -> dict:
    """Program the stand-in datapath for the pod at ``target_ip``: address, shaping from its annotation."""
    from kubernetes import client, config

    env = os.environ if env is None else env
    api_client = config.new_client_from_config(config_file=env.get("KUBECONFIG"))
    core = client.CoreV1Api(api_client)
    pod = next((p for p in core.list_namespaced_pod(namespace).items if p.status.pod_ip == target_ip), None)
    if pod is None:
        raise LookupError(f"no pod with IP {target_ip} in namespace {namespace}")
    pair.add_server_address(target_ip)
    annotation = (pod.metadata.annotations or {}).get(EGRESS_ANNOTATION)
    if annotation:
        from .agent_replay import parse_quantity

        bits = parse_quantity(annotation)
        if bits is not None and bits >= 8:
            pair.shape(int((bits // 8) * 8 * factor))
    return {"pod": pod.metadata.name, "annotation": annotation, "rate_bps": pair.rate_bps, "kind": pair.kind}


def tool_main(argv) -> int:
    """Entry point of the ``iperf3`` / ``netperf`` shims kwok runs for execs into the client pod."""
    name, args = argv[0], list(argv[1:])
    env = os.environ
    if ENV_CLIENT_NS not in env:
        sys.stderr.write(f'exec: "{name}": executable file not found in $PATH\n')
        return 127
    pair = NetnsPair.from_env(env)
    target = _target(args)
    try:
        if target:
            info = sync_from_cluster(pair, env.get("CEKBW_POD_NAMESPACE", "default"), target,
                                     float(env.get(ENV_FACTOR, "1")), env)
            if env.get(ENV_STATE):
                Path(env[ENV_STATE]).write_text(json.dumps(info))
        result = pair.run_client([name] + args, timeout=900)
    except (LookupError, FileNotFoundError, subprocess.SubprocessError) as exc:
        sys.stderr.write(f"netns_datapath: {exc}\n")
        return 1
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    return result.returncode


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["tool"] and len(argv) > 1:
        return tool_main(argv[1:])
    if argv[:1] == ["check"]:
        reason = unavailable_reason()
        print(reason or "netns datapath available")
        return 1 if reason else 0
    sys.stderr.write("usage: python -m eks_sandbox.netns_datapath check | tool <iperf3|netperf> [args...]\n")
    return 2


if __name__ == "__main__":
    sys.exit(main())
