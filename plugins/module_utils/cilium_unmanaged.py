# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Pods Cilium does not manage yet, and the restart of their workloads, as ``kubectl rollout restart`` does it.

``unmanaged_workloads(pods, agent_pods, endpoints, replicasets)`` is the pure part (the ``cilium_unmanaged`` filter
returns it): a pod is unmanaged when it is not ``hostNetwork``, is Running or Pending on a node whose Cilium agent
is Ready, and has no CiliumEndpoint of the same namespace and name. ``cilium status`` counts "Cluster Pods N/M
managed by Cilium" as M = the pods not ``hostNetwork`` and Running or Pending, N = the CiliumEndpoints
(cilium-cli/status/k8s.go l.195-229 ``podCount`` of the CLI pinned as versions.CILIUM_CLI); matching each pod to
its endpoint, and leaving out Cilium's own pods and the nodes whose agent is not Ready yet (it will create their
endpoints), are this collection's, so that a pod is named. ``restart_unmanaged(k8s, ...)`` reads the pods, the
CiliumEndpoints and the ReplicaSets in one go, patches ``kubectl.kubernetes.io/restartedAt`` on each workload and
waits for its rollout: the ``cilium_restart_unmanaged`` module.
"""

from __future__ import annotations

import datetime

from ansible_collections.cloudnet.cilium_eks.plugins.module_utils import inputs
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.errors import CiliumEksError
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.k8s_predicates import (
    daemonset_rollout,
    deployment_rollout,
    pod_ready,
    statefulset_rollout,
    terminating,
)
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.waiter import Waiter

AGENT_LABELS = ("cilium", "cilium-operator")  # k8s-app of Cilium's own pods
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
# Seconds the restart waits for agent pods that are not Ready at that moment: a few readiness probe periods (the chart's
# cilium-agent readinessProbe: periodSeconds 30, failureThreshold 3, values.yaml l.2431-2435 at v1.20.2).
AGENT_READY_GRACE = 120
ROLLOUT = {"Deployment": deployment_rollout, "DaemonSet": daemonset_rollout, "StatefulSet": statefulset_rollout}


class RestartTimeoutError(CiliumEksError):
    """A restarted workload did not finish its rollout in time."""


def _deployments_of_replicasets(replicasets):
    owners = {}
    for rs in replicasets or []:
        meta = rs.get("metadata") or {}
        for ref in meta.get("ownerReferences") or []:
            if ref.get("controller") and ref.get("kind") == "Deployment":
                owners[(meta.get("namespace"), meta.get("name"))] = ref.get("name")
    return owners


def _unmanaged(pod, agent_ready, managed):
    """Is ``pod`` one Cilium should manage but does not (see the module docstring)?"""
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    if spec.get("hostNetwork") or (meta.get("labels") or {}).get("k8s-app") in AGENT_LABELS or terminating(pod):
        return False
    if status.get("phase") not in ("Running", "Pending"):
        return False
    return spec.get("nodeName") in agent_ready and (meta.get("namespace"), meta.get("name")) not in managed


def unmanaged_workloads(pods, agent_pods, endpoints, replicasets=None):
    """``{"restart": [{kind, namespace, name}], "bare_pods": ["namespace/name"]}`` (see the module docstring)."""
    agent_ready = {(a.get("spec") or {}).get("nodeName") for a in agent_pods if pod_ready(a)} - {None}
    managed = {((c.get("metadata") or {}).get("namespace"), (c.get("metadata") or {}).get("name")) for c in endpoints}
    rs_owner = _deployments_of_replicasets(replicasets)
    restart, bare = set(), set()
    for pod in pods:
        if not _unmanaged(pod, agent_ready, managed):
            continue
        meta = pod.get("metadata") or {}
        namespace = meta.get("namespace")
        owner = next((r for r in meta.get("ownerReferences") or [] if r.get("controller")), None)
        if owner and owner.get("kind") == "ReplicaSet" and (namespace, owner.get("name")) in rs_owner:
            restart.add(("Deployment", namespace, rs_owner[(namespace, owner.get("name"))]))
        elif owner and owner.get("kind") in ("DaemonSet", "StatefulSet"):
            restart.add((owner["kind"], namespace, owner.get("name")))
        else:
            bare.add("%s/%s" % (namespace, meta.get("name")))
    return {"restart": [{"kind": k, "namespace": ns, "name": n} for k, ns, n in sorted(restart)],
            "bare_pods": sorted(bare)}


def restart_patch(now=None):
    """The patch ``kubectl rollout restart`` makes: the pod template's ``restartedAt`` annotation."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: now.strftime("%Y-%m-%dT%H:%M:%SZ")}}}}}


def _agent_pods(pods, cilium_namespace):
    return [p for p in pods if (p.get("metadata") or {}).get("namespace") == cilium_namespace
            and ((p.get("metadata") or {}).get("labels") or {}).get("k8s-app") == "cilium"]


def find_unmanaged(k8s, cilium_namespace, pods=None):
    """``unmanaged_workloads`` on what the cluster holds (one list of pods, ``pods`` when the caller just read it,
    serves both pods and agents)."""
    pods = k8s.list("Pod") if pods is None else pods
    return unmanaged_workloads(pods, _agent_pods(pods, cilium_namespace), k8s.list("CiliumEndpoint"),
                               k8s.list("ReplicaSet"))


def restart_unmanaged(k8s, cilium_namespace="kube-system", timeout=600, check_mode=False, waiter=Waiter):
    """Restart the workloads with unmanaged pods and wait for their rollouts; the module's result.

    The status step before this one found every agent healthy. An agent pod that is not Ready at this moment (a
    readiness probe missed on a loaded node: the chart probes every 30 s and marks the pod not Ready after 3 failures,
    values.yaml l.2431-2435 at v1.20.2) would hide its node's pods (``_unmanaged``): wait up to
    :data:`AGENT_READY_GRACE` seconds for every agent pod to be Ready again, then go on with what is found."""
    def pods_with_every_agent_ready():
        pods = k8s.list("Pod")
        agents = _agent_pods(pods, cilium_namespace)
        return pods if agents and all(pod_ready(a) for a in agents) else None

    found = find_unmanaged(k8s, cilium_namespace, waiter(min(timeout, AGENT_READY_GRACE)).until(
        pods_with_every_agent_ready))
    result = {"changed": bool(found["restart"]), "restarted": found["restart"], "bare_pods": found["bare_pods"]}
    if check_mode or not found["restart"]:
        return result
    for item in found["restart"]:
        k8s.patch(item["kind"], item["name"], restart_patch(), namespace=item["namespace"])
    wait = waiter(timeout)
    pending = list(found["restart"])

    def rolled_out():
        pending[:] = [item for item in pending if not (ROLLOUT[item["kind"]](
            k8s.get(item["kind"], item["name"], item["namespace"]), None) or {}).get("rolled_out")]
        return not pending

    if not wait.until(rolled_out):
        raise RestartTimeoutError(
            "Restarted to move their pods onto Cilium, but not rolled out after %ss: %s. Look at their pods (kubectl "
            "-n <namespace> get pods) and run again." % (timeout, ", ".join(
                "%s %s/%s" % (i["kind"], i["namespace"], i["name"]) for i in pending)),
            **result)
    return result


def run_module(module):
    """Entry point of the ``cilium_restart_unmanaged`` module."""
    from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.k8s_service import K8sService

    params = module.params
    inputs.timeout(params["timeout"], "timeout")
    inputs.dns_label(params["cilium_namespace"], "cilium_namespace")
    result = restart_unmanaged(K8sService(module.k8s_client()), params["cilium_namespace"], params["timeout"],
                               check_mode=module.check_mode)
    for pod in result["bare_pods"]:
        module.warn("Pod %s is not managed by Cilium and has no controller to restart it: delete it when convenient"
                    % pod)
    return result
