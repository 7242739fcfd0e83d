# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: eksctl_cluster_config
short_description: The eksctl ClusterConfig that eksctl_cluster would apply, rendered offline
version_added: 0.1.0
author:
  - Contributors to the cloudnet.cilium_eks project (@cloudnet)
description:
  - Given the options of M(cloudnet.cilium_eks.eksctl_cluster), returns the eksctl C(ClusterConfig) the module
    renders and hands to C(eksctl create cluster -f), including the C(cloudnet.cilium_eks/managed=true) tag.
  - "Pure: no AWS call and no eksctl. The same validation as the module applies, and errors name the option at fault."
  - Options that do not shape the ClusterConfig (C(state), C(allow_upgrade), C(force), C(kubeconfig),
    C(eksctl_path), C(timeout)) are accepted and ignored, so the module's arguments can be passed as they are.
positional: _input
options:
  _input:
    description:
      - Options of M(cloudnet.cilium_eks.eksctl_cluster) (C(name), C(region), C(version), C(nodegroups), C(vpc),
        C(iam_oidc), C(addons), C(disable_default_addons), C(tags), C(config)). C(region) is required (the filter
        does not read the environment).
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Write the ClusterConfig for review
  ansible.builtin.copy:
    content: >-
      {{ {'name': 'basic-cilium', 'region': 'us-east-1', 'version': '1.33',
          'nodegroups': [{'name': 'ng-1', 'instance_type': 't3.medium', 'desired_size': 2}]}
         | cloudnet.cilium_eks.eksctl_cluster_config | to_nice_yaml(sort_keys=false) }}
    dest: rendered/eksctl-cluster.yaml
    mode: "0644"
"""

RETURN = r"""
_value:
  description: The eksctl C(ClusterConfig) (C(apiVersion), C(kind), C(metadata), C(managedNodeGroups)...).
  type: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.eksctl_config import render_config
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.errors import CiliumEksError

RENDERED_OPTIONS = frozenset(("name", "region", "version", "nodegroups", "vpc", "iam_oidc", "addons",
                              "disable_default_addons", "tags", "config"))
IGNORED_OPTIONS = frozenset(("state", "allow_upgrade", "force", "kubeconfig", "eksctl_path", "timeout"))


def rendered_options(options, filter_name="eksctl_cluster_config"):
    """The options that shape the ClusterConfig; ``AnsibleFilterError`` for a non-dict or an unknown option."""
    if not isinstance(options, dict):
        raise AnsibleFilterError("%s expects a dict of eksctl_cluster options, got %s"
                                 % (filter_name, type(options).__name__))
    unknown = sorted(set(options) - RENDERED_OPTIONS - IGNORED_OPTIONS)
    if unknown:
        raise AnsibleFilterError("%s: unknown option(s) %s; accepted: %s"
                                 % (filter_name, ", ".join(unknown), ", ".join(sorted(RENDERED_OPTIONS | IGNORED_OPTIONS))))
    return {key: value for key, value in options.items() if key in RENDERED_OPTIONS}


def eksctl_cluster_config(options):
    """Pure function behind the filter; see DOCUMENTATION."""
    params = rendered_options(options)
    try:
        return render_config(params)
    except CiliumEksError as err:
        raise AnsibleFilterError("eksctl_cluster_config: %s" % err) from err


class FilterModule:
    def filters(self):
        return {"eksctl_cluster_config": eksctl_cluster_config}
