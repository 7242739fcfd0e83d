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
                      "cleanup_hint": None}


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
