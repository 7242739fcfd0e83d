#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: eks_nodeport_access
short_description: Open ICMP and the NodePort range on an EKS cluster's security group, from the nodes' public IPs or given CIDRs
version_added: 0.3.0
description:
  - Keeps the ingress rules this collection owns on the EKS cluster security group (the group managed node groups'
    instances carry) equal to one explicit source, for ICMP (every type) and TCP 30000-32767.
  - O(source=node_public_ips) allows each node's current public IPv4 address as a C(/32). This is what the failing
    C(cilium connectivity test) actions of a cluster with nodes in public subnets need. They ping and curl the nodes'
    ExternalIPs; those packets leave through the internet gateway and arrive from the other node's public IP, which
    neither the group's own rule (it matches private addresses only) nor the VPC CIDR covers.
  - With nodes in private subnets (no public IPs) there is nothing to open, and the module says so in RV(msg).
  - O(source=cidrs) allows the CIDRs of O(cidrs) instead.
  - Each run adds the rules of new sources and removes the rules of sources that are gone (a node replaced or removed).
    It touches only the rules whose description starts with C(cloudnet.cilium_eks ). A rule with the same protocol,
    ports and CIDR that someone else wrote is left as it is.
author:
  - cloudnet.cilium_eks contributors (@cloudnet)
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
options:
  cluster:
    description: Name of the EKS cluster. Its security group is C(resourcesVpcConfig.clusterSecurityGroupId).
    type: str
    required: true
  region:
    description: AWS region. Defaults to C(AWS_REGION), then C(AWS_DEFAULT_REGION); there is no built-in default.
    type: str
    aliases: [aws_region]
  source:
    description:
      - V(node_public_ips) allows the public IPv4 address of each instance of O(provider_ids) or O(instance_ids).
      - V(cidrs) allows the CIDRs of O(cidrs).
    type: str
    choices: [node_public_ips, cidrs]
    default: node_public_ips
  cidrs:
    description:
      - IPv4 CIDRs to allow, host bits zero. Required (non-empty) with O(source=cidrs), refused with another source.
    type: list
    elements: str
    default: []
  provider_ids:
    description:
      - The C(spec.providerID) of each of the cluster's Nodes (C(aws:///<zone>/<instance id>), what the AWS cloud
        provider sets); the module takes the instance id out of each. Used with O(source=node_public_ips).
      - A Fargate node (C(aws:///<zone>/fargate-<ip>)) has no instance and is left out; another form is refused.
      - Instances that are gone or stopped are left out.
    type: list
    elements: str
    default: []
  instance_ids:
    description:
      - The EC2 instance ids of the cluster's nodes, when they are known without the Nodes (else O(provider_ids)).
        Used with O(source=node_public_ips). Instances that are gone or stopped are left out.
    type: list
    elements: str
    default: []
attributes:
  check_mode:
    description: Reads the group and the instances and reports the rules it would add and remove, without changing them.
    support: full
  diff_mode:
    description: The rules this collection owns on the group, before and after, one per line.
    support: full
notes:
  - The AWS options are amazon.aws's, with the same aliases and environment variables; set them once for a play with
    C(module_defaults) on C(group/cloudnet.cilium_eks.aws).
  - "Sources: cilium-cli pings and curls every C(node.Status.Addresses) entry, ExternalIP included
    (C(connectivity/tests/host.go) and C(service.go) C(curlNodePort)); a rule that references a security group matches
    the private IP addresses of its instances, not their public or Elastic IP addresses (Amazon VPC User Guide,
    Security group rules). More in the collection's docs/running-on-real-eks.md."
requirements:
  - boto3 (Python package)
seealso:
  - module: cloudnet.cilium_eks.cilium_connectivity_test
  - name: Amazon VPC User Guide, Security group rules
    description: What a rule's source matches.
    link: https://docs.aws.amazon.com/vpc/latest/userguide/security-group-rules.html
"""

EXAMPLES = r"""
- name: Read the nodes
  kubernetes.core.k8s_info:
    kind: Node
    kubeconfig: ~/.kube/basic-cilium
  register: nodes

- name: Allow ICMP and NodePorts from the nodes' public IPs
  cloudnet.cilium_eks.eks_nodeport_access:
    cluster: basic-cilium
    region: us-east-1
    provider_ids: "{{ nodes.resources | map(attribute='spec.providerID') | list }}"

- name: Allow them from an office range instead
  cloudnet.cilium_eks.eks_nodeport_access:
    cluster: basic-cilium
    region: us-east-1
    source: cidrs
    cidrs: [203.0.113.0/24]
"""

RETURN = r"""
resource_actions:
  description: The AWS API calls made (C(service:Operation)), with O(debug_botocore_endpoint_logs=true).
  returned: when O(debug_botocore_endpoint_logs=true)
  type: list
  elements: str
region:
  description: AWS region.
  returned: success
  type: str
security_group_id:
  description: The EKS cluster security group the rules are on.
  returned: success
  type: str
  sample: sg-0a1b2c3d4e5f67890
source:
  description: The source used (O(source)).
  returned: success
  type: str
sources:
  description: The allowed CIDRs and what each is (C(node i-...) or C(user CIDR)); empty for nodes without public IPs.
  returned: success
  type: dict
  sample: {"54.158.35.146/32": "node i-0f1e2d3c4b5a69788"}
added:
  description: The rules added (or that would be, in check mode).
  returned: success
  type: list
  elements: str
  sample: ["icmp from 54.158.35.146/32", "tcp 30000-32767 from 54.158.35.146/32"]
removed:
  description: The rules of gone sources removed (or that would be, in check mode).
  returned: success
  type: list
  elements: str
rules:
  description: The rules this collection owns on the group after the run.
  returned: success
  type: list
  elements: str
msg:
  description: What is open and what changed; says when the nodes have no public IPs and nothing is opened.
  returned: success
  type: str
  sample: "the nodes have no public IPs (private subnets): the connectivity test has no node public address to reach,
    so there is nothing to open; nothing to change"
"""

from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.module_base import CiliumEksModule
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.nodeport_access import SOURCES, run


def build_module():
    """The module with its argument spec (the unit tests build it the same way)."""
    return CiliumEksModule(
        aws=True,
        argument_spec=dict(
            cluster=dict(type="str", required=True),
            source=dict(type="str", choices=list(SOURCES), default="node_public_ips"),
            cidrs=dict(type="list", elements="str", default=[]),
            provider_ids=dict(type="list", elements="str", default=[]),
            instance_ids=dict(type="list", elements="str", default=[]),
        ),
        supports_check_mode=True,
    )


def main():
    build_module().run(run)


if __name__ == "__main__":
    main()
