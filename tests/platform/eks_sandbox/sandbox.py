"""One sandbox = one kwok cluster dressed as EKS + moto holding the matching AWS records.

``up`` is idempotent (a running sandbox is reused); ``down`` stops every process it started
and checks that none is left; ``status`` reports what is running.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from . import aws, cache, charts, cluster, eks_objects, gobuild, kube, pod_spec, versions

DEFAULT_NAME = "cilium-eks-sandbox"
KWOK_TOOLS = ("kwok", "etcd", "kubernetes")


@dataclass
class SandboxSpec:
    name: str = DEFAULT_NAME
    region: str = "us-east-1"
    nodes: int = 3
    nodegroup: str = "ng-1"
    instance_type: str = "t3.medium"
    agent_not_ready_taint: bool = False
    vpc_cni: bool = True
    vpc_cni_tag: str = eks_objects.VPC_CNI_TAG
    aws: bool = True
    kernel_version: str = eks_objects.KERNEL_VERSION
    # False: an empty platform (no EKS cluster, no node, an empty kube-system) for the real eksctl to
    # create a cluster in; ``nodes``, ``nodegroup``, ``vpc_cni`` then do not apply.
    seed: bool = True
    # "replay": Cilium's agents answer from recordings (agent_sim + agent_replay); "real": the chart's agent and
    # operator pods run for real (node_runtime.py), for the versions gobuild builds (versions.CILIUM_AGENTS).
    cilium: str = "replay"
    # "kwok": the aws-node pods are kwok's (Ready, nothing runs); "real": the VPC CNI add-on from its own manifest
    # (versions.AWS_VPC_CNI), its aws-node pods run for real by the node runtime (ipamd against moto, the aws-cni
    # plugin, 10-aws.conflist): chaining's real tier. Needs cilium="real" (the node runtime) and a seeded cluster.
    vpc_cni_runtime: str = "kwok"


@dataclass
class Sandbox:
    spec: SandboxSpec
    kubeconfig: str
    api_server: str
    aws_env: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)

    @property
    def env(self) -> dict:
        """Environment a client (ansible-playbook, kubectl, boto3, eksctl) needs to use this sandbox.

        Besides KUBECONFIG and the moto endpoint: the built helm, kubectl, eksctl and
        aws-iam-authenticator first on PATH (eksctl's kubeconfigs log in with the latter) and the newest
        Cilium chart, as inventories/sandbox and the tests read them.
        """
        newest = max(versions.CILIUM_CHARTS.values(), key=lambda v: tuple(int(p) for p in v.split(".")))
        tools = {name: gobuild.ensure(recipe)[name] for name, recipe in (
            ("helm", "helm"), ("kubectl", "kubernetes"), ("eksctl", "eksctl"),
            ("aws-iam-authenticator", "aws-iam-authenticator"))}
        path = [str(tool.parent) for tool in tools.values()] + [os.environ.get("PATH", "")]
        # Where this sandbox's tools and state live, so that tools run with this env alone find it.
        where = {var: os.environ[var] for var in ("CILIUM_EKS_CACHE", "CILIUM_EKS_STATE") if os.environ.get(var)}
        return dict(
            self.aws_env,
            **where,
            KUBECONFIG=self.kubeconfig,
            PATH=os.pathsep.join(dict.fromkeys(path)),  # the platform's tools first
            CILIUM_EKS_HELM=str(tools["helm"]),
            CILIUM_EKS_CHART=str(charts.ensure_chart(newest)),
            CILIUM_EKS_EKSCTL=str(tools["eksctl"]),
        )


def sandbox_dir(name: str) -> Path:
    return cache.state_dir() / "sandboxes" / name


def aws_state(name: str) -> Path:
    """Each sandbox has its own moto: stopping one never stops another's."""
    return sandbox_dir(name) / "aws"


def _record_path(name: str) -> Path:
    return sandbox_dir(name) / "sandbox.json"


def load(name: str = DEFAULT_NAME):
    path = _record_path(name)
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    return Sandbox(spec=SandboxSpec(**data["spec"]), kubeconfig=data["kubeconfig"],
                   api_server=data["api_server"], aws_env=data.get("aws_env", {}), timings=data.get("timings", {}))


def _save(box: Sandbox) -> None:
    path = _record_path(box.spec.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(box), indent=2, sort_keys=True))
    path.chmod(0o600)


def _binaries(names=KWOK_TOOLS) -> dict:
    binaries = {}
    for name in names:
        binaries.update(gobuild.ensure(name))
    return binaries


def _step(timings: dict, label: str, started: float, out) -> float:
    now = time.monotonic()
    timings[label] = round(now - started, 2)
    print(f"sandbox: {label:<28} {timings[label]:6.2f}s", file=out, flush=True)
    return now


def expected_nodes(spec: SandboxSpec) -> list:
    kubelet = f"{versions.KUBERNETES}-eks-{versions.KUBERNETES.lstrip('v').replace('.', '')[:4]}a1b2"
    taints = [eks_objects.AGENT_NOT_READY_TAINT] if spec.agent_not_ready_taint else []
    return [eks_objects.node(i, cluster=spec.name, region=spec.region, nodegroup=spec.nodegroup,
                             instance_type=spec.instance_type, kubelet_version=kubelet, taints=taints,
                             kernel_version=spec.kernel_version)
            for i in range(spec.nodes)]


def instance_nodes(spec: SandboxSpec, seeded: dict, aws_env: dict) -> list:
    """The node group's nodes as EC2 instances in moto (``ec2_nodes``), in the node group's (public) subnets
    and the cluster security group, as EKS launches managed nodes."""
    import boto3

    from . import ec2_nodes
    ec2 = boto3.session.Session(aws_access_key_id=aws_env["AWS_ACCESS_KEY_ID"],
                                aws_secret_access_key=aws_env["AWS_SECRET_ACCESS_KEY"],
                                region_name=spec.region).client("ec2", endpoint_url=aws_env["AWS_ENDPOINT_URL"])
    existing = ec2_nodes._running(ec2, spec.name, spec.nodegroup)
    kubelet = expected_nodes(SandboxSpec(nodes=1))[0]["status"]["nodeInfo"]["kubeletVersion"]
    common = dict(cluster=spec.name, region=spec.region, nodegroup=spec.nodegroup, kubelet_version=kubelet,
                  taints=[eks_objects.AGENT_NOT_READY_TAINT] if spec.agent_not_ready_taint else [])
    nodes = [ec2_nodes.node_for_instance(instance, **common) for instance in existing[:spec.nodes]]
    nodes += ec2_nodes.launch_instance_nodes(
        ec2, count=spec.nodes - len(nodes), subnets=seeded["subnet_ids"]["public"],
        security_groups=[seeded["cluster_security_group_id"]], instance_type=spec.instance_type, **common)
    for node in nodes:
        node["status"]["nodeInfo"]["kernelVersion"] = spec.kernel_version
    return nodes


def real_vpc_cni(spec: SandboxSpec) -> bool:
    """Do this sandbox's aws-node pods run the AWS VPC CNI for real?"""
    return spec.vpc_cni_runtime == "real"


def real_vpc_cni_unavailable_reason(spec: SandboxSpec):
    """Why the VPC CNI cannot run for real in this sandbox (None when it can)."""
    if spec.vpc_cni_runtime not in ("kwok", "real"):
        return f"vpc_cni_runtime={spec.vpc_cni_runtime!r}: choose 'kwok' or 'real'"
    if not real_vpc_cni(spec):
        return None
    if spec.cilium != "real" or not spec.seed or not spec.vpc_cni:
        return "a real AWS VPC CNI needs the node runtime of --cilium real, a seeded cluster and the vpc-cni add-on"
    if pod_spec.image_version(f"x:{spec.vpc_cni_tag}") != versions.AWS_VPC_CNI.lstrip("v"):
        return f"only the AWS VPC CNI {versions.AWS_VPC_CNI} is built here (asked: {spec.vpc_cni_tag})"
    return None


def vpc_cni_manifest(spec: SandboxSpec):
    """The AWS VPC CNI's own manifest (amazon-vpc-cni-k8s config/master/aws-k8s-cni.yaml at the built version, copied
    into its tool's cache) when aws-node runs for real, else None."""
    return gobuild.module_data_dir("aws-vpc-cni", "config") / "aws-k8s-cni.yaml" if real_vpc_cni(spec) else None


def kube_system_objects(spec: SandboxSpec) -> list:
    """What a fresh EKS cluster has in kube-system; with a real VPC CNI, aws-node from the add-on's own manifest."""
    objects = eks_objects.kube_system_addons(spec.region, spec.vpc_cni_tag, with_vpc_cni=spec.vpc_cni)
    if not real_vpc_cni(spec):
        return objects
    addon = eks_objects.vpc_cni_addon_from_manifest(vpc_cni_manifest(spec), spec.region, spec.vpc_cni_tag)
    return addon + [o for o in objects if o["metadata"]["name"] != "aws-node"]


def populate(api, spec: SandboxSpec, kubeconfig: Path, nodes: list = None) -> None:
    """Nodes, kube-system add-ons and the exec routing of agent pods, through the API server
    (only the exec routing for an empty platform: the real eksctl brings the rest)."""
    if spec.seed:
        kube.apply_all(api, nodes if nodes is not None else expected_nodes(spec))
        kube.wait_for(lambda: len(kube.ready_nodes(api)) >= spec.nodes, f"{spec.nodes} Ready nodes", timeout=60)
        kube.apply_all(api, kube_system_objects(spec))
    kube.wait_for(lambda: _crd_established(api, "clusterexecs.kwok.x-k8s.io"), "kwok ClusterExec CRD", timeout=60)
    kube.apply(api, cluster.agent_exec_rules(kubeconfig))
    if spec.seed and spec.vpc_cni:  # a real ipamd first takes its ENI's secondary IPs from moto
        kube.wait_for(lambda: kube.daemonset_rolled_out(api, "kube-system", "aws-node"),
                      "aws-node DaemonSet rollout", timeout=300 if real_vpc_cni(spec) else 120)


def _crd_established(api, name: str) -> bool:
    crd = api.resources.get(api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition").get(name=name)
    return any(c.type == "Established" and c.status == "True" for c in (crd.status.conditions or []))


# ------------------------------------------------------------ background processes of a sandbox

def _daemon_record(name: str, kind: str) -> Path:
    return sandbox_dir(name) / f"{kind}.json"


def _daemon_pid(name: str, kind: str):
    record = _daemon_record(name, kind)
    if not record.is_file():
        return None
    pid = json.loads(record.read_text()).get("pid")
    return pid if pid and cluster.alive(pid) else None


def _start_daemon(name: str, kind: str, argv: list) -> int:
    """Start ``python -m eks_sandbox.<module> ...`` in the background; its pid goes to <kind>.json, its output
    to <kind>.log (both in the sandbox dir)."""
    directory = sandbox_dir(name)
    directory.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(Path(__file__).resolve().parent.parent)] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    with open(directory / f"{kind}.log", "ab") as log_file:
        proc = subprocess.Popen([sys.executable, "-m", *argv], stdout=log_file, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env, start_new_session=True, close_fds=True)
    _daemon_record(name, kind).write_text(json.dumps({"pid": proc.pid}))
    return proc.pid


def _stop_daemon(name: str, kind: str, grace: float) -> list:
    """SIGTERM, then SIGKILL after ``grace`` seconds; returns ``["<kind>[pid]"]`` if it had to be killed."""
    record = _daemon_record(name, kind)
    pid = _daemon_pid(name, kind)
    killed = []
    if pid:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while cluster.alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if cluster.alive(pid):
            os.kill(pid, signal.SIGKILL)
            killed.append(f"{kind}[{pid}]")
        try:
            os.waitpid(pid, 0)  # reap it when this process started it (it is dead or dying)
        except ChildProcessError:
            pass
    if record.exists():
        record.unlink()
    return killed


# ------------------------------------------------------------------ agent simulator (agent_sim.py)

def _proxy_socket(name: str) -> Path:
    """Unix socket of the node-network proxy kube-apiserver reaches the kubelets through."""
    return sandbox_dir(name) / "node-network.sock"


def agent_sim_pid(name: str):
    """Pid of the sandbox's agent simulator when it is running, else None."""
    return _daemon_pid(name, "agent-sim")


def start_agent_sim(name: str, kubeconfig, proxy_only: bool = False) -> int:
    """Start ``python -m eks_sandbox.agent_sim`` (``proxy_only``: only its node-network proxy, for real Cilium)."""
    return _start_daemon(name, "agent-sim", [
        "eks_sandbox.agent_sim", "--kubeconfig", str(kubeconfig), "--proxy-socket", str(_proxy_socket(name)),
        "--shim-dir", str(cluster.exec_shim_dir())] + (["--proxy-only"] if proxy_only else []))


def stop_agent_sim(name: str, grace: float = 10) -> list:
    """Stop the simulator; returns ``["agent-sim[pid]"]`` if it had to be killed."""
    return _stop_daemon(name, "agent-sim", grace)


# ------------------------------------------------------------------ real Cilium (node_runtime.py)

def real_cilium_state(name: str) -> Path:
    return sandbox_dir(name) / "real"


def real_cilium_tag(name: str) -> str:
    from . import vpc_network
    return vpc_network.sandbox_tag(cache.state_dir(), name)


def real_cilium_unavailable_reason(spec: SandboxSpec):
    """Why real Cilium cannot run for this sandbox here (None when it can)."""
    if not spec.aws:
        return "real Cilium needs moto (the ENIs, the instances behind the nodes, IMDS): drop --no-aws"
    if os.geteuid() != 0:
        return "real Cilium needs root (network namespaces, mounts, cgroups)"
    for tool, package in (("ip", "iproute2"), ("nsenter", "util-linux"), ("unshare", "util-linux"),
                          ("iptables", "iptables"), ("ipset", "ipset")):
        if not shutil.which(tool, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin"):
            return f"real Cilium needs `{tool}` (Debian package {package}: scripts/install_debs.sh)"
    if not Path("/usr/lib/llvm-19/bin/clang").exists():
        return "real Cilium needs clang 19 (Debian package clang-19: scripts/install_debs.sh)"
    return None


def node_runtime_pid(name: str):
    return _daemon_pid(name, "node-runtime")


def start_node_runtime(spec: SandboxSpec, kubeconfig, aws_env: dict) -> int:
    name = spec.name
    # Pods of nodes with no CNI configuration get a stand-in address (the kwok VPC CNI era), unless aws-node runs for
    # real: then they wait for its 10-aws.conflist, as a kubelet waits for its network plugin.
    stand_in = [] if real_vpc_cni(spec) else ["--stand-in-cni"]
    return _start_daemon(name, "node-runtime", [
        "eks_sandbox.node_runtime", "--kubeconfig", str(kubeconfig), "--sandbox", name,
        "--state", str(real_cilium_state(name)), "--aws-endpoint", aws_env["AWS_ENDPOINT_URL"],
        "--region", spec.region, "--tag", real_cilium_tag(name)] + stand_in)


def stop_node_runtime(name: str) -> list:
    """Stop the node runtime (it stops the Cilium containers and removes the nodes' namespaces), then remove
    whatever is left (after a crash too) and give back the host sysctl lease."""
    from . import host_sysctl, node_runtime
    killed = _stop_daemon(name, "node-runtime", grace=120)
    found = node_runtime.cleanup(real_cilium_state(name), real_cilium_tag(name))
    leftovers = [f"{kind}:{item}" for kind, items in found.items() for item in items]
    host_sysctl.release(host_sysctl.holder_id(sandbox_dir(name), name))
    return killed + leftovers


def _ensure_daemons(box: Sandbox, out=None) -> None:
    """Restart the sandbox's background processes that died (a crash, a machine under pressure)."""
    real = box.spec.cilium == "real"
    if not agent_sim_pid(box.spec.name) and _daemon_record(box.spec.name, "agent-sim").is_file():
        pid = start_agent_sim(box.spec.name, box.kubeconfig, proxy_only=real)
        print(f"sandbox: agent simulator was not running; restarted (pid {pid})", file=out, flush=True)
    if real and not node_runtime_pid(box.spec.name):
        pid = start_node_runtime(box.spec, box.kubeconfig, box.aws_env)
        print(f"sandbox: node runtime was not running; restarted (pid {pid})", file=out, flush=True)


def up(spec: SandboxSpec = None, out=None) -> Sandbox:
    spec = spec or SandboxSpec()
    existing = load(spec.name)
    if existing and cluster.is_running(spec.name) and (not spec.aws or aws.status(aws_state(spec.name)).get("running")):
        print(f"sandbox: {spec.name} already running ({existing.api_server})", file=out, flush=True)
        _ensure_daemons(existing, out=out)
        return existing
    if existing or cluster.component_pids(spec.name):
        down(spec.name, out=out)  # half-up or stale: start clean

    real = spec.cilium == "real"
    if spec.cilium not in ("replay", "real"):
        raise cluster.SandboxError(f"cilium={spec.cilium!r}: choose 'replay' (recorded agent outputs) or 'real'")
    reason = (real_cilium_unavailable_reason(spec) if real else None) or real_vpc_cni_unavailable_reason(spec)
    if reason:
        raise cluster.SandboxError(f"{spec.name}: {reason}; or use the replay (--cilium replay)")
    try:
        return _bring_up(spec, real, out)
    except BaseException:
        down(spec.name, out=out)  # a failed start leaves no process, namespace or port behind (kwok, moto, runtime)
        raise


def _bring_up(spec: SandboxSpec, real: bool, out=None) -> Sandbox:
    timings = {}
    started = t = time.monotonic()
    binaries = _binaries()
    if real:
        gobuild.ensure(gobuild.cilium_tool(versions.CILIUM_AGENTS[0]))
    if real_vpc_cni(spec):  # built on first use (gobuild on_demand): ipamd, the plugins, the add-on's manifest
        gobuild.ensure("aws-vpc-cni")
        gobuild.ensure("cni-plugins")
    t = _step(timings, "tools ready", t, out)
    servers = aws.start_servers(aws_state(spec.name)) if spec.aws else None
    if servers:
        t = _step(timings, "moto + EKS proxy up", t, out)
    kubeconfig = sandbox_dir(spec.name) / "kubeconfig"
    cluster.create(spec.name, kubeconfig, binaries, egress_proxy_socket=_proxy_socket(spec.name),
                   token_webhook_url=aws.token_webhook_url(servers["endpoint"]) if servers else None,
                   real_cilium=real)
    t = _step(timings, "control plane up", t, out)
    api_server = cluster.kubeconfig_server(kubeconfig)
    api = kube.dynamic_client(kubeconfig)
    aws_env, nodes = {}, None
    if servers:
        aws_env = aws.client_env(servers["endpoint"], spec.region)
        ca_data = cluster.kubeconfig_ca_data(kubeconfig)
        if spec.seed:
            nodegroups = [{"name": spec.nodegroup, "instance_type": spec.instance_type, "desired": spec.nodes,
                           "min": spec.nodes, "max": spec.nodes,
                           "taints": [eks_objects.AGENT_NOT_READY_TAINT] if spec.agent_not_ready_taint else []}]
            seeded = aws.seed_eks(servers["endpoint"], spec.region, spec.name,
                                  ".".join(versions.KUBERNETES.lstrip("v").split(".")[:2]), nodegroups,
                                  api_server_url=api_server, ca_data=ca_data, managed=True)
            nodes = instance_nodes(spec, seeded, aws_env)
        t = _step(timings, "EKS records ready" if spec.seed else "EKS APIs ready (empty)", t, out)
    if real:
        start_node_runtime(spec, kubeconfig, aws_env)
    populate(api, spec, kubeconfig, nodes)
    start_agent_sim(spec.name, kubeconfig, proxy_only=real)
    if servers:
        # After populate: the node group reconciler (started here) finds the seeded node group's nodes.
        aws.register_platform(servers["endpoint"], api_server, ca_data, kubeconfig, spec.region,
                              vpc_cni_manifest=vpc_cni_manifest(spec))
        if spec.seed and spec.vpc_cni:  # the add-ons eksctl's create leaves, around the objects populate applied
            aws.seed_addons(servers["endpoint"], spec.region, spec.name, {
                "vpc-cni": spec.vpc_cni_tag, "kube-proxy": eks_objects.KUBE_PROXY_TAG,
                "coredns": eks_objects.COREDNS_TAG})
    t = _step(timings, "nodes + kube-system ready" if spec.seed else "kube-system ready", t, out)
    timings["total"] = round(time.monotonic() - started, 2)
    box = Sandbox(spec=spec, kubeconfig=str(kubeconfig), api_server=api_server, aws_env=aws_env, timings=timings)
    _save(box)
    print(f"sandbox: {spec.name} up in {timings['total']:.1f}s; KUBECONFIG={kubeconfig}", file=out, flush=True)
    return box


def _port_open(url: str) -> bool:
    parsed = urlparse(url)
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((parsed.hostname, parsed.port or 443)) == 0


def _ports_of_other_clusters(name: str) -> set:
    """API server ports of the other kwok clusters on this machine: kwokctl hands a freed port to the
    next cluster created (other sandboxes may be starting meanwhile), which is not a leftover of ours."""
    ports = set()
    clusters = cluster.kwok_workdir() / "clusters"
    for other in clusters.iterdir() if clusters.is_dir() else []:
        config = other / "kubeconfig.yaml"
        if other.name != name and config.is_file():
            try:
                ports.add(urlparse(cluster.kubeconfig_server(config)).port)
            except Exception:  # noqa: BLE001 - half-written by a kwokctl starting right now
                continue
    return ports


def _listener_is_another_cluster(port: int, name: str) -> bool:
    """Is the process listening on 127.0.0.1:``port`` someone else's (another kwok cluster's component,
    another sandbox's moto, ...: found through /proc/net/tcp and the socket's owner)? False when unknown."""
    inodes = set()
    try:
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                inodes.add(f"socket:[{fields[9]}]")
    except OSError:
        return False
    ours = (f"{cluster.kwok_workdir() / 'clusters' / name}/", f"{sandbox_dir(name)}/")
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if not any(os.readlink(fd) in inodes for fd in (proc / "fd").iterdir()):
                continue
            cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        return not any(mark in cmdline for mark in ours)
    return False


def _still_ours(url: str, name: str, checks: int = 3) -> bool:
    """Is something of this sandbox still listening at ``url``? Other sandboxes start meanwhile and
    kwokctl probes and reuses freed ports, so a port counts only if it stays open for ``checks`` looks
    (0.5 s apart) without ever being seen held by another cluster or process."""
    port = urlparse(url).port
    for attempt in range(checks):
        if not _port_open(url):
            return False
        if port in _ports_of_other_clusters(name) or _listener_is_another_cluster(port, name):
            return False
        if attempt < checks - 1:
            time.sleep(0.5)
    return True


def down(name: str = DEFAULT_NAME, out=None) -> dict:
    """Stop the sandbox; returns what was found still running afterwards (empty when clean)."""
    from . import netns_datapath  # the datapath made by `python -m eks_sandbox datapath up`, if any
    if not netns_datapath.unavailable_reason() and netns_datapath.pair_for_sandbox(name).exists():
        netns_datapath.pair_for_sandbox(name).down()
    box = load(name)
    binaries = _binaries(("kwok",))
    real_left = stop_node_runtime(name) if (box and box.spec.cilium == "real") or node_runtime_pid(name) or \
        real_cilium_state(name).exists() else []
    sim_killed = stop_agent_sim(name)
    survivors = real_left + sim_killed + cluster.delete(name, binaries)
    aws.stop_aws(aws_state(name))
    leftovers = {"killed_after_delete": survivors, "open_ports": []}
    if box:
        urls = [box.api_server] + ([box.aws_env["AWS_ENDPOINT_URL"]] if box.aws_env.get("AWS_ENDPOINT_URL") else [])
        leftovers["open_ports"] = [u for u in urls if _still_ours(u, name)]
    record = _record_path(name)
    if record.exists():
        record.unlink()
    print(f"sandbox: {name} down" + (f" (had to kill: {', '.join(survivors)})" if survivors else ""),
          file=out, flush=True)
    return leftovers


def status(name: str = DEFAULT_NAME) -> dict:
    box = load(name)
    return {
        "name": name,
        "recorded": box is not None,
        "kubeconfig": box.kubeconfig if box else None,
        "api_server": box.api_server if box else None,
        "components": cluster.describe_components(name),
        "aws": aws.status(aws_state(name)),
        "running": cluster.is_running(name),
        "agent_sim_pid": agent_sim_pid(name),
        "cilium": box.spec.cilium if box else None,
        "node_runtime_pid": node_runtime_pid(name),
    }
