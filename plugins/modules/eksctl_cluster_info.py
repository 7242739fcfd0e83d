#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: eksctl_cluster_info
short_description: List EKS clusters, or describe one with its node groups and eksctl stacks
version_added: "0.1.0"
description:
  - Read-only. Without O(name), lists the EKS clusters of the region. With O(name), describes that cluster and its
    managed node groups through the EKS API (boto3), and optionally eksctl's CloudFormation stacks with their
    failed events (what a create in progress or a failed create looks like).
author:
  - cloudnet.cilium_eks contributors (@cloudnet)
extends_documentation_fragment:
  - cloudnet.cilium_eks.attributes.read_only
  - amazon.aws.common.modules
  - amazon.aws.region.modules
options:
  name:
    description: Cluster to describe. Lists the clusters of the region when omitted.
    type: str
  region:
    description: AWS region. Defaults to C(AWS_REGION), then C(AWS_DEFAULT_REGION); there is no built-in default.
    type: str
    aliases: [aws_region]
  stacks:
    description: Also return eksctl's CloudFormation stacks of the cluster and their failed events.
    type: bool
    default: false
notes:
  - The AWS options are amazon.aws's, with the same aliases and environment variables; set them once for a play with
    C(module_defaults) on C(group/cloudnet.cilium_eks.aws). Unset, the usual chain applies (C(AWS_PROFILE),
    C(AWS_ACCESS_KEY_ID)..., C(AWS_ENDPOINT_URL), an instance role).
requirements:
  - boto3 (Python package)
seealso:
  - module: cloudnet.cilium_eks.eksctl_cluster
"""

EXAMPLES = r"""
- name: Clusters of us-east-1
  cloudnet.cilium_eks.eksctl_cluster_info:
    region: us-east-1
  register: eks_clusters

- name: One cluster, with its CloudFormation stacks
  cloudnet.cilium_eks.eksctl_cluster_info:
    name: basic-cilium
    region: us-east-1
    stacks: true
  register: eks_cluster
"""

RETURN = r"""
resource_actions:
  description: The AWS API calls made (C(service:Operation)), with O(debug_botocore_endpoint_logs=true).
  returned: when O(debug_botocore_endpoint_logs=true)
  type: list
  elements: str
  sample: ["eks:DescribeCluster", "eks:ListNodegroups"]
region:
  description: AWS region.
  returned: always
  type: str
clusters:
  description: Names of the clusters of the region.
  returned: when O(name) is omitted
  type: list
  elements: str
  sample: [basic-cilium]
exists:
  description: Whether the cluster exists.
  returned: when O(name) is given
  type: bool
status:
  description: EKS status (C(CREATING), C(ACTIVE), ...), null when the cluster does not exist.
  returned: when O(name) is given
  type: str
version:
  description: Kubernetes version of the control plane.
  returned: when O(name) is given
  type: str
endpoint:
  description: API server URL.
  returned: when O(name) is given
  type: str
managed:
  description: Whether the cluster carries this collection's ownership tag C(cloudnet.cilium_eks/managed=true).
  returned: when O(name) is given
  type: bool
cluster:
  description: The EKS DescribeCluster answer (null when the cluster does not exist).
  returned: when O(name) is given
  type: dict
nodegroups:
  description: Managed node groups (name, status, instance type, sizes, version).
  returned: when O(name) is given
  type: list
  elements: dict
stacks:
  description:
    - eksctl's CloudFormation stacks of the cluster (name, status, kind, nodegroup, reason, termination_protection).
    - eksctl 0.225 creates its stacks with termination protection; C(aws cloudformation delete-stack) refuses such a
      stack until C(aws cloudformation update-termination-protection --no-enable-termination-protection).
  returned: when O(stacks=true)
  type: list
  elements: dict
stack_failures:
  description: Failed events of the stacks in a failed state (stack, logical_id, resource_type, status, reason).
  returned: when O(stacks=true)
  type: list
  elements: dict
"""

from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.eksctl import info
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.module_base import CiliumEksModule


def build_module():
    """The module with its argument spec (the unit tests build it the same way)."""
    return CiliumEksModule(
        aws=True,
        argument_spec=dict(
            name=dict(type="str"),
            stacks=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )


def main():
    build_module().run(info)


if __name__ == "__main__":
    main()
