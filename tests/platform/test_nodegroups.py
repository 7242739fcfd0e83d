"""eks_sandbox.nodegroups: what the node group reconciler decides, from node groups and Nodes (pure parts).

The reconciler itself runs in the sandbox's EKS proxy; tests/integration/test_real_eksctl.py sees it
follow the real eksctl's create, scale and delete.
"""
from eks_sandbox import nodegroups

NG1, NG2 = ("us-east-1", "c1", "ng-1"), ("us-east-1", "c1", "ng-2")


def test_missing_nodes_are_launched_per_node_group():
    assert nodegroups.plan({NG1: 3, NG2: 1}, {NG1: ["a"]}) == {"launch": {NG1: 2, NG2: 1}, "remove": []}


def test_scale_down_removes_the_newest_nodes_first():
    assert nodegroups.plan({NG1: 1}, {NG1: ["old", "mid", "new"]}) == {"launch": {}, "remove": ["new", "mid"]}


def test_nodes_of_node_groups_that_are_gone_are_removed():
    assert nodegroups.plan({NG1: 1}, {NG1: ["a"], NG2: ["b", "c"]}) == {"launch": {}, "remove": ["c", "b"]}
    assert nodegroups.plan({}, {}) == {"launch": {}, "remove": []}


def test_taints_and_kubelet_follow_eks():
    group = {"taints": [{"key": "node.cilium.io/agent-not-ready", "value": "true", "effect": "NO_EXECUTE"},
                        {"key": "dedicated", "effect": "PREFER_NO_SCHEDULE"}]}
    assert nodegroups.kube_taints(group) == [
        {"key": "node.cilium.io/agent-not-ready", "value": "true", "effect": "NoExecute"},
        {"key": "dedicated", "effect": "PreferNoSchedule"}]
    assert nodegroups.kubelet_version("1.34").startswith("v1.34.")
