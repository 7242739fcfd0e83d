"""The container runtime's CNI step for the sandbox's (non-hostNetwork) pods on real-Cilium nodes.

A kubelet asks its container runtime for a pod sandbox; the runtime makes a network namespace and runs
the CNI configuration found first in ``/etc/cni/net.d`` (libcni: files ending ``.conf``, ``.conflist``
or ``.json``, sorted by name), each plugin of the list in order from ``/opt/cni/bin`` (``ADD``; ``DEL``
in reverse order with the cached result as ``prevResult``), and takes the pod IP from the result.
That is what happens here, for the node's own folders (``<node root>/etc/cni/net.d`` etc.):

* once the real agent has written ``05-cilium.conflist`` (``write-cni-conf-when-ready``) and the
  ``install-cni-binaries`` step has put ``cilium-cni`` in the node's ``/opt/cni/bin``, a new pod gets its
  IP from the real ``cilium-cni`` and the real agent (in ENI mode, a secondary IP of a moto ENI) and a
  real endpoint (lxc veth, BPF programs, CiliumEndpoint);
* before that (the EKS cluster's AWS VPC CNI era: its ``aws-node`` pods are kwok fakes and its plugin is
  not built), :class:`StandInIpam` gives the pod an address from kwok's pod range, as the sandbox always
  did, with no network namespace behind it.

Plugins run in the node's network namespace with the node's folders mounted at their usual paths (a
throwaway mount namespace built by ``pod_spec.start_script``), as the runtime runs them on a host.
"""
from __future__ import annotations

import hashlib
import ipaddress
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

from . import linux_ns, pod_spec

CNI_VERSION_DEFAULT = "1.0.0"
IFNAME = "eth0"


class CniError(RuntimeError):
    """A CNI plugin failed; the message carries its error as the runtime would report it."""


def active_conf(conf_dir: Path):
    """``(file name, conflist dict)`` of the configuration libcni would pick in ``conf_dir``, or None."""
    if not conf_dir.is_dir():
        return None
    for path in sorted(p for p in conf_dir.iterdir() if p.suffix in (".conf", ".conflist", ".json") and p.is_file()):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if "plugins" in data:
            return path.name, data
        if data.get("type"):
            return path.name, {"cniVersion": data.get("cniVersion", CNI_VERSION_DEFAULT), "name": data.get("name", ""),
                               "plugins": [data]}
    return None


def plugin_config(conflist: dict, plugin: dict, prev_result: dict | None) -> bytes:
    """What a plugin of a list reads on stdin (libcni ``buildOneConfig``)."""
    config = dict(plugin, cniVersion=conflist.get("cniVersion", CNI_VERSION_DEFAULT), name=conflist.get("name", ""))
    if prev_result is not None:
        config["prevResult"] = prev_result
    return json.dumps(config).encode()


def cni_args(pod: dict, container_id: str) -> str:
    meta = pod["metadata"]
    return (f"IgnoreUnknown=1;K8S_POD_NAMESPACE={meta['namespace']};K8S_POD_NAME={meta['name']};"
            f"K8S_POD_INFRA_CONTAINER_ID={container_id};K8S_POD_UID={meta.get('uid', '')}")


def result_ipv4(result: dict):
    """The first IPv4 address of a CNI result (``"192.168.7.10/32"`` -> ``"192.168.7.10"``)."""
    for item in result.get("ips") or []:
        address = str(item.get("address") or "").split("/", 1)[0]
        if address and ipaddress.ip_address(address).version == 4:
            return address
    return None


def sandbox_id(pod: dict) -> str:
    return hashlib.sha256(f"{pod['metadata'].get('uid')}/sandbox".encode()).hexdigest()


def node_view_mounts(node_root: Path) -> list:
    """The node's folders a CNI plugin reads, at their paths on a host (``/var/run`` is ``/run``)."""
    mounts = [pod_spec.Mount(target=path, source=str(node_root / path.lstrip("/")))
              for path in ("/opt/cni/bin", "/etc/cni/net.d", "/run/cilium", "/sys/fs/bpf")]
    mounts.append(pod_spec.Mount(target="/run/netns", source=str(linux_ns.NETNS_DIR)))
    mounts.append(pod_spec.Mount(target="/run/xtables.lock", source=str(node_root / "run/xtables.lock"), is_file=True))
    return sorted(mounts, key=lambda m: (m.target.count("/"), m.target))


def invoke(node_netns: str, node_root: Path, work_dir: Path, plugin_type: str, stdin: bytes, env: dict,
           timeout: float = 120) -> dict:
    """Run one CNI plugin in the node's namespaces; its JSON result (``{}`` for DEL)."""
    work_dir.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="cni-", dir=work_dir))
    try:
        plan = pod_spec.ContainerPlan(argv=[f"/opt/cni/bin/{plugin_type}"], env={"PATH": pod_spec.IMAGE_PATH, **env},
                                      mounts=node_view_mounts(node_root))
        script = scratch / "cni.sh"
        script.write_text(pod_spec.start_script(str(scratch / "rootfs"), str(scratch / "upper"), plan))
        completed = subprocess.run(["ip", "netns", "exec", node_netns, "unshare", "--mount", "--propagation",
                                    "private", "sh", str(script)], input=stdin, capture_output=True,
                                   timeout=timeout, check=False)
    finally:
        linux_ns.unmount_under(scratch)
        shutil.rmtree(scratch, ignore_errors=True)
    out = completed.stdout.decode(errors="replace").strip()
    if completed.returncode != 0:
        try:
            error = json.loads(out)
            detail = f"{error.get('msg', '')}{': ' + error['details'] if error.get('details') else ''}"
        except ValueError:
            detail = (out or completed.stderr.decode(errors="replace")).strip()
        raise CniError(f"plugin type={plugin_type!r} failed ({env.get('CNI_COMMAND', '').lower()}): {detail}")
    return json.loads(out) if out else {}


def run_conflist(command: str, conflist: dict, pod: dict, netns: str, node_netns: str, node_root: Path,
                 work_dir: Path, cached: dict | None = None) -> dict:
    """``ADD`` (plugins in order) or ``DEL`` (reverse, ``prevResult`` = the cached ADD result)."""
    container_id = sandbox_id(pod)
    env = {"CNI_COMMAND": command, "CNI_CONTAINERID": container_id, "CNI_NETNS": str(linux_ns.netns_path(netns)),
           "CNI_IFNAME": IFNAME, "CNI_PATH": "/opt/cni/bin", "CNI_ARGS": cni_args(pod, container_id)}
    plugins = conflist.get("plugins") or []
    if command == "DEL":
        for plugin in reversed(plugins):
            invoke(node_netns, node_root, work_dir, plugin["type"], plugin_config(conflist, plugin, cached), env)
        return {}
    result = None
    for plugin in plugins:
        result = invoke(node_netns, node_root, work_dir, plugin["type"], plugin_config(conflist, plugin, result), env)
    return result or {}


class StandInIpam:
    """Addresses for pods of nodes with no CNI configuration yet (the VPC CNI era), from kwok's pod range."""

    def __init__(self, cidr: str):
        self.network = ipaddress.ip_network(cidr)

    def pick(self, used: set, seed: str) -> str:
        hosts = self.network.num_addresses - 2
        start = int(hashlib.sha256(seed.encode()).hexdigest(), 16) % hosts
        for step in range(hosts):
            address = str(self.network.network_address + 1 + (start + step) % hosts)
            if address not in used:
                return address
        raise CniError(f"no free address left in {self.network}")
