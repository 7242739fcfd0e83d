"""kwok Nodes that follow each EKS managed node group's size, as the node group's Auto Scaling group would.

On AWS a managed node group owns an Auto Scaling group that launches or terminates EC2 instances
until it has ``scalingConfig.desiredSize`` of them, and each instance's kubelet registers a Node.
Here :class:`NodegroupReconciler` does both halves: for every ACTIVE node group in moto it launches
or terminates moto EC2 instances and creates or deletes the matching kwok Nodes
(``ec2_nodes.launch_instance_nodes``: providerID ``aws:///<az>/<instance>``, InternalIP = the
instance's private IP), so that ``eksctl create nodegroup``/``scale nodegroup`` (which wait for
Ready nodes labelled ``eks.amazonaws.com/nodegroup``: eksctl v0.225.0 ``pkg/eks/client.go``:178
``WaitForNodes``, the label ``pkg/apis/eksctl.io/v1alpha5/types.go``:316) and everything reading
nodes see what EKS would give. Nodes of node groups or clusters that are gone are deleted with their
instances (EKS terminates them on DeleteNodegroup).

It runs as a thread of the EKS proxy process; :meth:`wake` (called after every request that can
change a node group) makes it act at once, and it also looks every ``interval`` seconds. It reads
moto directly, never through the proxy, so fault rules cannot stop it.
"""
from __future__ import annotations

import logging
import threading
from datetime import datetime

from . import aws

log = logging.getLogger(__name__)

NODEGROUP_LABEL = "eks.amazonaws.com/nodegroup"
CLUSTER_LABEL = "alpha.eksctl.io/cluster-name"
REGION_LABEL = "topology.kubernetes.io/region"
TAINT_EFFECTS = {value: key for key, value in aws.TAINT_EFFECTS.items()}  # NO_EXECUTE -> NoExecute


def kubelet_version(k8s_version: str) -> str:
    """The kubelet an AL2023 EKS AMI of that release reports, e.g. ``v1.34.4-eks-1344a1b2``."""
    patch = aws.node_release_version(k8s_version).split("-", maxsplit=1)[0]
    return f"v{patch}-eks-{patch.replace('.', '')[:4]}a1b2"


def kube_taints(nodegroup: dict) -> list:
    """A node group's taints (EKS spelling, NO_EXECUTE) as its nodes carry them (NoExecute)."""
    return [{"key": t["key"], **({"value": t["value"]} if t.get("value") else {}),
             "effect": TAINT_EFFECTS.get(t["effect"], t["effect"])} for t in nodegroup.get("taints") or []]


def plan(desired: dict, nodes: dict) -> dict:
    """What to do, from ``desired`` ({(region, cluster, nodegroup): size}) and the Nodes that exist
    ({(region, cluster, nodegroup): [node names, oldest first]}). Pure.

    Returns ``{"launch": {key: count}, "remove": [node names]}``: missing nodes to launch per node
    group, and the nodes to remove (newest first past the desired size; all of a node group that
    no longer exists). Newest first is this platform's choice, for a stable order: an Auto Scaling
    group's default termination policy balances AZs, then takes the oldest launch template, then
    the instance closest to its next billing hour (EC2 Auto Scaling user guide, "Configure termination
    policies for Amazon EC2 Auto Scaling",
    docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-termination-policies.html)."""
    launch, remove = {}, []
    for key, size in desired.items():
        have = nodes.get(key, [])
        if len(have) < size:
            launch[key] = size - len(have)
        elif len(have) > size:
            remove += list(reversed(have))[:len(have) - size]
    for key, have in nodes.items():
        if key not in desired:
            remove += list(reversed(have))
    return {"launch": launch, "remove": remove}


class NodegroupReconciler:
    """Keeps kwok Nodes (and moto instances) in step with the node groups in moto (see the module doc)."""

    def __init__(self, moto_endpoint: str, kubeconfig: str, regions=(aws.DEFAULT_REGION,), interval: float = 2.0):
        self.moto_endpoint, self.kubeconfig, self.interval = moto_endpoint, str(kubeconfig), interval
        self.regions = set(regions)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = None
        self._clients: dict = {}
        self.rounds = 0
        self.last_error: str | None = None

    # -- clients -----------------------------------------------------------------------------------
    def _aws(self, service: str, region: str):
        key = (service, region)
        if key not in self._clients:
            import boto3

            session = boto3.session.Session(
                aws_access_key_id=aws.DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=aws.DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"], region_name=region)
            self._clients[key] = session.client(service, endpoint_url=self.moto_endpoint)
        return self._clients[key]

    def _core(self):
        if "core" not in self._clients:
            from . import kube

            self._clients["core"] = kube.core_v1(self.kubeconfig)
        return self._clients["core"]

    # -- reading -----------------------------------------------------------------------------------
    def nodegroups(self) -> dict:
        """``{(region, cluster, nodegroup): (cluster, nodegroup)}`` of every ACTIVE node group (EKS answers)."""
        found = {}
        for region in sorted(self.regions):
            eks = self._aws("eks", region)
            for name in eks.list_clusters()["clusters"]:
                try:
                    cluster = eks.describe_cluster(name=name)["cluster"]
                    groups = eks.list_nodegroups(clusterName=name)["nodegroups"]
                except eks.exceptions.ResourceNotFoundException:
                    continue  # deleted meanwhile
                for group in groups:
                    try:
                        nodegroup = eks.describe_nodegroup(clusterName=name, nodegroupName=group)["nodegroup"]
                    except eks.exceptions.ResourceNotFoundException:
                        continue
                    if nodegroup.get("status", "ACTIVE") == "ACTIVE":
                        found[(region, name, group)] = (cluster, nodegroup)
        return found

    def nodes(self) -> dict:
        """``{(region, cluster, nodegroup): [Node, oldest first]}`` of the Nodes a node group made."""
        grouped = {}
        for node in self._core().list_node(label_selector=f"{NODEGROUP_LABEL},{CLUSTER_LABEL}").items:
            labels = node.metadata.labels or {}
            key = (labels.get(REGION_LABEL, aws.DEFAULT_REGION), labels[CLUSTER_LABEL], labels[NODEGROUP_LABEL])
            grouped.setdefault(key, []).append(node)
        for members in grouped.values():
            members.sort(key=lambda n: (n.metadata.creation_timestamp or datetime.min, n.metadata.name))
        return grouped

    def node_addresses(self) -> set:
        """InternalIPs of every Node. Every eksctl VPC is 192.168.0.0/16: two clusters' instances could
        get one address, hence one Node name, in the sandbox's single API server; new ones avoid these."""
        return {address.address for node in self._core().list_node().items
                for address in node.status.addresses or [] if address.type == "InternalIP"}

    # -- acting ------------------------------------------------------------------------------------
    def reconcile_once(self) -> dict:
        """One pass; returns ``{"launched": [node names], "removed": [node names]}``."""
        groups = self.nodegroups()
        existing = self.nodes()
        todo = plan({key: ng["scalingConfig"]["desiredSize"] for key, (_c, ng) in groups.items()},
                    {key: [n.metadata.name for n in members] for key, members in existing.items()})
        by_name = {n.metadata.name: (key, n) for key, members in existing.items() for n in members}
        removed = []
        for name in todo["remove"]:
            key, node = by_name[name]
            self._remove(key[0], node)
            removed.append(name)
        launched = []
        taken = self.node_addresses() if todo["launch"] else set()
        for key, count in todo["launch"].items():
            launched += self._launch(key, *groups[key], count, taken)
        self.rounds += 1
        return {"launched": launched, "removed": removed}

    def _launch(self, key: tuple, cluster: dict, nodegroup: dict, count: int, taken: set) -> list:
        from . import ec2_nodes, kube

        region, cluster_name, group = key
        labels = {CLUSTER_LABEL: cluster_name, "alpha.eksctl.io/nodegroup-name": group, **(nodegroup.get("labels") or {})}
        group_ids = [cluster["resourcesVpcConfig"]["clusterSecurityGroupId"]] \
            if cluster["resourcesVpcConfig"].get("clusterSecurityGroupId") else []
        nodes = ec2_nodes.launch_instance_nodes(
            self._aws("ec2", region), cluster=cluster_name, nodegroup=group, count=count,
            subnets=nodegroup.get("subnets") or [], security_groups=group_ids,
            instance_type=(nodegroup.get("instanceTypes") or ["m5.large"])[0], labels=labels,
            taints=kube_taints(nodegroup), kubelet_version=kubelet_version(nodegroup.get("version") or cluster["version"]),
            capacity_type=nodegroup.get("capacityType", "ON_DEMAND"), region=region, avoid_addresses=taken)
        taken.update(a["address"] for node in nodes for a in node["status"]["addresses"] if a["type"] == "InternalIP")
        api = kube.dynamic_client(self.kubeconfig)
        kube.apply_all(api, nodes)
        return [node["metadata"]["name"] for node in nodes]

    def _remove(self, region: str, node) -> None:
        from kubernetes.client.exceptions import ApiException

        from . import ec2_nodes

        instance = ec2_nodes.instance_id_of({"spec": {"providerID": node.spec.provider_id}})
        if instance.startswith("i-"):
            try:
                ec2_nodes.terminate_instance_nodes(self._aws("ec2", region), [instance])
            except Exception as err:  # noqa: BLE001 - a seeded node has no instance in moto
                log.info("node %s: instance %s not terminated: %s", node.metadata.name, instance, err)
        try:
            self._core().delete_node(node.metadata.name)
        except ApiException as err:
            if err.status != 404:
                raise

    # -- the thread --------------------------------------------------------------------------------
    def wake(self, region: str = None) -> None:
        if region:
            self.regions.add(region)
        self._wake.set()

    def start(self) -> "NodegroupReconciler":
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="nodegroup-reconciler", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.reconcile_once()
                self.last_error = None
            except Exception as err:  # noqa: BLE001 - keep reconciling; the next pass may succeed
                self.last_error = f"{type(err).__name__}: {err}"
                log.warning("node group reconciler: %s", self.last_error)
