# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: cilium_unmanaged
short_description: Workloads whose pods Cilium does not manage (no CiliumEndpoint)
version_added: 0.1.0
author:
  - Contributors to the cloudnet.cilium_eks project (@cloudnet)
description:
  - Given the pods of the cluster, the Cilium agent pods, the CiliumEndpoints and the ReplicaSets, returns the
    workloads to restart so that their pods get their network from Cilium (ENI mode) or get Cilium chained behind
    the AWS VPC CNI (chaining mode).
  - A pod is unmanaged when it is not C(hostNetwork), is Running or Pending on a node whose Cilium agent is Ready,
    and has no CiliumEndpoint of the same namespace and name, the rule C(cilium status) uses for
    "Cluster Pods N/M managed by Cilium". Pods that got their network from Cilium keep their CiliumEndpoint when
    the agent restarts, so they are not restarted again. Pods on nodes without a Ready agent are left alone.
  - Returns C(restart), a sorted list of the Deployments, DaemonSets and StatefulSets to restart (each with
    C(kind), C(namespace) and C(name)), and C(bare_pods), the C(namespace/name) of unmanaged pods without a
    controller to restart them.
positional: _input
options:
  _input:
    description: Pod objects (C(resources) of M(kubernetes.core.k8s_info)).
    type: list
    elements: dict
    required: true
  agent_pods:
    description: The Cilium agent pods.
    type: list
    elements: dict
    required: true
  endpoints:
    description:
      - The CiliumEndpoint objects (C(resources) of M(kubernetes.core.k8s_info)); an empty list when the CRD does
        not exist yet (then no pod is managed).
    type: list
    elements: dict
    required: true
  replicasets:
    description: ReplicaSets, to find the Deployment of a pod.
    type: list
    elements: dict
    default: []
"""

EXAMPLES = r"""
- name: Workloads to restart
  ansible.builtin.set_fact:
    to_restart: "{{ pods.resources | cloudnet.cilium_eks.cilium_unmanaged(agents.resources, ceps.resources,
                  replicasets.resources) }}"
"""

RETURN = r"""
_value:
  description: The workloads to restart (key C(restart)) and the unmanaged pods without a controller (key C(bare_pods)).
  type: dict
"""

from ansible.errors import AnsibleFilterError

AGENT_LABELS = ("cilium", "cilium-operator")


def _ready(pod):
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    return any(cond.get("type") == "Ready" and cond.get("status") == "True"
               for cond in (pod.get("status") or {}).get("conditions") or [])


def unmanaged_workloads(pods, agent_pods, endpoints, replicasets=None):
    """Pure function behind the filter; see DOCUMENTATION."""
    if not isinstance(pods, list) or not isinstance(agent_pods, list) or not isinstance(endpoints, list):
        raise AnsibleFilterError("cilium_unmanaged expects lists of pods, agent pods and CiliumEndpoints")
    agent_ready = set()
    for agent in agent_pods:
        node = (agent.get("spec") or {}).get("nodeName")
        if node and _ready(agent):
            agent_ready.add(node)
    managed = set()
    for cep in endpoints:
        meta = cep.get("metadata") or {}
        managed.add((meta.get("namespace"), meta.get("name")))
    rs_owner = {}
    for rs in replicasets or []:
        meta = rs.get("metadata") or {}
        for ref in meta.get("ownerReferences") or []:
            if ref.get("controller") and ref.get("kind") == "Deployment":
                rs_owner[(meta.get("namespace"), meta.get("name"))] = ref.get("name")
    restart, bare = set(), set()
    for pod in pods:
        meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
        labels = meta.get("labels") or {}
        if spec.get("hostNetwork") or labels.get("k8s-app") in AGENT_LABELS or meta.get("deletionTimestamp"):
            continue
        if status.get("phase") not in ("Running", "Pending"):
            continue
        namespace = meta.get("namespace")
        if spec.get("nodeName") not in agent_ready or (namespace, meta.get("name")) in managed:
            continue
        owner = next((r for r in meta.get("ownerReferences") or [] if r.get("controller")), None)
        if owner and owner.get("kind") == "ReplicaSet" and (namespace, owner.get("name")) in rs_owner:
            restart.add(("Deployment", namespace, rs_owner[(namespace, owner.get("name"))]))
        elif owner and owner.get("kind") in ("DaemonSet", "StatefulSet"):
            restart.add((owner["kind"], namespace, owner.get("name")))
        else:
            bare.add("%s/%s" % (namespace, meta.get("name")))
    return {
        "restart": [{"kind": k, "namespace": ns, "name": n} for k, ns, n in sorted(restart)],
        "bare_pods": sorted(bare),
    }


class FilterModule:
    def filters(self):
        return {"cilium_unmanaged": unmanaged_workloads}
