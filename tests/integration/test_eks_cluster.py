"""The eks_cluster role and the eksctl_cluster modules on the local platform.

Everything the user gets runs for real (ansible-playbook, the role, the modules, boto3 against the
sandbox's EKS proxy + moto, kubernetes.core against kwok); only the eksctl binary is the contract
double (tests/platform/eks_sandbox/eksctl_double.py, first on PATH), which registers clusters and node
groups in moto and kwok Nodes in the sandbox without eksctl's 150 s of waits. What eksctl itself prints
and leaves behind when a stack fails is tested against the real eksctl v0.225.0, in test_real_eksctl.py.
"""
import stat
import sys

import boto3
import pytest
import yaml
from helpers import REGION, start_empty_platform, write_play

from eks_sandbox import aws, kube

SANDBOX = "eks-cluster-it"
HOST = "localhost"


@pytest.fixture(scope="module")
def platform(sandbox_factory):
    return start_empty_platform(sandbox_factory, SANDBOX)


def _client(platform, service):
    return boto3.session.Session(region_name=REGION, **{k.lower(): v for k, v in aws.DUMMY_CREDENTIALS.items()}) \
        .client(service, endpoint_url=platform["endpoint"])


def clusters(platform):
    return _client(platform, "eks").list_clusters()["clusters"]


def stacks(platform, cluster):
    return sorted(s["StackName"] for s in _client(platform, "cloudformation").describe_stacks()["Stacks"]
                  if s["StackName"].startswith(f"eksctl-{cluster}-") and s["StackStatus"] != "DELETE_COMPLETE")


def nodes(platform, cluster):
    core = kube.core_v1(platform["box"].kubeconfig)
    return core.list_node(label_selector=f"alpha.eksctl.io/cluster-name={cluster}").items


@pytest.fixture
def inventory(tmp_path):
    path = tmp_path / "inventory.ini"
    path.write_text(f"{HOST} ansible_connection=local ansible_python_interpreter={sys.executable}\n")
    return path


def role_playbook(tmp_path, **variables):
    return write_play(tmp_path / "eks_cluster.yml", "EKS cluster", role="eks_cluster", variables=variables, hosts=HOST)


def module_playbook(tmp_path, **params):
    return write_play(tmp_path / "module.yml", "eksctl_cluster", module="eksctl_cluster", args=params, hosts=HOST)


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


def test_role_create_rerun_scale_delete(platform, run_playbook, inventory, tmp_path):
    name = "life-cycle"
    variables = role_vars(tmp_path, name, eks_cluster_open_nodeport_icmp=True)
    first = run_playbook(role_playbook(tmp_path, **variables), inventory, platform["env"])
    assert first.rc == 0, first
    assert first.changed(HOST) >= 2  # the cluster, the security group rules
    progress = first.task_results("Show the progress")
    assert progress and "elapsed: cluster life-cycle is" in progress[0][HOST]["msg"]
    created = first.task("Collect the result of eksctl", HOST)
    assert [a["action"] for a in created["actions"]] == ["create_cluster"]

    eks = _client(platform, "eks")
    cluster = eks.describe_cluster(name=name)["cluster"]
    assert cluster["version"] == "1.33"
    assert cluster["tags"]["cloudnet.cilium_eks/managed"] == "true"
    assert cluster["endpoint"] == platform["box"].api_server
    ng = eks.describe_nodegroup(clusterName=name, nodegroupName="ng-1")["nodegroup"]
    assert (ng["instanceTypes"], ng["scalingConfig"]["desiredSize"]) == (["t3.medium"], 2)
    assert stacks(platform, name) == [f"eksctl-{name}-cluster", f"eksctl-{name}-nodegroup-ng-1"]
    registered = nodes(platform, name)
    assert len(registered) == 2
    assert all(("node.cilium.io/agent-not-ready", "true", "NoExecute") in
               [(t.key, t.value, t.effect) for t in n.spec.taints or []] for n in registered)
    kubeconfig = tmp_path / "kubeconfig"
    assert stat.S_IMODE(kubeconfig.stat().st_mode) == 0o600
    assert yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]["server"] == platform["box"].api_server
    ec2 = _client(platform, "ec2")
    group = ec2.describe_security_groups(Filters=[{"Name": "tag:aws:eks:cluster-name", "Values": [name]}])
    rules = {(p["IpProtocol"], p.get("FromPort"), p.get("ToPort")): [r["CidrIp"] for r in p["IpRanges"]]
             for p in group["SecurityGroups"][0]["IpPermissions"]}
    assert rules[("icmp", -1, -1)] == [aws.VPC_CIDR]
    assert rules[("tcp", 30000, 32767)] == [aws.VPC_CIDR]
    assert ("-1", None, None) in rules  # EKS's own rule kept (purge_rules: false)

    second = run_playbook(role_playbook(tmp_path, **variables), inventory, platform["env"])
    assert second.rc == 0, second
    assert second.changed(HOST) == 0, second.stats
    rules_after = ec2.describe_security_groups(GroupIds=[group["SecurityGroups"][0]["GroupId"]])
    assert len(rules_after["SecurityGroups"][0]["IpPermissions"]) == len(rules)

    variables["eks_cluster_nodegroups"] = [{"name": "ng-1", "instance_type": "t3.medium", "desired_size": 3,
                                            "min_size": 2, "max_size": 3}]
    scaled = run_playbook(role_playbook(tmp_path, **variables), inventory, platform["env"])
    assert scaled.rc == 0, scaled
    result = scaled.task("Collect the result of eksctl", HOST)
    assert result["changed"] is True
    assert result["actions"] == [{"action": "scale_nodegroup", "nodegroup": "ng-1", "desired_size": 3,
                                  "min_size": 2, "max_size": 3,
                                  "from": {"desired_size": 2, "min_size": 2, "max_size": 2}}]
    assert eks.describe_nodegroup(clusterName=name, nodegroupName="ng-1")["nodegroup"]["scalingConfig"] == \
        {"minSize": 2, "maxSize": 3, "desiredSize": 3}
    assert len(nodes(platform, name)) == 3
    again = run_playbook(role_playbook(tmp_path, **variables), inventory, platform["env"])
    assert again.changed(HOST) == 0, again.stats

    check_delete = run_playbook(module_playbook(tmp_path, name=name, region=REGION, state="absent"), inventory,
                                platform["env"], check=True)
    assert check_delete.task("eksctl_cluster", HOST)["changed"] is True
    assert name in clusters(platform)
    deleted = run_playbook(module_playbook(tmp_path, name=name, region=REGION, state="absent"), inventory,
                           platform["env"])
    assert deleted.task("eksctl_cluster", HOST)["changed"] is True, deleted
    assert name not in clusters(platform)
    assert stacks(platform, name) == []
    assert nodes(platform, name) == []
    gone = run_playbook(module_playbook(tmp_path, name=name, region=REGION, state="absent"), inventory,
                        platform["env"])
    assert gone.task("eksctl_cluster", HOST)["changed"] is False


def test_delete_refuses_a_cluster_this_collection_did_not_create(platform, run_playbook, inventory, tmp_path):
    aws.seed_eks(platform["endpoint"], REGION, "foreign", "1.33", ["ng-1"], managed=False)
    refused = run_playbook(module_playbook(tmp_path, name="foreign", region=REGION, state="absent"), inventory,
                           platform["env"])
    assert refused.rc != 0
    message = refused.task("eksctl_cluster", HOST)["msg"]
    assert "does not carry the tag cloudnet.cilium_eks/managed=true" in message and "force: true" in message
    assert "foreign" in clusters(platform)

    forced = run_playbook(module_playbook(tmp_path, name="foreign", region=REGION, state="absent", force=True),
                          inventory, platform["env"])
    assert forced.task("eksctl_cluster", HOST)["changed"] is True, forced
    assert "foreign" not in clusters(platform)
