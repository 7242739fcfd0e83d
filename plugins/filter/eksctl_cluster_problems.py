# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: eksctl_cluster_problems
short_description: What eksctl_cluster would refuse in its options, named as the caller names them
version_added: 0.2.0
author:
  - Contributors to the cloudnet.cilium_eks project (@cloudnet)
description:
  - Runs the validation of M(cloudnet.cilium_eks.eksctl_cluster) (the same Python, no AWS call, no eksctl) on its
    options and returns the first problem as a message naming the input, or an empty list when they are valid.
  - Roles use it to check their variables before any call to AWS, with the messages naming the role variables.
positional: _input
options:
  _input:
    description: Options of M(cloudnet.cilium_eks.eksctl_cluster), as for P(cloudnet.cilium_eks.eksctl_cluster_config#filter).
    type: dict
    required: true
  names:
    description: How the messages name the options (option name to variable name), for example C(name) to C(eks_cluster_name).
    type: dict
    default: {}
  supported_versions:
    description: Kubernetes versions to accept for C(version); any C(1.NN) when empty.
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: Check the role's variables before any AWS call
  ansible.builtin.assert:
    that: problems | length == 0
    fail_msg: "{{ problems | join(' ') }}"
  vars:
    problems: >-
      {{ {'name': eks_cluster_name, 'region': eks_cluster_region, 'nodegroups': eks_cluster_nodegroups}
         | cloudnet.cilium_eks.eksctl_cluster_problems({'name': 'eks_cluster_name', 'nodegroups': 'eks_cluster_nodegroups'}) }}
"""

RETURN = r"""
_value:
  description: The message of the first problem found (naming the input), or an empty list.
  type: list
  elements: str
"""

from ansible_collections.cloudnet.cilium_eks.plugins.filter.eksctl_cluster_config import rendered_options
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.eksctl_config import render_config, validate_version
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.errors import ValidationError


def eksctl_cluster_problems(options, names=None, supported_versions=None):
    """Pure function behind the filter; see DOCUMENTATION."""
    options = rendered_options(options, "eksctl_cluster_problems")
    try:
        if supported_versions and options.get("version") is not None:
            validate_version(options["version"], supported=[str(v) for v in supported_versions])
        render_config(options)
    except ValidationError as err:
        return [err.renamed(names or {}).msg]
    return []


class FilterModule:
    def filters(self):
        return {"eksctl_cluster_problems": eksctl_cluster_problems}
