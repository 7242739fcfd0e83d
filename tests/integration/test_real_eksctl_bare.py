"""site.yml with ``cilium_eks_cluster_cni=none`` from nothing, with the real eksctl: node groups after Cilium.

The real eksctl v0.225.0 refuses managed node groups when it creates a cluster without a CNI (validateBareCluster,
pkg/ctl/cmdutils/configfile.go l.489-503) and ``create nodegroup`` waits for Ready nodes (pkg/eks/client.go l.178),
so eksctl_cluster creates the control plane alone (CoreDNS and kube-proxy kept as EKS add-ons), site.yml installs
Cilium on a cluster with no node, then creates the node groups and waits for Cilium on them; a second run changes
nothing. On the sandbox kwok nodes are Ready without a CNI, so what this proves is the order, the deferral and the
ClusterConfigs the real eksctl accepts, not that a node without a CNI stays NotReady (real EKS only).
One real ``create cluster`` (about 155 s of eksctl's own waits) for the whole file.
"""
from pathlib import Path

import boto3
import pytest
import yaml

from eks_sandbox import aws, kube

REPO = Path(__file__).resolve().parents[2]
SANDBOX = "real-eksctl-bare"
REGION = "us-east-1"
NAME = "bare-cni"
PLAN = "Plan the changes (read-only; the whole run in check mode)"
EKSCTL_RESULT = "Collect the result of eksctl"
HELM = "Helm install or upgrade of the Cilium release"  # its name ends with the mode


@pytest.fixture(scope="module")
def platform(sandbox_factory, tmp_path_factory):
    """An empty sandbox (no EKS cluster: the real eksctl makes it) and an inventory with inventories/sandbox's
    group_vars, asking for a cluster without the VPC CNI."""
    box = sandbox_factory(SANDBOX, seed=False)
    work = tmp_path_factory.mktemp("bare")
    inventory = work / "inventory"
    inventory.mkdir()
    (inventory / "group_vars").symlink_to(REPO / "inventories" / "sandbox" / "group_vars")
    (inventory / "hosts.yml").write_text(yaml.safe_dump({"eks_clusters": {"hosts": {NAME: {
        "eks_cluster_name": NAME, "eks_cluster_region": REGION}}}}))
    extra_vars = {"cilium_eks_kubeconfig": str(work / "kubeconfig"), "cilium_eks_report_dir": str(work / "reports"),
                  "cilium_eks_cluster_cni": "none", "cilium_eks_bandwidth_manager": False,
                  "eks_cluster_poll_interval": 5, "eks_cluster_node_wait_timeout": 180}
    return {"box": box, "env": box.env, "inventory": inventory, "vars": extra_vars}


def site(run_playbook, platform):
    return run_playbook(REPO / "playbooks" / "site.yml", platform["inventory"], platform["env"],
                        extra_vars=platform["vars"], timeout=1500)


def eks(platform):
    return boto3.session.Session(region_name=REGION, **{k.lower(): v for k, v in aws.DUMMY_CREDENTIALS.items()}) \
        .client("eks", endpoint_url=platform["box"].aws_env["AWS_ENDPOINT_URL"])


def task_index(result, prefix):
    """Position in the run of each task whose name (without a role prefix) starts with ``prefix``."""
    return [i for i, task in enumerate(result.task_names()) if task.split(" : ")[-1].startswith(prefix)]


def results_of(result, prefix):
    """``NAME``'s results of every task whose name (without a role prefix) starts with ``prefix``, in order."""
    return [task["hosts"][NAME] for play in result.report.get("plays", []) for task in play["tasks"]
            if task["task"]["name"].split(" : ")[-1].startswith(prefix) and NAME in task["hosts"]]


@pytest.fixture(scope="module")
def first(platform, run_playbook):
    result = site(run_playbook, platform)
    assert result.rc == 0, result.failure_message(NAME) or result
    return result


def test_the_cluster_is_created_without_node_groups_and_they_come_after_cilium(first):
    plans = [hosts[NAME] for hosts in first.task_results(PLAN)]
    assert [[a["action"] for a in p["actions"]] for p in plans] == [["create_cluster"], ["create_nodegroup"]]
    assert plans[0]["deferred_nodegroups"] == ["ng-1"] and plans[1]["deferred_nodegroups"] == []
    created, grown = [hosts[NAME] for hosts in first.task_results(EKSCTL_RESULT)]
    create_argv = created["commands"][0]["argv"]
    assert create_argv[1:3] == ["create", "cluster"] and created["deferred_nodegroups"] == ["ng-1"]
    assert created["nodegroups"] == []
    assert grown["commands"][0]["argv"][1:5] == ["create", "nodegroup", "--include", "ng-1"]
    assert [ng["name"] for ng in grown["nodegroups"]] == ["ng-1"]
    # eks_cluster (no node group), Cilium (helm install), eks_cluster again (ng-1), Cilium again (nothing to install)
    first_eksctl, second_eksctl = task_index(first, EKSCTL_RESULT)
    installed, again = task_index(first, HELM)
    assert first_eksctl < installed < second_eksctl < again
    assert [r.get("changed", False) for r in results_of(first, HELM)] == [True, False]


def test_cilium_is_installed_without_waiting_on_a_cluster_with_no_node_and_waited_for_once_it_has_them(first):
    # cilium_eni reads the nodes (its egress check) and hands them to cilium_install, which does not read them again
    counts = [len(counted["resources"]) for counted in results_of(first, "Read the nodes' addresses")]
    assert counts == [0, 2]
    assert all(count.get("skipped") for count in results_of(first, "Count the cluster's nodes"))
    waits = results_of(first, "Wait for Cilium to be healthy on every node and configured as installed")
    assert [w.get("skipped", False) for w in waits] == [True, False]
    assert waits[1]["status"]["healthy"] is True and len(waits[1]["status"]["nodes"]) == 2


def test_coredns_and_kube_proxy_are_kept_and_the_vpc_cni_is_not_there(platform, first):
    assert sorted(eks(platform).list_addons(clusterName=NAME)["addons"]) == ["coredns", "kube-proxy"]
    api = kube.dynamic_client(platform["box"].kubeconfig)
    daemonsets = api.resources.get(api_version="apps/v1", kind="DaemonSet").get(namespace="kube-system")
    names = {ds.metadata.name for ds in daemonsets.items}
    assert {"kube-proxy", "cilium"} <= names and "aws-node" not in names
    assert kube.daemonset_rolled_out(api, "kube-system", "kube-proxy")
    kube.wait_for(lambda: kube.deployment_rolled_out(api, "kube-system", "coredns"), "coredns on the new nodes",
                  timeout=120)


def test_the_nodes_of_the_deferred_node_group_are_there_tainted_for_cilium(platform, first):
    nodes = kube.core_v1(platform["box"].kubeconfig).list_node(
        label_selector=f"alpha.eksctl.io/cluster-name={NAME}").items
    assert len(nodes) == 2
    assert eks(platform).describe_nodegroup(clusterName=NAME, nodegroupName="ng-1")["nodegroup"]["taints"] == [
        {"key": "node.cilium.io/agent-not-ready", "value": "true", "effect": "NO_EXECUTE"}]


def test_a_second_run_changes_nothing(platform, first, run_playbook):
    second = site(run_playbook, platform)
    assert second.rc == 0, second.failure_message(NAME) or second
    assert second.changed(NAME) == 0, second.task_names()
    (plan,) = [hosts[NAME] for hosts in second.task_results(PLAN)]
    assert plan["actions"] == [] and plan["deferred_nodegroups"] == []
