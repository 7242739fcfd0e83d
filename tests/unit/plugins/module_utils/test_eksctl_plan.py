# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""module_utils/eksctl_plan.py: what eksctl has to do, and the drift it cannot fix."""

from __future__ import annotations

from ansible_collections.cloudnet.cilium_eks.plugins.module_utils import eksctl_config, eksctl_plan

BLOG_PARAMS = {"name": "basic-cilium", "region": "us-east-1", "version": "1.27",
               "nodegroups": [{"name": "ng-1", "instance_type": "t3.medium",
                               "taints": [dict(eksctl_config.CILIUM_TAINT)]}]}


# ------------------------------------------------------------------------------------------ planning

def _cluster(version="1.33", tags=None, status="ACTIVE"):
    return {"name": "basic-cilium", "version": version, "status": status, "endpoint": "https://x", "arn": "arn:x",
            "tags": dict({"cloudnet.cilium_eks/managed": "true"}, **(tags or {}))}


def _nodegroup(name="ng-1", desired=2, low=2, high=2, instance="t3.medium", taints=None, labels=None):
    return {"nodegroupName": name, "status": "ACTIVE", "instanceTypes": [instance],
            "scalingConfig": {"minSize": low, "maxSize": high, "desiredSize": desired},
            "labels": dict({"alpha.eksctl_plan.io/cluster-name": "basic-cilium",
                            "alpha.eksctl_plan.io/nodegroup-name": name}, **(labels or {})),
            "taints": taints if taints is not None else [{"key": "node.cilium.io/agent-not-ready",
                                                          "value": "true", "effect": "NO_EXECUTE"}],
            "amiType": "AL2023_x86_64_STANDARD", "diskSize": 20, "launchTemplate": {"name": "lt"},
            "version": "1.33"}


def _desired(**nodegroup):
    ng = dict({"name": "ng-1", "instance_type": "t3.medium", "desired_size": 2,
               "taints": [dict(eksctl_config.CILIUM_TAINT)]}, **nodegroup)
    params = dict(BLOG_PARAMS, version="1.33", nodegroups=[ng])
    return eksctl_plan.desired_from_config(eksctl_config.render_config(params))


def _observed(cluster=None, nodegroups=None):
    nodegroups = nodegroups if nodegroups is not None else [_nodegroup()]
    return eksctl_plan.observed_from_aws(cluster or _cluster(), {ng["nodegroupName"]: ng for ng in nodegroups})


def test_plan_creates_a_missing_cluster():
    assert eksctl_plan.plan(_desired(), None) == {"actions": [{"action": "create_cluster"}], "drift": []}


def test_plan_is_empty_when_everything_matches():
    assert eksctl_plan.plan(_desired(), _observed()) == {"actions": [], "drift": []}


def test_plan_scales_and_keeps_sizes_not_asked_for():
    result = eksctl_plan.plan(_desired(desired_size=4, max_size=5), _observed(nodegroups=[_nodegroup(low=1, high=3)]))
    assert result["actions"] == [{"action": "scale_nodegroup", "nodegroup": "ng-1", "desired_size": 4,
                                  "min_size": 1, "max_size": 5,
                                  "from": {"desired_size": 2, "min_size": 1, "max_size": 3}}]
    assert result["drift"] == []


def test_plan_adds_a_new_nodegroup_and_reports_an_unknown_one():
    desired = eksctl_plan.desired_from_config(eksctl_config.render_config(dict(
        BLOG_PARAMS, nodegroups=BLOG_PARAMS["nodegroups"] + [{"name": "ng-2"}])))
    result = eksctl_plan.plan(desired, _observed(cluster=_cluster(version="1.27"),
                                                 nodegroups=[_nodegroup(), _nodegroup("old")]))
    assert {"action": "create_nodegroup", "nodegroup": "ng-2"} in result["actions"]
    assert [d["actual"] for d in result["drift"] if d["field"] == "nodegroups"] == ["old"]
    assert "never deletes node groups" in result["drift"][-1]["reason"]


def _never_asked():
    raise AssertionError("the CNI must not be looked for here")


def test_node_groups_of_a_bare_cluster_wait_for_the_cni():
    desired = _desired()
    created = [{"action": "create_cluster"}]
    assert eksctl_plan.defer_nodegroups(created, desired, True, _never_asked) == (created, ["ng-1"])
    missing = eksctl_plan.plan(desired, _observed(nodegroups=[]))["actions"]
    assert missing == [{"action": "create_nodegroup", "nodegroup": "ng-1"}]
    assert eksctl_plan.defer_nodegroups(missing, desired, True, lambda: False) == ([], ["ng-1"])
    assert eksctl_plan.defer_nodegroups(missing, desired, True, lambda: True) == (missing, [])


def test_node_groups_of_a_cluster_with_a_cni_are_never_deferred():
    desired = _desired()
    missing = [{"action": "create_nodegroup", "nodegroup": "ng-1"}]
    assert eksctl_plan.defer_nodegroups(missing, desired, False, _never_asked) == (missing, [])
    assert eksctl_plan.defer_nodegroups([{"action": "create_cluster"}], desired, False, _never_asked) == (
        [{"action": "create_cluster"}], [])
    scale = [{"action": "scale_nodegroup", "nodegroup": "ng-1"}]
    assert eksctl_plan.defer_nodegroups(scale, desired, True, _never_asked) == (scale, [])


def test_plan_upgrades_only_when_allowed_and_one_minor_at_a_time():
    observed = _observed(cluster=_cluster(version="1.32"))
    refused = eksctl_plan.plan(_desired(), observed)
    assert refused["actions"] == []
    assert refused["drift"][0]["field"] == "version" and "allow_upgrade" in refused["drift"][0]["reason"]
    allowed = eksctl_plan.plan(_desired(), observed, allow_upgrade=True)
    assert allowed["actions"] == [{"action": "upgrade_cluster", "from": "1.32", "to": "1.33"}]
    assert allowed["drift"] == []
    two_steps = eksctl_plan.plan(_desired(), _observed(cluster=_cluster(version="1.31")), allow_upgrade=True)
    assert two_steps["actions"] == [{"action": "upgrade_cluster", "from": "1.31", "to": "1.32"}]
    assert "one minor version at a time" in two_steps["drift"][0]["reason"]


def test_plan_reports_what_eksctl_cannot_change():
    observed = _observed(cluster=_cluster(version="1.34"),
                         nodegroups=[_nodegroup(instance="t3.large", taints=[], labels={"role": "x"})])
    desired = _desired(labels={"role": "worker"})
    desired["tags"]["team"] = "net"
    drift = {(d["field"], d["nodegroup"]): d for d in eksctl_plan.plan(desired, observed)["drift"]}
    assert drift[("version", None)]["reason"] == "EKS cannot downgrade a cluster"
    assert drift[("instance_type", "ng-1")]["actual"] == "t3.large"
    assert drift[("labels.role", "ng-1")]["desired"] == "worker"
    assert drift[("taints", "ng-1")]["actual"] == []
    assert drift[("tags.team", None)]["actual"] is None
    # What is set at creation only is said so; a refused downgrade is real drift.
    assert {key for key, d in drift.items() if d["creation_only"]} == {
        ("instance_type", "ng-1"), ("labels.role", "ng-1"), ("taints", "ng-1"), ("tags.team", None)}
    assert drift[("tags.team", None)]["reason"].startswith("set when the cluster is created")


def test_observed_volume_size_is_unknown_with_a_launch_template():
    ng = _nodegroup()
    assert eksctl_plan.observed_from_aws(_cluster(), {"ng-1": ng})["nodegroups"]["ng-1"]["volume_size"] is None
    del ng["launchTemplate"]
    assert eksctl_plan.observed_from_aws(_cluster(), {"ng-1": ng})["nodegroups"]["ng-1"]["volume_size"] == 20
