"""AWS settings given once, with ``module_defaults`` on ``group/cloudnet.cilium_eks.aws``, reach this collection's AWS
modules (boto3), the real eksctl they run and amazon.aws's modules (the group extends amazon.aws's ``aws`` group).

The playbooks run with no AWS variable at all in their environment (no endpoint, region, keys or profile), so every
call the sandbox's proxy sees was made with what the group gave; the proxy records the access key id and the client
(``Boto3`` for this collection's boto3, ``aws-sdk-go-v2`` for eksctl, ``APN`` for amazon.aws) of each signed call. Before the group existed, these playbooks
failed: the group was unknown and the modules had no way to take credentials or an endpoint.
"""
import os
import sys

import pytest
import yaml

from eks_sandbox import aws

import helpers

SANDBOX = "aws-options-it"
REGION = "us-east-1"
HOST = "localhost"
GROUP = "group/cloudnet.cilium_eks.aws"


@pytest.fixture(scope="module")
def platform(sandbox_factory, tmp_path_factory):
    box = helpers.start_sandbox(sandbox_factory, SANDBOX, nodes=1)
    work = tmp_path_factory.mktemp("aws-options")
    inventory = work / "inventory.ini"
    inventory.write_text(f"{HOST} ansible_connection=local ansible_python_interpreter={sys.executable}\n")
    env = {k: v for k, v in dict(os.environ, **box.env).items() if not k.startswith("AWS_")}
    (work / "aws-config").write_text("[profile team]\naws_access_key_id = AKIDPROFILETEAM\n"
                                     "aws_secret_access_key = profile-secret\n")
    (work / "aws-credentials").write_text("")
    env.update(AWS_CONFIG_FILE=str(work / "aws-config"), AWS_SHARED_CREDENTIALS_FILE=str(work / "aws-credentials"),
               AWS_EC2_METADATA_DISABLED="true")
    return {"box": box, "env": env, "endpoint": box.aws_env["AWS_ENDPOINT_URL"], "work": work,
            "inventory": inventory, "eksctl": box.env["CILIUM_EKS_EKSCTL"]}


def run(platform, run_playbook, name, defaults):
    """Describe the sandbox's cluster, write its kubeconfig with eksctl, list the VPCs with amazon.aws: all AWS
    settings from ``defaults`` on the group."""
    kubeconfig = platform["work"] / f"kubeconfig-{name}"
    tasks = [
        {"name": "describe", "cloudnet.cilium_eks.eksctl_cluster_info": {"name": SANDBOX}, "register": "described"},
        {"name": "kubeconfig", "cloudnet.cilium_eks.eksctl_cluster": {
            "name": SANDBOX, "eksctl_path": platform["eksctl"], "kubeconfig": str(kubeconfig),
            "nodegroups": [{"name": "ng-1"}]}},
        {"name": "vpcs", "amazon.aws.ec2_vpc_net_info": {}},
    ]
    path = platform["work"] / f"{name}.yml"
    path.write_text(yaml.safe_dump([{"name": name, "hosts": HOST, "gather_facts": False,
                                     "module_defaults": {GROUP: defaults}, "tasks": tasks}]))
    aws.callers(platform["endpoint"], clear=True)
    result = run_playbook(path, platform["inventory"], platform["env"], timeout=600)
    return result, aws.callers(platform["endpoint"]), kubeconfig


def task(result, name):
    return result.task(name, HOST)


def test_group_keys_region_and_endpoint_reach_boto3_eksctl_and_amazon_aws(platform, run_playbook):
    result, calls, kubeconfig = run(platform, run_playbook, "keys", {
        "aws_endpoint_url": platform["endpoint"], "region": REGION, "access_key": "AKIDGROUPDEFAULTS",
        "secret_key": "group-secret"})
    assert result.rc == 0, result
    assert task(result, "describe")["exists"] is True
    assert task(result, "vpcs")["vpcs"]
    assert kubeconfig.is_file() and oct(kubeconfig.stat().st_mode & 0o777) == "0o600"
    assert {c["access_key"] for c in calls} == {"AKIDGROUPDEFAULTS"}, calls
    by_client = {(c["client"], c["operation"]) for c in calls}
    assert ("Boto3", "eks:DescribeCluster") in by_client  # this collection's boto3 calls
    assert ("aws-sdk-go-v2", "eks:DescribeCluster") in by_client  # eksctl utils write-kubeconfig
    # amazon.aws, through the extended group: its boto3 clients say "APN/1.0 Ansible/..." first (plugins/module_utils/
    # botocore.py, amazon.aws 10.1.2)
    assert ("APN", "ec2:DescribeVpcs") in by_client
    argv = [" ".join(c["argv"]) for c in task(result, "kubeconfig")["commands"]]
    assert argv and not any("group-secret" in line or "AKIDGROUPDEFAULTS" in line for line in argv)


def test_a_group_profile_reaches_eksctl_and_its_kubeconfig(platform, run_playbook):
    result, calls, kubeconfig = run(platform, run_playbook, "profile", {
        "endpoint_url": platform["endpoint"], "aws_region": REGION, "profile": "team"})
    assert result.rc == 0, result
    assert {c["access_key"] for c in calls} == {"AKIDPROFILETEAM"}, calls
    assert {"Boto3", "aws-sdk-go-v2"} <= {c["client"] for c in calls}
    user = yaml.safe_load(kubeconfig.read_text())["users"][0]["user"]
    assert {"name": "AWS_PROFILE", "value": "team"} in user["exec"]["env"]  # eksctl wrote the profile for the login


def test_the_modules_fail_without_the_group_and_without_aws_variables(platform, run_playbook):
    """The same playbook without module_defaults: nothing reaches AWS (the environment has no AWS variable)."""
    result, calls, _kubeconfig = run(platform, run_playbook, "bare", {})
    assert result.rc != 0
    assert "region" in result.failure_message(HOST)
    assert calls == []
