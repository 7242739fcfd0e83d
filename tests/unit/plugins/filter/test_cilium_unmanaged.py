# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.cloudnet.cilium_eks.plugins.filter.cilium_unmanaged import FilterModule, unmanaged_workloads

AGENT_READY = "2026-01-01T10:00:00Z"


def agent(node, ready=AGENT_READY):
    conditions = [{"type": "Ready", "status": "True", "lastTransitionTime": ready}] if ready else []
    return {"metadata": {"name": "cilium-" + node, "namespace": "kube-system", "labels": {"k8s-app": "cilium"}},
            "spec": {"nodeName": node, "hostNetwork": True}, "status": {"conditions": conditions}}


def pod(name, node="n1", started="2026-01-01T09:00:00Z", owner=("ReplicaSet", "coredns-5d"), host_network=False,
        phase="Running", namespace="kube-system", labels=None):
    meta = {"name": name, "namespace": namespace, "labels": labels or {}}
    if owner:
        meta["ownerReferences"] = [{"kind": owner[0], "name": owner[1], "controller": True}]
    return {"metadata": meta, "spec": {"nodeName": node, "hostNetwork": host_network},
            "status": {"phase": phase, "startTime": started}}


def cep(name, namespace="kube-system"):
    return {"apiVersion": "cilium.io/v2", "kind": "CiliumEndpoint", "metadata": {"name": name, "namespace": namespace},
            "status": {"state": "ready"}}


REPLICASETS = [{"metadata": {"name": "coredns-5d", "namespace": "kube-system",
                             "ownerReferences": [{"kind": "Deployment", "name": "coredns", "controller": True}]}}]


def test_pods_without_a_cilium_endpoint_are_restarted_through_their_workload():
    pods = [pod("coredns-5d-a"), pod("coredns-5d-b"), pod("ds-x", owner=("DaemonSet", "ds")),
            pod("sts-0", owner=("StatefulSet", "db"), namespace="default"),
            pod("pending", owner=("DaemonSet", "ds2"), phase="Pending")]
    got = unmanaged_workloads(pods, [agent("n1")], [], REPLICASETS)
    assert got["restart"] == [
        {"kind": "DaemonSet", "namespace": "kube-system", "name": "ds"},
        {"kind": "DaemonSet", "namespace": "kube-system", "name": "ds2"},
        {"kind": "Deployment", "namespace": "kube-system", "name": "coredns"},
        {"kind": "StatefulSet", "namespace": "default", "name": "db"},
    ]
    assert got["bare_pods"] == []


def test_agent_restarted_after_the_pod_started_and_endpoint_exists_is_not_restarted():
    # bandwidth_manager restarts ds/cilium: the agent is Ready again long after coredns started, but coredns
    # got its network from Cilium (it has a CiliumEndpoint), so it is managed.
    pods = [pod("coredns-5d-a", started="2026-01-01T09:00:00Z"), pod("coredns-5d-b", started="2026-01-01T09:00:00Z")]
    got = unmanaged_workloads(pods, [agent("n1", ready="2026-01-01T11:00:00Z")],
                              [cep("coredns-5d-a"), cep("coredns-5d-b")], REPLICASETS)
    assert got == {"restart": [], "bare_pods": []}


def test_one_pod_without_endpoint_is_enough_to_restart_its_workload():
    got = unmanaged_workloads([pod("coredns-5d-a"), pod("coredns-5d-b")], [agent("n1")], [cep("coredns-5d-a")],
                              REPLICASETS)
    assert got["restart"] == [{"kind": "Deployment", "namespace": "kube-system", "name": "coredns"}]


def test_an_endpoint_of_another_namespace_does_not_count():
    got = unmanaged_workloads([pod("coredns-5d-a")], [agent("n1")], [cep("coredns-5d-a", namespace="default")],
                              REPLICASETS)
    assert got["restart"] == [{"kind": "Deployment", "namespace": "kube-system", "name": "coredns"}]


@pytest.mark.parametrize("the_pod", [
    pod("hostnet", host_network=True),  # not Cilium's business
    pod("other-node", node="n2"),  # no Ready agent there yet
    pod("terminating-agent-node", node="n3"),  # its agent is being deleted
    pod("no-agent-node", node="n4"),  # no agent pod at all
    pod("done", phase="Succeeded"),
    pod("failed", phase="Failed"),
    pod("agent", labels={"k8s-app": "cilium"}),
    pod("unscheduled", node=None),
])
def test_pods_that_need_no_restart(the_pod):
    terminating = agent("n3")
    terminating["metadata"]["deletionTimestamp"] = "2026-01-01T10:01:00Z"
    got = unmanaged_workloads([the_pod], [agent("n1"), agent("n2", ready=None), terminating], [], REPLICASETS)
    assert got == {"restart": [], "bare_pods": []}


def test_bare_pods_are_reported_not_restarted():
    got = unmanaged_workloads([pod("lonely", owner=None, namespace="default")], [agent("n1")], [], [])
    assert got == {"restart": [], "bare_pods": ["default/lonely"]}
    got = unmanaged_workloads([pod("lonely", owner=None, namespace="default")], [agent("n1")],
                              [cep("lonely", namespace="default")], [])
    assert got == {"restart": [], "bare_pods": []}


def test_bad_input_and_registration():
    with pytest.raises(AnsibleFilterError):
        unmanaged_workloads("pods", [], [])
    with pytest.raises(AnsibleFilterError, match="CiliumEndpoints"):
        unmanaged_workloads([], [], None)
    assert FilterModule().filters()["cilium_unmanaged"] is unmanaged_workloads
