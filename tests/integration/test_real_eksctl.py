"""The eks_cluster role and the eksctl_cluster module driving the real eksctl on an empty sandbox.

eksctl v0.225.0 is built from the Go module proxy (``gobuild``); the sandbox adds to moto what it
needs (``moto_eks``: EKS CloudFormation models and fidelity; the proxy: EKS add-ons, the token
webhook; kwok Nodes following the node groups). One real cluster is shared by the life-cycle tests,
in file order: create (private nodes: no ICMP/NodePort rule opened, and said so), a second run with ``changed=0``,
scale and a new node group in public subnets (its node's public IP opened as a /32), user CIDRs instead and back
(eks_nodeport_access), the node group removed the way the module says (its node's rules removed), a node group
whose stack fails, a delete in check mode, a delete refused for a cluster without the ownership tag, a delete that fails once, delete.
A real ``create cluster`` costs at least 150 s of eksctl's own waits (30 s before its first stack
poll, 6 API server probes 20 s apart), so there is one.
"""
import json
import os
import shutil
import stat
import subprocess

import pytest
import yaml
from helpers import REGION, aws_client, local_inventory, start_sandbox, write_play

from eks_sandbox import aws, gobuild, kube, versions

SANDBOX = "real-eksctl-it"
NAME = "real-life"
HOST = "localhost"
AGENT_NOT_READY = {"key": "node.cilium.io/agent-not-ready", "value": "true", "effect": "NoExecute"}


@pytest.fixture(scope="module")
def platform(sandbox_factory, tmp_path_factory):
    box = start_sandbox(sandbox_factory, SANDBOX, seed=False)
    work = tmp_path_factory.mktemp("real-eksctl")
    return {"box": box, "env": dict(os.environ, **box.env), "endpoint": box.aws_env["AWS_ENDPOINT_URL"],
            "work": work, "inventory": local_inventory(work / "inventory.ini", hosts=[HOST])}


def live_stacks(platform, cluster=NAME):
    stacks = aws_client(platform["endpoint"], "cloudformation").describe_stacks()["Stacks"]
    return {s["StackName"]: s["StackStatus"] for s in stacks if s["StackName"].startswith(f"eksctl-{cluster}-")}


def clusters(platform):
    return aws_client(platform["endpoint"], "eks").list_clusters()["clusters"]


def cluster_nodes(platform, cluster=NAME):
    core = kube.core_v1(platform["box"].kubeconfig)
    return core.list_node(label_selector=f"alpha.eksctl.io/cluster-name={cluster}").items


def nodegroup(name, size, instance_type="t3.medium", **sizes):
    return {"name": name, "instance_type": instance_type, "desired_size": size, **sizes}


def role_vars(platform, **extra):
    return {"eks_cluster_name": NAME, "eks_cluster_region": REGION, "eks_cluster_version": "1.34",
            "eks_cluster_eksctl_path": platform["env"]["CILIUM_EKS_EKSCTL"],
            "eks_cluster_kubeconfig": str(platform["work"] / "kubeconfig"), "eks_cluster_poll_interval": 5,
            "eks_cluster_node_wait_timeout": 120,
            "eks_cluster_nodegroups": [nodegroup("ng-1", 2)], **extra}


def run_role(platform, run_playbook, env=None, check=False, **variables):
    path = write_play(platform["work"] / "role.yml", "role", role="eks_cluster", variables=role_vars(platform, **variables),
                      hosts=HOST)
    return run_playbook(path, platform["inventory"], env or platform["env"], check=check, diff=check, timeout=1200)


def run_module(platform, run_playbook, check=False, **params):
    path = write_play(platform["work"] / "module.yml", "eksctl_cluster", module="eksctl_cluster", hosts=HOST, args={
        "name": NAME, "region": REGION, "eksctl_path": platform["env"]["CILIUM_EKS_EKSCTL"], **params})
    return run_playbook(path, platform["inventory"], platform["env"], check=check, timeout=1200)


def run_access(platform, run_playbook, check=False, **args):
    """The eks_nodeport_access module alone on the shared cluster, with --diff."""
    path = write_play(platform["work"] / "access.yml", "access", module="eks_nodeport_access", hosts=HOST,
                      args={"cluster": NAME, "region": REGION, **args})
    return run_playbook(path, platform["inventory"], platform["env"], check=check, diff=True, timeout=300)


OWNED = "cloudnet.cilium_eks "  # the description prefix of the rules the collection owns (module_utils/nodeport_access)


def access_rules(platform):
    """``({(protocol, from, to, cidr)}, {every rule of the group})`` of the cluster security group: the rules the
    collection owns, and all IPv4 ones."""
    eks, ec2 = aws_client(platform["endpoint"], "eks"), aws_client(platform["endpoint"], "ec2")
    group_id = eks.describe_cluster(name=NAME)["cluster"]["resourcesVpcConfig"]["clusterSecurityGroupId"]
    (group,) = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"]
    every = {(p["IpProtocol"], p.get("FromPort"), p.get("ToPort"), r["CidrIp"]): r.get("Description", "")
             for p in group["IpPermissions"] for r in p.get("IpRanges", [])}
    return {rule for rule, text in every.items() if text.startswith(OWNED)}, group


def opened_for(*cidrs):
    return {rule + (cidr,) for cidr in cidrs for rule in (("icmp", -1, -1), ("tcp", 30000, 32767))}


def node_instances(platform, nodegroup=None):
    """``{instance id: public IP or None}`` of the cluster's nodes (of ``nodegroup``), from their providerIDs."""
    ids = [n.spec.provider_id.rsplit("/", 1)[-1] for n in cluster_nodes(platform)
           if nodegroup is None or n.metadata.labels["eks.amazonaws.com/nodegroup"] == nodegroup]
    reservations = aws_client(platform["endpoint"], "ec2").describe_instances(InstanceIds=ids)["Reservations"]
    return {i["InstanceId"]: i.get("PublicIpAddress") for r in reservations for i in r["Instances"]}


def eksctl(platform, *args):
    return subprocess.run([platform["env"]["CILIUM_EKS_EKSCTL"], *args], env=platform["env"], capture_output=True,
                          text=True, timeout=600, check=False)


def test_the_sandbox_runs_the_pinned_real_eksctl(platform):
    result = eksctl(platform, "version")
    assert result.returncode == 0 and result.stdout.strip() == versions.EKSCTL.lstrip("v")
    assert platform["env"]["CILIUM_EKS_EKSCTL"] == str(gobuild.ensure("eksctl")["eksctl"])


@pytest.fixture(scope="module")
def created(platform, run_playbook):
    """The one real cluster: the role creates it (eksctl create cluster, about 160 s)."""
    return run_role(platform, run_playbook,
                    eks_cluster_nodegroups=[nodegroup("ng-1", 2)], eks_cluster_open_nodeport_icmp=True)


def test_role_creates_the_cluster_with_the_real_eksctl(platform, created):
    assert created.rc == 0, created.failure_message(HOST)
    outcome = created.task("Collect the result of eksctl", HOST)
    assert [a["action"] for a in outcome["actions"]] == ["create_cluster"]
    progress = created.task_results("Show the progress")  # one line per poll while eksctl runs
    assert progress and f"elapsed: cluster {NAME} is" in progress[0][HOST]["msg"]
    assert live_stacks(platform) == {f"eksctl-{NAME}-cluster": "CREATE_COMPLETE",
                                     f"eksctl-{NAME}-nodegroup-ng-1": "CREATE_COMPLETE"}
    eks = aws_client(platform["endpoint"], "eks")
    cluster = eks.describe_cluster(name=NAME)["cluster"]
    assert cluster["version"] == "1.34" and cluster["endpoint"] == platform["box"].api_server
    assert cluster["tags"]["cloudnet.cilium_eks/managed"] == "true"
    assert sorted(eks.list_addons(clusterName=NAME)["addons"]) == ["coredns", "kube-proxy", "metrics-server",
                                                                   "vpc-cni"]
    nodes = cluster_nodes(platform)
    assert len(nodes) == 2
    for node in nodes:  # instance-backed, tainted as the role asks
        assert node.spec.provider_id.startswith("aws:///us-east-1") and "/i-" in node.spec.provider_id
        assert AGENT_NOT_READY in [{"key": t.key, "value": t.value, "effect": t.effect} for t in node.spec.taints]
    kubeconfig = platform["work"] / "kubeconfig"
    assert stat.S_IMODE(kubeconfig.stat().st_mode) == 0o600
    user = yaml.safe_load(kubeconfig.read_text())["users"][0]["user"]
    assert user["exec"]["command"] == "aws-iam-authenticator"  # eksctl's login, checked by the token webhook
    whoami = subprocess.run([str(gobuild.ensure("kubernetes")["kubectl"]), "--kubeconfig", str(kubeconfig), "auth",
                             "whoami", "-o", "json"], env=platform["env"], capture_output=True, text=True,
                            timeout=60, check=True)
    assert json.loads(whoami.stdout)["status"]["userInfo"]["username"].startswith("arn:aws:sts::")
    # eks_cluster_open_nodeport_icmp with the default source node_public_ips: the nodes are in private subnets (the
    # default eks_cluster_node_subnets), have no public IP, so nothing is opened, and the role says so. The VPC CIDR,
    # the source of earlier releases, is not opened either (it changed nothing: docs/running-on-real-eks.md).
    assert set(node_instances(platform).values()) == {None}
    owned, group = access_rules(platform)
    assert owned == set()
    assert not [p for p in group["IpPermissions"] if p["IpProtocol"] == "icmp" or p.get("FromPort") == 30000]
    assert any(p["IpProtocol"] == "-1" for p in group["IpPermissions"])  # EKS's own rule, untouched
    said = created.task("Show the security group rules (the nodes have no public IPs in private subnets, so nothing "
                        "is opened there)", HOST)["msg"]
    assert said.startswith("the nodes have no public IPs (private subnets)") and "nothing to change" in said, said


def test_a_second_run_changes_nothing(platform, created, run_playbook):
    again = run_role(platform, run_playbook, eks_cluster_nodegroups=[nodegroup("ng-1", 2)],
                     eks_cluster_open_nodeport_icmp=True)
    assert again.rc == 0, again.failure_message(HOST)
    assert again.changed(HOST) == 0, again.stats


def test_a_host_without_the_login_command_is_told_what_to_install(platform, created, run_playbook):
    """eksctl's kubeconfig runs aws-iam-authenticator (or `aws eks get-token`): without either on PATH the role
    stops before waiting for nodes and says what to install, instead of timing out."""
    path = os.pathsep.join(d for d in platform["env"]["PATH"].split(os.pathsep)
                           if not any(shutil.which(login, path=d) for login in ("aws-iam-authenticator", "aws")))
    bare = run_role(platform, run_playbook, env=dict(platform["env"], PATH=path),
                    eks_cluster_nodegroups=[nodegroup("ng-1", 2)], eks_cluster_open_nodeport_icmp=True)
    assert bare.rc != 0
    message = bare.failure_message(HOST)
    assert "logs in by running aws-iam-authenticator, which is not on this host's PATH" in message, message
    assert "tools_aws_iam_authenticator: true" in message, message


def test_scale_and_a_new_nodegroup(platform, created, run_playbook):
    """ng-2 gives only min_size: eksctl makes desiredCapacity = minSize (pkg/apis/eksctl.io/v1alpha5/validation.go
    at v0.225.0 l.1321), and the role waits for the nodes EKS then reports, not for a default of its own."""
    grown = run_role(platform, run_playbook, eks_cluster_open_nodeport_icmp=True, eks_cluster_nodegroups=[
        nodegroup("ng-1", 3, min_size=2, max_size=3),
        {"name": "ng-2", "instance_type": "t3.large", "min_size": 1, "private_networking": False}])
    assert grown.rc == 0, grown.failure_message(HOST)
    outcome = grown.task("Collect the result of eksctl", HOST)
    assert [a["action"] for a in outcome["actions"]] == ["scale_nodegroup", "create_nodegroup"]
    eks = aws_client(platform["endpoint"], "eks")
    assert eks.describe_nodegroup(clusterName=NAME, nodegroupName="ng-1")["nodegroup"]["scalingConfig"] == \
        {"minSize": 2, "maxSize": 3, "desiredSize": 3}
    assert live_stacks(platform)[f"eksctl-{NAME}-nodegroup-ng-2"] == "CREATE_COMPLETE"
    by_group = {}
    for node in cluster_nodes(platform):
        by_group.setdefault(node.metadata.labels["eks.amazonaws.com/nodegroup"], []).append(node)
    assert {group: len(members) for group, members in by_group.items()} == {"ng-1": 3, "ng-2": 1}
    assert by_group["ng-2"][0].metadata.labels["node.kubernetes.io/instance-type"] == "t3.large"
    # ng-2 is in eksctl's public subnets (MapPublicIpOnLaunch: pkg/cfn/builder/vpc_ipv4.go l.315 at v0.225.0), so its
    # instance has a public IP; the rules open exactly that /32 (the ng-1 nodes are private and get none).
    (public_ip,) = node_instances(platform, "ng-2").values()
    assert public_ip and set(node_instances(platform, "ng-1").values()) == {None}
    assert access_rules(platform)[0] == opened_for(f"{public_ip}/32")
    opened = grown.task("Allow ICMP and TCP 30000-32767 from node_public_ips", HOST)
    assert opened["changed"] and opened["added"] == [f"icmp from {public_ip}/32", f"tcp 30000-32767 from {public_ip}/32"]


def test_user_cidrs_replace_the_node_rules_and_back(platform, created, run_playbook):
    """The role in check mode plans the rules from the nodes it reads; then the module alone: check mode plans
    without changing, cidrs replace the nodes' rules (and only ours), the nodes' public IPs come back, and the same
    call again changes nothing."""
    (public_ip,) = node_instances(platform, "ng-2").values()
    instance_ids = sorted(node_instances(platform))
    _owned, group = access_rules(platform)
    role_plan = run_role(platform, run_playbook, check=True, eks_cluster_open_nodeport_icmp=True,
                         eks_cluster_nodeport_icmp_source="cidrs", eks_cluster_nodeport_icmp_cidrs=["203.0.113.0/24"],
                         eks_cluster_nodegroups=[nodegroup("ng-1", 3, min_size=2, max_size=3),
                                                 {"name": "ng-2", "instance_type": "t3.large", "min_size": 1,
                                                  "private_networking": False}])
    assert role_plan.rc == 0, role_plan.failure_message(HOST)
    planned_rules = role_plan.task("Allow ICMP and TCP 30000-32767 from cidrs", HOST)
    assert planned_rules["changed"] and planned_rules["added"] == ["icmp from 203.0.113.0/24",
                                                                   "tcp 30000-32767 from 203.0.113.0/24"]
    assert access_rules(platform) == (opened_for(f"{public_ip}/32"), group)  # nothing changed in check mode
    planned = run_access(platform, run_playbook, check=True, source="cidrs", cidrs=["203.0.113.0/24"])
    assert planned.rc == 0, planned.failure_message(HOST)
    plan = planned.task("access", HOST)
    assert plan["changed"] and plan["removed"] == [f"icmp from {public_ip}/32", f"tcp 30000-32767 from {public_ip}/32"]
    assert plan["diff"]["after"] == "icmp from 203.0.113.0/24\ntcp 30000-32767 from 203.0.113.0/24\n"
    assert access_rules(platform) == (opened_for(f"{public_ip}/32"), group)  # nothing changed in check mode
    mine = run_access(platform, run_playbook, source="cidrs", cidrs=["203.0.113.0/24"])
    assert mine.rc == 0 and mine.task("access", HOST)["changed"], mine.failure_message(HOST)
    assert access_rules(platform)[0] == opened_for("203.0.113.0/24")
    back = run_access(platform, run_playbook, instance_ids=instance_ids)
    assert back.rc == 0 and back.task("access", HOST)["removed"] == ["icmp from 203.0.113.0/24",
                                                                     "tcp 30000-32767 from 203.0.113.0/24"]
    assert access_rules(platform)[0] == opened_for(f"{public_ip}/32")
    again = run_access(platform, run_playbook, instance_ids=instance_ids)
    assert again.rc == 0 and again.task("access", HOST)["changed"] is False, again.failure_message(HOST)


def test_a_nodegroup_removed_from_the_config_is_deleted_as_the_module_says(platform, created, run_playbook):
    shrunk = run_role(platform, run_playbook, eks_cluster_nodegroups=[nodegroup("ng-1", 3, min_size=2, max_size=3)])
    plan = shrunk.task("Plan the changes (read-only; the whole run in check mode)", HOST)
    (drift,) = [d for d in plan["drift"] if d["field"] == "nodegroups"]
    command = f"eksctl delete nodegroup --cluster {NAME} --name ng-2"
    assert command in drift["reason"]  # the module never deletes a node group itself
    assert shrunk.rc != 0  # the role's verify: the cluster does not match eks_cluster_nodegroups, and it says what to do
    assert f"eksctl delete nodegroup --cluster {NAME} --region {REGION} --name ng-2 --wait" in shrunk.failure_message(HOST)
    deleted = eksctl(platform, *command.split()[1:], "--region", REGION, "--wait")
    assert deleted.returncode == 0, deleted.stdout + deleted.stderr
    assert f"eksctl-{NAME}-nodegroup-ng-2" not in live_stacks(platform)
    kube.wait_for(lambda: len(cluster_nodes(platform)) == 3, "ng-2's node gone", timeout=30)
    # ng-2's node (the one public node) is gone: the next run removes its rules, and only that changes.
    clean = run_role(platform, run_playbook, eks_cluster_open_nodeport_icmp=True,
                     eks_cluster_nodegroups=[nodegroup("ng-1", 3, min_size=2, max_size=3)])
    assert clean.rc == 0 and clean.changed(HOST) == 1, (clean.stats, clean.failure_message(HOST))
    closed = clean.task("Allow ICMP and TCP 30000-32767 from node_public_ips", HOST)
    assert closed["changed"] and closed["added"] == [] and len(closed["removed"]) == 2
    assert access_rules(platform)[0] == set()
    assert clean.task("Show the security group rules (the nodes have no public IPs in private subnets, so nothing "
                      "is opened there)", HOST)["msg"].startswith("the nodes have no public IPs")


def test_a_failing_nodegroup_stack_is_reported_and_left_for_the_user(platform, created, run_playbook):
    stack = f"eksctl-{NAME}-nodegroup-ng-bad"
    reason = "Nodegroup ng-bad failed to stabilize: [{Code: NodeCreationFailure,Message: Instances failed to join"
    aws.fail_stack(platform["endpoint"], stack, "ManagedNodeGroup", reason)  # the sandbox's knob
    groups = [nodegroup("ng-1", 3, min_size=2, max_size=3), nodegroup("ng-bad", 1)]
    failed = run_role(platform, run_playbook, eks_cluster_nodegroups=groups)
    assert failed.rc != 0
    message = failed.failure_message(HOST)
    assert "ng-bad" in message and stack in message, message
    assert reason in message, message  # the stack's CREATE_FAILED event: eksctl 0.225 prints only "waiter ... Failure"
    assert live_stacks(platform)[stack] == "ROLLBACK_COMPLETE"
    assert "ng-bad" not in aws_client(platform["endpoint"], "eks").list_nodegroups(clusterName=NAME)["nodegroups"]
    # What the message says the user does: eksctl 0.225 creates its stacks with termination protection, which
    # must be lifted before the stack can go (CloudFormation user guide, "Protect a stack from being deleted").
    where = f"--region {REGION} --stack-name {stack}"
    assert f"aws cloudformation update-termination-protection {where} --no-enable-termination-protection ; " \
           f"aws cloudformation delete-stack {where}" in message, message
    blocked = run_role(platform, run_playbook, eks_cluster_nodegroups=groups)  # run again before following it
    assert blocked.rc != 0
    message = blocked.failure_message(HOST)
    assert "left CloudFormation stack(s) behind that block eksctl" in message and stack in message, message
    assert live_stacks(platform)[stack] == "ROLLBACK_COMPLETE"  # nothing deleted
    cfn = aws_client(platform["endpoint"], "cloudformation")
    cfn.update_termination_protection(StackName=stack, EnableTerminationProtection=False)
    cfn.delete_stack(StackName=stack)
    resumed = run_role(platform, run_playbook, eks_cluster_nodegroups=groups)
    assert resumed.rc == 0, resumed.failure_message(HOST)
    assert live_stacks(platform)[stack] == "CREATE_COMPLETE"


def test_delete_in_check_mode_runs_no_eksctl_and_deletes_nothing(platform, created, run_playbook):
    stacks = live_stacks(platform)
    planned = run_module(platform, run_playbook, check=True, state="absent")
    assert planned.rc == 0, planned.failure_message(HOST)
    result = planned.task("eksctl_cluster", HOST)
    assert result["changed"] is True and result["actions"] == [{"action": "delete_cluster"}]
    assert result["commands"] == []  # eksctl was not run
    assert NAME in clusters(platform) and live_stacks(platform) == stacks


def test_delete_refuses_a_cluster_without_the_ownership_tag_unless_forced(platform, created, run_playbook):
    """A cluster this collection did not create, as the module tells it: without the tag the create puts on.
    Here the shared cluster with its tag taken off (and put back after)."""
    eks = aws_client(platform["endpoint"], "eks")
    arn = eks.describe_cluster(name=NAME)["cluster"]["arn"]
    stacks = live_stacks(platform)
    eks.untag_resource(resourceArn=arn, tagKeys=[aws.OWNERSHIP_TAG[0]])
    try:
        refused = run_module(platform, run_playbook, state="absent")
        assert refused.rc != 0
        message = refused.task("eksctl_cluster", HOST)["msg"]
        assert "does not carry the tag cloudnet.cilium_eks/managed=true" in message and "force: true" in message
        assert NAME in clusters(platform) and live_stacks(platform) == stacks
        forced = run_module(platform, run_playbook, check=True, state="absent", force=True)
        assert forced.rc == 0, forced.failure_message(HOST)
        assert forced.task("eksctl_cluster", HOST)["actions"] == [{"action": "delete_cluster"}]
    finally:
        eks.tag_resource(resourceArn=arn, tags=dict([aws.OWNERSHIP_TAG]))
    assert NAME in clusters(platform) and live_stacks(platform) == stacks


def test_a_failed_delete_says_why_and_the_next_run_finishes_it(platform, created, run_playbook):
    stack = f"eksctl-{NAME}-cluster"
    reason = "The vpc 'vpc-0abc' has dependencies and cannot be deleted."
    aws.fail_stack(platform["endpoint"], stack, "VPC", reason, operation="delete")  # the sandbox's knob
    failed = run_module(platform, run_playbook, state="absent")
    assert failed.rc != 0
    result = failed.task("eksctl_cluster", HOST)
    assert result["error_type"] == "DeleteFailedError", result["msg"]
    assert f"eksctl failed to delete EKS cluster {NAME} in {REGION}" in result["msg"]
    assert f"{stack} AWS::EC2::VPC/VPC: DELETE_FAILED - {reason}" in result["msg"]
    assert "the delete resumes from what is left" in result["msg"]
    assert live_stacks(platform) == {stack: "DELETE_FAILED"}
    assert result["delete_commands"] == [f"eksctl delete cluster --region {REGION} --name {NAME} --wait"]


def test_delete_leaves_nothing_behind(platform, created, run_playbook):
    deleted = run_module(platform, run_playbook, state="absent")
    assert deleted.rc == 0, deleted.failure_message(HOST)
    assert deleted.task("eksctl_cluster", HOST)["changed"] is True
    assert clusters(platform) == []
    assert live_stacks(platform) == {}
    ec2 = aws_client(platform["endpoint"], "ec2")
    assert [v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"] if not v["IsDefault"]] == []
    assert ec2.describe_addresses()["Addresses"] == []
    running = ec2.describe_instances(Filters=[{"Name": "instance-state-name", "Values": ["pending", "running"]}])
    assert running["Reservations"] == []
    kube.wait_for(lambda: cluster_nodes(platform) == [], "the cluster's nodes gone", timeout=30)
    gone = run_module(platform, run_playbook, state="absent")
    assert gone.rc == 0 and gone.task("eksctl_cluster", HOST)["changed"] is False


def test_a_failing_control_plane_stack_is_rolled_back_and_reported(platform, run_playbook):
    """A second, short-lived cluster whose cluster stack fails: eksctl polls it after 30 s, finds it
    ROLLBACK_COMPLETE and prints the CREATE_FAILED events (eksctl pkg/cfn/manager/waiters.go)."""
    name = "real-bad"
    reason = "Resource handler returned message: \"Cannot create cluster: subnets are in an unsupported AZ\""
    aws.fail_stack(platform["endpoint"], f"eksctl-{name}-cluster", "ControlPlane", reason)
    failed = run_module(platform, run_playbook, name=name, version="1.34",
                        kubeconfig=str(platform["work"] / "bad.kubeconfig"), nodegroups=[nodegroup("ng-1", 1)])
    assert failed.rc != 0
    result = failed.task("eksctl_cluster", HOST)
    assert f"eksctl failed to create cluster for EKS cluster {name}" in result["msg"]
    assert "AWS::EKS::Cluster/ControlPlane: CREATE_FAILED" in json.dumps(result)
    stack = f"eksctl-{name}-cluster"
    assert live_stacks(platform, name) == {stack: "ROLLBACK_COMPLETE"}
    assert name not in clusters(platform)
    # No EKS cluster: `eksctl delete cluster` would refuse (tests/recordings/eksctl/delete_cluster_rolled_back_0.225),
    # so the advice is CloudFormation's, termination protection first; state=absent says the same.
    where = f"--region {REGION} --stack-name {stack}"
    advice = [f"aws cloudformation update-termination-protection {where} --no-enable-termination-protection",
              f"aws cloudformation delete-stack {where}"]
    assert result["delete_commands"] == advice
    absent = run_module(platform, run_playbook, name=name, state="absent")
    assert absent.rc != 0
    refused = absent.task("eksctl_cluster", HOST)
    assert refused["error_type"] == "DeleteFailedError" and refused["delete_commands"] == advice
    cfn = aws_client(platform["endpoint"], "cloudformation")
    cfn.update_termination_protection(StackName=stack, EnableTerminationProtection=False)
    cfn.delete_stack(StackName=stack)
    gone = run_module(platform, run_playbook, name=name, state="absent")
    assert gone.rc == 0 and gone.task("eksctl_cluster", HOST)["changed"] is False
    assert live_stacks(platform, name) == {}
