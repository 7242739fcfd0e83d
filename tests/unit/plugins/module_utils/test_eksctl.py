# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""module_utils/eksctl.py: ClusterConfig rendering, validation, planning and eksctl output parsing."""

from __future__ import annotations

import os
import types

import pytest
import yaml

from ansible_collections.cloudnet.cilium_eks.plugins.module_utils import eksctl
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.errors import CiliumEksError, CommandError, ValidationError

HERE = os.path.dirname(os.path.abspath(__file__))
RECORDINGS = os.path.join(HERE, "..", "..", "..", "recordings", "eksctl")

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


def recording(name):
    with open(os.path.join(RECORDINGS, name), encoding="utf-8") as stream:
        return stream.read()


def _keys_in_order(node):
    if isinstance(node, dict):
        return [(k, _keys_in_order(v)) for k, v in node.items()]
    if isinstance(node, list):
        return [_keys_in_order(v) for v in node]
    return None


# ------------------------------------------------------------------------------------------ rendering

def test_the_blogs_config_is_reproduced_exactly():
    rendered = eksctl.render_config(BLOG_PARAMS, ownership_tag=False)
    blog = yaml.safe_load(BLOG_CONFIG)
    assert rendered == blog
    assert _keys_in_order(yaml.safe_load(eksctl.to_yaml(rendered))) == _keys_in_order(blog)


def test_the_ownership_tag_is_the_only_addition_and_is_the_sandboxs():
    from eks_sandbox import aws

    assert eksctl.OWNERSHIP_TAG == aws.OWNERSHIP_TAG
    rendered = eksctl.render_config(BLOG_PARAMS)
    assert rendered["metadata"].pop("tags") == {"cloudnet.cilium_eks/managed": "true"}
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


def test_supported_versions_are_enforced_when_given():
    assert eksctl.validate_version("1.33", supported=["1.33"]) == "1.33"
    with pytest.raises(ValidationError) as caught:
        eksctl.validate_version("1.27", "eks_cluster_version", supported=["1.32", "1.33"])
    assert caught.value.accepted == ["1.32", "1.33"]
    assert "Invalid `eks_cluster_version` '1.27'" in caught.value.msg


# ------------------------------------------------------------------------------------------ planning

def _cluster(version="1.33", tags=None, status="ACTIVE"):
    return {"name": "basic-cilium", "version": version, "status": status, "endpoint": "https://x", "arn": "arn:x",
            "tags": dict({"cloudnet.cilium_eks/managed": "true"}, **(tags or {}))}


def _nodegroup(name="ng-1", desired=2, low=2, high=2, instance="t3.medium", taints=None, labels=None):
    return {"nodegroupName": name, "status": "ACTIVE", "instanceTypes": [instance],
            "scalingConfig": {"minSize": low, "maxSize": high, "desiredSize": desired},
            "labels": dict({"alpha.eksctl.io/cluster-name": "basic-cilium",
                            "alpha.eksctl.io/nodegroup-name": name}, **(labels or {})),
            "taints": taints if taints is not None else [{"key": "node.cilium.io/agent-not-ready",
                                                          "value": "true", "effect": "NO_EXECUTE"}],
            "amiType": "AL2023_x86_64_STANDARD", "diskSize": 20, "launchTemplate": {"name": "lt"},
            "version": "1.33"}


def _desired(**nodegroup):
    ng = dict({"name": "ng-1", "instance_type": "t3.medium", "desired_size": 2,
               "taints": [dict(eksctl.CILIUM_TAINT)]}, **nodegroup)
    params = dict(BLOG_PARAMS, version="1.33", nodegroups=[ng])
    return eksctl.desired_from_config(eksctl.render_config(params))


def _observed(cluster=None, nodegroups=None):
    nodegroups = nodegroups if nodegroups is not None else [_nodegroup()]
    return eksctl.observed_from_aws(cluster or _cluster(), {ng["nodegroupName"]: ng for ng in nodegroups})


def test_plan_creates_a_missing_cluster():
    assert eksctl.plan(_desired(), None) == {"actions": [{"action": "create_cluster"}], "drift": []}


def test_plan_is_empty_when_everything_matches():
    assert eksctl.plan(_desired(), _observed()) == {"actions": [], "drift": []}


def test_plan_scales_and_keeps_sizes_not_asked_for():
    result = eksctl.plan(_desired(desired_size=4, max_size=5), _observed(nodegroups=[_nodegroup(low=1, high=3)]))
    assert result["actions"] == [{"action": "scale_nodegroup", "nodegroup": "ng-1", "desired_size": 4,
                                  "min_size": 1, "max_size": 5,
                                  "from": {"desired_size": 2, "min_size": 1, "max_size": 3}}]
    assert result["drift"] == []


def test_plan_adds_a_new_nodegroup_and_reports_an_unknown_one():
    desired = eksctl.desired_from_config(eksctl.render_config(dict(
        BLOG_PARAMS, nodegroups=BLOG_PARAMS["nodegroups"] + [{"name": "ng-2"}])))
    result = eksctl.plan(desired, _observed(cluster=_cluster(version="1.27"),
                                            nodegroups=[_nodegroup(), _nodegroup("old")]))
    assert {"action": "create_nodegroup", "nodegroup": "ng-2"} in result["actions"]
    assert [d["actual"] for d in result["drift"] if d["field"] == "nodegroups"] == ["old"]
    assert "never deletes node groups" in result["drift"][-1]["reason"]


def test_plan_upgrades_only_when_allowed_and_one_minor_at_a_time():
    observed = _observed(cluster=_cluster(version="1.32"))
    refused = eksctl.plan(_desired(), observed)
    assert refused["actions"] == []
    assert refused["drift"][0]["field"] == "version" and "allow_upgrade" in refused["drift"][0]["reason"]
    allowed = eksctl.plan(_desired(), observed, allow_upgrade=True)
    assert allowed["actions"] == [{"action": "upgrade_cluster", "from": "1.32", "to": "1.33"}]
    assert allowed["drift"] == []
    two_steps = eksctl.plan(_desired(), _observed(cluster=_cluster(version="1.31")), allow_upgrade=True)
    assert two_steps["actions"] == [{"action": "upgrade_cluster", "from": "1.31", "to": "1.32"}]
    assert "one minor version at a time" in two_steps["drift"][0]["reason"]


def test_plan_reports_what_eksctl_cannot_change():
    observed = _observed(cluster=_cluster(version="1.34"),
                         nodegroups=[_nodegroup(instance="t3.large", taints=[], labels={"role": "x"})])
    desired = _desired(labels={"role": "worker"})
    desired["tags"]["team"] = "net"
    drift = {(d["field"], d["nodegroup"]): d for d in eksctl.plan(desired, observed)["drift"]}
    assert drift[("version", None)]["reason"] == "EKS cannot downgrade a cluster"
    assert drift[("instance_type", "ng-1")]["actual"] == "t3.large"
    assert drift[("labels.role", "ng-1")]["desired"] == "worker"
    assert drift[("taints", "ng-1")]["actual"] == []
    assert drift[("tags.team", None)]["actual"] is None


def test_observed_volume_size_is_unknown_with_a_launch_template():
    ng = _nodegroup()
    assert eksctl.observed_from_aws(_cluster(), {"ng-1": ng})["nodegroups"]["ng-1"]["volume_size"] is None
    del ng["launchTemplate"]
    assert eksctl.observed_from_aws(_cluster(), {"ng-1": ng})["nodegroups"]["ng-1"]["volume_size"] == 20


# ------------------------------------------------------------------------------------------ eksctl output

def test_log_lines_are_parsed_with_and_without_timestamps():
    start = eksctl.parse_log(recording("create_cluster_start_0.16.log"))
    assert start[0] == {"level": "info", "message": "eksctl version 0.16.0", "timestamp": None}
    ready = eksctl.parse_log(recording("create_cluster_ready_0.1.29.log"))[-1]
    assert ready == {"level": "success", "timestamp": "2019-04-26T15:49:37+01:00",
                     "message": 'EKS cluster "ridiculous-badger-1556289277" in "us-west-2" region is ready'}
    deleted = eksctl.parse_log(recording("delete_cluster_0.87.log"))
    assert deleted[-1]["level"] == "success" and deleted[-1]["timestamp"] == "2022-03-20 17:16:26"
    assert [e["level"] for e in eksctl.parse_log(recording("scale_nodegroup_0.63.log"))] == ["info", "info"]


def test_nodegroup_failure_of_eksctl_0_10():
    parsed = eksctl.parse_failures(recording("create_cluster_nodegroup_failed_0.10.log"))
    assert parsed["failed_resources"] == [{
        "resource_type": "Dev::EKS::Nodegroup", "logical_id": "ManagedNodeGroup", "status": "CREATE_FAILED",
        "reason": "Property validation failure: [Encountered unsupported properties in {/}: [NodegroupName, Subnets, "
                  "NodeRole, ScalingConfig, AmiType, ClusterName, Labels, InstanceTypes, Tags]]"}]
    assert parsed["stacks"] == ["eksctl-kubecon-nodegroup-ng-377ebb1b"]
    assert parsed["cleanup_hint"] == "eksctl delete cluster --region=us-east-1 --name=kubecon"
    assert parsed["errors"][-1] == 'failed to create cluster "kubecon"'


def test_nodegroup_failure_of_eksctl_0_17():
    parsed = eksctl.parse_failures(recording("create_cluster_nodegroup_failed_0.17.log"))
    assert [(f["resource_type"], f["reason"]) for f in parsed["failed_resources"]] == [
        ("AWS::EKS::Nodegroup", "Nodegroup MY_NODEGROUP failed to stabilize: Internal Failure")]
    assert parsed["stacks"] == ["eksctl-MY_EKS-cluster", "eksctl-MY_EKS-nodegroup-MY_NODEGROUP"]


def test_control_plane_failure_with_timestamps_and_final_error():
    parsed = eksctl.parse_failures(recording("create_cluster_controlplane_failed.log"))
    assert [(f["logical_id"], f["status"]) for f in parsed["failed_resources"]] == [
        ("PolicyELBPermissions", "CREATE_FAILED"), ("PolicyCloudWatchMetrics", "CREATE_FAILED"),
        ("ControlPlane", "CREATE_FAILED")]
    assert "unsupported Kubernetes version" in parsed["failed_resources"][-1]["reason"]
    assert parsed["errors"][-1] == 'failed to create cluster "eks-ci-cd"'
    assert parsed["cleanup_hint"] == "eksctl delete cluster --region=us-west-1 --name=eks-ci-cd"


def test_create_nodegroup_output_names_its_stack():
    parsed = eksctl.parse_failures(recording("create_nodegroup_0.30.log"))
    assert parsed == {"failed_resources": [], "stacks": ["eksctl-my-cluster-nodegroup-test"], "errors": [],
                      "cleanup_hint": None}


def test_version_parsing():
    assert eksctl.parse_version("0.220.0") == "0.220.0"
    assert eksctl.parse_version("0.80.0-rc.0") == "0.80.0-rc.0"
    assert eksctl.parse_version("nothing") is None


def test_failed_stack_events_keep_failures_oldest_first():
    events = [
        {"StackName": "s", "LogicalResourceId": "s", "ResourceType": "AWS::CloudFormation::Stack",
         "ResourceStatus": "ROLLBACK_COMPLETE", "Timestamp": "2023-02-18T17:08:00Z"},
        {"StackName": "s", "LogicalResourceId": "ControlPlane", "ResourceType": "AWS::EKS::Cluster",
         "ResourceStatus": "CREATE_FAILED", "Timestamp": "2023-02-18T17:07:40Z",
         "ResourceStatusReason": "unsupported Kubernetes version"},
        {"StackName": "s", "LogicalResourceId": "PolicyELBPermissions", "ResourceType": "AWS::IAM::Policy",
         "ResourceStatus": "CREATE_FAILED", "Timestamp": "2023-02-18T17:07:39Z",
         "ResourceStatusReason": "Resource creation cancelled"},
    ]
    assert [(e["logical_id"], e["reason"]) for e in eksctl.failed_stack_events(events)] == [
        ("PolicyELBPermissions", "Resource creation cancelled"), ("ControlPlane", "unsupported Kubernetes version")]


# ------------------------------------------------------------------------------------------ ensure()

class FakeAws:
    """Stands in for AwsClients: EKS and CloudFormation answers from dicts."""

    def __init__(self, cluster=None, nodegroups=None, stacks=None, events=None):
        self.cluster, self.nodegroups = cluster, nodegroups or {}
        self.stacks, self.events = stacks or [], events or {}
        self.region = "us-east-1"

    def call(self, service, operation, **kwargs):
        from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.aws_client import AwsError

        if operation == "describe_cluster":
            if self.cluster is None:
                raise AwsError("eks:DescribeCluster", self.region, "ResourceNotFoundException", "No cluster found")
            return {"cluster": self.cluster}
        if operation == "describe_nodegroup":
            return {"nodegroup": self.nodegroups[kwargs["nodegroupName"]]}
        raise AssertionError(operation)

    def paginate(self, service, operation, key, **kwargs):
        if operation == "list_nodegroups":
            return list(self.nodegroups)
        if operation == "describe_stacks":
            return self.stacks
        if operation == "describe_stack_events":
            return self.events.get(kwargs["StackName"], [])
        raise AssertionError(operation)


class FakeModule:
    def __init__(self, params, check_mode=False):
        base = {"state": "present", "name": None, "region": None, "version": None, "nodegroups": [], "vpc": None,
                "iam_oidc": False, "addons": None, "disable_default_addons": False, "tags": None, "config": None,
                "allow_upgrade": False, "force": False, "kubeconfig": None, "eksctl_path": None, "timeout": 60}
        base.update(params)
        self.params, self.check_mode, self.warnings, self.argvs = base, check_mode, [], []
        self.failing_output = None
        self.on_run = None  # called with the args of every eksctl run (e.g. to make stacks appear)

    def warn(self, msg):
        self.warnings.append(msg)

    def runner(self, binary):
        module = self

        def run(args, check=True):
            module.argvs.append(list(args))
            if module.on_run:
                module.on_run(args)
            if module.failing_output is not None:
                raise CommandError([binary] + list(args), 1, stdout=module.failing_output, stderr="")
            return types.SimpleNamespace(argv=[binary] + list(args), rc=0, stdout="", stderr="", duration=0.1)

        return types.SimpleNamespace(run=run)


@pytest.fixture
def fake(monkeypatch):
    """``fake(module, aws)``: ``ensure`` will read AWS through ``aws`` (a FakeAws) and run eksctl through ``module``."""
    holder = {}
    original = eksctl.ClusterManager.__init__

    def init(self, module, region, aws=None):
        original(self, module, region, aws=holder["aws"])

    monkeypatch.setattr(eksctl.ClusterManager, "__init__", init)

    def install(module, aws):
        holder["aws"] = aws
        return module

    return install


def test_check_mode_runs_no_eksctl_and_shows_the_diff(fake):
    module = fake(FakeModule(BLOG_PARAMS, check_mode=True), FakeAws())
    result = eksctl.ensure(module)
    assert result["changed"] is True and result["actions"] == [{"action": "create_cluster"}]
    assert module.argvs == []
    assert result["diff"]["before"] == "" and "name: basic-cilium" in result["diff"]["after"]


def test_drift_is_returned_and_warned(fake):
    module = fake(FakeModule(dict(BLOG_PARAMS, version="1.33", nodegroups=[
        {"name": "ng-1", "instance_type": "t3.large", "taints": [dict(eksctl.CILIUM_TAINT)]}])),
        FakeAws(cluster=_cluster(), nodegroups={"ng-1": _nodegroup()}))
    result = eksctl.ensure(module)
    assert result["changed"] is False and module.argvs == []
    assert [d["field"] for d in result["drift"]] == ["instance_type"]
    assert "drift on instance_type of node group ng-1: wanted 't3.large', found 't3.medium'" in module.warnings[0]


def test_scaling_calls_eksctl_scale_nodegroup(fake):
    module = fake(FakeModule(dict(BLOG_PARAMS, version="1.33", nodegroups=[
        {"name": "ng-1", "desired_size": 3, "max_size": 3, "taints": [dict(eksctl.CILIUM_TAINT)]}])),
        FakeAws(cluster=_cluster(), nodegroups={"ng-1": _nodegroup()}))
    eksctl.ensure(module)
    assert module.argvs == [["scale", "nodegroup", "--cluster", "basic-cilium", "--region", "us-east-1", "--name",
                             "ng-1", "--nodes", "3", "--nodes-min", "2", "--nodes-max", "3"]]


def test_a_failed_create_reports_eksctls_diagnosis_and_the_stack_events(fake):
    aws = FakeAws(
        events={"eksctl-basic-cilium-cluster": [
            {"StackName": "eksctl-basic-cilium-cluster", "LogicalResourceId": "ControlPlane",
             "ResourceType": "AWS::EKS::Cluster", "ResourceStatus": "CREATE_FAILED", "Timestamp": "t1",
             "ResourceStatusReason": "unsupported Kubernetes version"}]})
    module = fake(FakeModule(dict(BLOG_PARAMS, version="1.33")), aws)
    module.on_run = lambda args: aws.stacks.append(  # what eksctl leaves behind
        {"StackName": "eksctl-basic-cilium-cluster", "StackStatus": "ROLLBACK_COMPLETE"})
    module.failing_output = recording("create_cluster_controlplane_failed.log")
    with pytest.raises(eksctl.CreateFailedError) as caught:
        eksctl.ensure(module)
    err = caught.value
    assert module.argvs[0][:3] == ["create", "cluster", "--write-kubeconfig=false"]
    assert "AWS::EKS::Cluster/ControlPlane: CREATE_FAILED - Resource handler returned message" in err.msg
    assert "eksctl-basic-cilium-cluster AWS::EKS::Cluster/ControlPlane: CREATE_FAILED - unsupported" in err.msg
    assert err.details["delete_commands"] == ["eksctl delete cluster --region us-east-1 --name basic-cilium --wait"]
    assert "Nothing was deleted" in err.msg


def test_leftover_stacks_block_the_next_run_without_deleting_anything(fake):
    module = fake(FakeModule(dict(BLOG_PARAMS, version="1.33")), FakeAws(
        cluster=_cluster(), nodegroups={},
        stacks=[{"StackName": "eksctl-basic-cilium-cluster", "StackStatus": "CREATE_COMPLETE"},
                {"StackName": "eksctl-basic-cilium-nodegroup-ng-1", "StackStatus": "ROLLBACK_COMPLETE"}]))
    with pytest.raises(eksctl.CreateFailedError) as caught:
        eksctl.ensure(module)
    assert module.argvs == []
    assert caught.value.details["delete_commands"] == [
        "aws cloudformation delete-stack --region us-east-1 --stack-name eksctl-basic-cilium-nodegroup-ng-1"]


def test_absent_refuses_an_untagged_cluster_unless_forced(fake):
    untagged = dict(_cluster(), tags={})
    module = fake(FakeModule({"state": "absent", "name": "basic-cilium", "region": "us-east-1"}), FakeAws(cluster=untagged))
    with pytest.raises(CiliumEksError) as caught:
        eksctl.ensure(module)
    assert "cloudnet.cilium_eks/managed=true" in caught.value.msg and module.argvs == []
    forced = fake(FakeModule({"state": "absent", "name": "basic-cilium", "region": "us-east-1", "force": True}),
                  FakeAws(cluster=untagged))
    assert eksctl.ensure(forced)["changed"] is True
    assert forced.argvs == [["delete", "cluster", "--name", "basic-cilium", "--region", "us-east-1", "--wait"]]


def test_region_comes_from_the_environment_or_fails(fake, monkeypatch):
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    params = dict(BLOG_PARAMS, region=None)
    with pytest.raises(ValidationError) as caught:
        eksctl.ensure(fake(FakeModule(params, check_mode=True), FakeAws()))
    assert caught.value.name == "region"
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-3")
    assert eksctl.ensure(fake(FakeModule(params, check_mode=True), FakeAws()))["region"] == "eu-west-3"


def test_info_lists_or_describes_with_stacks(fake):
    aws = FakeAws(cluster=_cluster(), nodegroups={"ng-1": _nodegroup()},
                  stacks=[{"StackName": "eksctl-basic-cilium-cluster", "StackStatus": "CREATE_COMPLETE"},
                          {"StackName": "eksctl-basic-cilium-nodegroup-ng-1", "StackStatus": "ROLLBACK_COMPLETE"},
                          {"StackName": "eksctl-other-cluster", "StackStatus": "CREATE_COMPLETE"}],
                  events={"eksctl-basic-cilium-nodegroup-ng-1": [
                      {"StackName": "eksctl-basic-cilium-nodegroup-ng-1", "LogicalResourceId": "ManagedNodeGroup",
                       "ResourceType": "AWS::EKS::Nodegroup", "ResourceStatus": "CREATE_FAILED", "Timestamp": "t",
                       "ResourceStatusReason": "Nodegroup ng-1 failed to stabilize: Internal Failure"}]})
    aws.paginate_clusters = ["b", "a"]
    original = aws.paginate

    def paginate(service, operation, key, **kwargs):
        return aws.paginate_clusters if operation == "list_clusters" else original(service, operation, key, **kwargs)

    aws.paginate = paginate
    listed = eksctl.info(fake(types.SimpleNamespace(params={"name": None, "region": "us-east-1", "stacks": False}),
                              aws))
    assert listed == {"changed": False, "region": "us-east-1", "clusters": ["a", "b"]}
    described = eksctl.info(fake(types.SimpleNamespace(
        params={"name": "basic-cilium", "region": "us-east-1", "stacks": True}), aws))
    assert described["exists"] is True and described["managed"] is True and described["status"] == "ACTIVE"
    assert [(s["name"], s["kind"], s["nodegroup"]) for s in described["stacks"]] == [
        ("eksctl-basic-cilium-cluster", "cluster", None), ("eksctl-basic-cilium-nodegroup-ng-1", "nodegroup", "ng-1")]
    assert described["stack_failures"][0]["reason"] == "Nodegroup ng-1 failed to stabilize: Internal Failure"
