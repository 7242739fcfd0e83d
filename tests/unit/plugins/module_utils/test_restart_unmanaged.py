# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""restart_unmanaged: one read of the cluster, a restartedAt patch per workload, and a wait for the rollouts.

The rule itself (which pods are unmanaged) is tested through the filter, tests/unit/plugins/filter."""

from __future__ import annotations

import pytest

from ansible_collections.cloudnet.cilium_eks.plugins.module_utils import cilium_status as cs
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils import cilium_unmanaged as cu
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.waiter import Waiter


def agent(node):
    return {"metadata": {"name": "cilium-" + node, "namespace": "kube-system", "labels": {"k8s-app": "cilium"}},
            "spec": {"nodeName": node, "hostNetwork": True},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}


def coredns(name):
    return {"metadata": {"name": name, "namespace": "kube-system",
                         "ownerReferences": [{"kind": "ReplicaSet", "name": "coredns-5d", "controller": True}]},
            "spec": {"nodeName": "n1"}, "status": {"phase": "Running"}}


def deployment(rolled_out):
    ready = 2 if rolled_out else 1
    return {"metadata": {"generation": 2}, "spec": {"replicas": 2},
            "status": {"observedGeneration": 2, "replicas": 2, "readyReplicas": ready, "updatedReplicas": 2,
                       "availableReplicas": ready}}


class FakeK8s:
    """The few K8sService calls restart_unmanaged makes; the Deployment rolls out after ``rollout_after`` reads."""

    def __init__(self, endpoints=(), rollout_after=1):
        self.objects = {"Pod": [agent("n1"), coredns("coredns-5d-a")], "CiliumEndpoint": list(endpoints),
                        "ReplicaSet": [{"metadata": {"name": "coredns-5d", "namespace": "kube-system",
                                                     "ownerReferences": [{"kind": "Deployment", "name": "coredns",
                                                                          "controller": True}]}}]}
        self.patches, self.reads, self.rollout_after = [], 0, rollout_after

    def list(self, kind, namespace=None):
        return self.objects[kind]

    def patch(self, kind, name, body, namespace=None):
        self.patches.append((kind, namespace, name, body))

    def get(self, kind, name, namespace=None):
        self.reads += 1
        return deployment(self.reads > self.rollout_after)

    def server_version(self):  # K8sService's, for cilium_status's report
        return "v1.34.4"


def fake_waiter(timeout, interval=0.5):
    clock = {"now": 0.0}
    return Waiter(timeout, interval, clock=lambda: clock["now"], sleep=lambda s: clock.update(now=clock["now"] + s))


def test_an_unmanaged_workload_is_restarted_and_waited_for():
    k8s = FakeK8s()
    result = cu.restart_unmanaged(k8s, waiter=fake_waiter)
    assert result == {"changed": True, "restarted": [{"kind": "Deployment", "namespace": "kube-system",
                                                      "name": "coredns"}], "bare_pods": []}
    (kind, namespace, name, body), = k8s.patches
    assert (kind, namespace, name) == ("Deployment", "kube-system", "coredns")
    assert cu.RESTARTED_AT in body["spec"]["template"]["metadata"]["annotations"]
    assert k8s.reads == 2  # not rolled out, then rolled out


def test_managed_pods_and_check_mode_change_nothing():
    managed = FakeK8s(endpoints=[{"metadata": {"name": "coredns-5d-a", "namespace": "kube-system"}}])
    assert cu.restart_unmanaged(managed, waiter=fake_waiter)["changed"] is False and managed.patches == []
    planned = FakeK8s()
    assert cu.restart_unmanaged(planned, check_mode=True, waiter=fake_waiter)["changed"] is True
    assert planned.patches == []


class FlappingAgent(FakeK8s):
    """The agent pod of n1 is not Ready for the first ``not_ready_lists`` reads of the pods (a missed probe)."""

    def __init__(self, not_ready_lists):
        super().__init__()
        self.not_ready_lists = not_ready_lists

    def list(self, kind, namespace=None):
        if kind != "Pod":
            return super().list(kind)
        self.not_ready_lists -= 1
        ready = "False" if self.not_ready_lists >= 0 else "True"
        pods = super().list(kind)
        pods[0]["status"]["conditions"] = [{"type": "Ready", "status": ready}]
        return pods


def test_an_agent_not_ready_for_a_moment_does_not_hide_its_nodes_pods():
    k8s = FlappingAgent(not_ready_lists=3)
    result = cu.restart_unmanaged(k8s, waiter=fake_waiter)
    assert result["restarted"] == [{"kind": "Deployment", "namespace": "kube-system", "name": "coredns"}]
    assert k8s.not_ready_lists == -1  # four reads of the pods: the one with the agent Ready serves the restart too
    # an agent that stays not Ready: the restart goes on after the grace period with what it finds (nothing here)
    stuck = FlappingAgent(not_ready_lists=10 ** 6)
    assert cu.restart_unmanaged(stuck, waiter=fake_waiter)["restarted"] == []


def test_a_rollout_that_does_not_finish_names_the_workload():
    k8s = FakeK8s(rollout_after=10 ** 6)
    with pytest.raises(cu.RestartTimeoutError) as caught:
        cu.restart_unmanaged(k8s, timeout=3, waiter=fake_waiter)
    assert "not rolled out after 3s: Deployment kube-system/coredns" in caught.value.msg


class HealthyChecker(cs.CiliumStatusChecker):
    def wait(self, timeout, wait=True, interval=cs.POLL_INTERVAL):
        return {"healthy": True}


def test_the_status_step_finds_the_unmanaged_pods_only_when_asked():
    checker = HealthyChecker(FakeK8s())
    found = cs.status_result(checker, {"timeout": 1, "wait": True, "unmanaged_pods": True})
    assert found["unmanaged"] == {"restart": [{"kind": "Deployment", "namespace": "kube-system", "name": "coredns"}],
                                  "bare_pods": []}
    assert cs.status_result(checker, {"timeout": 1, "wait": True, "unmanaged_pods": False}) == {
        "changed": False, "status": {"healthy": True, "kubernetes_version": "v1.34.4"}}
