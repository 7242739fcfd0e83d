# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: cilium_unmanaged
short_description: Workloads whose pods started before Cilium was ready on their node
version_added: 0.1.0
author:
  - Contributors to the cloudnet.cilium_eks project (@cloudnet)
description:
  - Given the pods of the cluster, the Cilium agent pods and the ReplicaSets, returns the workloads to restart so
    that their pods get their network from Cilium (ENI mode) or get Cilium chained behind the AWS VPC CNI
    (chaining mode), the way C(cilium status) counts pods "managed by Cilium".
  - A pod is unmanaged when it is not C(hostNetwork), runs on a node whose Cilium agent is Ready, and started
    before that agent became Ready. Pods on nodes without a Ready agent are left alone (nothing can be told yet).
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
  replicasets:
    description: ReplicaSets, to find the Deployment of a pod.
    type: list
    elements: dict
    default: []
"""

EXAMPLES = r"""
- name: Workloads to restart
  ansible.builtin.set_fact:
    to_restart: "{{ pods.resources | cloudnet.cilium_eks.cilium_unmanaged(agents.resources, replicasets.resources) }}"
"""

RETURN = r"""
_value:
  description: The workloads to restart (key C(restart)) and the unmanaged pods without a controller (key C(bare_pods)).
  type: dict
"""

from ansible.errors import AnsibleFilterError

AGENT_LABELS = ("cilium", "cilium-operator")


def _ready_since(pod):
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready" and cond.get("status") == "True":
            return cond.get("lastTransitionTime")
    return None


def unmanaged_workloads(pods, agent_pods, replicasets=None):
    """Pure function behind the filter; see DOCUMENTATION."""
    if not isinstance(pods, list) or not isinstance(agent_pods, list):
        raise AnsibleFilterError("cilium_unmanaged expects lists of pods and agent pods")
    agent_ready = {}
    for agent in agent_pods:
        node = (agent.get("spec") or {}).get("nodeName")
        since = _ready_since(agent)
        if node and since:
            agent_ready[node] = since
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
        node = spec.get("nodeName")
        started = status.get("startTime") or meta.get("creationTimestamp")
        if not node or node not in agent_ready or not started or started >= agent_ready[node]:
            continue
        namespace = meta.get("namespace")
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
