# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: eksctl_cilium_tainted
short_description: Node groups with Cilium's agent-not-ready taint added
version_added: 0.2.0
author:
  - Contributors to the cloudnet.cilium_eks project (@cloudnet)
description:
  - Adds C(node.cilium.io/agent-not-ready=true:NoExecute) to the taints of each node group (in the spelling of the
    O(cloudnet.cilium_eks.eksctl_cluster#module:nodegroups) option), unless the node group already has a taint with
    that key, whatever its effect (the user's choice stands). The Cilium agent removes the taint from its node once it runs, so application pods do not
    start on a node before Cilium can network them (docs.cilium.io, Installation using Helm, "agent-not-ready").
positional: _input
options:
  _input:
    description: Node groups, as O(cloudnet.cilium_eks.eksctl_cluster#module:nodegroups) takes them.
    type: list
    elements: dict
    required: true
"""

EXAMPLES = r"""
- name: Node groups whose nodes wait for Cilium
  ansible.builtin.set_fact:
    nodegroups: "{{ [{'name': 'ng-1', 'instance_type': 't3.medium'}] | cloudnet.cilium_eks.eksctl_cilium_tainted }}"
"""

RETURN = r"""
_value:
  description: The node groups, each with the taint in C(taints).
  type: list
  elements: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.eksctl_config import CILIUM_TAINT


def eksctl_cilium_tainted(nodegroups):
    """Pure function behind the filter; see DOCUMENTATION."""
    if not isinstance(nodegroups, list) or not all(isinstance(ng, dict) for ng in nodegroups):
        raise AnsibleFilterError("eksctl_cilium_tainted expects a list of node groups (dicts), got %r" % (nodegroups,))
    tainted = []
    for ng in nodegroups:
        taints = list(ng.get("taints") or [])
        if not any(isinstance(t, dict) and t.get("key") == CILIUM_TAINT["key"] for t in taints):
            taints.append(dict(CILIUM_TAINT))
        tainted.append(dict(ng, taints=taints))
    return tainted


class FilterModule:
    def filters(self):
        return {"eksctl_cilium_tainted": eksctl_cilium_tainted}
