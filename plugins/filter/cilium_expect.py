# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: cilium_expect
short_description: What every Cilium agent must report in a mode (the expect of cilium_status)
version_added: 0.2.0
author:
  - Contributors to the cloudnet.cilium_eks project (@cloudnet)
description:
  - Returns the facts the agents report in a Cilium mode (for example C(ipam_mode=eni) and C(routing_mode=native)
    in ENI mode), from the collection's Cilium table, ready for the O(cloudnet.cilium_eks.cilium_status#module:expect)
    option of M(cloudnet.cilium_eks.cilium_status). The M(cloudnet.cilium_eks.cilium_values) module returns the same
    facts for the values it builds (its C(expect)).
positional: _input
options:
  _input:
    description: The mode (C(eni) or C(chaining)).
    type: str
    required: true
  kube_proxy_replacement:
    description: Also expect kube-proxy replacement on (V(true)) or off (V(false)); not checked when omitted.
    type: bool
"""

EXAMPLES = r"""
- name: Cilium healthy in the mode it was installed in
  cloudnet.cilium_eks.cilium_status:
    expect: "{{ cilium_eks_mode | cloudnet.cilium_eks.cilium_expect }}"
"""

RETURN = r"""
_value:
  description: The expected facts, for example V(ipam_mode=eni) and V(routing_mode=native) in ENI mode.
  type: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.cloudnet.cilium_eks.plugins.module_utils import cilium_table as table
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.errors import ValidationError


def cilium_expect(mode, kube_proxy_replacement=None):
    """Pure function behind the filter; see DOCUMENTATION."""
    try:
        table.profile(mode)
    except ValidationError as err:
        raise AnsibleFilterError("cilium_expect: %s" % err) from err
    return table.expect(mode, kube_proxy_replacement)


class FilterModule:
    def filters(self):
        return {"cilium_expect": cilium_expect}
