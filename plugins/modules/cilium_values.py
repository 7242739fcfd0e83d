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
  - The mapping is kept per Cilium minor version in the collection's Cilium table (one row per minor, from 1.13),
    for example C(tunnel=disabled) on 1.13 and C(routingMode=native) from 1.14,
    C(kubeProxyReplacement=disabled|strict) on 1.13 and C(false|true) from 1.14.
  - Also returns the facts every agent must report in that mode (RV(expect)), for
    M(cloudnet.cilium_eks.cilium_status).
  - Validates the inputs and their combinations before anything is changed, and names the input at fault.
  - When O(chart_ref) is given, reads that chart with C(helm show chart) and C(helm show values); its version must
    be O(version), and every key of O(extra_values) must exist in its values.yaml (keys it documents commented out
    count). Without O(chart_ref), the keys of O(extra_values) are not checked against a chart.
  - Changes nothing; runs in check mode.
author:
  - cloudnet.cilium_eks contributors (@cloudnet)
extends_documentation_fragment:
  - cloudnet.cilium_eks.attributes.read_only
options:
  mode:
    description: How Cilium networks the pods.
    type: str
    required: true
    choices: [eni, chaining]
  version:
    description:
      - Cilium version (X.Y.Z), of a minor the collection supports (from 1.13; an unsupported minor is refused with
        the list of supported ones).
      - When not given, the newest patch the collection is tested with (RV(version) says which).
    type: str
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
      - The keys another role of this collection owns (C(bandwidthManager)) keep their installed values unless
        O(extra_values) sets them (RV(kept_from_release)).
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
  release_name:
    description:
      - Also read this Helm release (C(helm list --all) and C(helm get values), in O(release_namespace), through
        O(kubeconfig) and O(context)) and return it as RV(release). When it runs (deployed or failed), its values
        are O(installed_values) unless those are given.
    type: str
  release_namespace:
    description: Namespace of O(release_name).
    type: str
    default: kube-system
  kubeconfig:
    description: Kubeconfig helm uses to read O(release_name); helm's default when not given.
    type: path
  context:
    description: Kubeconfig context helm uses to read O(release_name); the current context when not given.
    type: str
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
"""

EXAMPLES = r"""
- name: Values for the newest tested Cilium in ENI mode
  cloudnet.cilium_eks.cilium_values:
    mode: eni
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
kept_from_release:
  description:
    - Keys of the installed release's values that another role of this collection owns (C(bandwidthManager), owned
      by the bandwidth_manager role), kept at their installed values in RV(values) because O(extra_values) does not
      set them. An install role therefore never turns off what bandwidth_manager turned on.
  returned: success
  type: list
  elements: str
  sample: [bandwidthManager]
installed_mode:
  description: Mode of O(installed_values) (C(eni), C(chaining), C(other)), or null when nothing is installed.
  returned: success
  type: str
expect:
  description:
    - What every Cilium agent reports in this mode, for the O(cloudnet.cilium_eks.cilium_status#module:expect) option
      of M(cloudnet.cilium_eks.cilium_status) (from the mode's profile in the collection's Cilium table), with
      C(kube_proxy_replacement) as asked.
  returned: success
  type: dict
  sample: {"ipam_mode": "eni", "routing_mode": "native", "kube_proxy_replacement": false}
chart:
  description: The chart read (ref, version, repo_url), or null when O(chart_ref) was not given.
  returned: success
  type: dict
release:
  description:
    - The release O(release_name) as helm lists it (C(name), C(namespace), C(revision), C(updated), C(status),
      C(chart), C(app_version)) with its user-supplied C(values), the fields of C(status) of
      M(kubernetes.core.helm_info); null when there is no such release or O(release_name) was not given.
  returned: success
  type: dict
"""

from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.cilium_table import MODES
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.cilium_values import run_module
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.module_base import CiliumEksModule


def main():
    module = CiliumEksModule(
        argument_spec=dict(
            mode=dict(type="str", required=True, choices=list(MODES)),
            version=dict(type="str"),
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
            release_name=dict(type="str"),
            release_namespace=dict(type="str", default="kube-system"),
            kubeconfig=dict(type="path"),
            context=dict(type="str"),
            variable_prefix=dict(type="str"),
        ),
        supports_check_mode=True,
    )
    module.run(run_module)


if __name__ == "__main__":
    main()
