"""From a Pod object to the process a kubelet would start for one of its containers. Pure functions.

The node runtime (``node_runtime.py``) runs the Cilium agent and operator pods for real. A container
here is a process in the node's network namespace (the Cilium pods are ``hostNetwork``) and in a
mount namespace built like a container root:

* ``/usr`` and ``/etc`` are overlays on the host's (writes stay in the pod's folder), ``/bin``,
  ``/sbin``, ``/lib``, ``/lib64`` link into ``/usr`` as on the host; ``/proc`` is a fresh procfs (its
  ``/proc/sys/net`` is the node's), ``/sys`` the node namespace's sysfs, ``/dev`` the host's,
  ``/run`` and ``/tmp`` are empty tmpfs;
* the **image**: the built Cilium binaries of the image tag's version at the paths of Cilium's image
  (``/usr/bin/cilium-agent``, ``cilium-dbg``, ``cilium`` (a link to ``cilium-dbg`` since 1.15,
  ``cilium-dbg/Makefile``), ``cilium-health-responder``, ``cilium-operator-aws``,
  ``/opt/cni/bin/cilium-cni``, the BPF sources in ``/var/lib/cilium/bpf``: ``images/cilium/Dockerfile``);
* the pod's **volumes** at their ``mountPath``s, parents first (as containerd sorts them): ``hostPath``
  from the node's own root folder (``/var/run`` is ``/run`` there, as on a host), ``/sys/fs/bpf``
  from the node's bpffs, ``/proc/sys/*`` from the node's procfs; ``emptyDir``, ``configMap``,
  ``secret``, ``projected`` (service account token, CA, namespace) and ``downwardAPI`` written by the
  node runtime into the pod's folder;
* the **environment** as the kubelet makes it: ``env`` (values, ``fieldRef``, ``resourceFieldRef``,
  ``configMapKeyRef``, ``secretKeyRef``), ``envFrom``, the ``KUBERNETES_SERVICE_*`` variables, and the
  image's ``PATH`` (with LLVM 19 first: the agent runs ``clang``); ``$(VAR)`` in ``command``/``args``
  expanded from it.

``start_script`` renders the shell script that makes those mounts and ``exec``s the container's
command in a ``chroot``; ``node_runtime`` runs it under ``ip netns exec <node> unshare --mount --cgroup``.
"""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import PurePosixPath

IMAGE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
LLVM_BIN = "/usr/lib/llvm-19/bin"


@dataclass(frozen=True)
class ImageLayout:
    """What an image holds where, built here, and its config's Entrypoint, Cmd and WorkingDir. ``files``: (container
    path, artifact) pairs; an artifact is a binary of ``tool``, or ``"<tool>:<path>"`` in a tool's cache entry (a
    folder when it ends with ``/``)."""
    tool: str  # "cilium", "cilium-operator-generic" or "aws-vpc-cni": the built tool behind the image's version
    files: tuple
    entrypoint: tuple = ()
    cmd: tuple = ()
    workdir: str = ""


_CILIUM_FILES = (
    ("/usr/bin/cilium-agent", "cilium-agent"), ("/usr/bin/cilium-dbg", "cilium-dbg"),
    ("/usr/bin/cilium", "cilium-dbg"),  # a link to cilium-dbg since 1.15 (cilium-dbg/Makefile: ln -frs)
    ("/usr/bin/cilium-health-responder", "cilium-health-responder"),
    ("/usr/bin/cilium-operator-aws", "cilium-operator-aws"),
    ("/opt/cni/bin/cilium-cni", "cilium-cni"),
    ("/var/lib/cilium/bpf", "cilium:lib/bpf/"))
_VPC_CNI_APP = ("aws-k8s-agent", "aws-cni", "egress-cni", "grpc-health-probe", "aws-vpc-cni")
# Repository (registry left out) -> layout. Cilium: images/cilium/Dockerfile, images/operator/Dockerfile at v1.20.2.
# AWS VPC CNI: scripts/dockerfiles/Dockerfile.release (WORKDIR /app, ENTRYPOINT /app/aws-vpc-cni) and Dockerfile.init
# (WORKDIR /init, CMD /init/aws-vpc-cni-init, the containernetworking plugins beside it) at v1.19.2.
IMAGE_LAYOUTS = {
    "cilium/cilium": ImageLayout("cilium", _CILIUM_FILES),
    "cilium/operator-aws": ImageLayout("cilium", _CILIUM_FILES),
    # the operator of chaining's cluster-pool IPAM: a recipe of its own (gobuild.cilium_operator_generic_recipe)
    "cilium/operator-generic": ImageLayout(
        "cilium-operator-generic", (("/usr/bin/cilium-operator-generic", "cilium-operator-generic"),)),
    "amazon-k8s-cni": ImageLayout(
        "aws-vpc-cni", tuple((f"/app/{name}", name) for name in _VPC_CNI_APP)
        + (("/app/10-aws.conflist", "aws-vpc-cni:misc/10-aws.conflist"),),
        entrypoint=("/app/aws-vpc-cni",), workdir="/app"),
    "amazon-k8s-cni-init": ImageLayout(
        "aws-vpc-cni", (("/init/aws-vpc-cni-init", "aws-vpc-cni-init"),) + tuple(
            (f"/init/{name}", f"cni-plugins:bin/{name}") for name in ("loopback", "portmap", "host-local", "bandwidth")),
        cmd=("/init/aws-vpc-cni-init",), workdir="/init"),
}
# hostPath volumes that are not folders of the node's root but the node's own procfs (the container's
# /proc is one, mounted in the node's network namespace). /sys/fs/bpf is a folder of the node's root on
# which the node runtime mounted the node's bpffs (so pinned maps outlive an agent restart, as on a node).
KERNEL_HOST_PATHS = {"/proc": "proc", "/proc/sys/net": "proc-sys-net", "/proc/sys/kernel": "proc-sys-kernel"}
KERNEL_SOURCES = {"proc": '"$R/proc"', "proc-sys-net": '"$R/proc/sys/net"', "proc-sys-kernel": '"$R/proc/sys/kernel"'}
IMAGE_RE = re.compile(r"^(?:(?P<registry>[^/]+\.[^/]+)/)?(?P<repo>[^:@]+)(?::(?P<tag>[^@]+))?(?:@(?P<digest>.+))?$")


class PodSpecError(ValueError):
    """The pod asks for something the node runtime cannot provide; the message says what."""


@dataclass(frozen=True)
class Mount:
    target: str  # path in the container
    source: str  # host path, or a kind of KERNEL_HOST_PATHS' values
    readonly: bool = False
    is_file: bool = False


@dataclass
class ContainerPlan:
    argv: list
    env: dict
    mounts: list
    workdir: str = ""
    image_files: list = field(default_factory=list)  # Mounts of the image's files (read-only)


def image_layout(image: str):
    """The layout of a known image (None for an image the sandbox cannot run)."""
    match = IMAGE_RE.match(image or "")
    repository = (match.group("repo") if match else "").rsplit("/", 2)
    return IMAGE_LAYOUTS.get("/".join(repository[-2:])) or IMAGE_LAYOUTS.get(repository[-1])


def image_mounts(layout: ImageLayout, artifacts: dict) -> list:
    """The image's files as mounts: ``artifacts`` maps each artifact of ``layout.files`` to a host path. Files are
    read-only binds; folders are the lower layer of an overlay (the agent writes into /var/lib/cilium/bpf)."""
    mounts = []
    for target, artifact in layout.files:
        folder = artifact.endswith("/")
        mounts.append(Mount(target=target, source=str(artifacts[artifact]), readonly=not folder, is_file=not folder))
    return mounts


def image_version(image: str) -> str | None:
    """``quay.io/cilium/cilium:v1.20.2@sha256:..`` -> ``"1.20.2"`` (None without a semantic version tag)."""
    match = IMAGE_RE.match(image or "")
    tag = (match.group("tag") if match else None) or ""
    version = re.fullmatch(r"v?(\d+\.\d+\.\d+)(?:-.*)?", tag)
    return version.group(1) if version else None


def image_repository(image: str) -> str:
    """``quay.io/cilium/operator-aws:v1.20.2`` -> ``cilium/operator-aws``."""
    match = IMAGE_RE.match(image or "")
    return match.group("repo") if match else ""


def canonical_host_path(path: str) -> str:
    """``/var/run/x`` is ``/run/x`` on a host (``/var/run`` links to ``/run``)."""
    path = str(PurePosixPath("/") / path)
    return "/run" + path[len("/var/run"):] if path == "/var/run" or path.startswith("/var/run/") else path


def quantity_bytes(text: str) -> int:
    """A Kubernetes memory quantity in bytes (``3388364Ki`` -> 3469684736)."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([KMGTPE]i?|[kmunE]?)", str(text).strip())
    if not match:
        raise ValueError(f"not a quantity: {text!r}")
    number, suffix = float(match.group(1)), match.group(2)
    scale = {"": 1, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
             "Ki": 2 ** 10, "Mi": 2 ** 20, "Gi": 2 ** 30, "Ti": 2 ** 40, "Pi": 2 ** 50, "Ei": 2 ** 60,
             "m": 1e-3, "u": 1e-6, "n": 1e-9}[suffix]
    return int(number * scale)


def field_value(pod: dict, path: str, node: dict) -> str:
    """A ``fieldRef.fieldPath`` of the downward API."""
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    simple = {"metadata.name": meta.get("name"), "metadata.namespace": meta.get("namespace"),
              "metadata.uid": meta.get("uid"), "spec.nodeName": spec.get("nodeName"),
              "spec.serviceAccountName": spec.get("serviceAccountName") or "default",
              "status.hostIP": node.get("address"), "status.podIP": status.get("podIP") or (
                  node.get("address") if spec.get("hostNetwork") else ""),
              "status.hostIPs": node.get("address"), "status.podIPs": status.get("podIP") or node.get("address")}
    if path in simple:
        return simple[path] or ""
    match = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
    if match:
        return (meta.get(match.group(1)) or {}).get(match.group(2), "")
    raise PodSpecError(f"fieldRef {path!r} is not supported by the sandbox's node runtime")


def resource_value(container: dict, ref: dict, node: dict) -> str:
    """A ``resourceFieldRef``: the container's limit, else the node's allocatable (as the kubelet does)."""
    resource = ref["resource"]
    kind, _dot, name = resource.partition(".")
    value = ((container.get("resources") or {}).get(kind) or {}).get(name)
    if value is None:
        value = (node.get("allocatable") or {}).get(name, "0")
    divisor = quantity_bytes(ref.get("divisor") or "1") if name != "cpu" else 1
    if name == "cpu":
        return str(max(1, -(-int(quantity_bytes(value) * 1000) // 1000)))
    return str(quantity_bytes(value) // max(divisor, 1))


def expand(text: str, env: dict) -> str:
    """The kubelet's ``$(VAR)`` expansion (``$$`` escapes; unknown references stay as written)."""
    def one(match):
        token = match.group(0)
        if token == "$$":
            return "$"
        return env.get(match.group(1), token)
    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)", one, text)


def container_env(pod: dict, container: dict, node: dict, config_value, secret_value, service_env: dict) -> dict:
    """The environment of a container. ``config_value(name, key)``/``secret_value(name, key)`` return the
    value or None; ``service_env``: the ``KUBERNETES_SERVICE_*`` variables the kubelet adds."""
    env = {"PATH": f"{LLVM_BIN}:{IMAGE_PATH}", "HOSTNAME": (pod.get("spec") or {}).get("nodeName") or "",
           **service_env}
    for source in container.get("envFrom") or []:
        prefix = source.get("prefix") or ""
        for kind, getter in (("configMapRef", config_value), ("secretRef", secret_value)):
            ref = source.get(kind)
            if ref:
                for key, value in (getter(ref["name"], None) or {}).items():
                    env[prefix + key] = value
    for item in container.get("env") or []:
        name = item["name"]
        if "value" in item:
            env[name] = expand(item.get("value") or "", env)
            continue
        source = item.get("valueFrom") or {}
        if "fieldRef" in source:
            env[name] = field_value(pod, source["fieldRef"]["fieldPath"], node)
        elif "resourceFieldRef" in source:
            env[name] = resource_value(container, source["resourceFieldRef"], node)
        elif "configMapKeyRef" in source or "secretKeyRef" in source:
            kind = "configMapKeyRef" if "configMapKeyRef" in source else "secretKeyRef"
            ref = source[kind]
            value = (config_value if kind == "configMapKeyRef" else secret_value)(ref["name"], ref["key"])
            if value is None:
                if ref.get("optional"):
                    continue
                raise PodSpecError(f"env {name}: {kind} {ref['name']}/{ref['key']} not found (not optional): "
                                   "the kubelet would not start the container (CreateContainerConfigError)")
            env[name] = value
        else:
            env[name] = ""
    return env


def volume_mounts(pod: dict, container: dict, volume_dirs: dict, node_root: str) -> list:
    """The container's mounts, parents first. ``volume_dirs``: volume name -> host folder written by the
    node runtime (emptyDir, configMap, secret, projected, downwardAPI)."""
    volumes = {v["name"]: v for v in (pod.get("spec") or {}).get("volumes") or []}
    mounts = []
    for item in container.get("volumeMounts") or []:
        volume = volumes.get(item["name"])
        if volume is None:
            raise PodSpecError(f"volumeMount {item['name']!r} names no volume of the pod")
        target = str(PurePosixPath(item["mountPath"]) / (item.get("subPath") or ""))
        readonly = bool(item.get("readOnly"))
        if "hostPath" in volume:
            path = canonical_host_path(volume["hostPath"]["path"])
            source = KERNEL_HOST_PATHS.get(path) or node_root.rstrip("/") + path
            is_file = volume["hostPath"].get("type") in ("File", "FileOrCreate", "Socket", "CharDevice")
        elif item["name"] in volume_dirs:
            source = str(PurePosixPath(volume_dirs[item["name"]]) / (item.get("subPath") or ""))
            is_file = bool(item.get("subPath"))
        else:
            raise PodSpecError(f"volume {item['name']!r}: kind {sorted(set(volume) - {'name'})} is not supported "
                               "by the sandbox's node runtime")
        mounts.append(Mount(target=target, source=source, readonly=readonly, is_file=is_file))
    return sorted(mounts, key=lambda m: (m.target.count("/"), m.target))


def container_argv(container: dict, env: dict, layout: ImageLayout | None = None) -> list:
    """What the runtime executes, with ``$(VAR)`` expanded: ``command`` replaces the image's Entrypoint and Cmd,
    ``args`` its Cmd (the Kubernetes rules for command and args)."""
    command = list(container.get("command") or [])
    args = list(container.get("args") or [])
    if not command:
        if layout is None:
            raise PodSpecError(f"container {container.get('name')!r} has no command and its image is unknown here")
        command, args = list(layout.entrypoint), args or list(layout.cmd)
    argv = command + args
    if not argv:
        raise PodSpecError(f"container {container.get('name')!r} has no command and its image no entrypoint")
    return [expand(part, env) for part in argv]


def _q(value) -> str:
    return shlex.quote(str(value))


def start_script(rootfs: str, upper: str, plan: ContainerPlan, net_core: str | None = None) -> str:
    """The shell script making the container's mount namespace and exec'ing its command in a chroot.

    Run it in a new mount namespace (``unshare --mount --propagation private``). ``upper``: a folder for
    the overlays' writes; ``net_core``: a folder of files shown as ``/proc/sys/net/core`` (see node_runtime)."""
    r = rootfs.rstrip("/")
    lines = ["#!/bin/sh", "# generated by eks_sandbox.pod_spec.start_script", "set -eu", f"R={_q(r)}",
             "mount --make-rprivate /"]
    for name in ("usr", "etc"):
        lines += [f"mkdir -p {_q(upper)}/{name} {_q(upper)}/{name}.work \"$R/{name}\"",
                  f"mount -t overlay overlay -o lowerdir=/{name},upperdir={_q(upper)}/{name},"
                  f"workdir={_q(upper)}/{name}.work \"$R/{name}\""]
    # /bin, /lib, ... as on the host: links into /usr on a merged-/usr system, else read-only binds.
    lines += ['for d in bin sbin lib lib32 lib64 libx32; do',
              '  if [ -L "/$d" ]; then [ -e "$R/$d" ] || [ -L "$R/$d" ] || ln -s "$(readlink "/$d")" "$R/$d"',
              '  elif [ -d "/$d" ]; then mkdir -p "$R/$d"; mount --rbind "/$d" "$R/$d"; mount -o remount,bind,ro "$R/$d"',
              '  fi', 'done']
    lines += ['mkdir -p "$R/proc" "$R/sys" "$R/dev" "$R/run" "$R/tmp" "$R/var/lib" "$R/opt" "$R/root"',
              '[ -e "$R/var/run" ] || ln -s ../run "$R/var/run"',
              'mount -t proc proc "$R/proc"', 'mount --rbind /sys "$R/sys"', 'mount --rbind /dev "$R/dev"',
              'mount -t tmpfs -o mode=755 tmpfs "$R/run"', 'mount -t tmpfs -o mode=1777 tmpfs "$R/tmp"']
    if net_core:
        lines.append(f'mount --bind {_q(net_core)} "$R/proc/sys/net/core"')
    for number, mount in enumerate(plan.image_files):
        if mount.readonly:
            lines += _bind(mount.target, _q(mount.source), readonly=True, is_file=mount.is_file)
        else:  # an image folder is the lower layer of an overlay: the container may write there (the agent does)
            layer = f"{_q(upper)}/image{number}"
            lines += [f'mkdir -p {layer} {layer}.work "$R"{_q(mount.target)}',
                      f'mount -t overlay overlay -o lowerdir={_q(mount.source)},upperdir={layer},workdir={layer}.work '
                      f'"$R"{_q(mount.target)}']
    for mount in plan.mounts:
        source = KERNEL_SOURCES.get(mount.source) or _q(mount.source)
        lines += _bind(mount.target, source, mount.readonly, mount.is_file)
    env = " ".join(_q(f"{k}={v}") for k, v in sorted(plan.env.items()))
    chdir = f"-C {_q(plan.workdir)} " if plan.workdir else ""
    lines.append(f'exec chroot "$R" /usr/bin/env -i {chdir}{env} {" ".join(_q(a) for a in plan.argv)}')
    return "\n".join(lines) + "\n"


def _bind(target: str, source: str, readonly: bool, is_file: bool) -> list:
    """``source`` is already quoted for the shell."""
    dest = f'"$R"{_q(target)}'
    make = (f'mkdir -p "$(dirname {dest})"; [ -e {dest} ] || touch {dest}' if is_file
            else f"mkdir -p {dest}")
    lines = [make, f"mount --rbind {source} {dest}"]
    if readonly:
        lines.append(f"mount -o remount,bind,ro {dest}")
    return lines
