# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""module_utils/eksctl_output.py: eksctl's log lines and failures, on recorded real outputs."""

from __future__ import annotations

import os

from ansible_collections.cloudnet.cilium_eks.plugins.module_utils import eksctl_output as eksctl

HERE = os.path.dirname(os.path.abspath(__file__))
RECORDINGS = os.path.join(HERE, "..", "..", "..", "recordings", "eksctl")


def recording(name):
    with open(os.path.join(RECORDINGS, name), encoding="utf-8") as stream:
        return stream.read()


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
                      "cleanup_hint": None, "cause": None}


# ------------------------------------------------------------------ the cause of a failure (real eksctl 0.215/0.225)

def failure(name):
    """stdout then stderr of a recorded real failure, as the module joins them."""
    return recording(name + ".stdout.log") + "\n" + recording(name + ".stderr.log") \
        if os.path.exists(os.path.join(RECORDINGS, name + ".stdout.log")) else recording(name + ".stderr.log")


def test_cause_of_a_stack_that_could_not_be_created_is_the_first_specific_error_line():
    parsed = eksctl.parse_failures(failure("create_cluster_stack_error_0.215"))
    assert parsed["cause"].startswith('creating CloudFormation stack "eksctl-sbx-real-cluster": operation error '
                                      'CloudFormation: CreateStack, exceeded maximum number of attempts')
    assert parsed["errors"][-1] == 'failed to create cluster "sbx-real"'  # the generic last line is not the cause


def test_cause_of_a_rolled_back_control_plane_is_its_failed_resource_unquoted():
    parsed = eksctl.parse_failures(failure("create_cluster_controlplane_failed_0.225"))
    assert parsed["failed_resources"] == [{
        "resource_type": "AWS::EKS::Cluster", "logical_id": "ControlPlane", "status": "CREATE_FAILED",
        "reason": 'Resource handler returned message: "Cannot create cluster rec-bad: the subnets are in an '
                  'unsupported Availability Zone"'}]
    assert parsed["cause"] == ('AWS::EKS::Cluster/ControlPlane: CREATE_FAILED - Resource handler returned message: '
                               '"Cannot create cluster rec-bad: the subnets are in an unsupported Availability Zone"')
    assert parsed["stacks"] == ["eksctl-rec-bad-cluster"]
    assert all(eksctl.is_generic(e) for e in parsed["errors"])


def test_a_failed_node_group_stack_leaves_only_generic_lines_in_eksctl_0_225():
    # eksctl 0.225 troubleshoots only the cluster stack (pkg/cfn/manager/waiters.go): the node group's reason is in
    # CloudFormation's events, which the module reads itself; parse_failures says only that it failed.
    parsed = eksctl.parse_failures(failure("create_cluster_nodegroup_failed_0.225"))
    assert parsed["failed_resources"] == []
    assert parsed["errors"] == ["waiter state transitioned to Failure", 'failed to create cluster "rec-1"']
    assert parsed["cause"] == 'failed to create cluster "rec-1"'
    assert "eksctl-rec-1-nodegroup-ng-bad" in parsed["stacks"]


def test_cause_of_a_failed_delete_is_eksctls_error_line_not_the_summary():
    parsed = eksctl.parse_failures(recording("delete_cluster_dependency_violation_0.215.stdout.log")
                                   + "Error: failed to delete cluster with nodegroup(s)\n")
    assert parsed["cause"].startswith('not able to delete stack "eksctl-sbx-real-cluster": operation error '
                                      'CloudFormation: DeleteStack')
    assert "DependencyViolation" in parsed["cause"]
    stack_failed = eksctl.parse_failures(failure("delete_cluster_stack_failed_0.225"))
    assert stack_failed["cause"] == "failed to delete cluster with nodegroup(s)"
    rolled_back = eksctl.parse_failures(failure("delete_cluster_rolled_back_0.225"))
    assert rolled_back["cause"].startswith("unable to describe cluster control plane: operation error EKS: "
                                           "DescribeCluster")


def test_go_quoted_reasons_are_unquoted_and_failures_described():
    assert eksctl.go_unquote('"a \\"b\\" c"') == 'a "b" c'
    assert eksctl.go_unquote("plain") == "plain" and eksctl.go_unquote(None) is None
    assert eksctl.describe_failure({"stack": "s", "resource_type": "AWS::EKS::Nodegroup", "logical_id": "M",
                                    "status": "CREATE_FAILED", "reason": "r"}) == "s AWS::EKS::Nodegroup/M: CREATE_FAILED - r"
    assert eksctl.describe_failure({"resource_type": "T::U::V", "logical_id": "L", "status": "DELETE_FAILED",
                                    "reason": None}) == "T::U::V/L: DELETE_FAILED"


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
