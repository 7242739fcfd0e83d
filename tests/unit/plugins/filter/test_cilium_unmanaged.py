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


REPLICASETS = [{"metadata": {"name": "coredns-5d", "namespace": "kube-system",
                             "ownerReferences": [{"kind": "Deployment", "name": "coredns", "controller": True}]}}]


def test_pods_started_before_the_agent_was_ready_are_restarted_through_their_workload():
    pods = [pod("coredns-5d-a"), pod("coredns-5d-b"), pod("ds-x", owner=("DaemonSet", "ds")),
            pod("sts-0", owner=("StatefulSet", "db"), namespace="default")]
    got = unmanaged_workloads(pods, [agent("n1")], REPLICASETS)
    assert got["restart"] == [
        {"kind": "DaemonSet", "namespace": "kube-system", "name": "ds"},
        {"kind": "Deployment", "namespace": "kube-system", "name": "coredns"},
        {"kind": "StatefulSet", "namespace": "default", "name": "db"},
    ]
    assert got["bare_pods"] == []


@pytest.mark.parametrize("the_pod", [
    pod("late", started="2026-01-01T10:00:05Z"),  # started after Cilium: managed
    pod("same-second", started=AGENT_READY),  # cannot tell: left alone
    pod("hostnet", host_network=True),  # not Cilium's business
    pod("other-node", node="n2"),  # no Ready agent there yet
    pod("done", phase="Succeeded"),
    pod("agent", labels={"k8s-app": "cilium"}),
    pod("unscheduled", node=None),
])
def test_pods_that_need_no_restart(the_pod):
    got = unmanaged_workloads([the_pod], [agent("n1"), agent("n2", ready=None)], REPLICASETS)
    assert got == {"restart": [], "bare_pods": []}


def test_bare_pods_are_reported_not_restarted():
    got = unmanaged_workloads([pod("lonely", owner=None, namespace="default")], [agent("n1")], [])
    assert got == {"restart": [], "bare_pods": ["default/lonely"]}


def test_bad_input_and_registration():
    with pytest.raises(AnsibleFilterError):
        unmanaged_workloads("pods", [])
    assert FilterModule().filters()["cilium_unmanaged"] is unmanaged_workloads
