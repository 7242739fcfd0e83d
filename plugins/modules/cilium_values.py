#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: cilium_values
short_description: Helm values of the Cilium chart for EKS, per Cilium version and mode
version_added: 0.1.0
description:
  - Builds the values of the Cilium Helm chart for an EKS cluster in C(eni) mode (Cilium IPAM from AWS ENIs,
    the AWS VPC CNI evicted) or C(chaining) mode (Cilium chained behind the AWS VPC CNI).
  - The mapping is kept per Cilium minor version (1.13 to 1.20), for example C(tunnel=disabled) on 1.13 and
    C(routingMode=native) from 1.14, C(kubeProxyReplacement=disabled|strict) on 1.13 and C(false|true) from 1.14.
  - Validates the inputs and their combinations before anything is changed, and names the input at fault.
  - When O(chart_ref) is given, reads that chart with C(helm show chart) and C(helm show values); its version must
    be O(version), and every key of O(extra_values) must exist in its values.yaml (keys it documents commented out
    count). Without O(chart_ref), the keys of O(extra_values) are not checked against a chart.
  - Changes nothing; runs in check mode.
author:
  - cloudnet.cilium_eks contributors (@cloudnet)
options:
  mode:
    description: How Cilium networks the pods.
    type: str
    required: true
    choices: [eni, chaining]
  version:
    description:
      - Cilium version (X.Y.Z). Supported minors are 1.13 to 1.20.
      - The default is the newest patch the collection is tested with.
    type: str
    default: 1.20.2
  cluster_name:
    description:
      - Cilium's C(cluster.name), normally the EKS cluster name. Required in C(eni) mode.
      - At most 32 lower-case alphanumerics and C(-) (the chart enforces it from 1.16).
    type: str
  cluster_id:
    description:
      - Cilium's C(cluster.id). 128-255 (and 384-511) are refused in both modes (cilium/cilium#21330).
    type: int
    default: 0
  prefix_delegation:
    description: Set C(eni.awsEnablePrefixDelegation) (ENI mode only; refused in chaining mode).
    type: bool
    default: false
  kube_proxy_replacement:
    description:
      - Turn on Cilium's kube-proxy replacement. Requires O(k8s_service_host).
    type: bool
    default: false
  k8s_service_host:
    description: API server host the agents use when O(kube_proxy_replacement=true) (the EKS endpoint host).
    type: str
  k8s_service_port:
    description: API server port used with O(k8s_service_host). Defaults to 443.
    type: int
  egress_masquerade_interfaces:
    description:
      - C(egressMasqueradeInterfaces) (ENI mode). Unset by default; C(eth0) breaks Amazon Linux 2023 nodes.
    type: str
  operator_replicas:
    description: C(operator.replicas); the chart's default (2) when not given.
    type: int
  extra_values:
    description:
      - Further chart values, merged on top. Keys a mode decides, keys with their own option and keys removed
        from that chart version are refused.
      - In chaining mode, C(bandwidthManager.bbr) (the agent does not start with BBR there) and
        C(eni.awsEnablePrefixDelegation) (no effect there) are refused too.
    type: dict
    default: {}
  installed_values:
    description:
      - User-supplied values of the installed release (for example C(status.values) of
        M(kubernetes.core.helm_info)). A release installed in the other mode makes the module fail.
    type: dict
  chart_ref:
    description:
      - Chart to check O(extra_values) and O(version) against, as M(kubernetes.core.helm) takes it
        (packaged chart, chart folder, or chart name with O(chart_repo_url)).
    type: str
  chart_repo_url:
    description: Repository of O(chart_ref), for example C(https://helm.cilium.io/).
    type: str
  chart_version:
    description: Chart version to read from O(chart_repo_url). Defaults to O(version).
    type: str
  helm_path:
    description: Path of the helm binary; looked up on PATH when not given.
    type: path
  variable_prefix:
    description:
      - Name errors after variables instead of options, for example C(cilium_eni_) names the option
        O(extra_values) C(cilium_eni_extra_values) in messages.
    type: str
notes:
  - Runs C(helm show) because M(kubernetes.core.helm_info) and M(kubernetes.core.helm_template) cannot print a chart's
    raw values.yaml, and its comments are needed to know the keys the chart documents commented out.
seealso:
  - module: kubernetes.core.helm
  - name: Cilium on the AWS VPC CNI
    description: docs.cilium.io, Installation, CNI chaining, AWS VPC CNI plugin.
    link: https://docs.cilium.io/en/stable/installation/cni-chaining-aws-cni/
attributes:
  check_mode:
    support: full
    description: Changes nothing, so it runs the same in check mode.
  diff_mode:
    support: none
    description: Nothing to diff; the values are returned.
"""

EXAMPLES = r"""
- name: Values for Cilium 1.20 in ENI mode
  cloudnet.cilium_eks.cilium_values:
    mode: eni
    version: 1.20.2
    cluster_name: prod-eu
  register: cilium

- name: The 1.13.4 chaining values of the blog post, checked against the chart that will be installed
  cloudnet.cilium_eks.cilium_values:
    mode: chaining
    version: 1.13.4
    chart_ref: cilium
    chart_repo_url: https://helm.cilium.io/
    extra_values:
      bandwidthManager:
        enabled: true
"""

RETURN = r"""
values:
  description: The chart values to install.
  returned: success
  type: dict
  sample: {"cluster": {"name": "prod-eu", "id": 0}, "eni": {"enabled": true}, "ipam": {"mode": "eni"},
           "routingMode": "native", "kubeProxyReplacement": "false"}
notes:
  description: Warnings about the values (also shown as Ansible warnings).
  returned: success
  type: list
  elements: str
mode:
  description: The mode.
  returned: success
  type: str
version:
  description: The Cilium version, normalised to X.Y.Z.
  returned: success
  type: str
minor:
  description: The Cilium minor version whose row of the mapping was used.
  returned: success
  type: str
  sample: "1.20"
tested_version:
  description: The patch of that minor the collection is tested with.
  returned: success
  type: str
tested:
  description: Whether O(version) is exactly that tested patch.
  returned: success
  type: bool
installed_mode:
  description: Mode of O(installed_values) (C(eni), C(chaining), C(other)), or null when nothing is installed.
  returned: success
  type: str
chart:
  description: The chart read (ref, version, repo_url), or null when O(chart_ref) was not given.
  returned: success
  type: dict
"""

from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.cilium_values import DEFAULT_VERSION, OPTIONS, compute
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.module_base import CiliumEksModule


def run(module):
    prefix = module.params.get("variable_prefix")
    names = {}
    if prefix:
        names = dict((key, prefix + key) for key in OPTIONS + ("chart_ref",))
        names["mode"] = "%s role mode" % prefix.rstrip("_")
    result = compute(module.params, helm=module.runner("helm", "helm_path", timeout=120), names=names)
    result["notes"] = result.pop("warnings")
    for note in result["notes"]:
        module.warn(note)
    return result


def main():
    module = CiliumEksModule(
        argument_spec=dict(
            mode=dict(type="str", required=True, choices=["eni", "chaining"]),
            version=dict(type="str", default=DEFAULT_VERSION),
            cluster_name=dict(type="str"),
            cluster_id=dict(type="int", default=0),
            prefix_delegation=dict(type="bool", default=False),
            kube_proxy_replacement=dict(type="bool", default=False),
            k8s_service_host=dict(type="str"),
            k8s_service_port=dict(type="int"),
            egress_masquerade_interfaces=dict(type="str"),
            operator_replicas=dict(type="int"),
            extra_values=dict(type="dict", default={}),
            installed_values=dict(type="dict"),
            chart_ref=dict(type="str"),
            chart_repo_url=dict(type="str"),
            chart_version=dict(type="str"),
            helm_path=dict(type="path"),
            variable_prefix=dict(type="str"),
        ),
        supports_check_mode=True,
    )
    module.run(run)


if __name__ == "__main__":
    main()
