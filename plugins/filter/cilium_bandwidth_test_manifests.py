# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: cilium_bandwidth_test_manifests
short_description: The objects cilium_bandwidth_test creates, rendered offline
version_added: 0.1.0
author:
  - Contributors to the cloudnet.cilium_eks project (@cloudnet)
description:
  - Given the options of M(cloudnet.cilium_eks.cilium_bandwidth_test), returns the Namespace, the server Pod
    (annotated C(kubernetes.io/egress-bandwidth)) and the client Pod (kept off the server's node by a required pod
    anti-affinity) that the module creates, in that order.
  - Options left out take the module's defaults. The same validation as the module applies.
  - "Pure: no Kubernetes call."
positional: _input
options:
  _input:
    description: Options of M(cloudnet.cilium_eks.cilium_bandwidth_test) (C(limit), C(tool), C(image)...).
    type: dict
    required: true
  cilium_version:
    description:
      - Cilium version (X.Y.Z) the test will run against; C(ingress_limit) is refused below 1.18, like the module
        does. Not checked when omitted.
    type: str
"""

EXAMPLES = r"""
- name: Write the bandwidth test's objects for review
  ansible.builtin.copy:
    content: "{{ {'limit': '10M', 'tool': 'iperf3'} | cloudnet.cilium_eks.cilium_bandwidth_test_manifests
                 | map('to_nice_yaml') | join('---\n') }}"
    dest: rendered/bandwidth-test.yaml
    mode: "0644"
"""

RETURN = r"""
_value:
  description: The Namespace, server Pod and client Pod manifests.
  type: list
  elements: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.bandwidth import DEFAULTS, bandwidth_test_manifests
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.errors import CiliumEksError
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.versions import parse_version

OPTIONS = frozenset(DEFAULTS) | {"ingress_limit", "report_dir", "kubeconfig", "context", "validate_certs"}


def cilium_bandwidth_test_manifests(options, cilium_version=None):
    """Pure function behind the filter; see DOCUMENTATION."""
    if not isinstance(options, dict):
        raise AnsibleFilterError("cilium_bandwidth_test_manifests expects a dict of cilium_bandwidth_test options, "
                                 "got %s" % type(options).__name__)
    unknown = sorted(set(options) - OPTIONS)
    if unknown:
        raise AnsibleFilterError("cilium_bandwidth_test_manifests: unknown option(s) %s; accepted: %s"
                                 % (", ".join(unknown), ", ".join(sorted(OPTIONS))))
    version = parse_version(cilium_version) if cilium_version else None
    if cilium_version and (version is None or version.patch is None):
        raise AnsibleFilterError("cilium_bandwidth_test_manifests: cilium_version %r is not X.Y.Z" % cilium_version)
    try:
        return bandwidth_test_manifests(options, version)
    except CiliumEksError as err:
        raise AnsibleFilterError("cilium_bandwidth_test_manifests: %s" % err) from err


class FilterModule:
    def filters(self):
        return {"cilium_bandwidth_test_manifests": cilium_bandwidth_test_manifests}
