#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: cilium_restart_unmanaged
short_description: Restart the workloads whose pods Cilium does not manage yet
version_added: 0.2.0
description:
  - Reads every pod, the CiliumEndpoints and the ReplicaSets (one read each), finds the pods Cilium does not manage
    yet and restarts their Deployments, DaemonSets and StatefulSets the way C(kubectl rollout restart) does (the pod
    template's C(kubectl.kubernetes.io/restartedAt) annotation), then waits for their rollouts.
  - A pod is unmanaged when it is not C(hostNetwork), is Running or Pending on a node whose Cilium agent is Ready,
    and has no CiliumEndpoint of the same namespace and name (C(cilium status) counts the same pods against the
    number of CiliumEndpoints for its line "Cluster Pods N/M managed by Cilium"; matching each pod to its endpoint
    names them). Pods keep their CiliumEndpoint when the agent restarts, so a second run restarts nothing.
  - Unmanaged pods without a controller are not touched; they are returned (and warned about).
author:
  - cloudnet.cilium_eks contributors (@cloudnet)
extends_documentation_fragment:
  - cloudnet.cilium_eks.k8s_auth
  - cloudnet.cilium_eks.attributes.no_diff
attributes:
  check_mode:
    support: full
    description: Reports what it would restart, restarts nothing.
options:
  cilium_namespace:
    description: Namespace of the Cilium agents (pods labelled C(k8s-app=cilium)).
    type: str
    default: kube-system
  timeout:
    description: Seconds to wait for the restarted workloads to roll out.
    type: int
    default: 600
seealso:
  - plugin: cloudnet.cilium_eks.cilium_unmanaged
    plugin_type: filter
"""

EXAMPLES = r"""
- name: Move the pods that started before Cilium onto it
  cloudnet.cilium_eks.cilium_restart_unmanaged:
    kubeconfig: "{{ playbook_dir }}/kubeconfig"
"""

RETURN = r"""
restarted:
  description: The workloads restarted (in check mode, that would be restarted).
  returned: success
  type: list
  elements: dict
  sample: [{kind: Deployment, namespace: kube-system, name: coredns}]
bare_pods:
  description: Unmanaged pods without a controller, C(namespace/name); not restarted.
  returned: success
  type: list
  elements: str
"""

from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.cilium_unmanaged import run_module
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.module_base import CiliumEksModule


def main():
    module = CiliumEksModule(
        argument_spec=dict(
            cilium_namespace=dict(type="str", default="kube-system"),
            timeout=dict(type="int", default=600),
        ),
        k8s_auth=True,
        supports_check_mode=True,
    )
    module.run(run_module)


if __name__ == "__main__":
    main()
