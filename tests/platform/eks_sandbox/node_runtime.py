"""The sandbox's nodes for real Cilium: the kubelet, container runtime and EC2 side of each kwok node.

``python -m eks_sandbox.node_runtime`` runs per sandbox started with ``cilium="real"`` (``sandbox.up``
starts it, ``sandbox.down`` stops it and everything it made). It watches the API server and:

* **hosts every node backed by an EC2 instance in moto** (``spec.providerID aws:///<zone>/<i-...>``,
  see ``ec2_nodes``): a network namespace joined to the VPC namespace (``vpc_network``) whose
  ``eth<N>`` links carry the MACs of the instance's ENIs, kept in step with moto every
  ``ENI_SYNC_SECONDS`` (ENIs the operator attaches appear like hot-plugged NICs); IMDSv2 on
  169.254.169.254 (``imds``); the API server and the AWS endpoint bridged to 127.0.0.1 inside; a root
  folder for hostPath volumes with the node's bpffs at ``/sys/fs/bpf``;
* **runs the Cilium pods for real** (agent DaemonSet pods, ``k8s-app=cilium``, and operator pods,
  ``io.cilium/app=operator``) with ``pod_runtime.PodWorker``: their status (Ready from their readiness
  probe, restarts, CrashLoopBackOff) is written by this process, not by kwok (the sandbox gives kwok a
  pod-ready Stage that leaves these pods alone: ``cluster.real_cilium_stages``), and ``kubectl exec``
  into them runs the real ``cilium``/``cilium-dbg`` in the container (a kwok ``Exec`` per pod and the
  shims of ``cluster.write_exec_shims``: :func:`exec_main`), ``kubectl logs`` reads the real log (kwok
  ``Logs``);
* **is the CNI of the other non-hostNetwork pods** scheduled to hosted nodes (``cni``): real
  ``cilium-cni`` once the node has Cilium's CNI configuration, kwok's address range before.

Host changes: none but what ``host_sysctl`` leases (``cubic`` allowed as TCP congestion control, which the
agent sets in its node's namespace) and the cgroups under ``cloudnet-cilium-eks/<tag>``; ``cleanup``
removes every namespace, mount, cgroup and process of a sandbox, also after a crash.
"""
from __future__ import annotations

import argparse
import faulthandler
import json
import logging
import os
import queue
import selectors
import shutil
import signal
import socket
import sys
import threading
import time
from pathlib import Path

from . import cni, ec2_nodes, eks_objects, host_sysctl, imds, linux_ns, pod_runtime, vpc_network

log = logging.getLogger("node_runtime")

ENI_SYNC_SECONDS = 2.0
KUBERNETES_POD_CIDR = "192.168.64.0/18"  # kwok-controller's --cidr (cluster.POD_CIDR), for the stand-in IPAM
EXEC_ENV_POD = "EKS_SANDBOX_REAL_POD"
EXEC_ENV_DIR = "EKS_SANDBOX_REAL_POD_DIR"
EXEC_ENV_CONTAINER = "EKS_SANDBOX_REAL_CONTAINER"
RUNTIME_LABEL = {"app.kubernetes.io/managed-by": "eks-sandbox-node-runtime"}


# The chart's pods run for real, by their k8s-app label: the agent DaemonSet's, and the pre-flight check's DaemonSet and
# Deployment (install/kubernetes/cilium/templates/cilium-preflight/daemonset.yaml and deployment.yaml at v1.20.2: the
# image pre-pull `touch /tmp/ready; sleep 1h`, and `cilium-dbg preflight validate-cnp` against the API server).
CILIUM_K8S_APPS = ("cilium", "cilium-pre-flight-check", "cilium-pre-flight-check-deployment")


def is_cilium_pod(pod: dict) -> bool:
    """Pods this runtime runs for real: the Cilium agent DaemonSet's, operator Deployment's and pre-flight check's
    (made by the chart), and the sandbox's own pods labelled for it (the AWS VPC CNI's aws-node:
    eks_objects.vpc_cni_addon)."""
    labels = (pod.get("metadata") or {}).get("labels") or {}
    return labels.get("k8s-app") in CILIUM_K8S_APPS or labels.get("io.cilium/app") == "operator" or \
        labels.get(eks_objects.REAL_RUN_LABEL) == "real"


def needs_network(pod: dict) -> bool:
    spec = pod.get("spec") or {}
    return bool(spec.get("nodeName")) and not spec.get("hostNetwork") and not is_cilium_pod(pod)


def finished(pod: dict) -> bool:
    meta, status = pod.get("metadata") or {}, pod.get("status") or {}
    return bool(meta.get("deletionTimestamp")) or status.get("phase") in ("Succeeded", "Failed")


def workload_status(pod: dict, node_address: str, pod_ip: str, previous: dict | None) -> dict:
    """The status a kubelet reports once a pod's containers run (containers are not run here: their status
    says running, as kwok's pod-ready Stage does)."""
    moment = pod_runtime.now_rfc3339()
    spec = pod.get("spec") or {}

    def running(container):
        image = container.get("image", "")
        return {"name": container["name"], "image": image, "imageID": image, "ready": True, "restartCount": 0,
                "started": True, "state": {"running": {"startedAt": moment}}}

    conditions = [{"type": t, "status": "True", "lastTransitionTime": moment}
                  for t in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled")]
    return {"phase": "Running", "hostIP": node_address, "hostIPs": [{"ip": node_address}], "podIP": pod_ip,
            "podIPs": [{"ip": pod_ip}], "startTime": (previous or {}).get("startTime") or moment,
            "conditions": conditions, "containerStatuses": [running(c) for c in spec.get("containers") or []],
            "initContainerStatuses": [{**running(c), "started": False, "state": {"terminated": {
                "exitCode": 0, "reason": "Completed", "startedAt": moment, "finishedAt": moment}}}
                for c in spec.get("initContainers") or []]}


# ------------------------------------------------------------------------------------ bridges

class Bridge:
    """Accepts TCP connections on a listener inside a node's namespace and relays each one to a host address."""

    def __init__(self, listener: socket.socket, target: tuple):
        self.listener, self.target = listener, target
        self.closed = threading.Event()
        pod_runtime._daemon(self._accept, f"bridge-{target[1]}")

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                client, _address = self.listener.accept()
            except OSError:
                return
            pod_runtime._daemon(lambda c=client: self._relay(c), "relay")

    def _relay(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.target, timeout=10)
        except OSError:
            client.close()
            return
        upstream.settimeout(None)
        client.settimeout(None)
        pairs = {client: upstream, upstream: client}
        with client, upstream, selectors.DefaultSelector() as selector:
            for sock in pairs:
                selector.register(sock, selectors.EVENT_READ)
            while not self.closed.is_set():
                for key, _events in selector.select(timeout=1.0):
                    try:
                        data = key.fileobj.recv(65536)
                        if not data:
                            return
                        pairs[key.fileobj].sendall(data)
                    except OSError:
                        return

    def close(self) -> None:
        self.closed.set()
        self.listener.close()


# --------------------------------------------------------------------------------------- nodes

class NodeHost:
    """One hosted node: namespace and links, root folder, bpffs, net.core view, cgroup, IMDS and bridges."""

    def __init__(self, runtime: "NodeRuntime", node: dict):
        self.runtime, self.name = runtime, node["metadata"]["name"]
        self.instance_id = ec2_nodes.instance_id_of(node)
        self.address = next((a["address"] for a in (node.get("status") or {}).get("addresses") or []
                             if a.get("type") == "InternalIP"), "")
        self.allocatable = dict((node.get("status") or {}).get("allocatable") or {})
        self.dir = runtime.state / "nodes" / self.name
        self.netns = runtime.vpc.node_ns(self.name)
        self.servers: list = []
        self.last_sync = 0.0

    @property
    def root(self) -> Path:
        return self.dir / "root"

    @property
    def net_core(self) -> Path:
        return self.dir / "net-core"

    @property
    def cgroup(self) -> Path:
        return self.runtime.cgroup / vpc_network.short(self.name)

    def info(self) -> pod_runtime.NodeInfo:
        return pod_runtime.NodeInfo(name=self.name, netns=self.netns, root=self.root, address=self.address,
                                    allocatable=self.allocatable, api_host="127.0.0.1", api_port=self.runtime.api_port,
                                    net_core=self.net_core, cgroup=self.cgroup, aws_endpoint=self.runtime.aws_endpoint)

    def up(self) -> None:
        self.runtime.vpc.ensure_node(self.name)
        self.sync_enis()
        for folder in ("etc/cni/net.d", "opt/cni/bin", "run/cilium", "run/netns", "lib/modules", "sys/fs/bpf"):
            (self.root / folder).mkdir(parents=True, exist_ok=True)
        (self.root / "run/xtables.lock").touch(exist_ok=True)
        if str((self.root / "sys/fs/bpf").resolve()) not in linux_ns.mounts_under(self.root / "sys/fs/bpf"):
            linux_ns.run(["mount", "-t", "bpf", "bpf", self.root / "sys/fs/bpf"])
        self._net_core()
        self.cgroup.mkdir(parents=True, exist_ok=True)
        path = linux_ns.netns_path(self.netns)
        source = imds.MotoInstanceSource(self.runtime.ec2, self.instance_id, self.runtime.region)
        server = imds.ImdsServer(linux_ns.listen_in(path, vpc_network.IMDS_ADDRESS, 80), source)
        pod_runtime._daemon(server.serve_forever, f"imds-{self.name}")
        self.servers.append(server)
        for port in self.runtime.bridged_ports:
            self.servers.append(Bridge(linux_ns.listen_in(path, "127.0.0.1", port), ("127.0.0.1", port)))
        log.info("node %s: namespace %s, instance %s, IMDS and bridges up", self.name, self.netns, self.instance_id)

    def _net_core(self) -> None:
        """``net.core.*`` sysctls exist only in the host's network namespace on this kernel, so inside a node's
        they are missing, and the agent's Bandwidth Manager probe (``net.core.default_qdisc``,
        pkg/datapath/linux/bandwidth) turns the feature off. Containers see this folder at
        ``/proc/sys/net/core``: copies of the host's values, taking writes that change nothing."""
        self.net_core.mkdir(parents=True, exist_ok=True)
        for entry in Path("/proc/sys/net/core").iterdir():
            try:
                (self.net_core / entry.name).write_text(entry.read_text())
            except OSError:
                continue

    def sync_enis(self) -> None:
        interfaces = vpc_network.interfaces_from_moto(self.runtime.ec2, self.instance_id)
        changes = self.runtime.vpc.sync_node(self.name, interfaces)
        if changes:
            log.info("node %s: %s", self.name, "; ".join(changes))
        self.last_sync = time.monotonic()

    def down(self) -> None:
        for server in self.servers:
            if isinstance(server, Bridge):
                server.close()
            else:
                server.shutdown()
                server.server_close()
        self.servers.clear()
        pod_runtime.kill_cgroup(self.cgroup)
        linux_ns.unmount_under(self.dir)
        self.runtime.vpc.remove_node(self.name)
        shutil.rmtree(self.dir, ignore_errors=True)
        log.info("node %s: removed", self.name)


# ------------------------------------------------------------------------------------- runtime

class NodeRuntime:
    """Watches pods and nodes; hosts nodes, runs the Cilium pods, wires the other pods' networks."""

    def __init__(self, kubeconfig: str, sandbox: str, state: Path, aws_endpoint: str, region: str, tag: str,
                 stand_in_cni: bool = False):
        import boto3
        from kubernetes import client, config

        self.kubeconfig, self.sandbox, self.state, self.region = kubeconfig, sandbox, Path(state), region
        api_client = config.new_client_from_config(config_file=kubeconfig)
        self.core = client.CoreV1Api(api_client)
        self.custom = client.CustomObjectsApi(api_client)
        self.reader = pod_runtime.KubeReader(self.core)
        self.api_port = int(api_client.configuration.host.rsplit(":", 1)[1])
        self.aws_endpoint = aws_endpoint
        self.bridged_ports = [self.api_port, int(aws_endpoint.rsplit(":", 1)[1])]
        self.ec2 = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                         region_name=region).client("ec2", endpoint_url=aws_endpoint)
        self.vpc = vpc_network.VpcNetwork(tag)
        self.cgroup = pod_runtime.cgroup2_root() / pod_runtime.CGROUP_BASE / tag
        self.events: queue.Queue = queue.Queue()
        self.stop = threading.Event()
        self.nodes: dict = {}  # name -> node object
        self.pods: dict = {}  # (ns, name) -> pod object
        self.hosts: dict = {}  # node name -> NodeHost
        self.workers: dict = {}  # (ns, name, uid) -> PodWorker
        self.networks: dict = {}  # uid -> network record (also on disk)
        self.network_failures: dict = {}  # uid -> (next attempt, delay)
        self.releasing: set = set()  # uids whose network is being released
        self.deleting: set = set()  # (ns, name, uid) of terminating Cilium pods being deleted
        self.statuses: queue.Queue = queue.Queue()
        self.stand_in = cni.StandInIpam(KUBERNETES_POD_CIDR)
        # The sandbox's VPC CNI is kwok's (a version not built here): pods of nodes without a CNI configuration get
        # a stand-in address instead of waiting, as they always did in the sandbox.
        self.stand_in_cni = stand_in_cni

    # ------------------------------------------------------------------------------ watches
    def _watch(self, kind: str, list_fn) -> None:
        from kubernetes import watch
        while not self.stop.is_set():
            try:
                listing = json.loads(list_fn(_preload_content=False).data)
                self.events.put((kind, "SYNC", listing.get("items") or []))
                version = listing["metadata"]["resourceVersion"]
                while not self.stop.is_set():
                    for event in watch.Watch().stream(list_fn, resource_version=version, timeout_seconds=60,
                                                      allow_watch_bookmarks=True):
                        obj = event["raw_object"]
                        if event["type"] == "ERROR":
                            raise RuntimeError(obj.get("message"))
                        version = obj.get("metadata", {}).get("resourceVersion", version)
                        if event["type"] != "BOOKMARK":
                            self.events.put((kind, event["type"], obj))
            except Exception as exc:  # noqa: BLE001 - API server restarting, 410 Gone: list again
                if not self.stop.is_set():
                    log.debug("watch %s: %s; relisting", kind, exc)
                    time.sleep(0.5)

    def _absorb(self, kind: str, etype: str, obj) -> None:
        store = self.pods if kind == "pod" else self.nodes

        def key(o):
            meta = o["metadata"]
            return (meta["namespace"], meta["name"]) if kind == "pod" else meta["name"]

        if etype == "SYNC":
            store.clear()
            store.update({key(o): o for o in obj})
        elif etype == "DELETED":
            store.pop(key(obj), None)
        else:
            store[key(obj)] = obj

    # ------------------------------------------------------------------------------ main loop
    def run(self) -> None:
        for kind, fn in (("node", self.core.list_node), ("pod", self.core.list_pod_for_all_namespaces)):
            pod_runtime._daemon(lambda k=kind, f=fn: self._watch(k, f), f"watch-{kind}")
        pod_runtime._daemon(self._write_statuses, "status-writer")
        log.info("node runtime running (pid %d, sandbox %s, tag %s)", os.getpid(), self.sandbox, self.vpc.tag)
        while not self.stop.is_set():
            try:
                self._absorb(*self.events.get(timeout=0.5))
                while True:
                    self._absorb(*self.events.get_nowait())
            except queue.Empty:
                pass
            try:
                self.reconcile()
            except Exception:  # noqa: BLE001 - keep serving; the next tick retries
                log.exception("reconcile")
        self.shutdown()

    def reconcile(self) -> None:
        self.reconcile_nodes()
        self.reconcile_cilium_pods()
        self.reconcile_networks()

    def reconcile_nodes(self) -> None:
        wanted = {name: node for name, node in self.nodes.items() if ec2_nodes.instance_id_of(node).startswith("i-")}
        for name in sorted(set(self.hosts) - set(wanted)):
            for key in [k for k, w in self.workers.items() if w.node.name == name]:
                self._stop_worker(key)
            self.hosts.pop(name).down()
        for name, node in sorted(wanted.items()):
            host = self.hosts.get(name)
            if host is None:
                host = NodeHost(self, node)
                try:
                    host.up()
                except Exception as exc:  # noqa: BLE001 - e.g. the instance is not in moto: retried
                    log.warning("node %s: cannot host it yet: %s", name, exc)
                    host.down()
                    continue
                self.hosts[name] = host
            elif time.monotonic() - host.last_sync > ENI_SYNC_SECONDS:
                try:
                    host.sync_enis()
                except Exception as exc:  # noqa: BLE001 - moto busy: next tick
                    log.warning("node %s: ENI sync: %s", name, exc)

    # ------------------------------------------------------------------------------ Cilium pods
    def reconcile_cilium_pods(self) -> None:
        running, terminating = {}, {}
        for (namespace, name), pod in self.pods.items():
            if not is_cilium_pod(pod):
                continue
            key = (namespace, name, pod["metadata"]["uid"])
            if pod["metadata"].get("deletionTimestamp"):
                terminating[key] = pod
            elif (pod.get("spec") or {}).get("nodeName") in self.hosts and not finished(pod):
                running[key] = pod
        for key in sorted(set(self.workers) - set(running)):
            self._stop_worker(key, delete=key in terminating)
        for key in sorted(set(terminating) - self.deleting):  # never started here: nothing to stop first
            self.deleting.add(key)
            pod_runtime._daemon(lambda k=key: self._delete_pod(k), f"delete-{key[1]}")
        for key, pod in sorted(running.items()):
            if key not in self.workers:
                host = self.hosts[pod["spec"]["nodeName"]]
                worker = pod_runtime.PodWorker(pod, host.info(), self.pod_dir(pod), self.reader, self._queue_status, log)
                self.workers[key] = worker
                self._exec_routing(pod, worker)
                worker.start()
                log.info("pod %s/%s: running it for real on %s", key[0], key[1], host.name)

    def pod_dir(self, pod: dict) -> Path:
        return self.state / "pods" / pod["metadata"]["uid"]

    def _stop_worker(self, key, delete: bool = False) -> None:
        """Stop a pod's containers; a terminating pod is then deleted from the API, as the kubelet does once its
        containers are gone (kwok's pod-delete Stage leaves Cilium's pods to this: cluster.real_cilium_stages)."""
        worker = self.workers.pop(key)
        if delete:
            self.deleting.add(key)
        log.info("pod %s/%s: stopping its containers", key[0], key[1])

        def stop():
            worker.stop()
            self._delete_exec_routing(worker.pod)
            shutil.rmtree(self.pod_dir(worker.pod), ignore_errors=True)
            if delete:
                self._delete_pod(key)
        pod_runtime._daemon(stop, f"stop-{key[1]}")

    def _delete_pod(self, key) -> None:
        from kubernetes import client
        from kubernetes.client.rest import ApiException
        try:
            # What the kubelet sends (grace 0 in the body: a query parameter alone leaves 1 s, and a new deletion)
            self.core.delete_namespaced_pod(key[1], key[0], body=client.V1DeleteOptions(
                grace_period_seconds=0, preconditions=client.V1Preconditions(uid=key[2])))
        except ApiException as exc:
            if exc.status not in (404, 409):
                log.warning("pod %s/%s: delete: %s", key[0], key[1], exc.reason)
        finally:
            self.deleting.discard(key)

    def _queue_status(self, pod: dict, status: dict) -> None:
        self.statuses.put((pod, status))

    def _write_statuses(self) -> None:
        from kubernetes.client.rest import ApiException
        last = {}
        while not self.stop.is_set():
            try:
                pod, status = self.statuses.get(timeout=0.5)
            except queue.Empty:
                continue
            pending = {pod["metadata"]["uid"]: (pod, status)}
            while True:  # only the newest status of each pod is worth writing
                try:
                    pod, status = self.statuses.get_nowait()
                    pending[pod["metadata"]["uid"]] = (pod, status)
                except queue.Empty:
                    break
            for uid, (pod, status) in pending.items():
                if last.get(uid) == status:
                    continue
                try:
                    self.core.patch_namespaced_pod_status(pod["metadata"]["name"], pod["metadata"]["namespace"],
                                                          {"status": status})
                    last[uid] = status
                except ApiException as exc:
                    if exc.status != 404:
                        log.warning("pod %s: status: %s %s", pod["metadata"]["name"], exc.reason, exc.body)

    # ------------------------------------------------------------------------------ exec and logs
    def _exec_routing(self, pod: dict, worker: pod_runtime.PodWorker) -> None:
        """kwok ``Exec`` and ``Logs`` objects for the pod: execs run in its containers, logs are theirs."""
        from . import cluster
        meta = pod["metadata"]
        containers = [c["name"] for c in (pod.get("spec") or {}).get("containers") or []]
        owner = [{"apiVersion": "v1", "kind": "Pod", "name": meta["name"], "uid": meta["uid"]}]
        shims = str(cluster.exec_shim_dir())
        envs = [{"name": "PYTHONPATH", "value": str(Path(__file__).resolve().parent.parent)},
                {"name": EXEC_ENV_POD, "value": f"{meta['namespace']}/{meta['name']}"},
                {"name": EXEC_ENV_DIR, "value": str(worker.pod_dir)},
                {"name": "PATH", "value": f"{shims}:{os.environ.get('PATH', '/usr/bin:/bin')}"}]
        body = {"apiVersion": "kwok.x-k8s.io/v1alpha1", "metadata": {
            "name": meta["name"], "namespace": meta["namespace"], "labels": dict(RUNTIME_LABEL), "ownerReferences": owner}}
        execs = dict(body, kind="Exec", spec={"execs": [
            {"containers": [name], "local": {"workDir": shims, "envs": envs + [
                {"name": EXEC_ENV_CONTAINER, "value": name}]}} for name in containers]})
        logs = dict(body, kind="Logs", spec={"logs": [
            {"containers": [name], "logsFile": str(worker.pod_dir / name / "container.log"),
             "previousLogsFile": str(worker.pod_dir / name / "previous.log"), "follow": True}
            for name in containers]})
        for obj, plural in ((execs, "execs"), (logs, "logs")):
            try:
                self.custom.create_namespaced_custom_object("kwok.x-k8s.io", "v1alpha1", meta["namespace"], plural, obj)
            except Exception as exc:  # noqa: BLE001 - already there (runtime restarted), or Logs CRD off
                log.debug("pod %s: %s: %s", meta["name"], plural, exc)

    def _delete_exec_routing(self, pod: dict) -> None:
        for plural in ("execs", "logs"):
            try:
                self.custom.delete_namespaced_custom_object("kwok.x-k8s.io", "v1alpha1", pod["metadata"]["namespace"],
                                                            plural, pod["metadata"]["name"])
            except Exception:  # noqa: BLE001 - gone with the pod (owner reference)
                pass

    # ------------------------------------------------------------------------------ pod networks
    def _network_file(self, uid: str) -> Path:
        return self.state / "networks" / f"{uid}.json"

    def reconcile_networks(self) -> None:
        live = {}
        for pod in self.pods.values():
            if needs_network(pod) and pod["spec"]["nodeName"] in self.hosts and not finished(pod):
                live[pod["metadata"]["uid"]] = pod
        for record in sorted(self.state.glob("networks/*.json")):
            if record.stem not in live and record.stem not in self.releasing:
                self.releasing.add(record.stem)
                pod_runtime._daemon(lambda r=json.loads(record.read_text()): self._release_network(r), "cni-del")
        for uid, pod in live.items():
            if uid in self.networks or self._network_file(uid).exists():
                continue
            retry_at, _delay = self.network_failures.get(uid, (0.0, 1.0))
            if time.monotonic() >= retry_at:
                self.networks[uid] = "pending"
                pod_runtime._daemon(lambda p=pod: self._add_network(p), f"cni-{pod['metadata']['name']}")

    def _add_network(self, pod: dict) -> None:
        meta, host = pod["metadata"], self.hosts.get(pod["spec"]["nodeName"])
        uid = meta["uid"]
        record = {"uid": uid, "namespace": meta["namespace"], "name": meta["name"], "node": pod["spec"]["nodeName"]}
        try:
            conf = cni.active_conf(host.root / "etc/cni/net.d")
            if conf is None and not self.stand_in_cni:  # the kubelet's "network plugin not ready": retried
                raise cni.CniError("no networks found in /etc/cni/net.d (cni plugin not initialized)")
            if conf is None:
                used = {p.get("status", {}).get("podIP") for p in self.pods.values()}
                record.update(kind="stand-in", ip=self.stand_in.pick(used, uid))
            else:
                netns = f"{vpc_network.PREFIX}-{self.vpc.tag}-p{vpc_network.short(uid)}"
                linux_ns.ip("netns", "add", netns, check=False)
                linux_ns.ip("link", "set", "lo", "up", netns=netns)
                record.update(kind="cni", conf_file=conf[0], conflist=conf[1], netns=netns, node_netns=host.netns)
                result = cni.run_conflist("ADD", conf[1], pod, netns, host.netns, host.root, host.dir / "cni")
                record.update(result=result, ip=cni.result_ipv4(result))
                if not record["ip"]:
                    raise cni.CniError(f"the CNI result has no IPv4 address: {json.dumps(result)}")
            self._network_file(uid).parent.mkdir(parents=True, exist_ok=True)
            self._network_file(uid).write_text(json.dumps(record))
            self.core.patch_namespaced_pod_status(meta["name"], meta["namespace"], {
                "status": workload_status(pod, host.address, record["ip"], pod.get("status"))})
            self.network_failures.pop(uid, None)
            log.info("pod %s/%s: %s IP %s on %s", meta["namespace"], meta["name"], record["kind"], record["ip"],
                     host.name)
        except Exception as exc:  # noqa: BLE001 - the runtime retries with back-off, as the kubelet does
            if record.get("netns"):
                linux_ns.ip("netns", "del", record["netns"], check=False)
            _at, delay = self.network_failures.get(uid, (0.0, 1.0))
            self.network_failures[uid] = (time.monotonic() + delay, min(delay * 2, 10.0))
            log.warning("pod %s/%s: FailedCreatePodSandBox: %s", meta["namespace"], meta["name"], exc)
        finally:
            self.networks.pop(uid, None)

    def _release_network(self, record: dict, cni_del: bool = True) -> None:
        """CNI DEL (unless the whole node goes: ``cni_del=False``, as when an instance is terminated), then the
        pod's namespace and record."""
        if record.get("kind") == "cni":
            host = self.hosts.get(record["node"])
            try:
                if host is not None and cni_del:
                    pod = {"metadata": {"uid": record["uid"], "namespace": record["namespace"], "name": record["name"]}}
                    cni.run_conflist("DEL", record["conflist"], pod, record["netns"], host.netns, host.root,
                                     host.dir / "cni", cached=record.get("result"))
            except Exception as exc:  # noqa: BLE001 - the namespace goes anyway, as a runtime does
                log.warning("pod %s/%s: CNI DEL: %s", record["namespace"], record["name"], exc)
            linux_ns.ip("netns", "del", record["netns"], check=False)
        self._network_file(record["uid"]).unlink(missing_ok=True)
        self.releasing.discard(record["uid"])
        log.info("pod %s/%s: network released", record["namespace"], record["name"])

    # ------------------------------------------------------------------------------ shutdown
    def shutdown(self) -> None:
        log.info("node runtime stopping: %d pods, %d nodes", len(self.workers), len(self.hosts))
        threads = []
        for key in list(self.workers):
            worker = self.workers.pop(key)
            threads.append(pod_runtime._daemon(worker.stop, "stop"))
        for thread in threads:
            thread.join(timeout=60)
        for record in sorted(self.state.glob("networks/*.json")):
            self._release_network(json.loads(record.read_text()), cni_del=False)
        for host in list(self.hosts.values()):
            host.down()
        self.hosts.clear()
        self.vpc.down()


def cleanup(state: Path, tag: str) -> dict:
    """Remove whatever a sandbox's node runtime left (after it stopped, or crashed): processes in its cgroups,
    mounts under its folder, its namespaces, cgroups and folder. Returns what was found."""
    found = {"cgroups": [], "mounts": [], "namespaces": []}
    try:
        cgroup = pod_runtime.cgroup2_root() / pod_runtime.CGROUP_BASE / tag
    except RuntimeError:
        cgroup = None
    if cgroup is not None and cgroup.is_dir():
        found["cgroups"] = sorted(str(p) for p in cgroup.rglob("cgroup.procs") if p.read_text().strip())
        pod_runtime.kill_cgroup(cgroup)
        try:
            cgroup.parent.rmdir()  # cloudnet-cilium-eks itself, when no other sandbox uses it
        except OSError:
            pass
    found["mounts"] = linux_ns.unmount_under(state) if state.exists() else []
    for name in linux_ns.netns_names(f"{vpc_network.PREFIX}-{tag}-"):
        for pid in linux_ns.pids_in_netns(name):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        linux_ns.ip("netns", "del", name, check=False)
        found["namespaces"].append(name)
    shutil.rmtree(state, ignore_errors=True)
    return found


# ------------------------------------------------------------------------------------- exec shim

def exec_main(argv) -> int:
    """``kubectl exec <cilium pod> -- cilium ...``: kwok runs the shim named like the program with the pod's
    folder and container in the environment; the program runs in that container, stdin/stdout passed through."""
    pod_dir, container = Path(os.environ[EXEC_ENV_DIR]), os.environ[EXEC_ENV_CONTAINER]
    try:
        state = json.loads((pod_dir / container / "state.json").read_text())
    except (OSError, ValueError):
        sys.stderr.write(f"error: container {container} of pod {os.environ.get(EXEC_ENV_POD)} is not running\n")
        return 1
    completed = pod_runtime.exec_in(state["pid"], list(argv), state.get("path") or "", capture=False)
    return completed.returncode


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eks_sandbox.node_runtime", description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--sandbox", required=True)
    parser.add_argument("--state", required=True, help="the runtime's folder (nodes, pods, networks)")
    parser.add_argument("--aws-endpoint", required=True)
    parser.add_argument("--region", required=True)
    parser.add_argument("--tag", required=True, help="names of the sandbox's namespaces and cgroups")
    parser.add_argument("--stand-in-cni", action="store_true",
                        help="pods of nodes without CNI configuration get a stand-in address (kwok's VPC CNI)")
    args = parser.parse_args(argv)
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # `kill -USR1 <pid>`: every thread's stack in the log
    logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                        format="%(asctime)s.%(msecs)03d %(levelname)s %(threadName)s %(message)s", datefmt="%H:%M:%S")
    runtime = NodeRuntime(args.kubeconfig, args.sandbox, Path(args.state), args.aws_endpoint, args.region, args.tag,
                          stand_in_cni=args.stand_in_cni)
    signal.signal(signal.SIGTERM, lambda *_a: runtime.stop.set())
    holder = host_sysctl.holder_id(Path(args.state).parent, args.sandbox)
    if not host_sysctl.acquire(holder, str(args.state)):
        log.warning("this kernel has no %s congestion control: agents with the Bandwidth Manager will fail",
                    host_sysctl.ALGORITHM)
    try:
        runtime.run()
    except KeyboardInterrupt:
        runtime.shutdown()
    log.info("node runtime stopped")
    logging.shutdown()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
