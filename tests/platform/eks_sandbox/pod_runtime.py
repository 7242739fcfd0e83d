"""Run a pod's containers as real processes on a sandbox node, as a kubelet would (Cilium's pods only).

A :class:`PodWorker` (one thread per pod) writes the pod's volumes (:func:`write_volumes`), gets the
image (the binaries built for the image tag's version: :func:`pull_image`), runs the init
containers (:data:`INIT_CONTAINERS` says which run for real), then starts each container
(:class:`ContainerRunner`: ``pod_spec.start_script`` under ``ip netns exec <node> unshare --mount
--cgroup``), runs its probes as the kubelet does (startup, then readiness and liveness, at the pod's
periods and thresholds), restarts it when it exits or fails its liveness probe (back-off 10 s doubling
to 5 min, ``CrashLoopBackOff``), and keeps the pod ``status`` (phase, conditions, container statuses
with the last termination's log tail: the chart sets ``terminationMessagePolicy:
FallbackToLogsOnError``) for the node runtime to write. ``stop()`` ends the containers (SIGTERM, the
pod's grace period, then the cgroup's ``cgroup.kill``).

Each container gets its own cgroup v2 under ``cloudnet-cilium-eks/<sandbox tag>/`` and a cgroup
namespace rooted there: the agent mounts cgroup2 itself and attaches its socket programs to that root
(socket LB with kube-proxy replacement), which must not be the host's.
"""
from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from . import gobuild, linux_ns, pod_spec, versions

# kubelet's container restart (and image pull) back-off, Kubernetes v1.34.4: 10 s doubling (pkg/kubelet/kubelet.go:216
# backOffPeriod), at most 300 s (pkg/kubelet/apis/config/v1beta1/defaults.go:46 MaxContainerBackOff; kubelet.go:171
# MaxImageBackOff), reset after twice that without a failure (client-go util/flowcontrol/backoff.go:186 hasExpired).
BACKOFF_START, BACKOFF_MAX, BACKOFF_RESET = 10.0, 300.0, 600.0
TERMINATION_MESSAGE_LINES, TERMINATION_MESSAGE_BYTES = 80, 2048  # FallbackToLogsOnError keeps this much
TOKEN_SECONDS = 86400  # the pod's service account token; requested for a day (the kubelet rotates hourly)
# Cilium's init containers (install/kubernetes/cilium/templates/cilium-agent/daemonset.yaml, v1.20.2) and
# what the sandbox does with each: "run" runs it for real; anything else is the reason it is not run.
INIT_CONTAINERS = {
    "config": "run",  # cilium-dbg build-config: /tmp/cilium/config-map from cilium-config (+ CiliumNodeConfigs)
    "install-cni-binaries": "install-cni",  # /install-plugin.sh: cilium-cni into the node's /opt/cni/bin
    "mount-cgroup": "not run: it enters the host's PID 1 mount namespace to mount cgroup2 on the host; the "
                    "agent mounts it in its own namespace instead",
    "apply-sysctl-overwrites": "not run: it writes the host's /etc/sysctl.d and restarts systemd-sysctl",
    "mount-bpf-fs": "not run: the node's bpffs is already mounted at /sys/fs/bpf",
    "clean-cilium-state": "not run: /init-container.sh is not in the sandbox's image (it only acts when "
                          "clean-cilium-state or clean-cilium-bpf-state is set)",
    "wait-for-node-init": "not run: there is no node-init DaemonSet in the sandbox",
    # The AWS VPC CNI's (amazon-vpc-cni-k8s config/master/aws-k8s-cni.yaml at v1.19.2): copies the CNI plugins to the
    # node and sets its sysctls.
    "aws-vpc-cni-init": "run",
}
CGROUP_BASE = "cloudnet-cilium-eks"


def now_rfc3339() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class ImageUnavailable(RuntimeError):
    """The image's binaries cannot be had here; ``str()`` is the reason (shown as ErrImagePull)."""


def image_tool(layout: pod_spec.ImageLayout, image: str, version: str) -> str:
    """The gobuild tool behind an image of ``version``; :class:`ImageUnavailable` names the way out otherwise."""
    if layout.tool == "cilium":
        if version in versions.CILIUM_AGENTS:
            return gobuild.cilium_tool(version)
        raise ImageUnavailable(
            f"image {image}: Cilium {version} is not built in this sandbox (built: {', '.join(versions.CILIUM_AGENTS)}; "
            "1.13-1.18 cannot be built from the Go module proxy). Use the recorded-output replay "
            "(`python -m eks_sandbox up --cilium replay`) for this version")
    if layout.tool == "cilium-operator-generic":
        if version == versions.CILIUM_AGENTS[0]:
            return layout.tool
        raise ImageUnavailable(f"image {image}: cilium-operator-generic is built here for Cilium "
                               f"{versions.CILIUM_AGENTS[0]} only (chaining's real tier)")
    if f"v{version}" == versions.AWS_VPC_CNI:
        return layout.tool
    raise ImageUnavailable(f"image {image}: only the AWS VPC CNI {versions.AWS_VPC_CNI} is built in this sandbox")


def pull_image(image: str) -> tuple:
    """``(layout, artifacts)`` of an image: its files built here (``artifacts``: artifact -> host path).

    Builds them first when missing (minutes, like a slow image pull). Images that cannot be built here raise
    :class:`ImageUnavailable` saying why."""
    layout, version = pod_spec.image_layout(image), pod_spec.image_version(image)
    if layout is None or version is None:
        raise ImageUnavailable(f"image {image}: only Cilium and AWS VPC CNI images with a version tag run here")
    tool = image_tool(layout, image, version)
    artifacts = {}
    try:
        for _target, artifact in layout.files:
            owner, _colon, path = artifact.rpartition(":")
            if owner:
                key = tool if owner == layout.tool else owner
                gobuild.ensure(key)
                artifacts[artifact] = gobuild.module_data_dir(key, path.rstrip("/"))
            else:
                artifacts[artifact] = gobuild.ensure(tool)[artifact]
    except (gobuild.GoBuildError, gobuild.ToolUnavailable) as exc:
        raise ImageUnavailable(f"image {image}: building {tool} failed: {exc}") from exc
    return layout, artifacts


# ------------------------------------------------------------------------------------- volumes

@dataclass
class NodeInfo:
    """What a pod's containers need to know about their node."""
    name: str
    netns: str
    root: Path  # the node's own root folder (hostPath volumes)
    address: str
    allocatable: dict
    api_host: str
    api_port: int
    net_core: Path  # files shown as /proc/sys/net/core (see node_runtime.NodeHost)
    cgroup: Path  # the node's cgroup v2 folder
    aws_endpoint: str = ""  # moto (through the sandbox's proxy) as this node reaches it

    def as_dict(self) -> dict:
        return {"address": self.address, "allocatable": self.allocatable}


def _write_files(folder: Path, files: dict, mode: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for relative, data in files.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data if isinstance(data, bytes) else str(data).encode())
        path.chmod(mode)


def _items(data: dict, items, optional_missing=False) -> dict:
    if not items:
        return dict(data)
    return {item["path"]: data[item["key"]] for item in items if item["key"] in data or not optional_missing}


class KubeReader:
    """The few API reads volumes and env need (``core``: a kubernetes CoreV1Api)."""

    def __init__(self, core):
        self.core = core

    def config_map(self, namespace: str, name: str):
        from kubernetes.client.rest import ApiException
        try:
            return self.core.read_namespaced_config_map(name, namespace).data or {}
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def secret(self, namespace: str, name: str):
        from kubernetes.client.rest import ApiException
        try:
            data = self.core.read_namespaced_secret(name, namespace).data or {}
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return {k: base64.b64decode(v) for k, v in data.items()}

    def token(self, pod: dict, audience: str | None, seconds: int) -> str:
        from kubernetes import client
        meta = pod["metadata"]
        spec = client.V1TokenRequestSpec(
            audiences=[audience] if audience else [], expiration_seconds=max(seconds, TOKEN_SECONDS),
            bound_object_ref=client.V1BoundObjectReference(kind="Pod", api_version="v1", name=meta["name"],
                                                           uid=meta["uid"]))
        answer = self.core.create_namespaced_service_account_token(
            (pod.get("spec") or {}).get("serviceAccountName") or "default", meta["namespace"],
            client.AuthenticationV1TokenRequest(spec=spec))
        return answer.status.token


def _projected(pod: dict, volume: dict, reader: KubeReader, node: NodeInfo) -> dict:
    namespace = pod["metadata"]["namespace"]
    files = {}
    for source in volume["projected"].get("sources") or []:
        if "serviceAccountToken" in source:
            token = source["serviceAccountToken"]
            files[token["path"]] = reader.token(pod, token.get("audience"), int(token.get("expirationSeconds", 3607)))
        for kind, read in (("configMap", reader.config_map), ("secret", reader.secret)):
            if kind in source:
                ref = source[kind]
                data = read(namespace, ref["name"])
                if data is None and not ref.get("optional"):
                    raise pod_spec.PodSpecError(f"{kind} {namespace}/{ref['name']} not found")
                files.update(_items(data or {}, ref.get("items"), optional_missing=bool(ref.get("optional"))))
        if "downwardAPI" in source:
            files.update(_downward(pod, source["downwardAPI"], node))
    return files


def _downward(pod: dict, spec: dict, node: NodeInfo) -> dict:
    return {item["path"]: pod_spec.field_value(pod, item["fieldRef"]["fieldPath"], node.as_dict())
            for item in spec.get("items") or [] if "fieldRef" in item}


def write_volumes(pod: dict, pod_dir: Path, reader: KubeReader, node: NodeInfo) -> dict:
    """Write the pod's non-hostPath volumes into ``pod_dir/volumes``; create its hostPath ones in the node's
    root as their ``type`` says. Returns ``{volume name: folder}`` for ``pod_spec.volume_mounts``."""
    namespace = pod["metadata"]["namespace"]
    folders = {}
    for volume in (pod.get("spec") or {}).get("volumes") or []:
        name, folder = volume["name"], pod_dir / "volumes" / volume["name"]
        mode = 0o644
        if "hostPath" in volume:
            _host_path(node.root, volume["hostPath"])
            continue
        if "emptyDir" in volume:
            folder.mkdir(parents=True, exist_ok=True)
        elif "configMap" in volume or "secret" in volume:
            kind = "configMap" if "configMap" in volume else "secret"
            ref = volume[kind]
            ref_name = ref.get("name") or ref.get("secretName")
            data = (reader.config_map if kind == "configMap" else reader.secret)(namespace, ref_name)
            if data is None and not ref.get("optional"):
                raise pod_spec.PodSpecError(f"volume {name}: {kind} {namespace}/{ref_name} not found")
            mode = ref.get("defaultMode", 0o644)
            _write_files(folder, _items(data or {}, ref.get("items"), bool(ref.get("optional"))), mode)
        elif "projected" in volume:
            mode = volume["projected"].get("defaultMode", 0o644)
            _write_files(folder, _projected(pod, volume, reader, node), mode)
        elif "downwardAPI" in volume:
            _write_files(folder, _downward(pod, volume["downwardAPI"], node), 0o644)
        else:
            continue  # volume_mounts names the unsupported kind if a container mounts it
        folder.mkdir(parents=True, exist_ok=True)
        folders[name] = str(folder)
    return folders


def _host_path(root: Path, host_path: dict) -> None:
    path = pod_spec.canonical_host_path(host_path["path"])
    if path in pod_spec.KERNEL_HOST_PATHS:
        return
    target = root / path.lstrip("/")
    kind = host_path.get("type") or ""
    if kind in ("FileOrCreate", "File"):
        target.parent.mkdir(parents=True, exist_ok=True)
        target.touch(exist_ok=True)
    else:
        target.mkdir(parents=True, exist_ok=True)


# ----------------------------------------------------------------------------------- containers

def cgroup2_root() -> Path:
    """Where the host's cgroup v2 hierarchy is mounted (``/sys/fs/cgroup`` or, hybrid, ``/sys/fs/cgroup/unified``)."""
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        before, _sep, after = line.partition(" - ")
        if after.split()[0] == "cgroup2":
            return Path(before.split()[4])
    raise RuntimeError("no cgroup v2 hierarchy is mounted on this machine")


def kill_cgroup(folder: Path) -> None:
    """Kill every process of a cgroup v2 folder (``cgroup.kill``), then remove the folder."""
    if not folder.is_dir():
        return
    for sub in sorted((p for p in folder.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)) + [folder]:
        kill = sub / "cgroup.kill"
        if kill.exists():
            try:
                kill.write_text("1")
            except OSError:
                pass
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                sub.rmdir()
                break
            except OSError:
                time.sleep(0.05)


def cri_line(stream: str, line: bytes, moment: float | None = None) -> bytes:
    """One line of a container log in the CRI format kubelets keep and ``kubectl logs`` reads through them
    (``<RFC 3339 nano> <stdout|stderr> <F|P> <text>``; kwok's ``Logs`` parses the same format)."""
    epoch = time.time() if moment is None else moment
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + f".{int(epoch % 1 * 1e9):09d}Z"
    tag = "F" if line.endswith(b"\n") else "P"
    return f"{stamp} {stream} {tag} ".encode() + line.rstrip(b"\n") + b"\n"


def cri_text(line: str) -> str:
    """The text of a CRI log line (the line itself when it is not one)."""
    parts = line.split(" ", 3)
    return parts[3] if len(parts) == 4 and parts[1] in ("stdout", "stderr") and parts[2] in ("F", "P") else line


class LogPump:
    """Copies a container's stdout and stderr into its log file, line by line, in the CRI format."""

    def __init__(self, process: subprocess.Popen, path: Path):
        self.lock = threading.Lock()
        self.handle = open(path, "ab")
        self.threads = [_daemon(lambda s=stream, n=name: self._copy(s, n), f"log-{name}")
                        for stream, name in ((process.stdout, "stdout"), (process.stderr, "stderr"))]

    def _copy(self, stream, name: str) -> None:
        for line in iter(stream.readline, b""):
            with self.lock:
                self.handle.write(cri_line(name, line))
                self.handle.flush()
        stream.close()

    def close(self, timeout: float = 5) -> None:
        for thread in self.threads:
            thread.join(timeout=timeout)
        self.handle.close()


def _tail(path: Path, lines: int, limit: int) -> str:
    try:
        data = path.read_bytes()[-64 * 1024:]
    except OSError:
        return ""
    text = "\n".join(cri_text(line) for line in data.decode(errors="replace").splitlines()[-lines:])
    return text[-limit:]


@dataclass
class Probe:
    spec: dict
    failures: int = 0
    successes: int = 0
    next_at: float = 0.0

    def due(self, now: float) -> bool:
        return now >= self.next_at

    def schedule(self, now: float, first: bool = False) -> None:
        delay = float(self.spec.get("initialDelaySeconds", 0)) if first else float(self.spec.get("periodSeconds", 10))
        self.next_at = now + delay

    def count(self, ok: bool, now: float) -> None:
        """Record one result (consecutive successes or failures, as the kubelet counts them); schedule the next."""
        self.successes, self.failures = (self.successes + 1, 0) if ok else (0, self.failures + 1)
        self.schedule(now)

    @property
    def failed(self) -> bool:
        return self.failures >= int(self.spec.get("failureThreshold", 3))

    @property
    def succeeded(self) -> bool:
        return self.successes >= int(self.spec.get("successThreshold", 1))


def http_probe(netns: Path, host: str, port: int, path: str, headers: dict, timeout: float) -> bool:
    """An HTTP GET inside ``netns``; success is 200-399, as the kubelet's httpGet probe."""
    try:
        sock = linux_ns.connect_in(netns, host, port, timeout=timeout)
    except OSError:
        return False
    with sock:
        request = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}", "User-Agent: kube-probe/1.34",
                   "Accept: */*", "Connection: close"] + [f"{k}: {v}" for k, v in headers.items()]
        try:
            sock.sendall(("\r\n".join(request) + "\r\n\r\n").encode())
            head = sock.recv(64)
        except OSError:
            return False
    parts = head.split(b" ", 2)
    return len(parts) > 1 and parts[1].isdigit() and 200 <= int(parts[1]) < 400


@dataclass
class ContainerRunner:
    """One container of a pod: its process, probes, restarts and status."""
    pod: dict
    container: dict
    node: NodeInfo
    run_dir: Path
    plan_for: object  # callable () -> pod_spec.ContainerPlan (env and volumes are re-read at each start)
    restart_always: bool = True
    process: subprocess.Popen | None = None
    restarts: int = 0
    started_at: str | None = None
    last_termination: dict | None = None
    waiting: tuple | None = ("ContainerCreating", None)
    backoff: float = BACKOFF_START
    restart_at: float = 0.0
    started_probe_ok: bool = False
    ready: bool = False
    probes: dict = field(default_factory=dict)
    started_monotonic: float = 0.0
    pump: LogPump | None = None

    @property
    def name(self) -> str:
        return self.container["name"]

    @property
    def log_file(self) -> Path:
        return self.run_dir / "container.log"

    @property
    def state_file(self) -> Path:
        return self.run_dir / "state.json"

    @property
    def cgroup(self) -> Path:
        return self.node.cgroup / f"{self.pod['metadata']['uid']}-{self.name}"

    @property
    def pid(self):
        return self.process.pid if self.process and self.process.poll() is None else None

    def start(self) -> None:
        plan = self.plan_for()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if self.log_file.exists():
            self.log_file.replace(self.run_dir / "previous.log")
        rootfs, upper = self.run_dir / "rootfs", self.run_dir / "upper"
        for folder in (rootfs, upper):
            linux_ns.unmount_under(folder)
        script = self.run_dir / "start.sh"
        script.write_text(pod_spec.start_script(str(rootfs), str(upper), plan, net_core=str(self.node.net_core)))
        self.cgroup.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            ["sh", "-c", 'echo $$ > "$1/cgroup.procs" && exec ip netns exec "$2" unshare --mount --cgroup '
             '--propagation private sh "$3"', "container", str(self.cgroup), self.node.netns, str(script)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        self.pump = LogPump(self.process, self.log_file)
        self.started_at, self.started_monotonic = now_rfc3339(), time.monotonic()
        self.waiting, self.ready, self.started_probe_ok = None, False, "startupProbe" not in self.container
        now = time.monotonic()
        self.probes = {kind: Probe(self.container[kind]) for kind in ("startupProbe", "readinessProbe", "livenessProbe")
                       if kind in self.container}
        for probe in self.probes.values():
            probe.schedule(now, first=True)
        self.state_file.write_text(json.dumps({"pid": self.process.pid, "netns": self.node.netns,
                                               "path": plan.env.get("PATH", ""), "started": self.started_at}))

    def stop(self, grace: float) -> None:
        if self.process and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                pass
        kill_cgroup(self.cgroup)
        if self.process:
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        self._close_log()
        linux_ns.unmount_under(self.run_dir / "rootfs")
        self.state_file.unlink(missing_ok=True)

    def _close_log(self) -> None:
        if self.pump is not None:
            self.pump.close()
            self.pump = None

    def terminated(self, exit_code: int, reason: str | None = None) -> dict:
        self._close_log()
        message = None
        if exit_code != 0 and self.container.get("terminationMessagePolicy") == "FallbackToLogsOnError":
            message = _tail(self.log_file, TERMINATION_MESSAGE_LINES, TERMINATION_MESSAGE_BYTES)
        return {"exitCode": exit_code, "reason": reason or ("Completed" if exit_code == 0 else "Error"),
                "startedAt": self.started_at, "finishedAt": now_rfc3339(), **({"message": message} if message else {})}

    def tick(self, netns_path: Path) -> bool:
        """Poll the process, run due probes, restart when needed. Returns True when the status changed."""
        now = time.monotonic()
        before = (self.pid, self.ready, self.restarts, self.waiting)
        if self.process is None:
            if now >= self.restart_at:
                self.start()
            return True
        code = self.process.poll()
        if code is not None:
            self._exited(code, now, reason=None)
        elif self.pid:
            self._probe(now, netns_path)
        return before != (self.pid, self.ready, self.restarts, self.waiting)

    def _exited(self, code: int, now: float, reason: str | None) -> None:
        self.last_termination = self.terminated(code if code >= 0 else 128 - code, reason)
        kill_cgroup(self.cgroup)
        linux_ns.unmount_under(self.run_dir / "rootfs")
        if self.log_file.exists():  # `kubectl logs --previous` reads the terminated container's log from now on
            self.log_file.replace(self.run_dir / "previous.log")
        self.process, self.ready = None, False
        if not self.restart_always:
            return
        if now - self.started_monotonic > BACKOFF_RESET:
            self.backoff = BACKOFF_START
        self.restarts += 1
        self.restart_at = now + self.backoff
        self.waiting = ("CrashLoopBackOff", f"back-off {int(self.backoff)}s restarting failed container={self.name} "
                                            f"pod={self.pod['metadata']['name']}_{self.pod['metadata']['namespace']}"
                                            f"({self.pod['metadata']['uid']})")
        self.backoff = min(self.backoff * 2, BACKOFF_MAX)

    def _probe(self, now: float, netns_path: Path) -> None:
        """The kubelet's order: the startup probe until it succeeds (its failure kills the container), then the
        readiness probe (Ready after successThreshold successes, not Ready after failureThreshold failures) and the
        liveness probe (its failure kills the container)."""
        startup = self.probes.get("startupProbe")
        if startup and not self.started_probe_ok:
            if startup.due(now):
                startup.count(self._run_probe(startup.spec, netns_path), now)
                if startup.succeeded:
                    self.started_probe_ok = True
                    for kind in ("readinessProbe", "livenessProbe"):
                        if kind in self.probes:
                            self.probes[kind].next_at = now  # probed right after the startup probe succeeds
                elif startup.failed:
                    self._kill_for_probe("startup")
            return
        readiness = self.probes.get("readinessProbe")
        if readiness is None:
            self.ready = True
        elif readiness.due(now):
            readiness.count(self._run_probe(readiness.spec, netns_path), now)
            self.ready = readiness.succeeded or (self.ready and not readiness.failed)
        liveness = self.probes.get("livenessProbe")
        if liveness and liveness.due(now):
            liveness.count(self._run_probe(liveness.spec, netns_path), now)
            if liveness.failed:
                self._kill_for_probe("liveness")

    def _kill_for_probe(self, kind: str) -> None:
        process = self.process
        with open(self.log_file, "ab") as log:
            log.write(cri_line("stderr", f"eks-sandbox node runtime: the container failed its {kind} probe; "
                                         "killing it\n".encode()))
        self.stop(float((self.pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30)))
        self.process = process
        self._exited(137, time.monotonic(), reason="Error")

    def _port(self, port) -> int:
        if isinstance(port, int) or str(port).isdigit():
            return int(port)
        for item in self.container.get("ports") or []:
            if item.get("name") == port:
                return int(item["containerPort"])
        raise pod_spec.PodSpecError(f"probe port {port!r} is not a port of container {self.name}")

    def _run_probe(self, spec: dict, netns_path: Path) -> bool:
        timeout = float(spec.get("timeoutSeconds", 1))
        if "httpGet" in spec:
            get = spec["httpGet"]
            headers = {h["name"]: h["value"] for h in get.get("httpHeaders") or []}
            return http_probe(netns_path, get.get("host") or self.node.address, self._port(get["port"]),
                              get.get("path") or "/", headers, timeout)
        if "tcpSocket" in spec:
            try:
                linux_ns.connect_in(netns_path, spec["tcpSocket"].get("host") or self.node.address,
                                    self._port(spec["tcpSocket"]["port"]), timeout).close()
                return True
            except OSError:
                return False
        if "exec" in spec and self.pid:
            return exec_in(self.pid, spec["exec"]["command"], self.state_path(), timeout=timeout).returncode == 0
        return True

    def state_path(self) -> str:
        try:
            return json.loads(self.state_file.read_text()).get("path") or pod_spec.IMAGE_PATH
        except (OSError, ValueError):
            return pod_spec.IMAGE_PATH

    def status(self) -> dict:
        image = self.container.get("image", "")
        status = {"name": self.name, "image": image, "imageID": image, "ready": self.ready,
                  "restartCount": self.restarts, "started": bool(self.pid) and self.started_probe_ok}
        if self.pid:
            status["containerID"] = f"eks-sandbox://{self.pod['metadata']['uid']}-{self.name}-{self.restarts}"
            status["state"] = {"running": {"startedAt": self.started_at}}
        else:
            reason, message = self.waiting or ("ContainerCreating", None)
            status["state"] = {"waiting": {"reason": reason, **({"message": message} if message else {})}}
        if self.last_termination:
            status["lastState"] = {"terminated": self.last_termination}
        return status


def exec_in(pid: int, argv, path: str, timeout: float | None = None, stdin=None, capture=True):
    """Run ``argv`` in the container of process ``pid``: its mount (and root) and network namespaces."""
    command = ["nsenter", "-t", str(pid), "-m", "-n", "-r", "-w", "--", *argv]
    env = {"PATH": path, "HOME": "/root", "TERM": os.environ.get("TERM", "xterm")}
    if not capture:
        return subprocess.run(command, env=env, timeout=timeout, check=False, stdin=stdin)
    return subprocess.run(command, env=env, timeout=timeout, check=False, capture_output=True, stdin=stdin)


def wait_socket(path: Path, timeout: float) -> bool:
    """Is a Unix socket at ``path`` accepting connections within ``timeout`` seconds?"""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.socket(socket.AF_UNIX) as sock:
                sock.settimeout(1)
                sock.connect(str(path))
                return True
        except OSError:
            time.sleep(0.2)
    return False


def _daemon(target, name: str) -> threading.Thread:
    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    return thread


def service_env(host: str, port: int) -> dict:
    """The variables the kubelet gives every container for the ``kubernetes`` Service. Here they name the
    API server as the node reaches it (bridged into the node's namespace at 127.0.0.1): its certificate
    does not cover the Service's cluster IP (kwok's PKI), so the cluster IP cannot be used."""
    return {"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": str(port),
            "KUBERNETES_SERVICE_PORT_HTTPS": str(port), "KUBERNETES_PORT": f"tcp://{host}:{port}",
            f"KUBERNETES_PORT_{port}_TCP": f"tcp://{host}:{port}", f"KUBERNETES_PORT_{port}_TCP_PROTO": "tcp",
            f"KUBERNETES_PORT_{port}_TCP_PORT": str(port), f"KUBERNETES_PORT_{port}_TCP_ADDR": host}


def aws_env(endpoint: str) -> dict:
    """What the sandbox adds to a container that a real node would not: where EC2 is. An EKS node reaches the
    regional endpoint; here moto (behind the sandbox's proxy) stands in. The AWS SDK for Go v2 (Cilium's operator)
    honours ``AWS_ENDPOINT_URL`` (its ``--ec2-api-endpoint`` cannot be used: it forces https,
    pkg/ipam/allocator/aws/aws.go); the VPC CNI's ipamd (SDK v1) reads ``AWS_EC2_ENDPOINT``
    (pkg/awsutils/awssession/session.go at v1.19.2). Region and credentials come from IMDS, as on EC2."""
    return {"AWS_ENDPOINT_URL": endpoint, "AWS_EC2_ENDPOINT": endpoint} if endpoint else {}


class PodWorker:
    """Runs one pod (init containers, then its containers) until ``stop()``; ``on_status(pod, status)``
    is called with the pod's ``status`` whenever it changes."""

    def __init__(self, pod: dict, node: NodeInfo, pod_dir: Path, reader: KubeReader, on_status, log):
        self.pod, self.node, self.pod_dir, self.reader = pod, node, pod_dir, reader
        self.on_status, self.log = on_status, log
        self.stopping = threading.Event()
        self.init_statuses: dict = {}
        self.runners: list = []
        self.waiting: tuple = ("ContainerCreating", None)
        self.initialized = False
        self.start_time = now_rfc3339()
        self.transitions: dict = {}  # condition type -> (status, lastTransitionTime)
        self.thread: threading.Thread | None = None

    @property
    def key(self) -> tuple:
        return self.pod["metadata"]["namespace"], self.pod["metadata"]["name"]

    def start(self) -> None:
        self.thread = _daemon(self.run, f"pod-{self.key[1]}")

    def stop(self) -> None:
        self.stopping.set()
        if self.thread:
            self.thread.join(timeout=120)
        grace = float((self.pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30))
        for runner in self.runners:
            runner.stop(min(grace, 30))

    # ------------------------------------------------------------------------------ phases
    def run(self) -> None:
        try:
            images = self._pull()
            if images is None:
                return
            volumes = self._volumes()
            if volumes is None or not self._init(images, volumes):
                return
            spec = self.pod.get("spec") or {}
            self.runners = [self._runner(c, images, volumes, self.pod_dir / c["name"], spec.get("restartPolicy")
                                         != "Never") for c in spec.get("containers") or []]
            self.initialized = True
            self._publish()
            netns_path = linux_ns.netns_path(self.node.netns)
            while not self.stopping.is_set():
                changed = [runner.tick(netns_path) for runner in self.runners]
                if any(changed):
                    self._publish()
                self.stopping.wait(0.5)
        except Exception as exc:  # noqa: BLE001 - shown on the pod, logged, never kills the node runtime
            self.log.exception("pod %s/%s: %s", *self.key, exc)
            self.waiting = ("RunContainerError", str(exc))
            self._publish()

    def _retry(self, reason: str, message: str, delay: float) -> bool:
        self.waiting = (reason, message)
        self._publish()
        return not self.stopping.wait(delay)

    def _pull(self):
        spec = self.pod.get("spec") or {}
        images, delay = {}, BACKOFF_START
        for container in (spec.get("initContainers") or []) + (spec.get("containers") or []):
            image = container.get("image", "")
            while image not in images:
                try:
                    self.waiting = ("ContainerCreating", f"building the binaries of {image}")
                    images[image] = pull_image(image)
                except ImageUnavailable as exc:
                    if not self._retry("ImagePullBackOff", str(exc), delay):
                        return None
                    delay = min(delay * 2, BACKOFF_MAX)
        return images

    def _volumes(self):
        delay = 1.0
        while True:
            try:
                return write_volumes(self.pod, self.pod_dir, self.reader, self.node)
            except (pod_spec.PodSpecError, OSError) as exc:
                if not self._retry("ContainerCreating", f"MountVolume.SetUp failed: {exc}", delay):
                    return None
                delay = min(delay * 2, 30)

    def _init(self, images: dict, volumes: dict) -> bool:
        for container in (self.pod.get("spec") or {}).get("initContainers") or []:
            name = container["name"]
            what = INIT_CONTAINERS.get(name, "not run: the sandbox does not know this init container")
            if what == "install-cni":
                target = self.node.root / "opt/cni/bin"
                target.mkdir(parents=True, exist_ok=True)
                source = images[container["image"]][1]["cilium-cni"]
                (target / "cilium-cni.tmp").write_bytes(Path(source).read_bytes())
                (target / "cilium-cni.tmp").chmod(0o755)
                (target / "cilium-cni.tmp").replace(target / "cilium-cni")
                self.init_statuses[name] = self._done(container, 0, "Completed", None)
            elif what == "run":
                if not self._run_init(container, images, volumes):
                    return False
            else:
                self.init_statuses[name] = self._done(container, 0, "Completed", what)
            self._publish()
        return True

    def _run_init(self, container: dict, images: dict, volumes: dict) -> bool:
        runner = self._runner(container, images, volumes, self.pod_dir / "init" / container["name"], False)
        delay = BACKOFF_START
        while not self.stopping.is_set():
            runner.start()
            self.init_statuses[container["name"]] = runner.status()
            self._publish()
            while runner.process.poll() is None and not self.stopping.is_set():
                self.stopping.wait(0.2)
            if self.stopping.is_set():
                runner.stop(5)
                return False
            code = runner.process.returncode
            terminated = runner.terminated(code)
            runner.stop(0)
            if code == 0:
                self.init_statuses[container["name"]] = {**runner.status(), "ready": True,
                                                         "state": {"terminated": terminated}}
                return True
            runner.restarts += 1
            status = runner.status()
            status["lastState"] = {"terminated": terminated}
            status["state"] = {"waiting": {"reason": "CrashLoopBackOff", "message": f"back-off {int(delay)}s "
                                           f"restarting failed container={container['name']}"}}
            self.init_statuses[container["name"]] = status
            self._publish()
            if self.stopping.wait(delay):
                return False
            delay = min(delay * 2, BACKOFF_MAX)
        return False

    def _runner(self, container: dict, images: dict, volumes: dict, run_dir: Path, restart: bool) -> ContainerRunner:
        layout, artifacts = images[container["image"]]
        namespace = self.pod["metadata"]["namespace"]

        def config_value(name, key):
            data = self.reader.config_map(namespace, name)
            return data if key is None else (data or {}).get(key)

        def secret_value(name, key):
            data = self.reader.secret(namespace, name)
            if key is None:
                return {k: v.decode(errors="replace") for k, v in (data or {}).items()}
            value = (data or {}).get(key)
            return value.decode(errors="replace") if value is not None else None

        def plan():
            env = pod_spec.container_env(self.pod, container, self.node.as_dict(), config_value, secret_value,
                                         {**service_env(self.node.api_host, self.node.api_port),
                                          **aws_env(self.node.aws_endpoint)})
            return pod_spec.ContainerPlan(
                argv=pod_spec.container_argv(container, env, layout), env=env,
                workdir=container.get("workingDir") or layout.workdir,
                mounts=pod_spec.volume_mounts(self.pod, container, volumes, str(self.node.root)),
                image_files=pod_spec.image_mounts(layout, artifacts))

        return ContainerRunner(pod=self.pod, container=container, node=self.node, run_dir=run_dir, plan_for=plan,
                               restart_always=restart)

    @staticmethod
    def _done(container: dict, code: int, reason: str, message: str | None) -> dict:
        moment = now_rfc3339()
        terminated = {"exitCode": code, "reason": reason, "startedAt": moment, "finishedAt": moment,
                      **({"message": message} if message else {})}
        image = container.get("image", "")
        return {"name": container["name"], "image": image, "imageID": image, "ready": True, "restartCount": 0,
                "started": False, "state": {"terminated": terminated}}

    # ------------------------------------------------------------------------------ status
    def status(self) -> dict:
        spec = self.pod.get("spec") or {}
        moment = now_rfc3339()
        init_names = [c["name"] for c in spec.get("initContainers") or []]
        init = [self.init_statuses.get(n) or self._waiting(c, "PodInitializing")
                for n, c in zip(init_names, spec.get("initContainers") or [])]
        if self.runners:
            containers = [runner.status() for runner in self.runners]
        else:
            reason = "PodInitializing" if self.init_statuses and not self.waiting[1] else self.waiting[0]
            containers = [self._waiting(c, reason, self.waiting[1]) for c in spec.get("containers") or []]
        ready = bool(self.runners) and all(c["ready"] for c in containers)
        # A pod stays Running while its restartable containers restart (kubelet: "at least one container is
        # still running, or is in the process of starting or restarting").
        running = any(runner.started_at for runner in self.runners)

        def condition(kind, ok, reason=None):
            value = "True" if ok else "False"
            previous = self.transitions.get(kind)
            if previous is None or previous[0] != value:
                self.transitions[kind] = previous = (value, moment)
            return {"type": kind, "status": value, "lastTransitionTime": previous[1],
                    **({"reason": reason} if reason and not ok else {})}

        status = {
            "phase": "Running" if running else "Pending",
            "hostIP": self.node.address, "hostIPs": [{"ip": self.node.address}],
            "startTime": self.start_time,
            "conditions": [condition("PodReadyToStartContainers", True),
                           condition("Initialized", self.initialized, "ContainersNotInitialized"),
                           condition("Ready", ready, "ContainersNotReady"),
                           condition("ContainersReady", ready, "ContainersNotReady"), condition("PodScheduled", True)],
            "containerStatuses": containers, "initContainerStatuses": init,
        }
        if spec.get("hostNetwork"):
            status.update(podIP=self.node.address, podIPs=[{"ip": self.node.address}])
        return status

    @staticmethod
    def _waiting(container: dict, reason: str, message: str | None = None) -> dict:
        image = container.get("image", "")
        return {"name": container["name"], "image": image, "imageID": "", "ready": False, "restartCount": 0,
                "started": False, "state": {"waiting": {"reason": reason, **({"message": message} if message else {})}}}

    def _publish(self) -> None:
        try:
            self.on_status(self.pod, self.status())
        except Exception as exc:  # noqa: BLE001 - the next change publishes again
            self.log.warning("pod %s/%s: status not written: %s", *self.key, exc)
