"""The eks_cluster role up to its first call of eksctl: bad input, no region, check mode.

An empty sandbox (no EKS cluster, no node; the real eksctl v0.225.0 first on PATH) that nothing may change: every
test asserts that no cluster, stack or node appeared. What the role and the eksctl_cluster module do with a cluster
(create, re-run, scale, the security group rules, delete in check mode, refusing a cluster without the ownership
tag, failures) is tested on one real cluster in test_real_eksctl.py.
"""
import os

import pytest
from helpers import REGION, aws_client, local_inventory, start_sandbox, write_play

from eks_sandbox import kube

SANDBOX = "eks-cluster-it"
HOST = "localhost"


@pytest.fixture(scope="module")
def platform(sandbox_factory):
    box = start_sandbox(sandbox_factory, SANDBOX, seed=False)
    return {"box": box, "env": dict(os.environ, **box.env), "endpoint": box.aws_env["AWS_ENDPOINT_URL"]}


def clusters(platform):
    return aws_client(platform["endpoint"], "eks").list_clusters()["clusters"]


def stacks(platform, cluster):
    return sorted(s["StackName"] for s in aws_client(platform["endpoint"], "cloudformation").describe_stacks()["Stacks"]
                  if s["StackName"].startswith(f"eksctl-{cluster}-") and s["StackStatus"] != "DELETE_COMPLETE")


def nodes(platform, cluster):
    core = kube.core_v1(platform["box"].kubeconfig)
    return core.list_node(label_selector=f"alpha.eksctl.io/cluster-name={cluster}").items


@pytest.fixture
def inventory(tmp_path):
    return local_inventory(tmp_path / "inventory.ini", hosts=[HOST])


def role_playbook(tmp_path, **variables):
    return write_play(tmp_path / "eks_cluster.yml", "EKS cluster", role="eks_cluster", variables=variables, hosts=HOST)


def role_vars(tmp_path, name, **extra):
    return dict(eks_cluster_name=name, eks_cluster_region=REGION, eks_cluster_kubeconfig=str(tmp_path / "kubeconfig"),
                eks_cluster_poll_interval=2, eks_cluster_node_wait_timeout=120, **extra)


@pytest.mark.parametrize("variables, expected", [
    ({"eks_cluster_version": "1.27"},
     "`eks_cluster_version` '1.27': this version is not one EKS supports. Accepted values: 1.31, 1.32, 1.33"),
    ({"eks_cluster_name": "9-lives"}, "`eks_cluster_name` '9-lives': an EKS cluster name starts with a letter"),
    ({"eks_cluster_region": "us-east"}, "`eks_cluster_region` 'us-east': not an AWS region name"),
    ({"eks_cluster_nodegroups": [{"name": "ng-1", "desired_size": 1, "min_size": 3, "max_size": 4}]},
     "`eks_cluster_nodegroups[ng-1]`: min_size (3) is above desired_size (1)"),
    ({"eks_cluster_nodegroups": [{"name": "ng-1", "instance_type": "t3-medium"}]},
     "`eks_cluster_nodegroups[ng-1].instance_type` 't3-medium': not an EC2 instance type"),
    ({"eks_cluster_nodegroups": [{"name": "ng-1", "taints": [{"key": "a", "effect": "NoRun"}]}]},
     "`eks_cluster_nodegroups[ng-1].taints[0].effect` 'NoRun': not a taint effect. Accepted values: NoSchedule, "
     "PreferNoSchedule, NoExecute"),
])
def test_bad_input_fails_before_any_aws_call(platform, run_playbook, inventory, tmp_path, variables, expected):
    merged = role_vars(tmp_path, "bad-input")
    merged.update(variables)
    result = run_playbook(role_playbook(tmp_path, **merged), inventory, platform["env"])
    assert result.rc != 0, result
    assert expected in result.failure_message(), result.failure_message()
    assert result.task_results("Resolve the region")  # the role ran its validation...
    assert result.task_results("Plan the changes (read-only; the whole run in check mode)") == []  # ...and stopped
    assert clusters(platform) == [] or "bad-input" not in clusters(platform)
    assert stacks(platform, "bad-input") == []


def test_no_region_anywhere_is_refused(platform, run_playbook, inventory, tmp_path):
    env = {k: v for k, v in platform["env"].items() if k not in ("AWS_REGION", "AWS_DEFAULT_REGION")}
    variables = role_vars(tmp_path, "no-region")
    variables["eks_cluster_region"] = ""
    result = run_playbook(role_playbook(tmp_path, **variables), inventory, env)
    assert result.rc != 0
    assert "Invalid `eks_cluster_region`: no AWS region given and none in AWS_REGION/AWS_DEFAULT_REGION" \
        in result.failure_message()
    assert stacks(platform, "no-region") == []


def test_check_mode_creates_nothing(platform, run_playbook, inventory, tmp_path):
    result = run_playbook(role_playbook(tmp_path, **role_vars(tmp_path, "dry-run")), inventory, platform["env"],
                          check=True, diff=True)
    assert result.rc == 0, result
    assert result.changed(HOST) == 1  # the plan: a cluster to create
    plan = result.task("Plan the changes (read-only; the whole run in check mode)", HOST)
    assert [a["action"] for a in plan["actions"]] == ["create_cluster"]
    cost = result.task("Say what the new cluster costs before creating it", HOST)["msg"]
    assert "0.10 $/h for the EKS control plane" in cost and "t3.medium (ng-1)" in cost and "teardown" in cost
    assert plan["config"]["managedNodeGroups"][0]["taints"] == [
        {"key": "node.cilium.io/agent-not-ready", "value": "true", "effect": "NoExecute"}]
    assert "dry-run" not in clusters(platform)
    assert stacks(platform, "dry-run") == []
    assert nodes(platform, "dry-run") == []
    assert not (tmp_path / "kubeconfig").exists()
