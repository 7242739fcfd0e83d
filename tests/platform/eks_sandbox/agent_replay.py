"""Replay of the Cilium agent CLI (``cilium`` / ``cilium-dbg``) inside kwok-simulated agent pods.

No eBPF datapath and no cilium-agent run in the sandbox, so ``kubectl exec <agent pod> -- cilium-dbg
status`` is answered from RECORDED REAL OUTPUTS (``tests/recordings/cilium/<version>/``, every file's
origin is in ``tests/recordings/cilium/SOURCES.md``). The recording of the nearest Cilium version
(same minor first) is replayed and only the values that follow from the live configuration are
rewritten: IPAM mode, CNI chaining mode, bandwidth manager state/devices, kube-proxy replacement,
routing mode, masquerading, and the version itself.

How kwok (v0.8.0) runs these execs
----------------------------------
* ``Exec`` (namespaced, ``metadata.name`` == pod name) and ``ClusterExec`` (``spec.selector``:
  ``matchNamespaces`` / ``matchNames``) of ``kwok.x-k8s.io/v1alpha1`` hold ``execs[].local``
  targets (``workDir``, ``envs``, ``securityContext``). Only ``local`` exists: the exec'd argv is run
  ON THE HOST by the kwok-controller process (``pkg/kwok/server/debugging_exec.go``). A matching
  ``Exec`` wins over any ``ClusterExec``; an ``Exec`` whose ``containers`` list lacks the requested
  container is an error, it does not fall back to the ``ClusterExec``.
* The child's environment is kwok-controller's own environment plus ``local.envs``
  (``cmd.Env = append(os.Environ(), envs...)``); its working directory is ``local.workDir`` (else
  kwok's). kwok passes NOTHING about the pod, container or node to the process.
* ``argv[0]`` is resolved with Go's ``exec.Command`` -> ``LookPath`` against kwok-controller's own
  ``PATH`` when the command is built, so a ``PATH`` in ``local.envs`` does not choose which
  ``cilium`` runs: the shims must be on kwok-controller's ``PATH`` when it starts.
* A non-zero exit is not passed through as an exit code: kwok wraps the error, so the API server
  answers "Internal error occurred: error executing command in container: cmd wait: ... exit status
  N" and ``kubectl exec`` exits 1. Stdout/stderr arrive unchanged.

Hence a ``ClusterExec`` cannot tell the replay which agent pod (node) was exec'd into. For
node-accurate answers the sandbox should create one namespaced ``Exec`` per agent pod (name and
namespace of the pod, ``containers: [cilium-agent]`` or empty) with envs
``CILIUM_REPLAY_POD=kube-system/<pod>`` and ``NODE_NAME=<node>``. Without them the replay answers
as the first agent pod by name and says so on stderr.

Interface
---------
``python -m eks_sandbox.agent_replay <cilium|cilium-dbg> <args...>``, or ``main([prog, *args])``
from a shim named like the binary. Answers ``status`` (``--brief``, ``--verbose``, ``-o json``),
``version``, ``bpf bandwidth list`` (``-o json``). Other real commands exit 1 saying they are not
replayed; unknown commands fail like cobra does. ``cilium-dbg`` does not exist in images before
1.15 (exit 127, runc's message); from 1.15 on ``cilium`` is a symlink to ``cilium-dbg``
(``cilium-dbg/Makefile``: ``ln -frs cilium-dbg cilium``) and both work.

Environment: ``KUBECONFIG`` (required for live answers), ``CILIUM_REPLAY_POD`` (``ns/name`` or
``name`` in kube-system), ``NODE_NAME`` / ``KWOK_NODE_NAME``, optional ``CILIUM_REPLAY_VERSION``
(overrides the image tag) and ``CILIUM_REPLAY_RECORDINGS`` (recordings directory).

Known divergences from a real agent: controller lists, health tables, device IPs and most
``--verbose`` detail come from the recording; a version with no recording of its own keeps the
recording's layout, and its ``version`` build date / Go version are the recording's; flag errors
omit cobra's usage text; ``--help`` and commands other than the three above are not replayed.
"""
from __future__ import annotations

import json
import os
import re
import sys
import zlib
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal, InvalidOperation
from pathlib import Path

RECORDINGS_DIR = Path(__file__).resolve().parents[2] / "recordings" / "cilium"

Version = tuple  # (major, minor, patch)

STATUS_TEXT = "status.txt"
STATUS_VERBOSE = "status-verbose.txt"
STATUS_JSON = ("status.json", "status.model-derived.json")  # verbatim preferred
VERSION_TEXT = "version.txt"

CRD_IPAM_MODES = {"eni", "azure", "alibabacloud", "crd"}
HOSTSCOPE_IPAM_MODES = {"cluster-pool", "kubernetes"}
# Without a CiliumNode ENI pool: the pool size both EKS ENI recordings show ("IPv4: 4/12 allocated,").
DEFAULT_ENI_POOL_SIZE = 12
DEFAULT_POD_CIDR = "10.0.0.0/24"  # first node block of the chart's default cluster-pool
PAD = 3  # padding of the agent's tabwriters (cilium-dbg/cmd/status.go, bpf_bandwidth_list.go)

# Commit of each release tag (Go module proxy .info Origin.Hash, or printed by a recording); the agent
# prints its first 8 hex digits, e.g. "Cilium:  Ok   1.18.4 (v1.18.4-afda2aa9)".
KNOWN_REVISIONS = {
    (1, 13, 3): "36cb0eed", (1, 13, 4): "4061cdfc", (1, 14, 0): "b5013e15", (1, 17, 0): "c2bbf787",
    (1, 17, 4): "55aecc0f", (1, 17, 6): "ee3ca4a7", (1, 18, 0): "274205f0", (1, 18, 1): "e8a7070f",
    (1, 18, 4): "afda2aa9", (1, 18, 6): "95896696", (1, 18, 8): "7d6f03ef", (1, 18, 10): "6bf2fe83",
    (1, 18, 11): "617b6b49", (1, 19, 0): "7c6667e1", (1, 19, 4): "95e477fd", (1, 19, 6): "9a898243",
    (1, 20, 0): "450c5314", (1, 20, 1): "7d68cfb3",
    (1, 20, 2): "e0dc92bd",  # not in the proxy's Origin: from a published 1.20.2 status line (SOURCES.md)
}

# Visible top-level commands (Documentation/cmdref of v1.13.4 and v1.18.10).
COMMANDS_BEFORE_1_15 = (
    "bgp bpf build-config cgroups cleanup completion config debuginfo encrypt endpoint fqdn identity ip "
    "kvstore lrp map metrics monitor node nodeid policy prefilter preflight recorder service status version"
).split()
COMMANDS_SINCE_1_15 = (
    "bgp bpf build-config cgroups completion config debuginfo encrypt endpoint envoy fqdn identity ip "
    "kvstore loadinfo lrp map metrics monitor node nodeid policy post-uninstall-cleanup prefilter "
    "preflight recorder service shell statedb status sysdump troubleshoot version"
).split()


# --------------------------------------------------------------------------------------- versions

def parse_version(text: str):
    """``v1.18.10``, ``1.18.10@sha256:...``, ``1.16.x``, ``1.17.0-rc.1`` -> ``(1, 18, 10)``; else None."""
    m = re.search(r"v?(\d+)\.(\d+)(?:\.(\d+))?", text or "")
    if not m:
        return None
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)


def vstr(version: Version) -> str:
    return ".".join(str(part) for part in version)


def cli_root(version: Version) -> str:
    """Name cobra prints in messages: the binary was renamed ``cilium-dbg`` in 1.15."""
    return "cilium-dbg" if version >= (1, 15, 0) else "cilium"


# ------------------------------------------------------------------------------------- recordings

@dataclass(frozen=True)
class Recording:
    version: Version
    path: Path

    @property
    def text(self) -> str:
        return self.path.read_text()


class RecordingStore:
    """``<root>/<version>/<file>``; picks the recording of the version nearest to the one asked."""

    def __init__(self, root: Path = RECORDINGS_DIR):
        self.root = Path(root)

    def nearest(self, version: Version, *names: str):
        candidates = []
        for directory in sorted(self.root.iterdir()) if self.root.is_dir() else []:
            have = parse_version(directory.name)
            if have is None:
                continue
            path = next((directory / n for n in names if (directory / n).is_file()), None)
            if path is None:
                continue
            prerelease = "-" in directory.name
            key = (have[:2] != version[:2],                                  # same minor first
                   abs((have[0] - version[0]) * 100 + have[1] - version[1]),  # then nearest minor
                   abs(have[2] - version[2]), prerelease,
                   tuple(-part for part in have))                            # ties: the newer
            candidates.append((key, Recording(have, path)))
        return min(candidates, key=lambda c: c[0])[1] if candidates else None


# ----------------------------------------------------------------------------------- live inputs

def _flag(data: dict, key: str, default: bool) -> bool:
    value = str(data.get(key, "")).strip().lower()
    return default if value == "" else value == "true"


@dataclass(frozen=True)
class AgentConfig:
    """The ``cilium-config`` ConfigMap keys the replayed values depend on."""
    ipam: str = "cluster-pool"
    chaining_mode: str = "none"
    bandwidth_manager: bool = False
    bbr: bool = False
    routing_mode: str = "tunnel"  # "tunnel" | "native"
    tunnel_protocol: str = "vxlan"
    kube_proxy_replacement: str = ""  # raw value: true/false (1.14+), strict/partial/probe/disabled
    host_legacy_routing: bool = False
    devices: tuple = ()  # explicit device names only (wildcards like "eth+" are dropped)
    ipv4_masquerade: bool = True
    ipv6_masquerade: bool = False
    bpf_masquerade: bool = False
    native_routing_cidr: str = ""
    health_checking: bool = True
    cluster_name: str = "default"

    @classmethod
    def from_configmap(cls, data: dict) -> "AgentConfig":
        data = data or {}
        ipam = data.get("ipam") or "cluster-pool"
        tunnel = (data.get("tunnel") or "").strip()  # up to 1.13: disabled|vxlan|geneve
        if data.get("routing-mode"):
            routing = data["routing-mode"]
        elif tunnel:
            routing = "native" if tunnel == "disabled" else "tunnel"
        else:
            routing = "native" if ipam in CRD_IPAM_MODES else "tunnel"
        protocol = data.get("tunnel-protocol") or (tunnel if tunnel in ("vxlan", "geneve") else "vxlan")
        devices = tuple(d for d in re.split(r"[\s,]+", data.get("devices", "")) if d and not re.search(r"[+*]", d))
        return cls(
            ipam=ipam,
            chaining_mode=data.get("cni-chaining-mode") or "none",
            bandwidth_manager=_flag(data, "enable-bandwidth-manager", False),
            bbr=_flag(data, "enable-bbr", False),
            routing_mode=routing,
            tunnel_protocol=protocol,
            kube_proxy_replacement=data.get("kube-proxy-replacement", ""),
            host_legacy_routing=_flag(data, "enable-host-legacy-routing", False),
            devices=devices,
            ipv4_masquerade=_flag(data, "enable-ipv4-masquerade", True),
            ipv6_masquerade=_flag(data, "enable-ipv6-masquerade", False) and _flag(data, "enable-ipv6", False),
            bpf_masquerade=_flag(data, "enable-bpf-masquerade", False),
            native_routing_cidr=data.get("ipv4-native-routing-cidr", ""),
            health_checking=_flag(data, "enable-endpoint-health-checking", True),
            cluster_name=data.get("cluster-name") or "default",
        )


@dataclass(frozen=True)
class PodInfo:
    namespace: str
    name: str
    ip: str = ""
    host_network: bool = False
    annotations: dict = field(default_factory=dict)
    endpoint_id: int | None = None  # CiliumEndpoint status.id when the object exists


@dataclass
class NodeState:
    """What the replay knows about the agent's node. ``live=False``: keep the recording's counts."""
    name: str = ""
    internal_ip: str = ""
    pod_cidr: str = ""
    router_ip: str = ""
    health_ip: str = ""
    eni_pool_size: int | None = None
    pods: list = field(default_factory=list)
    live: bool = False

    @property
    def workloads(self) -> list:
        """Pods whose networking Cilium manages (the agent and other host-network pods are not)."""
        return [p for p in self.pods if not p.host_network]


def endpoint_ids(node: NodeState) -> tuple[dict, int]:
    """Endpoint ID per workload ``(ns, name)`` and the host endpoint's ID.

    IDs come from CiliumEndpoint objects when present, else a stable number in the agent's range
    (1..4095) derived from the name, so repeated calls agree.
    """
    taken, ids = set(), {}

    def derive(label: str) -> int:
        candidate = 1 + zlib.crc32(label.encode()) % 4095
        while candidate in taken:
            candidate = candidate % 4095 + 1
        return candidate

    for pod in node.workloads:
        if pod.endpoint_id:
            ids[(pod.namespace, pod.name)] = pod.endpoint_id
            taken.add(pod.endpoint_id)
    for pod in sorted(node.workloads, key=lambda p: (p.namespace, p.name)):
        if (pod.namespace, pod.name) not in ids:
            ids[(pod.namespace, pod.name)] = derive(f"{pod.namespace}/{pod.name}")
            taken.add(ids[(pod.namespace, pod.name)])
    return ids, derive(f"host/{node.name}")


# ------------------------------------------------------------------------------ text primitives

def cells(*values: str) -> str:
    """Cells as Go's tabwriter lays out a line whose cells no neighbouring line shares:
    every cell but the last padded by 3 spaces (``"False\\t\\n"`` -> ``"False   "``)."""
    return "".join(v + " " * PAD for v in values[:-1]) + values[-1]


def _find(lines: list, *keys: str):
    for i, line in enumerate(lines):
        for key in keys:
            if line == key or line.startswith(key + " "):
                return i, key
    return None, None


def set_value(lines: list, value, *keys: str) -> None:
    """Rewrite the value of the first line starting with one of ``keys`` (the first key is the one
    to print). The key column keeps its recorded width; unchanged values keep their exact bytes."""
    i, key = _find(lines, *keys)
    if i is None or value is None:
        return
    line = lines[i]
    width = len(re.match(r"^" + re.escape(key) + r"\s*", line).group(0))
    old_value = line[width:]
    if old_value.rstrip() == value.rstrip() and key == keys[0]:
        return
    lines[i] = keys[0].ljust(max(width, len(keys[0]) + 1)) + value


def get_value(lines: list, *keys: str, raw: bool = False) -> str:
    """The value after the key column; ``raw`` keeps trailing spaces (tab-padded empty cells)."""
    i, key = _find(lines, *keys)
    if i is None:
        return ""
    value = lines[i][len(key):].lstrip()
    return value if raw else value.strip()


def go_json(data) -> str:
    """``json.MarshalIndent(data, "", "  ")`` + newline, HTML-escaped like Go's encoder."""
    text = json.dumps(data, indent=2, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026") + "\n"


def tabwriter(rows: list, minwidth: int = 5) -> str:
    """Go ``tabwriter.NewWriter(w, minwidth, 0, 3, ' ', 0)`` for rows of equal length."""
    widths = [max(minwidth, max(len(r[c]) for r in rows) + PAD) for c in range(len(rows[0]) - 1)]
    return "".join("".join(r[c].ljust(widths[c]) for c in range(len(widths))) + r[-1] + "\n" for r in rows)


# ------------------------------------------------------------------------ config-derived values

def kpr_mode(version: Version, raw: str) -> str:
    value = (raw or "").strip().lower()
    if version < (1, 14, 0):
        return {"strict": "Strict", "true": "Strict", "partial": "Partial", "probe": "Probe"}.get(value, "Disabled")
    return "True" if value in ("true", "strict") else "False"


def kpr_enabled(mode: str) -> bool:
    return mode not in ("False", "Disabled")


def device_ips(version: Version, addrs: list) -> list:
    """The agent's device IP list. From 1.15 it is built with ``make([]string, len(addrs))`` and then
    appended to, so one empty string per address precedes them (seen as extra spaces in the text)."""
    return ([""] * len(addrs) if version >= (1, 15, 0) else []) + list(addrs)


def node_devices(version: Version, cfg: AgentConfig, node: NodeState) -> list:
    """``[(name, ips)]`` for a node whose recording has no device list: the first configured device
    (``eth0`` by default) carrying the node's InternalIP."""
    name = (cfg.devices or ("eth0",))[0]
    return [(name, device_ips(version, [node.internal_ip] if node.internal_ip else []))]


def kpr_devices_text(devices: list, direct_routing: str) -> str:
    parts = [f"{name} {' '.join(ips)}" + (" (Direct Routing)" if name == direct_routing else "")
             for name, ips in devices]
    return "[" + ", ".join(parts) + "]"


def device_names_from_kpr_text(value: str) -> list:
    inner = value[value.find("[") + 1:value.rfind("]")] if "[" in value else ""
    return [part.split()[0] for part in inner.split(", ") if part.split()]


def ipam_used(cfg: AgentConfig, node: NodeState) -> int:
    """Router + health addresses, plus one per pod unless a chained CNI (aws-cni) does pod IPAM."""
    own = 1 + (1 if cfg.health_checking else 0)
    return own if cfg.chaining_mode != "none" else own + len(node.workloads)


def hostscope_size(cidr: str) -> int:
    prefix = int(cidr.split("/")[1]) if "/" in cidr else 24
    return 2 ** (32 - prefix) - 2  # network and broadcast addresses are excluded


_IPAM_RE = re.compile(r"^IPv4: (?P<used>\d+)/(?P<total>\d+) allocated(?: from (?P<cidr>[0-9./]+))?,(?P<rest>.*)$")
# 1.20 runs ENI (and the other CRD modes) on its multi-pool allocator, whose status is the pool count
# (pkg/ipam/multipool_manager.go at v1.20.2: "%d IPAM pool(s) available"; the real 1.20.2 ENI agent prints it).
_POOLS_RE = re.compile(r"^IPv4: (?P<pools>\d+) IPAM pool\(s\) available,(?P<rest>.*)$")


def ipam_status(cfg: AgentConfig, node: NodeState, old: str):
    """The IPAM status string for the configured mode: ``IPv4: 4/12 allocated,`` (ENI and other CRD
    modes, ``pkg/ipam/crd.go``) or ``IPv4: 2/254 allocated from 10.0.0.0/24,`` (``hostscope.go``).
    Returns None to keep the recorded value (unparsable, or a mode such as multi-pool)."""
    m = _IPAM_RE.match(old)
    if not m:
        pools = _POOLS_RE.match(old)
        if pools and cfg.ipam in HOSTSCOPE_IPAM_MODES:
            cidr = node.pod_cidr or DEFAULT_POD_CIDR
            return f"IPv4: {ipam_used(cfg, node)}/{hostscope_size(cidr)} allocated from {cidr},{pools['rest']}"
        return None  # the pool form of a CRD mode, multi-pool, or unknown: kept as recorded
    used = ipam_used(cfg, node) if node.live else int(m["used"])
    if cfg.ipam in CRD_IPAM_MODES:
        total = node.eni_pool_size or (int(m["total"]) if not m["cidr"] else DEFAULT_ENI_POOL_SIZE)
        head = f"IPv4: {used}/{total} allocated,"
    elif cfg.ipam in HOSTSCOPE_IPAM_MODES:
        cidr = node.pod_cidr or m["cidr"] or DEFAULT_POD_CIDR
        head = f"IPv4: {used}/{hostscope_size(cidr)} allocated from {cidr},"
    else:
        return None
    return head + m["rest"]


def bandwidth_devices(cfg: AgentConfig, recorded_bwm: list, kpr_names: list) -> list:
    return list(cfg.devices) or recorded_bwm or kpr_names or ["eth0"]


def bwm_text(cfg: AgentConfig, devices: list) -> str:
    if not cfg.bandwidth_manager:
        return "Disabled"
    return f"EDT with BPF [{'BBR' if cfg.bbr else 'CUBIC'}] [{', '.join(devices)}]"


def masquerading_class(cfg: AgentConfig) -> str:
    if not (cfg.ipv4_masquerade or cfg.ipv6_masquerade):
        return "disabled"
    return "bpf" if cfg.bpf_masquerade else "iptables"


def _enabled(flag: bool) -> str:
    return "Enabled" if flag else "Disabled"


def masquerading_text(version: Version, cfg: AgentConfig, old: str, devices: list):
    """``pkg/client/client.go`` format; None when the recorded line already has the right kind."""
    have = "disabled" if old.startswith("Disabled") else "bpf" if old.startswith("BPF") else "iptables"
    want = masquerading_class(cfg)
    if want == have:
        return None
    protocols = f"[IPv4: {_enabled(cfg.ipv4_masquerade)}, IPv6: {_enabled(cfg.ipv6_masquerade)}]"
    if want == "disabled":
        return "Disabled"
    if want == "iptables":
        return f"IPTables {protocols}"
    # 1.16+: "\t[%s]\t%s %s" (v4 and v6 exclusion CIDRs) then " [IPv4..." -> two spaces; 1.13: one.
    separator = "  " if version >= (1, 16, 0) else " "
    return cells("BPF", f"[{', '.join(devices)}]", f"{cfg.native_routing_cidr}{separator}{protocols}")


def host_routing(version: Version, cfg: AgentConfig) -> str:
    """BPF host routing unless forced off or unsupported: the agent falls back to legacy routing
    without kube-proxy replacement or with iptables masquerading (finishKubeProxyReplacementInit).
    The chart sets enable-host-legacy-routing in chaining mode. Kernel support is assumed."""
    kpr = kpr_mode(version, cfg.kube_proxy_replacement) in ("True", "Strict")
    iptables_masquerading = masquerading_class(cfg) == "iptables"
    return "BPF" if kpr and not iptables_masquerading and not cfg.host_legacy_routing else "Legacy"


def revision(version: Version, recorded: str) -> str:
    return KNOWN_REVISIONS.get(version, recorded)


# ------------------------------------------------------------------------------- status (text)

_VERBOSE_ONLY_BLOCKS = ("Allocated addresses:", "KubeProxyReplacement Details:", "BPF Maps:")
_VERBOSE_ONLY_LINES = ("Clock Source for BPF:",)


def brief_layout_from_verbose(text: str) -> str:
    """Non-verbose ``status`` from a ``--verbose`` recording (used where only that was recorded):
    drop the blocks only ``--verbose`` prints (addresses, controller/redirect/health tables, KPR
    details, BPF maps, clock source) and re-pad the key column: without those tab-less lines the
    agent's tabwriter aligns the whole output as one block (verified on 1.13 recordings)."""
    kept, skipping_indented = [], False
    for line in text.splitlines():
        if line.startswith(" "):
            if not skipping_indented:
                kept.append(line)
            continue
        skipping_indented = line.startswith(_VERBOSE_ONLY_BLOCKS) or line.startswith(
            ("Controller Status:", "Proxy Status:", "Cluster health:"))
        if line.startswith(_VERBOSE_ONLY_BLOCKS + _VERBOSE_ONLY_LINES):
            continue
        kept.append(line)
    pairs = [re.match(r"^([^ :][^:]*:)\s+(.*)$", line) for line in kept]
    width = max(len(m.group(1)) for m in pairs if m) + PAD
    out = []
    for line, m in zip(kept, pairs):
        if not m:
            out.append(line + "\n")
            continue
        key, value = m.groups()
        if key == "Cluster health:":  # its second column was lined up with the (now dropped) health rows
            value = cells(*re.split(r"\s{3,}", value))
        out.append(key.ljust(width) + value + "\n")
    return "".join(out)


def render_allocations(lines: list, cfg: AgentConfig, node: NodeState) -> None:
    """``--verbose`` "Allocated addresses:" from the live node (router and health from the recording
    unless the CiliumNode gives them)."""
    i, _line = _find(lines, "Allocated addresses:")
    if i is None or not node.live:
        return
    end = i + 1
    while end < len(lines) and lines[end].startswith("  "):
        end += 1
    matches = (re.match(r"^  (\S+) \((.*)\)$", line) for line in lines[i + 1:end])
    recorded = {m.group(2): m.group(1) for m in matches if m}
    owners = {"router": node.router_ip or recorded.get("router", "")}
    if cfg.health_checking:
        owners["health"] = node.health_ip or recorded.get("health", "")
    entries = [f"  {ip} ({owner})" for owner, ip in owners.items() if ip]
    if cfg.chaining_mode == "none":
        entries += [f"  {p.ip} ({p.namespace}/{p.name})" for p in node.workloads if p.ip]
    lines[i + 1:end] = sorted(entries)


def render_status(recording: Recording, version: Version, cfg: AgentConfig, node: NodeState,
                  verbose: bool = False) -> str:
    """``cilium-dbg status`` text: the recording with the config-derived lines rewritten."""
    text = recording.text
    if not verbose and recording.path.name == STATUS_VERBOSE:
        text = brief_layout_from_verbose(text)
    lines = text.splitlines()

    if version != recording.version:  # "Cilium:  Ok   1.18.4 (v1.18.4-afda2aa9)"
        old = get_value(lines, "Cilium:")
        m = re.match(r"^(\S+\s+)\S+ \(v\S+-(\w+)\)(.*)$", old)
        if m:
            v = vstr(version)
            set_value(lines, f"{m.group(1)}{v} (v{v}-{revision(version, m.group(2))}){m.group(3)}", "Cilium:")

    old_kpr = get_value(lines, "KubeProxyReplacement:")
    mode = kpr_mode(version, cfg.kube_proxy_replacement)
    recorded_devices = old_kpr[old_kpr.find("["):] if "[" in old_kpr else ""
    if kpr_enabled(mode):
        devices_text = recorded_devices or kpr_devices_text(
            node_devices(version, cfg, node), (cfg.devices or ("eth0",))[0])
        set_value(lines, cells(mode, devices_text), "KubeProxyReplacement:")
    else:
        set_value(lines, cells(mode, ""), "KubeProxyReplacement:")
    kpr_names = device_names_from_kpr_text(recorded_devices) or list(cfg.devices)

    set_value(lines, cfg.chaining_mode, "CNI Chaining:")
    set_value(lines, ipam_status(cfg, node, get_value(lines, "IPAM:", raw=True)), "IPAM:")
    if verbose:
        render_allocations(lines, cfg, node)

    old_bwm = get_value(lines, "BandwidthManager:")
    recorded_bwm = device_names_from_kpr_text(old_bwm.split("] ", 1)[-1]) if old_bwm.startswith("EDT") else []
    set_value(lines, bwm_text(cfg, bandwidth_devices(cfg, recorded_bwm, kpr_names)), "BandwidthManager:")

    host = host_routing(version, cfg)
    if version >= (1, 16, 0):  # "Routing:  Network: Tunnel [vxlan]   Host: Legacy" (PR #32036)
        network = "Native" if cfg.routing_mode == "native" else f"Tunnel [{cfg.tunnel_protocol}]"
        set_value(lines, cells(f"Network: {network}", f"Host: {host}"), "Routing:", "Host Routing:")
    else:
        set_value(lines, host, "Host Routing:", "Routing:")

    masq_devices = kpr_names or [name for name, _detail in node_devices(version, cfg, node)]
    set_value(lines, masquerading_text(version, cfg, get_value(lines, "Masquerading:"), masq_devices),
              "Masquerading:")
    return "\n".join(lines) + "\n"


def render_status_brief(recording: Recording) -> str:
    """``status --brief`` (``FormatStatusResponseBrief``): "OK" while the recorded agent is healthy."""
    lines = recording.text.splitlines()
    if recording.path.suffix == ".json":
        state = json.loads(recording.text).get("cilium", {}).get("state", "Ok")
    else:
        state = (get_value(lines, "Cilium:").split() or ["Ok"])[0]
    return "OK\n" if state == "Ok" else f"error in cilium: {state}\n"


# ------------------------------------------------------------------------------- status (JSON)

def render_status_json(recording: Recording, version: Version, cfg: AgentConfig, node: NodeState) -> str:
    """``cilium-dbg status -o json`` (the StatusResponse model) with the config-derived fields set."""
    data = json.loads(recording.text)

    cilium = data.get("cilium", {})
    m = re.match(r"^\S+ \(v\S+-(\w+)\)$", cilium.get("msg", ""))
    if m and version != recording.version:
        v = vstr(version)
        cilium["msg"] = f"{v} (v{v}-{revision(version, m.group(1))})"

    if node.name:
        data.setdefault("cluster", {})["self"] = f"{cfg.cluster_name}/{node.name}"
    data.setdefault("cni-chaining", {})["mode"] = cfg.chaining_mode

    ipam = data.setdefault("ipam", {})
    status = ipam_status(cfg, node, ipam.get("status", ""))
    if status is not None:
        ipam["status"] = status

    kpr = data.setdefault("kube-proxy-replacement", {})
    kpr["mode"] = kpr_mode(version, cfg.kube_proxy_replacement)
    if kpr_enabled(kpr["mode"]) and not kpr.get("deviceList"):
        devices = node_devices(version, cfg, node)
        kpr.update({"deviceList": [{"ip": ips, "name": name} for name, ips in devices],
                    "devices": [name for name, _detail in devices], "directRoutingDevice": devices[0][0]})
        data["kube-proxy-replacement"] = {k: kpr[k] for k in sorted(kpr)}
    kpr_names = list(data["kube-proxy-replacement"].get("devices") or [])

    recorded_bwm = data.get("bandwidth-manager") or {}
    if cfg.bandwidth_manager:
        devices = bandwidth_devices(cfg, list(recorded_bwm.get("devices") or []), kpr_names)
        data["bandwidth-manager"] = {"congestionControl": "bbr" if cfg.bbr else "cubic",
                                     "devices": devices, "enabled": True}
    else:
        data["bandwidth-manager"] = {"devices": None}

    host = host_routing(version, cfg)
    if version >= (1, 16, 0):
        data.pop("host-routing", None)
        routing = {"inter-host-routing-mode": "Native" if cfg.routing_mode == "native" else "Tunnel",
                   "intra-host-routing-mode": host}
        if cfg.routing_mode != "native":
            routing["tunnel-protocol"] = cfg.tunnel_protocol
        data["routing"] = routing
    else:
        data.pop("routing", None)
        data["host-routing"] = {"mode": host}

    masq = data.get("masquerading") or {}
    have = "disabled" if not masq.get("enabled") else "bpf" if masq.get("mode") == "BPF" else "iptables"
    want = masquerading_class(cfg)
    if want != have:
        protocols = {k: v for k, v in (("ipv4", cfg.ipv4_masquerade), ("ipv6", cfg.ipv6_masquerade)) if v}
        # Disabled: no mode (pkg/status/status_collector.go returns before setting it; the real 1.19.7/1.20.2 agents
        # print {"enabledProtocols": {}}).
        masq = {"enabledProtocols": protocols}
        if want != "disabled":
            masq = {"enabled": True, **masq, "mode": "BPF" if cfg.bpf_masquerade else "iptables"}
            if want == "bpf" and cfg.native_routing_cidr:
                masq["snat-exclusion-cidr-v4"] = cfg.native_routing_cidr
        data["masquerading"] = masq
    return go_json({k: data[k] for k in sorted(data)})


# --------------------------------------------------------------------------- bpf bandwidth list

_QUANTITY_RE = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+))(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?\d+)?$")
_BINARY = {"Ki": 2 ** 10, "Mi": 2 ** 20, "Gi": 2 ** 30, "Ti": 2 ** 40, "Pi": 2 ** 50, "Ei": 2 ** 60}
_DECIMAL = {"n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1), "k": Decimal("1e3"),
            "M": Decimal("1e6"), "G": Decimal("1e9"), "T": Decimal("1e12"), "P": Decimal("1e15"), "E": Decimal("1e18")}


def parse_quantity(text: str):
    """``resource.ParseQuantity(text).Value()`` (rounded up to an integer); None if invalid."""
    m = _QUANTITY_RE.match((text or "").strip())
    if not m:
        return None
    try:
        number, suffix = Decimal(m.group(1)), m.group(2) or ""
    except InvalidOperation:
        return None
    if suffix in _BINARY:
        scaled = number * _BINARY[suffix]
    elif suffix in _DECIMAL:
        scaled = number * _DECIMAL[suffix]
    else:
        scaled = number * (Decimal(10) ** int(suffix[1:]))
    return int(scaled.to_integral_value(rounding=ROUND_CEILING))


def format_quantity(value: int) -> str:
    """``resource.NewQuantity(value, resource.DecimalSI).String()``: 10000000 -> "10M", 1500000 -> "1500k"."""
    exponent = 0
    while value and value % 1000 == 0 and exponent < 18:
        value //= 1000
        exponent += 3
    return f"{value}{dict(zip(range(0, 19, 3), ['', 'k', 'M', 'G', 'T', 'P', 'E']))[exponent]}"


EGRESS_ANNOTATION = "kubernetes.io/egress-bandwidth"
INGRESS_ANNOTATION = "kubernetes.io/ingress-bandwidth"  # enforced from 1.18
PRIORITY_ANNOTATION = "bandwidth.cilium.io/priority"  # from 1.17
HOST_PRIORITY = 7  # GuaranteedQoSDefaultPriority (6 + 1) given to the host endpoint
NAMED_PRIORITIES = {"besteffort": 6, "burstable": 9, "guaranteed": 7}


def _bytes_per_sec(annotation: str):
    value = parse_quantity(annotation)
    return None if value is None or value < 0 else value // 8  # GetBytesPerSec: Value() / 8


def throttle_map(version: Version, node: NodeState) -> dict:
    """The ``cilium_throttle`` map as ``Map.Dump`` returns it: ``{key.String(): [value.String()]}``.

    Up to 1.16 only pods with a valid egress annotation get an entry (key ``id``, value bytes/s).
    From 1.17 every endpoint's bandwidth event writes an entry, 0 meaning unlimited, plus the host
    endpoint with priority 7 (``pkg/endpoint/events.go``, ``pkg/datapath/linux/bandwidth``);
    values become ``"bytes, prio"``. From 1.18 keys are ``"id, direction"`` and ingress limits exist.
    """
    ids, host_id = endpoint_ids(node)
    entries = {}
    for pod in sorted(node.workloads, key=lambda p: ids[(p.namespace, p.name)]):
        ep = ids[(pod.namespace, pod.name)]
        egress = pod.annotations.get(EGRESS_ANNOTATION, "")
        if version < (1, 17, 0):
            bps = _bytes_per_sec(egress) if egress else None
            if bps is not None:
                entries[str(ep)] = [str(bps)]
            continue
        bps, prio, error = 0, 0, False
        if egress:
            parsed = _bytes_per_sec(egress)
            bps, error = (parsed, False) if parsed is not None else (0, True)
        update = not error
        priority = pod.annotations.get(PRIORITY_ANNOTATION, "").replace("-", "")
        if priority:
            if priority.lower() in NAMED_PRIORITIES:
                prio = NAMED_PRIORITIES[priority.lower()]
            elif priority.isdigit():
                prio, error = int(priority) + 1, False
            else:
                error = True
        update = update or not error
        if not update:
            continue
        if version < (1, 18, 0):
            entries.setdefault(str(host_id), [f"0, {HOST_PRIORITY}"])
            entries[str(ep)] = [f"{bps}, {prio}"]
        else:
            entries.setdefault(f"{host_id}, 0", [f"0, {HOST_PRIORITY}"])
            entries[f"{ep}, 0"] = [f"{bps}, {prio}"]
            ingress = pod.annotations.get(INGRESS_ANNOTATION, "")
            ingress_bps = _bytes_per_sec(ingress) if ingress else None
            if ingress_bps is not None:
                entries[f"{ep}, 1"] = [f"{ingress_bps}, 0"]
    return entries


def bandwidth_layout(version: Version) -> list:
    """Header of ``bpf bandwidth list`` per ``cilium[-dbg]/cmd/bpf_bandwidth_list.go``."""
    if version < (1, 17, 0):
        return ["IDENTITY", "EGRESS BANDWIDTH (BitsPerSec)"]
    if version < (1, 18, 0):
        return ["IDENTITY", "PRIO", "EGRESS BANDWIDTH (BitsPerSec)"]
    return ["IDENTITY", "DIRECTION", "PRIO", "BANDWIDTH (BitsPerSec)"]


def bandwidth_rows(version: Version, entries: dict) -> list:
    rows = []
    for key, values in entries.items():
        info = [part.strip() for part in values[0].split(",")]
        bits = format_quantity(int(info[0]) * 8)
        if version < (1, 17, 0):
            rows.append([key, bits])
        elif version < (1, 18, 0):
            rows.append([key, info[1] if len(info) > 1 else "", bits])
        else:
            ep, _sep, direction = key.partition(",")
            rows.append([ep, "Ingress" if direction.strip() == "1" else "Egress",
                         info[1] if len(info) > 1 else "", bits])
    return sorted(rows)  # the CLI sorts rows as strings, column by column


@dataclass
class Result:
    stdout: str = ""
    stderr: str = ""
    code: int = 0


def render_bpf_bandwidth_list(version: Version, cfg: AgentConfig, node: NodeState, output: str = "") -> Result:
    if not cfg.bandwidth_manager:  # the pinned map only exists while the manager is enabled
        if version >= (1, 20, 0):
            return Result(stderr="bandwidth manager not enabled", code=1)  # no newline in the source
        path = "/sys/fs/bpf/tc/globals/cilium_throttle"
        # Reconstructed from pkg/bpf (not recorded): 1.13 os.PathError, 1.16+ "loading pinned map".
        reason = (f"loading pinned map {path}: no such file or directory" if version >= (1, 16, 0)
                  else f"Unable to get object {path}: no such file or directory")
        return Result(stderr=f"error dumping contents of map: {reason}\n", code=1)
    entries = throttle_map(version, node)
    if output == "json":
        return Result(stdout=go_json({k: entries[k] for k in sorted(entries)}))
    if not entries:
        return Result(stderr="No entries found.\n")
    return Result(stdout=tabwriter([bandwidth_layout(version)] + bandwidth_rows(version, entries)))


# ------------------------------------------------------------------------------------- version

def render_version(recording: Recording, version: Version, output: str = "") -> Result:
    """``Client: 1.18.1 e8a7070f 2025-08-13T14:47:02+00:00 go version go1.24.6 linux/amd64`` (and
    Daemon). Version and revision follow the image; build date and Go version stay the recording's."""
    lines = []
    for line in recording.text.splitlines():
        label, _sep, rest = line.partition(": ")
        fields = rest.split(" ")
        if version != recording.version and len(fields) == 7:
            fields[0], fields[1] = vstr(version), revision(version, fields[1])
        lines.append((label, fields))
    if output == "json":
        def as_struct(fields):
            return {"Version": fields[0], "Revision": fields[1], "GoRuntimeVersion": fields[5],
                    "Arch": fields[6], "AuthorDate": fields[2]}
        return Result(stdout=go_json({label: as_struct(fields) for label, fields in lines}))
    return Result(stdout="".join(f"{label}: {' '.join(fields)}\n" for label, fields in lines))


# ------------------------------------------------------------------------------------- dispatch

@dataclass
class Context:
    version: Version
    config: AgentConfig
    node: NodeState
    store: RecordingStore = field(default_factory=RecordingStore)
    notice: str = ""  # printed on stderr before the answer (e.g. which pod was assumed)


def _levenshtein(a: str, b: str) -> int:
    a, b = a.lower(), b.lower()
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def unknown_command(name: str, root: str, commands: list) -> Result:
    """cobra's answer: ``Error: ...`` and the usage hint on stderr, ``fmt.Println(err)`` on stdout."""
    suggestions = [c for c in sorted(commands)
                   if _levenshtein(name, c) <= 2 or c.lower().startswith(name.lower())]
    hint = "\n\nDid you mean this?\n" + "".join(f"\t{s}\n" for s in suggestions) if suggestions else ""
    message = f'unknown command "{name}" for "{root}"{hint}'
    return Result(stdout=message + "\n", stderr=f"Error: {message}\nRun '{root} --help' for usage.\n", code=1)


def unknown_flag(flag: str) -> Result:
    message = (f"unknown flag: {flag}" if flag.startswith("--")
               else f"unknown shorthand flag: '{flag[1]}' in {flag}")
    return Result(stdout=message + "\n", stderr=f"Error: {message}\n", code=1)


def not_replayed(root: str, args: list) -> Result:
    return Result(stderr=f"agent_replay: `{root} {' '.join(args)}` has no recording in this sandbox "
                         f"(replayed: status, version, bpf bandwidth list)\n", code=1)


def parse_flags(args: list, booleans: set, with_value: set):
    """``(flags, positionals, error)``; understands ``--x=v``, ``--x v``, ``-o v`` and ``-ov``."""
    flags, positionals, i = {}, [], 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("--"):
            name, eq, value = arg[2:].partition("=")
            if name in booleans:
                flags[name] = value.lower() != "false" if eq else True
            elif name in with_value:
                if not eq:
                    i += 1
                    value = args[i] if i < len(args) else ""
                flags[name] = value
            else:
                return flags, positionals, unknown_flag(arg)
        elif arg.startswith("-") and len(arg) > 1:
            short = {"o": "output", "D": "debug", "H": "host"}.get(arg[1])
            if short is None:
                return flags, positionals, unknown_flag(arg)
            if short == "debug":
                flags[short] = True
            else:
                value = arg[2:].lstrip("=")
                if not value:
                    i += 1
                    value = args[i] if i < len(args) else ""
                flags[short] = value
        else:
            positionals.append(arg)
        i += 1
    return flags, positionals, None


GLOBAL_BOOLEANS = {"debug"}
GLOBAL_VALUES = {"config", "host", "log-driver", "log-opt"}


def cmd_status(args: list, ctx: Context, root: str) -> Result:
    booleans = {"brief", "verbose", "all-addresses", "all-controllers", "all-nodes", "all-redirects",
                "all-clusters", "all-health", "require-k8s-connectivity"} | GLOBAL_BOOLEANS
    flags, _sep, error = parse_flags(args, booleans, {"output", "timeout"} | GLOBAL_VALUES)
    if error:
        return error
    output = flags.get("output", "")
    if output:
        if output != "json":
            return not_replayed(root, ["status", "-o", output])
        recording = ctx.store.nearest(ctx.version, *STATUS_JSON)
        return Result(stdout=render_status_json(recording, ctx.version, ctx.config, ctx.node))
    if flags.get("brief"):
        recording = ctx.store.nearest(ctx.version, STATUS_TEXT, STATUS_VERBOSE, *STATUS_JSON)
        return Result(stdout=render_status_brief(recording))
    verbose = bool(flags.get("verbose") or flags.get("all-addresses"))
    names = (STATUS_VERBOSE, STATUS_TEXT) if verbose else (STATUS_TEXT, STATUS_VERBOSE)
    recording = ctx.store.nearest(ctx.version, *names)
    return Result(stdout=render_status(recording, ctx.version, ctx.config, ctx.node, verbose=verbose))


def split_command(args: list) -> tuple:
    """``(command, rest)``: the first word after the root's global flags (``-D``, ``-H uri``...)."""
    i = 0
    while i < len(args) and args[i].startswith("-"):
        name = args[i].lstrip("-")
        if "=" not in name and name in ("H", "host", "config", "log-driver", "log-opt"):
            i += 1  # the flag's value
        i += 1
    return (args[i], args[i + 1:]) if i < len(args) else ("", [])


def run(argv: list, ctx: Context) -> Result:
    """Answer one exec'd command line; ``argv[0]`` is the name the binary was invoked as."""
    program, args = os.path.basename(argv[0]), list(argv[1:])
    installed = {"cilium", "cilium-dbg"} if ctx.version >= (1, 15, 0) else {"cilium"}
    if program not in installed:  # what runc reports for a missing binary
        return Result(stderr=f'OCI runtime exec failed: exec failed: unable to start container process: '
                             f'exec: "{program}": executable file not found in $PATH: unknown\n', code=127)
    root = cli_root(ctx.version)
    commands = COMMANDS_SINCE_1_15 if ctx.version >= (1, 15, 0) else COMMANDS_BEFORE_1_15
    command, rest = split_command(args)
    if not command:
        return not_replayed(root, args)
    if command == "status":
        return cmd_status(rest, ctx, root)
    if command == "version":
        flags, _sep, error = parse_flags(rest, GLOBAL_BOOLEANS, {"output"} | GLOBAL_VALUES)
        if error:
            return error
        return render_version(ctx.store.nearest(ctx.version, VERSION_TEXT), ctx.version, flags.get("output", ""))
    if command == "bpf" and [w for w in rest if not w.startswith("-")][:2] == ["bandwidth", "list"]:
        flags, _sep, error = parse_flags(rest, GLOBAL_BOOLEANS, {"output"} | GLOBAL_VALUES)
        if error:
            return error
        return render_bpf_bandwidth_list(ctx.version, ctx.config, ctx.node, flags.get("output", ""))
    if command in commands or command in ("help", "completion", "cmdref"):
        return not_replayed(root, args)
    return unknown_command(command, root, commands)


# ------------------------------------------------------------------------------- cluster (I/O)

def _image_version(image: str):
    tag = image.rsplit("/", 1)[-1].split("@")[0]
    return parse_version(tag.split(":", 1)[1]) if ":" in tag else None


class KubeReader:
    """GET-only JSON client of the API server named by a kubeconfig, standard library only.

    Every exec of an agent runs a new replay process; the kubernetes client package costs about a second
    of imports and model building per process, which made the replay, not the code under test, the cost
    of a 1000-node status check. This reads the kubeconfig's current context (server, CA, client
    certificate/key or token, as files or ``*-data``) and keeps one connection for the few GETs.
    """

    def __init__(self, kubeconfig_path: str, timeout: float = 20):
        import base64
        import http.client
        import ssl
        import tempfile
        from urllib.parse import urlsplit

        import yaml

        config = yaml.safe_load(Path(kubeconfig_path).read_text()) or {}
        by_name = {kind: {item["name"]: item.get(kind[:-1], {}) for item in config.get(kind) or []}
                   for kind in ("clusters", "users", "contexts")}
        context = by_name["contexts"].get(config.get("current-context")) or next(iter(by_name["contexts"].values()), {})
        cluster = by_name["clusters"].get(context.get("cluster"), {})
        user = by_name["users"].get(context.get("user"), {})
        self._scratch = None  # a folder for *-data entries only: ssl reads certificates from files

        def as_file(key: str):
            data = user.get(key + "-data") or cluster.get(key + "-data")
            if not data:
                return user.get(key) or cluster.get(key)
            self._scratch = self._scratch or tempfile.TemporaryDirectory(prefix="agent-replay-")
            path = Path(self._scratch.name) / key
            path.write_bytes(base64.b64decode(data))
            return str(path)

        server = urlsplit(cluster.get("server") or "")
        self.headers = {"Accept": "application/json"}
        if user.get("token"):
            self.headers["Authorization"] = "Bearer " + user["token"]
        if server.scheme == "https":
            tls = ssl.create_default_context(cafile=as_file("certificate-authority"))
            if cluster.get("insecure-skip-tls-verify"):
                tls.check_hostname, tls.verify_mode = False, ssl.CERT_NONE
            if as_file("client-certificate"):
                tls.load_cert_chain(as_file("client-certificate"), as_file("client-key"))
            self.connection = http.client.HTTPSConnection(server.hostname, server.port or 443, timeout=timeout,
                                                          context=tls)
        elif server.scheme == "http":
            self.connection = http.client.HTTPConnection(server.hostname, server.port or 80, timeout=timeout)
        else:
            raise ValueError(f"kubeconfig {kubeconfig_path}: no http(s) server in the current context")
        self.prefix = server.path.rstrip("/")

    def get(self, path: str, **query):
        """The object or list at ``path`` as a dict; None when it does not exist (404)."""
        from urllib.parse import urlencode

        url = self.prefix + path + ("?" + urlencode(query) if query else "")
        self.connection.request("GET", url, headers=self.headers)
        response = self.connection.getresponse()
        body = response.read()
        if response.status == 404:
            return None
        if response.status != 200:
            raise RuntimeError(f"GET {url}: {response.status} {response.reason}: {body[:300]!r}")
        return json.loads(body)

    def close(self):
        self.connection.close()
        if self._scratch:
            self._scratch.cleanup()


def load_context(env=None, reader=None) -> Context:
    """Read the live state through the API server (``KUBECONFIG``) for the exec'd agent pod."""
    env = os.environ if env is None else env
    own_reader = reader is None
    reader = reader or KubeReader(env.get("KUBECONFIG") or "")
    try:
        return _read_context(env, reader)
    finally:
        if own_reader:
            reader.close()


def _read_context(env, reader) -> Context:
    notice = ""
    pod_ref = env.get("CILIUM_REPLAY_POD", "")
    node_name = env.get("NODE_NAME") or env.get("KWOK_NODE_NAME") or ""
    agent = None
    if pod_ref:
        namespace, _sep, name = pod_ref.rpartition("/")
        agent = reader.get(f"/api/v1/namespaces/{namespace or 'kube-system'}/pods/{name}")
        if agent is None:
            raise LookupError(f"agent pod {pod_ref} (CILIUM_REPLAY_POD) does not exist")
    else:
        agents = (reader.get("/api/v1/namespaces/kube-system/pods", labelSelector="k8s-app=cilium") or {}).get("items") or []
        if node_name:
            agent = next((p for p in agents if p["spec"].get("nodeName") == node_name), None)
        elif agents:
            agent = sorted(agents, key=lambda p: p["metadata"]["name"])[0]
            notice = (f"agent_replay: no CILIUM_REPLAY_POD/NODE_NAME in the exec environment; answering as "
                      f"{agent['metadata']['name']} on {agent['spec'].get('nodeName')}\n")
    node_name = node_name or ((agent or {}).get("spec") or {}).get("nodeName") or ""

    if agent:
        containers = agent["spec"]["containers"]
        image = next((c["image"] for c in containers if c["name"] == "cilium-agent"), containers[0]["image"])
    else:
        ds = reader.get("/apis/apps/v1/namespaces/kube-system/daemonsets/cilium") or {}
        image = ((((ds.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or [{}])[0].get(
            "image", "")
    version = parse_version(env.get("CILIUM_REPLAY_VERSION", "")) or _image_version(image) or (1, 18, 0)

    cm = reader.get("/api/v1/namespaces/kube-system/configmaps/cilium-config") or {}
    cfg = AgentConfig.from_configmap(cm.get("data") or {})

    node = NodeState(name=node_name, live=bool(node_name))
    if node_name:
        k8s_node = reader.get(f"/api/v1/nodes/{node_name}") or {}
        addresses = (k8s_node.get("status") or {}).get("addresses") or []
        node.internal_ip = next((a["address"] for a in addresses if a.get("type") == "InternalIP"), "")
        node.pod_cidr = (k8s_node.get("spec") or {}).get("podCIDR") or ""
        cnode = reader.get(f"/apis/cilium.io/v2/ciliumnodes/{node_name}")
        if cnode:  # else no CiliumNode (CRDs absent or not created in the sandbox): Node object only
            spec = cnode.get("spec", {})
            node.pod_cidr = ((spec.get("ipam") or {}).get("podCIDRs") or [node.pod_cidr])[0]
            node.health_ip = (spec.get("health") or {}).get("ipv4", "")
            node.router_ip = next((a["ip"] for a in spec.get("addresses", []) if a.get("type") == "CiliumInternalIP"), "")
            pool = (spec.get("ipam") or {}).get("pool")
            node.eni_pool_size = len(pool) if pool else None
        pods = (reader.get("/api/v1/pods", fieldSelector=f"spec.nodeName={node_name}") or {}).get("items") or []
        for pod in pods:
            meta, spec, status = pod["metadata"], pod.get("spec") or {}, pod.get("status") or {}
            if status.get("phase") not in ("Running", "Pending") or meta.get("deletionTimestamp"):
                continue
            endpoint_id = None
            if not spec.get("hostNetwork"):  # only workloads have a CiliumEndpoint; one GET each, not a cluster list
                cep = reader.get(f"/apis/cilium.io/v2/namespaces/{meta['namespace']}/ciliumendpoints/{meta['name']}")
                endpoint_id = ((cep or {}).get("status") or {}).get("id")
            node.pods.append(PodInfo(namespace=meta["namespace"], name=meta["name"], ip=status.get("podIP") or "",
                                     host_network=bool(spec.get("hostNetwork")),
                                     annotations=dict(meta.get("annotations") or {}), endpoint_id=endpoint_id))
    store = RecordingStore(Path(env["CILIUM_REPLAY_RECORDINGS"])) if env.get("CILIUM_REPLAY_RECORDINGS") else RecordingStore()
    return Context(version=version, config=cfg, node=node, store=store, notice=notice)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        sys.stderr.write("usage: python -m eks_sandbox.agent_replay <cilium|cilium-dbg> [args...]\n")
        return 2
    try:
        ctx = load_context()
    except Exception as exc:  # noqa: BLE001 - whatever failed, say it the way an unreachable agent would
        sys.stderr.write(f"agent_replay: cannot read the sandbox cluster state: {exc}\n")
        return 1
    result = run(argv, ctx)
    sys.stderr.write(ctx.notice)
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    return result.code


if __name__ == "__main__":
    sys.exit(main())
