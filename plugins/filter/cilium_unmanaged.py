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
    and has no CiliumEndpoint of the same namespace and name (C(cilium status) counts the same pods against the
    number of CiliumEndpoints for its line "Cluster Pods N/M managed by Cilium"; matching each pod to its endpoint
    names them). Pods that got their network from Cilium keep their CiliumEndpoint when
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

from ansible_collections.cloudnet.cilium_eks.plugins.module_utils import cilium_unmanaged


def unmanaged_workloads(pods, agent_pods, endpoints, replicasets=None):
    """Pure function behind the filter; see DOCUMENTATION (the rule lives in module_utils/cilium_unmanaged.py)."""
    if not isinstance(pods, list) or not isinstance(agent_pods, list) or not isinstance(endpoints, list):
        raise AnsibleFilterError("cilium_unmanaged expects lists of pods, agent pods and CiliumEndpoints")
    return cilium_unmanaged.unmanaged_workloads(pods, agent_pods, endpoints, replicasets)


class FilterModule:
    def filters(self):
        return {"cilium_unmanaged": unmanaged_workloads}
