# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""module_utils/eksctl_config.py: ClusterConfig rendering and the validation of every option."""

from __future__ import annotations

import os

import pytest
import yaml

from ansible_collections.cloudnet.cilium_eks.plugins.module_utils import eksctl_config as eksctl
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.errors import ValidationError

HERE = os.path.dirname(os.path.abspath(__file__))

# files/eks-cilium.yaml of the blog post (part 1), comments left out.
BLOG_CONFIG = """
apiVersion: eksctl.io/v1alpha5
kind: ClusterConfig

metadata:
  name: basic-cilium
  region: us-east-1
  version: "1.27"

managedNodeGroups:
- name: ng-1
  instanceType: t3.medium
  taints:
   - key: "node.cilium.io/agent-not-ready"
     value: "true"
     effect: "NoExecute"
"""

BLOG_PARAMS = {"name": "basic-cilium", "region": "us-east-1", "version": "1.27",
               "nodegroups": [{"name": "ng-1", "instance_type": "t3.medium", "taints": [dict(eksctl.CILIUM_TAINT)]}]}


def _keys_in_order(node):
    if isinstance(node, dict):
        return [(k, _keys_in_order(v)) for k, v in node.items()]
    if isinstance(node, list):
        return [_keys_in_order(v) for v in node]
    return None


# ------------------------------------------------------------------------------------------ rendering

def test_the_blogs_config_is_reproduced_exactly_with_auto_mode_off_said_explicitly():
    rendered = eksctl.render_config(BLOG_PARAMS, ownership_tag=False)
    assert rendered.pop("autoModeConfig") == {"enabled": False}  # what eksctl's Auto Mode warning asks for
    blog = yaml.safe_load(BLOG_CONFIG)
    assert rendered == blog
    assert _keys_in_order(yaml.safe_load(eksctl.to_yaml(rendered))) == _keys_in_order(blog)


def test_the_ownership_tag_and_auto_mode_are_the_only_additions_and_the_tag_is_the_sandboxs():
    from eks_sandbox import aws

    assert eksctl.OWNERSHIP_TAG == aws.OWNERSHIP_TAG
    rendered = eksctl.render_config(BLOG_PARAMS)
    assert rendered["metadata"].pop("tags") == {"cloudnet.cilium_eks/managed": "true"}
    assert rendered.pop("autoModeConfig") == {"enabled": False}
    assert rendered == yaml.safe_load(BLOG_CONFIG)


def test_structured_options_render_in_eksctl_spelling():
    params = dict(BLOG_PARAMS, version="1.33", iam_oidc=True, disable_default_addons=True,
                  addons=[{"name": "eks-pod-identity-agent"}], tags={"team": "net"},
                  vpc={"id": "vpc-1", "subnets": {"private": {"us-east-1a": {"id": "subnet-1"}}}},
                  nodegroups=[{"name": "ng-1", "instance_type": "m6i.large", "desired_size": 3, "min_size": 1,
                               "max_size": 5, "volume_size": 50, "labels": {"role": "worker"},
                               "ami_family": "Bottlerocket", "tags": {"cost": "a"}}])
    config = eksctl.render_config(params)
    assert config["metadata"] == {"name": "basic-cilium", "region": "us-east-1", "version": "1.33",
                                  "tags": {"team": "net", "cloudnet.cilium_eks/managed": "true"}}
    assert config["iam"] == {"withOIDC": True}
    assert config["addonsConfig"] == {"disableDefaultAddons": True}
    assert config["addons"] == [{"name": "eks-pod-identity-agent"}]
    assert config["vpc"]["id"] == "vpc-1"
    assert config["managedNodeGroups"] == [{"name": "ng-1", "amiFamily": "Bottlerocket", "instanceType": "m6i.large",
                                            "desiredCapacity": 3, "minSize": 1, "maxSize": 5, "volumeSize": 50,
                                            "labels": {"role": "worker"}, "tags": {"cost": "a"}}]


def test_a_complete_config_is_taken_as_is_with_name_and_region_filled_in():
    config = yaml.safe_load(BLOG_CONFIG)
    del config["metadata"]["region"]
    rendered = eksctl.render_config({"config": config, "region": "eu-west-3"})
    assert rendered["metadata"]["region"] == "eu-west-3"
    assert rendered["managedNodeGroups"] == yaml.safe_load(BLOG_CONFIG)["managedNodeGroups"]
    assert "region" not in config["metadata"]  # the caller's dict is not modified


def test_extra_taints_are_not_duplicated():
    ng = {"name": "ng-1", "taints": [dict(eksctl.CILIUM_TAINT)]}
    assert eksctl.nodegroup_to_eksctl(ng, extra_taints=[eksctl.CILIUM_TAINT])["taints"] == [eksctl.CILIUM_TAINT]
    assert eksctl.nodegroup_to_eksctl({"name": "a"}, extra_taints=[eksctl.CILIUM_TAINT])["taints"] == \
        [eksctl.CILIUM_TAINT]


# ------------------------------------------------------------------------------------------ validation

with open(os.path.join(HERE, "eksctl_validation_cases.yml"), encoding="utf-8") as _stream:
    VALIDATION_CASES = yaml.safe_load(_stream)


@pytest.mark.parametrize("case", VALIDATION_CASES, ids=[c["id"] for c in VALIDATION_CASES])
def test_validation_names_the_option_and_what_is_accepted(case):
    params = dict(BLOG_PARAMS, version="1.33")
    params.update(case["params"])
    with pytest.raises(ValidationError) as caught:
        eksctl.render_config(params)
    assert caught.value.name == case["option"]
    assert case["message"] in caught.value.msg


@pytest.mark.parametrize("instance_type", ["t3.medium", "m6i.large", "c7gn.16xlarge", "m5.metal", "u-6tb1.metal",
                                           "inf2.xlarge", "t4g.nano"])
def test_real_instance_types_are_accepted(instance_type):
    assert eksctl.validate_nodegroup({"name": "a", "instance_type": instance_type}, 0)["instance_type"] == instance_type


def test_a_cluster_without_the_default_addons_and_without_a_cni_eksctl_installs_is_bare():
    # eksctl v0.225.0 validateBareCluster's condition (pkg/ctl/cmdutils/configfile.go l.489-503); its refusal of node
    # groups there, verbatim: tests/recordings/eksctl/create_cluster_disable_default_addons_with_mng_0.225.stderr.log
    bare = eksctl.render_config(dict(BLOG_PARAMS, disable_default_addons=True,
                                     addons=[{"name": "coredns"}, {"name": "kube-proxy"}]))
    assert eksctl.bare_cluster(bare) is True
    assert eksctl.bare_cluster(dict(bare, addons=[{"name": "vpc-cni"}])) is False
    assert eksctl.bare_cluster(dict(bare, autoModeConfig={"enabled": True})) is False
    assert eksctl.bare_cluster(eksctl.render_config(BLOG_PARAMS)) is False
    created = eksctl.without_nodegroups(bare)
    assert "managedNodeGroups" not in created and "managedNodeGroups" in bare
    assert created["addons"] == [{"name": "coredns"}, {"name": "kube-proxy"}]
    assert created["addonsConfig"] == {"disableDefaultAddons": True}


@pytest.mark.parametrize("ref", ["kube-system/cilium", "cni/calico-node"])
def test_a_daemonset_is_named_namespace_slash_name(ref):
    assert eksctl.validate_daemonset_ref(ref) == tuple(ref.split("/"))


@pytest.mark.parametrize("ref", ["cilium", "kube-system/", "a/b/c", "Kube-System/cilium", None])
def test_a_bad_daemonset_name_is_refused_naming_the_option(ref):
    with pytest.raises(ValidationError) as caught:
        eksctl.validate_daemonset_ref(ref)
    assert caught.value.name == "cni_daemonset"


def test_supported_versions_are_enforced_when_given():
    assert eksctl.validate_version("1.33", supported=["1.33"]) == "1.33"
    with pytest.raises(ValidationError) as caught:
        eksctl.validate_version("1.27", "eks_cluster_version", supported=["1.32", "1.33"])
    assert caught.value.accepted == ["1.32", "1.33"]
    assert "Invalid `eks_cluster_version` '1.27'" in caught.value.msg


def test_private_networking_renders_as_eksctl_s_private_networking():
    """privateNetworking on each managed node group (types.go at eksctl v0.225.0 l.1788): Cilium's EKS CI
    (.github/actions/setup-eks-nodegroup/action.yml at v1.20.2 l.75,87) puts its nodes there."""
    params = dict(BLOG_PARAMS, nodegroups=[dict(BLOG_PARAMS["nodegroups"][0], private_networking=True),
                                           {"name": "ng-2", "private_networking": False}, {"name": "ng-3"}])
    groups = eksctl.render_config(params)["managedNodeGroups"]
    assert groups[0]["privateNetworking"] is True and list(groups[0]).index("privateNetworking") == 2
    assert groups[1] == {"name": "ng-2", "privateNetworking": False} and groups[2] == {"name": "ng-3"}
    assert eksctl.nodegroup_from_eksctl(groups[0])["private_networking"] is True
    with pytest.raises(ValidationError, match=r"nodegroups\[ng-1\].private_networking.*must be a boolean"):
        eksctl.render_config(dict(BLOG_PARAMS, nodegroups=[{"name": "ng-1", "private_networking": "yes"}]))


@pytest.mark.parametrize("gateway, refused", [("Disable", True), ("disable", True), ("Single", False), (None, False)])
def test_private_node_groups_need_a_nat_gateway(gateway, refused):
    vpc = {"nat": {"gateway": gateway}} if gateway else {"cidr": "10.10.0.0/16"}
    params = dict(BLOG_PARAMS, vpc=vpc, nodegroups=[{"name": "ng-1", "private_networking": True}])
    if refused:
        with pytest.raises(ValidationError, match=r"vpc.nat.gateway.*ng-1 are in private subnets"):
            eksctl.render_config(params)
    else:
        assert eksctl.render_config(params)["managedNodeGroups"][0]["privateNetworking"] is True
    public = dict(params, nodegroups=[{"name": "ng-1", "private_networking": False}])
    assert eksctl.render_config(public)["vpc"] == vpc
