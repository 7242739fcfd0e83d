"""Stand-in for what the Cilium agent and operator do that is VISIBLE THROUGH THE KUBERNETES API.

No cilium-agent or cilium-operator can run in the sandbox (no eBPF, no datapath, kwok pods run no
containers), yet the collection reads what they publish. This background process (one per sandbox,
started by ``sandbox.up``, stopped by ``sandbox.down``) watches the API server and does, within
about 100 ms of the event that calls for it:

(a) **exec routing per agent pod**: for every Cilium agent pod (``kube-system``, ``k8s-app=cilium``)
    a kwok ``Exec`` (same name and namespace as the pod, container ``cilium-agent``, local exec with
    ``CILIUM_REPLAY_POD``/``NODE_NAME``), so ``kubectl exec`` into that pod is answered by
    ``agent_replay`` AS THAT NODE's agent; the ``Exec`` is deleted when the pod goes.
(b) **operator start**: when the ``cilium-operator`` Deployment appears, the CRDs of the Cilium
    version of its image tag are registered (``charts.ensure_crds``), as the operator does.
(c) **agent ready**: when an agent pod is Ready, the ``node.cilium.io/agent-not-ready`` taint is
    removed from its node and its ``CiliumNode`` is created/updated: ``spec.addresses`` (InternalIP,
    CiliumInternalIP), ``spec.health``, and the IPAM fields of the configured mode (``ipam`` of the
    ``cilium-config`` ConfigMap): ENI style (``spec.eni``, ``spec.ipam.pool`` of VPC addresses,
    ``pre-allocate``) for ``eni``, ``spec.ipam.podCIDRs`` (a /24 of 10.0.0.0/8 per node, as in the
    blog's ``kubectl get ciliumnode``) for cluster-pool and aws-cni chaining.
(d) **endpoints**: a ``CiliumEndpoint`` per non-hostNetwork pod with an IP on a node whose agent is
    Ready (endpoint ID, security identity ID, IPv4, ``state: ready``), deleted with the pod. Like the
    real CNI, only for pods STARTED AFTER the agent of their node was Ready for the first time (pods that
    predate it keep the previous CNI's network until restarted: ``cni_managed``); existing endpoints are
    kept while the agent restarts.

It also carries the **node network** of the sandbox: the sandbox's kube-apiserver reaches kubelets
(here: kwok-controller) through an egress-selector HTTP CONNECT proxy served by this process on a
Unix socket. The
EKS-like nodes have addresses no local process listens on (``ip-192-168-0-11.ec2.internal``,
``192.168.0.11``), so the proxy sends every CONNECT to a node on the kubelet port to kwok-controller
on 127.0.0.1, and refuses anything else. This is what makes ``kubectl exec``/``logs`` work.

Not simulated: datapath, BPF maps, CiliumIdentity objects, IPAM ``status`` (used/available) and
ENI objects in AWS, endpoint regeneration, CiliumEndpointSlices, health probing between nodes.
Identities and endpoint IDs are deterministic functions of labels and names (see ``identity_id``
and ``endpoint_ids`` below), which the replay reads back from the CiliumEndpoints.

Run: ``python -m eks_sandbox.agent_sim --kubeconfig K --proxy-socket S --shim-dir D``. Logs to
stdout (``sandbox.up`` redirects it to ``<sandbox dir>/agent-sim.log``).
"""
from __future__ import annotations

import argparse
import concurrent.futures
import ipaddress
import json
import logging
import os
import queue
import re
import select
import signal
import socket
import socketserver
import sys
import threading
import time
import zlib
from pathlib import Path

AGENT_NAMESPACE = "kube-system"
AGENT_SELECTOR = "k8s-app=cilium"
AGENT_CONTAINER = "cilium-agent"
OPERATOR_NAME = "cilium-operator"
CONFIG_MAP = "cilium-config"
AGENT_NOT_READY_TAINT = "node.cilium.io/agent-not-ready"
FIELD_MANAGER = "cilium-agent-sim"
SIM_LABEL = {"app.kubernetes.io/managed-by": "eks-sandbox-agent-sim"}
CLUSTER_POOL = ipaddress.ip_network("10.0.0.0/8")  # the chart's default clusterPoolIPv4PodCIDRList
CLUSTER_POOL_MASK = 24
ENI_POOL_SIZE = 12  # what both recorded EKS ENI agents show ("IPv4: 4/12 allocated,")
ENI_PRE_ALLOCATE = 8  # the operator's default pre-allocation for ENI
ENI_POOL_BASE = ipaddress.ip_address("192.168.192.0")  # inside the sandbox VPC (192.168.0.0/16), off kwok's pod CIDR
# Labels Cilium leaves out of security identities (pkg/labelsfilter defaults).
IDENTITY_EXCLUDED = re.compile(r"^(pod-template-hash|controller-revision-hash|pod-template-generation|"
                               r"statefulset\.kubernetes\.io/pod-name|batch\.kubernetes\.io/.*|job-name|controller-uid)$")

log = logging.getLogger("agent_sim")


# ----------------------------------------------------------------------------- pure builders

def image_version(image: str) -> str | None:
    """``quay.io/cilium/operator-aws:v1.18.11@sha256:..`` -> ``"1.18.11"``."""
    last = (image or "").split("@", 1)[0].rsplit("/", 1)[-1]
    if ":" not in last:
        return None
    match = re.search(r"(\d+)\.(\d+)\.(\d+)", last.split(":", 1)[1])
    return ".".join(match.groups()) if match else None


def chart_version_for(version: str, pinned: dict) -> str | None:
    """The CRD set to register for an image version: itself when pinned, else the pinned patch of its minor."""
    if not version:
        return None
    if version in pinned.values():
        return version
    return pinned.get(".".join(version.split(".")[:2]))


def pod_ready(pod: dict) -> bool:
    status = pod.get("status") or {}
    if (pod.get("metadata") or {}).get("deletionTimestamp") or status.get("phase") != "Running":
        return False
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])


def is_agent_pod(pod: dict) -> bool:
    meta = pod.get("metadata") or {}
    return meta.get("namespace") == AGENT_NAMESPACE and (meta.get("labels") or {}).get("k8s-app") == "cilium"


def agent_exec(pod: dict, kubeconfig: str, shim_dir: str, pythonpath: str) -> dict:
    """kwok ``Exec`` routing ``kubectl exec <agent pod> -c cilium-agent`` to the replay, as that pod's node."""
    meta = pod["metadata"]
    node = (pod.get("spec") or {}).get("nodeName") or ""
    return {
        "apiVersion": "kwok.x-k8s.io/v1alpha1",
        "kind": "Exec",
        "metadata": {"name": meta["name"], "namespace": meta["namespace"], "labels": dict(SIM_LABEL),
                     "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": meta["name"],
                                          "uid": meta["uid"]}] if meta.get("uid") else []},
        "spec": {"execs": [{
            "containers": [AGENT_CONTAINER],
            "local": {
                "workDir": shim_dir,
                "envs": [
                    {"name": "KUBECONFIG", "value": kubeconfig},
                    {"name": "CILIUM_REPLAY_POD", "value": f"{meta['namespace']}/{meta['name']}"},
                    {"name": "NODE_NAME", "value": node},
                    {"name": "PYTHONPATH", "value": pythonpath},
                    {"name": "PATH", "value": f"{shim_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}"},
                ],
            },
        }]},
    }


def _stable(label: str, modulo: int) -> int:
    return zlib.crc32(label.encode()) % modulo


def node_internal_ip(node: dict) -> str:
    return next((a["address"] for a in (node.get("status") or {}).get("addresses") or []
                 if a.get("type") == "InternalIP"), "")


def cluster_pool_cidr(index: int) -> str:
    """The index-th /24 of the cluster pool: 0 -> 10.0.0.0/24, 1 -> 10.0.1.0/24 (operator order)."""
    size = 2 ** (32 - CLUSTER_POOL_MASK)
    return str(ipaddress.ip_network((int(CLUSTER_POOL.network_address) + index * size, CLUSTER_POOL_MASK)))


def eni_pool(index: int) -> list:
    """ENI_POOL_SIZE VPC addresses for the index-th node (secondary IPs of its ENIs)."""
    base = int(ENI_POOL_BASE) + index * 16
    return [str(ipaddress.ip_address(base + 1 + i)) for i in range(ENI_POOL_SIZE)]


def cilium_node(node: dict, ipam_mode: str, index: int, existing: dict | None = None) -> dict:
    """The CiliumNode the agent (and the operator, for ENI pools / cluster-pool CIDRs) writes for ``node``.

    Addresses already in ``existing`` are kept, as the agent keeps its router IP across restarts."""
    meta = node["metadata"]
    name = meta["name"]
    labels = dict(meta.get("labels") or {})
    old_spec = (existing or {}).get("spec") or {}
    old_router = next((a.get("ip") for a in old_spec.get("addresses") or [] if a.get("type") == "CiliumInternalIP"), None)
    old_health = (old_spec.get("health") or {}).get("ipv4")
    spec = {"addresses": [], "alibaba-cloud": {}, "azure": {}, "encryption": {}, "eni": {}, "health": {},
            "ingress": {}, "ipam": {}}
    internal_ip = node_internal_ip(node)
    if ipam_mode == "eni":
        pool = eni_pool(index)
        eni_id = "eni-%017x" % _stable(name, 16 ** 12)
        router, health = old_router or pool[0], old_health or pool[1]
        spec["eni"] = {
            "availability-zone": labels.get("topology.kubernetes.io/zone", ""),
            "first-interface-index": 0,
            "instance-id": (node.get("spec") or {}).get("providerID", "").rsplit("/", 1)[-1],
            "instance-type": labels.get("node.kubernetes.io/instance-type", ""),
            "use-primary-address": False,
            "disable-prefix-delegation": False,
            "vpc-id": labels.get("eks.amazonaws.com/vpc-id", ""),
        }
        spec["ipam"] = {"pool": {ip: {"resource": eni_id} for ip in pool}, "pre-allocate": ENI_PRE_ALLOCATE}
        # 1.20 keeps only the top-level field; older CRDs have both (prune_object drops what a CRD lacks).
        spec["instance-id"] = spec["eni"]["instance-id"]
    else:
        cidr = ((old_spec.get("ipam") or {}).get("podCIDRs") or [None])[0] or cluster_pool_cidr(index)
        hosts = ipaddress.ip_network(cidr)
        base = int(hosts.network_address)
        router_host = 2 + _stable(name, 120)
        router = old_router or str(ipaddress.ip_address(base + router_host))
        health = old_health or str(ipaddress.ip_address(base + router_host + 121))
        spec["ipam"] = {"podCIDRs": [cidr]}
    if internal_ip:
        spec["addresses"].append({"ip": internal_ip, "type": "InternalIP"})
    spec["addresses"].append({"ip": router, "type": "CiliumInternalIP"})
    spec["health"] = {"ipv4": health}
    owner = [{"apiVersion": "v1", "kind": "Node", "name": name, "uid": meta["uid"]}] if meta.get("uid") else []
    return {"apiVersion": "cilium.io/v2", "kind": "CiliumNode",
            "metadata": {"name": name, "labels": labels, "ownerReferences": owner}, "spec": spec}


def identity_labels(pod: dict, namespace_labels: dict | None = None) -> list:
    """The security-relevant labels of a pod, in Cilium's ``k8s:`` form, sorted."""
    meta = pod["metadata"]
    labels = {f"k8s:{k}": v for k, v in (meta.get("labels") or {}).items() if not IDENTITY_EXCLUDED.match(k)}
    labels["k8s:io.kubernetes.pod.namespace"] = meta["namespace"]
    labels["k8s:io.cilium.k8s.policy.serviceaccount"] = (pod.get("spec") or {}).get("serviceAccountName") or "default"
    for key, value in (namespace_labels or {}).items():
        labels[f"k8s:io.cilium.k8s.namespace.labels.{key}"] = value
    return sorted(f"{k}={v}" for k, v in labels.items())


def identity_id(labels: list) -> int:
    """A stable security identity in the cluster-local range (256..65535) for a label set."""
    return 256 + zlib.crc32("\n".join(labels).encode()) % (65535 - 256)


def endpoint_ids(pods: list, taken: dict | None = None) -> dict:
    """Endpoint ID (1..4095) per ``(ns, name)`` for the workload pods of one node.

    Same derivation as ``agent_replay.endpoint_ids`` (crc32 of ``ns/name``, next free on collision);
    IDs already given (``taken``: key -> id) are kept."""
    ids = dict(taken or {})
    used = set(ids.values())
    for pod in sorted(pods, key=lambda p: (p["metadata"]["namespace"], p["metadata"]["name"])):
        key = (pod["metadata"]["namespace"], pod["metadata"]["name"])
        if key in ids:
            continue
        candidate = 1 + zlib.crc32(f"{key[0]}/{key[1]}".encode()) % 4095
        while candidate in used:
            candidate = candidate % 4095 + 1
        ids[key] = candidate
        used.add(candidate)
    return ids


def ready_since(pod: dict) -> str | None:
    """``lastTransitionTime`` of the Ready condition of a Ready pod (RFC 3339, UTC, seconds)."""
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready" and cond.get("status") == "True":
            return cond.get("lastTransitionTime")
    return None


def cni_managed(pod: dict, first_ready: str | None) -> bool:
    """Whether Cilium set up this pod's network: the pod was started on its node (``status.startTime``, when
    the kubelet took it and ran the CNI; else its creation) once the agent of that node had been Ready
    (``first_ready``, RFC 3339 UTC; the same second counts as after, timestamps having 1 s resolution).
    A pod created earlier but kept Pending by the agent-not-ready taint is started after: managed."""
    started = (pod.get("status") or {}).get("startTime") or (pod.get("metadata") or {}).get("creationTimestamp")
    return bool(first_ready and started and started >= first_ready)


def is_workload(pod: dict) -> bool:
    """A pod whose networking Cilium manages: scheduled, has an IP, not hostNetwork, not finished/terminating."""
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    return bool(spec.get("nodeName") and not spec.get("hostNetwork") and status.get("podIP")
                and status.get("phase") in ("Pending", "Running")
                and not (pod.get("metadata") or {}).get("deletionTimestamp"))


def cilium_endpoint(pod: dict, endpoint_id: int, node_ip: str, namespace_labels: dict | None = None) -> dict:
    meta = pod["metadata"]
    labels = identity_labels(pod, namespace_labels)
    ipv4 = (pod.get("status") or {}).get("podIP")
    return {
        "apiVersion": "cilium.io/v2",
        "kind": "CiliumEndpoint",
        "metadata": {"name": meta["name"], "namespace": meta["namespace"], "labels": dict(SIM_LABEL),
                     "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": meta["name"], "uid": meta["uid"],
                                          "blockOwnerDeletion": True}] if meta.get("uid") else []},
        "status": {
            "id": endpoint_id,
            "identity": {"id": identity_id(labels), "labels": labels},
            "networking": {"addressing": [{"ipv4": ipv4}], "node": node_ip},
            "encryption": {},
            "state": "ready",
        },
    }


def prune(value, schema: dict):
    """``value`` without the fields ``schema`` (an OpenAPI v3 schema of a CRD) does not declare, as the
    API server prunes them. Older Cilium CRDs lack fields newer agents write (e.g. ``spec.eni.instance-id``
    before 1.15), and server-side apply rejects undeclared fields instead of pruning them."""
    if not isinstance(schema, dict) or schema.get("x-kubernetes-preserve-unknown-fields"):
        return value
    if isinstance(value, dict):
        props, extra = schema.get("properties"), schema.get("additionalProperties")
        if props is None and extra is None:
            return value if schema.get("type") != "object" else {}
        pruned = {}
        for key, item in value.items():
            if props is not None and key in props:
                pruned[key] = prune(item, props[key])
            elif isinstance(extra, dict):
                pruned[key] = prune(item, extra)
            elif extra is True:
                pruned[key] = item
        return pruned
    if isinstance(value, list):
        return [prune(item, schema.get("items") or {}) for item in value]
    return value


def prune_object(obj: dict, crd: dict) -> dict:
    """``obj`` (a custom object) pruned by the schema its CRD serves for its version."""
    version = obj["apiVersion"].split("/", 1)[1]
    served = next((v for v in (crd.get("spec") or {}).get("versions") or [] if v.get("name") == version), {})
    schema = ((served.get("schema") or {}).get("openAPIV3Schema") or {}).get("properties") or {}
    return dict(obj, **{part: prune(obj[part], schema.get(part) or {}) for part in ("spec", "status") if part in obj})


def remove_taint(taints: list, key: str = AGENT_NOT_READY_TAINT) -> list | None:
    """The taints without ``key``, or None when there is nothing to remove."""
    kept = [t for t in taints or [] if t.get("key") != key]
    return kept if len(kept) != len(taints or []) else None


# -------------------------------------------------------------------------- node network proxy

class _ProxyHandler(socketserver.BaseRequestHandler):
    """One HTTP CONNECT tunnel from kube-apiserver to a node's kubelet port (kwok-controller)."""

    def handle(self):
        sock = self.request
        sock.settimeout(10)
        data = b""
        while b"\r\n\r\n" not in data and len(data) < 65536:
            chunk = sock.recv(4096)
            if not chunk:
                return
            data += chunk
        head, _sep, rest = data.partition(b"\r\n\r\n")
        request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        match = re.match(r"^CONNECT (\S+):(\d+) HTTP/1\.[01]$", request_line)
        target = self.server.route(match.group(1), int(match.group(2))) if match else None
        if target is None:
            log.warning("proxy: refused %r", request_line)
            sock.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            return
        try:
            upstream = socket.create_connection(target, timeout=10)
        except OSError as exc:
            log.warning("proxy: %s -> %s:%s failed: %s", request_line, target[0], target[1], exc)
            sock.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            return
        with upstream:
            try:
                sock.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                sock.settimeout(None)
                upstream.settimeout(None)
                if rest:
                    upstream.sendall(rest)
                pipes = {sock: upstream, upstream: sock}
                while True:
                    readable, _w, _x = select.select(list(pipes), [], [], 300)
                    if not readable:
                        return
                    for src in readable:
                        chunk = src.recv(65536)
                        if not chunk:
                            return
                        pipes[src].sendall(chunk)
            except OSError:  # either side went away (connection reset, broken pipe): the tunnel is over
                return


class NodeNetworkProxy(socketserver.ThreadingUnixStreamServer):
    """kube-apiserver's egress selector takes plain HTTP CONNECT only over a Unix socket (TCP needs mTLS)."""
    daemon_threads = True

    def __init__(self, socket_path: str, node_hosts):
        self.node_hosts = node_hosts  # callable: the names and addresses of the cluster's nodes now
        if os.path.exists(socket_path):
            os.unlink(socket_path)
        super().__init__(socket_path, _ProxyHandler)
        os.chmod(socket_path, 0o600)

    def route(self, host: str, port: int):
        """Where a CONNECT goes: a node (name or address) -> the same port on 127.0.0.1, where kwok-controller
        serves every node's kubelet API; loopback as asked; anything else is refused."""
        if host in self.node_hosts():
            return ("127.0.0.1", port)
        try:
            if ipaddress.ip_address(host).is_loopback:
                return (host, port)
        except ValueError:
            if host == "localhost":
                return ("127.0.0.1", port)
        return None


def egress_selector_config(socket_path) -> dict:
    """kube-apiserver ``--egress-selector-config-file``: cluster traffic (kubelets) through the proxy."""
    return {
        "apiVersion": "apiserver.k8s.io/v1beta1",
        "kind": "EgressSelectorConfiguration",
        "egressSelections": [{"name": "cluster", "connection": {
            "proxyProtocol": "HTTPConnect", "transport": {"uds": {"udsName": str(socket_path)}}}}],
    }


# ------------------------------------------------------------------------------- the simulator

class AgentSimulator:
    """Watches pods, nodes, the operator Deployment and cilium-config; reconciles on every event."""

    def __init__(self, kubeconfig: str, shim_dir: str, pythonpath: str):
        from kubernetes import client, config, dynamic

        self.kubeconfig = kubeconfig
        self.shim_dir = shim_dir
        self.pythonpath = pythonpath
        self.api_client = config.new_client_from_config(config_file=kubeconfig)
        self.core = client.CoreV1Api(self.api_client)
        self.apps = client.AppsV1Api(self.api_client)
        self.dyn = dynamic.DynamicClient(config.new_client_from_config(config_file=kubeconfig))
        self.events: queue.Queue = queue.Queue()
        self.stop = threading.Event()
        self.pods: dict = {}  # (ns, name) -> pod dict
        self.nodes: dict = {}  # name -> node dict
        self.namespaces: dict = {}  # name -> labels
        self.config: dict = {}
        self.operator_image = None
        self.crds_done: set = set()
        self.crds_pending: set = set()
        self.crds_failed: dict = {}  # version -> when registering its CRDs last failed
        self.execs: set = set()  # (ns, name) of Exec objects we created
        self.ceps: dict = {}  # (ns, name) -> endpoint id
        self.node_index: dict = {}  # node name -> pool index
        self.cnodes: dict = {}  # node name -> what its CiliumNode was last written from
        self.crds_ready: set = set()  # plurals of established Cilium CRDs
        self.first_ready: dict = {}  # node name -> when its agent was Ready for the first time (RFC 3339)

    def node_hosts(self) -> set:
        """Names and addresses of the nodes (read by the proxy's threads). Before the node watch has
        delivered its first list, the nodes are listed directly."""
        nodes = list(self.nodes.values())
        if not nodes:
            nodes = json.loads(self.core.list_node(_preload_content=False).data).get("items") or []
        hosts = set()
        for node in nodes:
            hosts.add(node["metadata"]["name"])
            hosts.update(a.get("address") for a in (node.get("status") or {}).get("addresses") or [])
        return hosts

    # -- watches

    def _watch(self, kind: str, list_fn, **kwargs):
        from kubernetes import watch
        from kubernetes.client.rest import ApiException

        while not self.stop.is_set():
            try:
                listing = list_fn(_preload_content=False, **kwargs)
                data = json.loads(listing.data)
                self.events.put((kind, "SYNC", data.get("items") or []))
                version = data["metadata"]["resourceVersion"]
                while not self.stop.is_set():
                    w = watch.Watch()
                    for event in w.stream(list_fn, resource_version=version, timeout_seconds=60,
                                          allow_watch_bookmarks=True, **kwargs):
                        obj = event["raw_object"]
                        version = obj.get("metadata", {}).get("resourceVersion", version)
                        if event["type"] == "ERROR":
                            raise ApiException(status=obj.get("code", 500), reason=obj.get("message"))
                        if event["type"] != "BOOKMARK":
                            self.events.put((kind, event["type"], obj))
                        if self.stop.is_set():
                            w.stop()
            except ApiException as exc:
                if exc.status != 410:
                    log.warning("watch %s: %s %s; relisting", kind, exc.status, exc.reason)
                    time.sleep(0.5)
            except Exception as exc:  # noqa: BLE001 - API server restarting, connection reset: relist
                if self.stop.is_set():
                    return
                log.warning("watch %s: %s; relisting", kind, exc)
                time.sleep(0.5)

    def start_watches(self):
        specs = [
            ("pod", self.core.list_pod_for_all_namespaces, {}),
            ("node", self.core.list_node, {}),
            ("namespace", self.core.list_namespace, {}),
            ("deployment", self.apps.list_namespaced_deployment,
             {"namespace": AGENT_NAMESPACE, "field_selector": f"metadata.name={OPERATOR_NAME}"}),
            ("configmap", self.core.list_namespaced_config_map,
             {"namespace": AGENT_NAMESPACE, "field_selector": f"metadata.name={CONFIG_MAP}"}),
        ]
        for kind, fn, kwargs in specs:
            threading.Thread(target=self._watch, args=(kind, fn), kwargs=kwargs, daemon=True,
                             name=f"watch-{kind}").start()

    # -- state

    def _absorb(self, kind: str, etype: str, obj):
        if kind == "pod":
            if etype == "SYNC":
                self.pods = {(p["metadata"]["namespace"], p["metadata"]["name"]): p for p in obj}
            elif etype == "DELETED":
                self.pods.pop((obj["metadata"]["namespace"], obj["metadata"]["name"]), None)
            else:
                self.pods[(obj["metadata"]["namespace"], obj["metadata"]["name"])] = obj
        elif kind == "node":
            if etype == "SYNC":
                self.nodes = {n["metadata"]["name"]: n for n in obj}
            elif etype == "DELETED":
                self.nodes.pop(obj["metadata"]["name"], None)
            else:
                self.nodes[obj["metadata"]["name"]] = obj
            for name in sorted(self.nodes):
                self.node_index.setdefault(name, len(self.node_index))
        elif kind == "namespace":
            if etype == "SYNC":
                self.namespaces = {n["metadata"]["name"]: n["metadata"].get("labels") or {} for n in obj}
            elif etype == "DELETED":
                self.namespaces.pop(obj["metadata"]["name"], None)
            else:
                self.namespaces[obj["metadata"]["name"]] = obj["metadata"].get("labels") or {}
        elif kind == "deployment":
            items = obj if etype == "SYNC" else ([] if etype == "DELETED" else [obj])
            self.operator_image = next((c.get("image") for d in items
                                        for c in d["spec"]["template"]["spec"]["containers"]), None)
        elif kind == "configmap":
            items = obj if etype == "SYNC" else ([] if etype == "DELETED" else [obj])
            self.config = (items[0].get("data") or {}) if items else {}

    def run(self):
        self.start_watches()
        log.info("agent simulator running (pid %d)", os.getpid())
        while not self.stop.is_set():
            try:
                event = self.events.get(timeout=1.0)
            except queue.Empty:
                self._safe_reconcile()  # retries what failed (e.g. CRDs not established yet)
                continue
            self._absorb(*event)
            while True:  # coalesce a burst of events into one reconcile
                try:
                    self._absorb(*self.events.get_nowait())
                except queue.Empty:
                    break
            self._safe_reconcile()

    def _safe_reconcile(self):
        try:
            self.reconcile()
        except Exception as exc:  # noqa: BLE001 - keep serving; the next event or tick retries
            log.warning("reconcile: %s", str(exc).splitlines()[0] if str(exc) else repr(exc))
            body = getattr(exc, "body", None)
            if body:
                log.warning("  %s", body if isinstance(body, str) else body.decode(errors="replace"))

    # -- reconcile

    def _resource(self, api_version: str, kind: str):
        return self.dyn.resources.get(api_version=api_version, kind=kind)

    def _apply(self, obj: dict):
        if obj["apiVersion"].startswith("cilium.io/"):
            plural = {"CiliumNode": "ciliumnodes", "CiliumEndpoint": "ciliumendpoints"}[obj["kind"]]
            crd = self._get("apiextensions.k8s.io/v1", "CustomResourceDefinition", f"{plural}.cilium.io")
            obj = prune_object(obj, crd or {})
        resource = self._resource(obj["apiVersion"], obj["kind"])
        meta = obj["metadata"]
        return resource.server_side_apply(body=obj, name=meta["name"], namespace=meta.get("namespace"),
                                          field_manager=FIELD_MANAGER, force_conflicts=True)

    def _delete(self, api_version: str, kind: str, name: str, namespace: str = None):
        from kubernetes.dynamic.exceptions import NotFoundError

        try:
            self._resource(api_version, kind).delete(name=name, namespace=namespace)
        except NotFoundError:
            pass

    def reconcile(self):
        # What needs no CRD first (exec routing, taints), so registering ~20 CRDs never delays them.
        agents = {key: pod for key, pod in self.pods.items() if is_agent_pod(pod)}
        self.reconcile_execs(agents)
        ready_nodes = {pod["spec"]["nodeName"] for pod in agents.values()
                       if pod_ready(pod) and (pod.get("spec") or {}).get("nodeName")}
        for pod in agents.values():
            if pod_ready(pod) and pod["spec"].get("nodeName") and pod["spec"]["nodeName"] not in self.first_ready:
                self.first_ready[pod["spec"]["nodeName"]] = (
                    ready_since(pod) or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        self.reconcile_taints(ready_nodes)
        self.reconcile_operator()
        self.reconcile_nodes(ready_nodes)
        self.reconcile_endpoints(ready_nodes)

    def reconcile_operator(self):
        """Register the CRDs of the operator's version in a thread: applying ~20 large CRDs takes seconds
        and must not delay the rest (the real operator does it while the agents start, too)."""
        from . import versions

        version = chart_version_for(image_version(self.operator_image or ""), versions.CILIUM_CHARTS)
        if not version or version in self.crds_done or version in self.crds_pending:
            return
        if time.monotonic() - self.crds_failed.get(version, -60.0) < 10:
            return  # failed a moment ago: retry in a while, not on every event
        self.crds_pending.add(version)
        threading.Thread(target=self._register_crds, args=(version,), daemon=True, name="crds").start()

    def _register_crds(self, version: str):
        import yaml

        from . import charts

        try:
            crd_dir = charts.ensure_crds(version)
            manifests = [yaml.safe_load(path.read_text()) for path in sorted(Path(crd_dir).glob("*.yaml"))]
            with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
                list(pool.map(self._apply, manifests))
            self.crds_done.add(version)
            log.info("operator %s: registered the Cilium %s CRDs", self.operator_image, version)
        except Exception as exc:  # noqa: BLE001 - retried 10 s later
            self.crds_failed[version] = time.monotonic()
            log.warning("registering the Cilium %s CRDs failed: %s", version, exc)
        finally:
            self.crds_pending.discard(version)
            self.events.put(("tick", "CRDS", None))

    def reconcile_execs(self, agents: dict):
        for key, pod in agents.items():
            if key not in self.execs and (pod.get("spec") or {}).get("nodeName"):
                self._apply(agent_exec(pod, self.kubeconfig, self.shim_dir, self.pythonpath))
                self.execs.add(key)
                log.info("exec routing for agent pod %s/%s on %s", key[0], key[1], pod["spec"]["nodeName"])
        for key in sorted(self.execs - set(agents)):
            self._delete("kwok.x-k8s.io/v1alpha1", "Exec", key[1], key[0])
            self.execs.discard(key)
            log.info("agent pod %s/%s gone: exec routing removed", *key)

    def _crd_ready(self, plural: str) -> bool:
        if plural in self.crds_ready:
            return True
        try:
            crd = self._resource("apiextensions.k8s.io/v1", "CustomResourceDefinition").get(name=f"{plural}.cilium.io")
        except Exception:  # noqa: BLE001 - absent
            return False
        if any(c.type == "Established" and c.status == "True" for c in (crd.status.conditions or [])):
            self.crds_ready.add(plural)
            return True
        return False

    def reconcile_taints(self, ready_nodes: set):
        for name in sorted(ready_nodes):
            kept = remove_taint(((self.nodes.get(name) or {}).get("spec") or {}).get("taints"))
            if kept is not None:
                self.core.patch_node(name, [{"op": "replace", "path": "/spec/taints", "value": kept}])
                self.nodes[name]["spec"]["taints"] = kept
                log.info("node %s: agent ready, %s taint removed", name, AGENT_NOT_READY_TAINT)

    def reconcile_nodes(self, ready_nodes: set):
        ipam = self.config.get("ipam") or "cluster-pool"
        if not self._crd_ready("ciliumnodes"):
            return
        for name in sorted(ready_nodes):
            node = self.nodes.get(name)
            if not node:
                continue
            key = (ipam, json.dumps(node["metadata"].get("labels") or {}, sort_keys=True), node_internal_ip(node))
            if self.cnodes.get(name) == key:
                continue
            existing = self._get("cilium.io/v2", "CiliumNode", name)
            if existing is not None and ("pool" in ((existing.get("spec") or {}).get("ipam") or {})) != (ipam == "eni"):
                self._delete("cilium.io/v2", "CiliumNode", name)  # IPAM mode changed: the agent starts over
                existing = None
            self._apply(cilium_node(node, ipam, self.node_index.get(name, 0), existing))
            self.cnodes[name] = key
            log.info("CiliumNode %s written (ipam %s)", name, ipam)

    def _get(self, api_version: str, kind: str, name: str, namespace: str = None):
        from kubernetes.dynamic.exceptions import NotFoundError

        try:
            return self._resource(api_version, kind).get(name=name, namespace=namespace).to_dict()
        except NotFoundError:
            return None

    def reconcile_endpoints(self, ready_nodes: set):
        if not self._crd_ready("ciliumendpoints"):
            return
        by_node: dict = {}
        for key, pod in self.pods.items():
            if not is_workload(pod) or not cni_managed(pod, self.first_ready.get(pod["spec"]["nodeName"])):
                continue  # predates the agent: keeps the previous CNI's network until restarted
            if pod["spec"]["nodeName"] in ready_nodes or key in self.ceps:  # kept while the agent restarts
                by_node.setdefault(pod["spec"]["nodeName"], []).append(pod)
        wanted = {}
        for node_name, pods in by_node.items():
            taken = {key: self.ceps[key] for key in self.ceps
                     if key in {(p["metadata"]["namespace"], p["metadata"]["name"]) for p in pods}}
            ids = endpoint_ids(pods, taken)
            node_ip = node_internal_ip(self.nodes.get(node_name) or {})
            for pod in pods:
                key = (pod["metadata"]["namespace"], pod["metadata"]["name"])
                wanted[key] = (ids[key], pod, node_ip)
        for key, (endpoint, pod, node_ip) in sorted(wanted.items()):
            if self.ceps.get(key) != endpoint:
                self._apply(cilium_endpoint(pod, endpoint, node_ip, self.namespaces.get(key[0])))
                self.ceps[key] = endpoint
                log.info("CiliumEndpoint %s/%s: id %d", key[0], key[1], endpoint)
        for key in sorted(set(self.ceps) - set(wanted)):
            self._delete("cilium.io/v2", "CiliumEndpoint", key[1], key[0])
            del self.ceps[key]
            log.info("CiliumEndpoint %s/%s removed", *key)


# ------------------------------------------------------------------------------------- main

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m eks_sandbox.agent_sim", description=__doc__.splitlines()[0])
    ap.add_argument("--kubeconfig", required=True)
    ap.add_argument("--proxy-socket", default="", help="Unix socket of the node-network CONNECT proxy (none: no proxy)")
    ap.add_argument("--shim-dir", required=True, help="folder of the cilium/cilium-dbg exec shims")
    ap.add_argument("--proxy-only", action="store_true",
                    help="only the node-network proxy: real Cilium runs (node_runtime.py), nothing is simulated")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                        format="%(asctime)s.%(msecs)03d %(levelname)s %(message)s", datefmt="%H:%M:%S")
    pythonpath = str(Path(__file__).resolve().parent.parent)
    sim = AgentSimulator(args.kubeconfig, args.shim_dir, pythonpath)
    signal.signal(signal.SIGTERM, lambda *_a: sim.stop.set())
    if args.proxy_socket:
        proxy = NodeNetworkProxy(args.proxy_socket, sim.node_hosts)
        threading.Thread(target=proxy.serve_forever, daemon=True, name="node-network").start()
        log.info("node network proxy on %s", args.proxy_socket)
    try:
        if args.proxy_only:
            log.info("proxy only: the Cilium agents and operator of this sandbox are real")
            while not sim.stop.wait(1.0):
                pass
        else:
            sim.run()
    except KeyboardInterrupt:
        pass
    log.info("agent simulator stopped")
    logging.shutdown()
    # Watch and proxy threads may sit in blocking socket calls: leave without waiting for them.
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
