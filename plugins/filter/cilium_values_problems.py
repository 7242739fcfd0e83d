# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: cilium_values_problems
short_description: What cilium_values would refuse in its options, without running a module
version_added: 0.2.0
author:
  - Contributors to the cloudnet.cilium_eks project (@cloudnet)
description:
  - Builds the Cilium Helm values from the options of M(cloudnet.cilium_eks.cilium_values) with the same Python (the
    collection's Cilium table), without a chart and without the installed release, and returns the problem found as
    a message naming the input, or an empty list.
  - Roles check their variables with it before any call to AWS or Kubernetes, in the controller process (no module
    to start); M(cloudnet.cilium_eks.cilium_values) then checks the values against the chart.
positional: _input
options:
  _input:
    description:
      - Options of M(cloudnet.cilium_eks.cilium_values) (C(mode), C(version), C(cluster_name), C(cluster_id),
        C(prefix_delegation), C(kube_proxy_replacement), C(k8s_service_host), C(k8s_service_port),
        C(egress_masquerade_interfaces), C(operator_replicas), C(extra_values)). Empty strings count as not given.
    type: dict
    required: true
  variable_prefix:
    description: Name the inputs after role variables, as the module's option of the same name does (C(cilium_eni_)).
    type: str
    default: ""
"""

EXAMPLES = r"""
- name: Check the role's Cilium settings before touching the cluster
  ansible.builtin.assert:
    that: problems | length == 0
    fail_msg: "{{ problems | join(' ') }}"
  vars:
    problems: "{{ {'mode': 'eni', 'cluster_name': cilium_eni_cluster_name} | cloudnet.cilium_eks.cilium_values_problems('cilium_eni_') }}"
"""

RETURN = r"""
_value:
  description: The message of the problem found (naming the input), or an empty list.
  type: list
  elements: str
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.cilium_values import OPTIONS, build_values, names_for
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.errors import ValidationError


def cilium_values_problems(options, variable_prefix=""):
    """Pure function behind the filter; see DOCUMENTATION."""
    if not isinstance(options, dict) or set(options) - set(OPTIONS):
        raise AnsibleFilterError("cilium_values_problems expects a dict of cilium_values options (%s), got %r"
                                 % (", ".join(OPTIONS), options))
    given = {key: value for key, value in options.items() if value not in (None, "")}
    try:
        build_values(names=names_for(variable_prefix), **given)
    except ValidationError as err:
        return [err.msg]
    except TypeError as err:  # a value of the wrong type where a number is compared
        raise AnsibleFilterError("cilium_values_problems: %s" % err) from err
    return []


class FilterModule:
    def filters(self):
        return {"cilium_values_problems": cilium_values_problems}
