#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: eksctl_cluster
short_description: Create, adjust or delete an EKS cluster with eksctl, idempotently
version_added: "0.1.0"
description:
  - Renders an eksctl C(ClusterConfig) from structured options (or takes a complete one in O(config)) and
    makes the cluster match it. The rendered one turns EKS Auto Mode off explicitly (C(autoModeConfig.enabled=false)),
    which eksctl asks for because it plans to turn Auto Mode on by default.
  - The cluster and its managed node groups are read through the EKS API (boto3); changes go through eksctl.
  - C(state=present) creates the cluster when it does not exist (C(eksctl create cluster -f)), adds missing node
    groups (C(eksctl create nodegroup -f --include)), scales node groups (C(eksctl scale nodegroup)) and, only with
    O(allow_upgrade=true), upgrades the control plane one minor version per run (C(eksctl upgrade cluster)).
  - Creation-only settings are applied when the cluster or node group is created and never changed afterwards;
    they are cluster O(tags), O(vpc), O(iam_oidc), O(addons), O(disable_default_addons), the other sections of
    O(config), and a node group's C(instance_type), C(volume_size), C(ami_family), C(private_networking), C(labels),
    C(taints) and C(tags). A difference on an existing cluster is listed in RV(drift) with C(creation_only=true) (the
    C(cloudnet.cilium_eks.eks_cluster) role shows it in its plan), not warned about on every run.
  - Other differences eksctl cannot fix (node groups not in the configuration, a lower version, an upgrade without
    O(allow_upgrade)) are listed in RV(drift) and warned about, never ignored and never "fixed" by deleting anything.
  - A create that failed half-way is reported with eksctl's diagnosis and the failed CloudFormation stack events;
    the next run resumes from what exists, or says exactly which stacks to delete. The module never deletes what
    it was not asked to delete.
  - C(state=absent) runs C(eksctl delete cluster --wait), and refuses clusters that do not carry the tag
    C(cloudnet.cilium_eks/managed=true) (set on every cluster this module creates) unless O(force=true).
    A failed delete is reported with its cause and the failed CloudFormation stack events; the next run resumes it.
  - When the EKS cluster does not exist but eksctl's stacks of it remain (a create that rolled back), eksctl cannot
    remove them; C(state=absent) then fails and lists the C(aws cloudformation) commands that do, lifting the
    termination protection eksctl puts on its stacks first. The module never deletes stacks itself.
  - Creating a cluster takes 15 to 20 minutes; run the task with C(async) and poll it (the
    C(cloudnet.cilium_eks.eks_cluster) role does this and prints the CloudFormation status while it waits).
author:
  - cloudnet.cilium_eks contributors (@cloudnet)
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
options:
  state:
    description: Whether the cluster should exist.
    type: str
    choices: [present, absent]
    default: present
  name:
    description:
      - Cluster name. Starts with a letter; letters, digits and hyphens; at most 100 characters.
      - Required unless O(config) holds C(metadata.name).
    type: str
  region:
    description:
      - AWS region. Defaults to C(metadata.region) of O(config), then C(AWS_REGION), then C(AWS_DEFAULT_REGION).
        There is no built-in default region.
    type: str
    aliases: [aws_region]
  version:
    description:
      - Kubernetes minor version of the control plane, for example C("1.33") (quote it in YAML).
      - When omitted on creation, eksctl picks its default version; an existing cluster's version is left alone.
    type: str
  nodegroups:
    description:
      - Managed node groups. Sizes left out keep eksctl's defaults on creation and the current values afterwards.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Node group name.
        type: str
        required: true
      instance_type:
        description: EC2 instance type, for example V(t3.medium). eksctl's default is V(m5.large).
        type: str
      desired_size:
        description: Desired number of nodes (eksctl's default is 2).
        type: int
      min_size:
        description: Minimum number of nodes.
        type: int
      max_size:
        description: Maximum number of nodes.
        type: int
      volume_size:
        description: Root volume size in GiB (eksctl's default is 80).
        type: int
      private_networking:
        description:
          - Put the nodes in the VPC's private subnets (eksctl's C(privateNetworking)); they reach outside the VPC
            through the NAT gateway eksctl makes by default, so a O(vpc) with C(nat.gateway=Disable) is refused.
          - eksctl's default puts them in public subnets. In Cilium ENI mode without masquerading, pods there cannot
            reach the Internet (docs/running-on-real-eks.md). Not changed on an existing node group.
        type: bool
      labels:
        description: Kubernetes labels of the nodes.
        type: dict
      taints:
        description:
          - Kubernetes taints of the nodes, each with C(key), C(value) (optional) and C(effect) (one of
            C(NoSchedule), C(PreferNoSchedule), C(NoExecute)).
          - Cilium's C(node.cilium.io/agent-not-ready=true:NoExecute) keeps application pods off a node until the
            Cilium agent runs there.
        type: list
        elements: dict
      ami_family:
        description: eksctl AMI family (V(AmazonLinux2023), V(Bottlerocket), V(Ubuntu2404), ...).
        type: str
      tags:
        description: AWS tags of the node group.
        type: dict
  vpc:
    description: eksctl's C(vpc) section as is (an existing C(id), C(subnets), C(clusterEndpoints), C(cidr)...).
    type: dict
  iam_oidc:
    description: Create the cluster's IAM OIDC provider (C(iam.withOIDC)), needed for IAM roles for service accounts.
    type: bool
    default: false
  addons:
    description: eksctl's C(addons) list as is (each with C(name), optionally C(version), C(configurationValues)...).
    type: list
    elements: dict
  disable_default_addons:
    description:
      - Create the cluster without the default add-ons (VPC CNI, kube-proxy, CoreDNS), i.e.
        C(addonsConfig.disableDefaultAddons), for a cluster whose CNI (Cilium) is installed afterwards. List the
        add-ons to keep in O(addons) (for example C(coredns) and C(kube-proxy)).
      - Without the C(vpc-cni) add-on and with Auto Mode off, such a cluster has no CNI, and its node groups are
        B(deferred) (RV(deferred_nodegroups)), because eksctl refuses node groups when it creates it and
        C(eksctl create nodegroup) waits for Ready nodes, which need a CNI. The first run creates the control plane
        only; a later run creates the node groups once the CNI's DaemonSet O(cni_daemonset) exists, read through
        O(kubeconfig). Cilium's own EKS CI creates its clusters the same way.
    type: bool
    default: false
  cni_daemonset:
    description:
      - C(namespace/name) of the DaemonSet whose existence says the CNI is installed, in a cluster without a CNI
        (see O(disable_default_addons)). Read through O(kubeconfig); without a kubeconfig the node groups stay
        deferred.
    type: str
    default: kube-system/cilium
  tags:
    description:
      - AWS tags of the cluster (C(metadata.tags)). C(cloudnet.cilium_eks/managed=true) is always added.
      - Creation only. eksctl does not change the tags of an existing cluster; a difference is listed in RV(drift).
    type: dict
  config:
    description:
      - A complete eksctl C(ClusterConfig) (as a dict), used instead of the structured options above.
      - O(name), O(region) and O(version), when also given, must agree with its C(metadata).
      - Only C(managedNodeGroups) are compared with what exists; other sections are applied on creation only.
    type: dict
  allow_upgrade:
    description:
      - Allow C(eksctl upgrade cluster) when O(version) is above the cluster's version (one minor per run).
      - Node groups are not upgraded by this module.
    type: bool
    default: false
  force:
    description: With O(state=absent), delete the cluster even without the collection's ownership tag.
    type: bool
    default: false
  kubeconfig:
    description:
      - Where to write the cluster's kubeconfig (C(eksctl utils write-kubeconfig)), with mode 0600.
      - Not written when omitted. The kubeconfig logs in by running aws-iam-authenticator or the AWS CLI, whichever
        eksctl finds on C(PATH) (RV(kubeconfig_login)); one of them must be installed.
    type: path
  eksctl_path:
    description: Path of the eksctl binary. Looked up on C(PATH) when omitted.
    type: path
  timeout:
    description:
      - Seconds eksctl may wait for CloudFormation and nodes in each command, passed as its own C(--timeout) to
        C(create cluster), C(create nodegroup) and C(upgrade cluster) (eksctl's defaults are 25 and 65 minutes).
      - An eksctl command still running 60 seconds after that is killed. C(delete cluster) ignores C(--timeout)
        (eksctl waits for its stacks without a limit), so it is only killed.
    type: int
    default: 3600
notes:
  - The AWS options are amazon.aws's, with the same aliases and environment variables; set them once for a play with
    C(module_defaults) on C(group/cloudnet.cilium_eks.aws), which also reaches amazon.aws's modules. Unset, the usual
    chain applies (C(AWS_PROFILE), C(AWS_ACCESS_KEY_ID)..., C(AWS_ENDPOINT_URL), an instance role).
  - eksctl gets the same options through its environment (C(AWS_PROFILE), C(AWS_ACCESS_KEY_ID),
    C(AWS_SECRET_ACCESS_KEY), C(AWS_SESSION_TOKEN), C(AWS_REGION), C(AWS_ENDPOINT_URL), C(AWS_CA_BUNDLE)), never on its
    command line. With O(profile), eksctl writes C(AWS_PROFILE) into the kubeconfig's login command; with keys, the
    clients that use the kubeconfig later need the same keys in their environment.
  - eksctl has no switch to skip certificate checks, so O(validate_certs=false) applies to the module's own AWS
    calls only; give O(aws_ca_bundle) for a private CA instead.
  - Check mode reports the planned RV(actions) without running any eksctl command that changes something.
  - Supports C(--diff) (the rendered ClusterConfig against what exists).
requirements:
  - eksctl
  - boto3 (Python package)
  - PyYAML (Python package)
attributes:
  check_mode:
    description: Reports the planned actions and drift without running an eksctl command that changes anything.
    support: full
  diff_mode:
    description: Shows the rendered ClusterConfig against a ClusterConfig view of what exists.
    support: full
seealso:
  - module: cloudnet.cilium_eks.eksctl_cluster_info
  - name: eksctl config file schema
    description: Every field of the ClusterConfig that O(config), O(vpc) and O(addons) take.
    link: https://eksctl.io/usage/schema/
"""

EXAMPLES = r"""
- name: The blog's cluster, tainted for Cilium
  cloudnet.cilium_eks.eksctl_cluster:
    name: basic-cilium
    region: us-east-1
    version: "1.33"
    nodegroups:
      - name: ng-1
        instance_type: t3.medium
        desired_size: 2
        taints:
          - key: node.cilium.io/agent-not-ready
            value: "true"
            effect: NoExecute
    kubeconfig: "{{ playbook_dir }}/kubeconfig-basic-cilium"
  async: 3600
  poll: 30

- name: A cluster without the VPC CNI, keeping CoreDNS and kube-proxy (Cilium will be the CNI)
  cloudnet.cilium_eks.eksctl_cluster:
    name: cilium-only
    region: eu-west-3
    disable_default_addons: true
    addons:
      - name: coredns
      - name: kube-proxy
    nodegroups:
      - name: ng-1
        instance_type: m6i.large
    kubeconfig: "{{ playbook_dir }}/kubeconfig-cilium-only"
  register: bare
  # First run: bare.deferred_nodegroups == ["ng-1"]. Install Cilium, then run this task again: it creates ng-1.

- name: Scale ng-1 to 4 nodes
  cloudnet.cilium_eks.eksctl_cluster:
    name: basic-cilium
    region: us-east-1
    nodegroups:
      - name: ng-1
        desired_size: 4
        max_size: 4

- name: From a complete ClusterConfig
  cloudnet.cilium_eks.eksctl_cluster:
    config: "{{ lookup('ansible.builtin.file', 'eks-cilium.yaml') | from_yaml }}"

- name: Delete the cluster (only if this collection created it)
  cloudnet.cilium_eks.eksctl_cluster:
    name: basic-cilium
    region: us-east-1
    state: absent
"""

RETURN = r"""
resource_actions:
  description: The AWS API calls the module made (C(service:Operation)), with O(debug_botocore_endpoint_logs=true).
  returned: when O(debug_botocore_endpoint_logs=true)
  type: list
  elements: str
  sample: ["eks:DescribeCluster", "cloudformation:DescribeStacks"]
name:
  description: Cluster name.
  returned: always
  type: str
  sample: basic-cilium
region:
  description: AWS region.
  returned: always
  type: str
  sample: us-east-1
version:
  description: Kubernetes version of the control plane (null when the cluster does not exist).
  returned: always
  type: str
  sample: "1.33"
status:
  description: EKS status of the cluster (C(ACTIVE), C(CREATING)...), null when it does not exist.
  returned: always
  type: str
  sample: ACTIVE
endpoint:
  description: API server URL.
  returned: always
  type: str
  sample: https://0123456789ABCDEF.gr7.us-east-1.eks.amazonaws.com
arn:
  description: Cluster ARN.
  returned: always
  type: str
nodegroups:
  description: Managed node groups as EKS reports them after the run.
  returned: always
  type: list
  elements: dict
  sample: [{"name": "ng-1", "status": "ACTIVE", "instance_type": "t3.medium", "desired_size": 2, "min_size": 2,
            "max_size": 2, "version": "1.33"}]
config:
  description: The rendered eksctl ClusterConfig.
  returned: when state is present
  type: dict
actions:
  description: What was done (or, in check mode, would be done), in order.
  returned: always
  type: list
  elements: dict
  sample: [{"action": "scale_nodegroup", "nodegroup": "ng-1", "desired_size": 3, "min_size": 2, "max_size": 3,
            "from": {"desired_size": 2, "min_size": 2, "max_size": 2}}]
drift:
  description:
    - Differences eksctl cannot fix in place, each with C(field), C(nodegroup), C(desired), C(actual), C(reason) and
      C(creation_only).
    - C(creation_only=true) for a setting applied at creation only (see the description); the others are also
      warnings.
  returned: always
  type: list
  elements: dict
  sample: [{"field": "instance_type", "nodegroup": "ng-1", "desired": "t3.large", "actual": "t3.medium",
            "reason": "set when the node group is created; to change it, create a node group with the new value and delete
            the old one", "creation_only": true}]
deferred_nodegroups:
  description:
    - >-
      Node groups not created in this run because the cluster has no CNI yet (see O(disable_default_addons)): all of
      them when the cluster is created, the missing ones while the O(cni_daemonset) DaemonSet does not exist. Install
      the CNI and run again to create them.
  returned: always
  type: list
  elements: str
  sample: ["ng-1"]
kubeconfig:
  description: Path of the kubeconfig written (mode 0600), null when O(kubeconfig) is not set.
  returned: always
  type: str
kubeconfig_changed:
  description:
    - Whether the kubeconfig was rewritten with new content or mode. In check mode, when the cluster exists and
      there is nothing else to do, whether it would be (eksctl writes into a scratch copy that is compared with it);
      null when not known.
  returned: success, when O(state=present)
  type: bool
kubeconfig_mode:
  description: Permission bits of the kubeconfig file after the run (V(0600)), null when it does not exist.
  returned: success, when O(state=present)
  type: str
  sample: "0600"
kubeconfig_login:
  description:
    - How the kubeconfig logs in, for an exec user (what eksctl writes), as the C(command) it runs and its C(path) on
      the host's C(PATH), null when it is not there (the module then warns, as every Kubernetes client using the
      kubeconfig would fail).
    - eksctl writes C(aws-iam-authenticator) when that is on C(PATH), else C(aws) (C(aws eks get-token)) when that is,
      else C(aws-iam-authenticator) anyway.
    - Null when O(kubeconfig) is not set, the file does not exist, or its user is not an exec user.
  returned: success, when O(state=present)
  type: dict
  sample: {"command": "aws-iam-authenticator", "path": "/home/me/.local/bin/aws-iam-authenticator"}
commands:
  description: The eksctl commands run, with exit code, duration and the last lines of their output.
  returned: always
  type: list
  elements: dict
"""

from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.eksctl import ensure
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.module_base import CiliumEksModule

NODEGROUP_SPEC = dict(
    name=dict(type="str", required=True),
    instance_type=dict(type="str"),
    desired_size=dict(type="int"),
    min_size=dict(type="int"),
    max_size=dict(type="int"),
    volume_size=dict(type="int"),
    private_networking=dict(type="bool"),
    labels=dict(type="dict"),
    taints=dict(type="list", elements="dict"),
    ami_family=dict(type="str"),
    tags=dict(type="dict"),
)


def build_module():
    """The module with its argument spec (the unit tests build it the same way)."""
    return CiliumEksModule(
        aws=True,
        argument_spec=dict(
            state=dict(type="str", choices=["present", "absent"], default="present"),
            name=dict(type="str"),
            version=dict(type="str"),
            nodegroups=dict(type="list", elements="dict", default=[], options=NODEGROUP_SPEC),
            vpc=dict(type="dict"),
            iam_oidc=dict(type="bool", default=False),
            addons=dict(type="list", elements="dict"),
            disable_default_addons=dict(type="bool", default=False),
            cni_daemonset=dict(type="str", default="kube-system/cilium"),
            tags=dict(type="dict"),
            config=dict(type="dict"),
            allow_upgrade=dict(type="bool", default=False),
            force=dict(type="bool", default=False),
            kubeconfig=dict(type="path"),
            eksctl_path=dict(type="path"),
            timeout=dict(type="int", default=3600),
        ),
        required_one_of=[("name", "config")],
        mutually_exclusive=[("config", "nodegroups"), ("config", "vpc"), ("config", "addons"), ("config", "tags")],
        supports_check_mode=True,
    )


def main():
    build_module().run(ensure)


if __name__ == "__main__":
    main()
