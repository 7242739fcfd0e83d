# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Pure parts of the bandwidth test service: options, verdict, manifests, node selection, reports."""

from __future__ import annotations

import json
import os
import stat
import pytest

from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.bandwidth import (
    BandwidthTest,
    BandwidthTestError,
    measure_argv,
    pod_manifests,
    schedulable_nodes,
    validate_params,
    verdict,
    write_reports,
)
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.errors import ValidationError

PARAMS = dict(limit="10M", ingress_limit=None, tool="netperf", image="cilium/netperf", duration=10, tolerance=0.05,
              min_ratio=0.5, namespace="cilium-bandwidth-test", server_name="netperf-server",
              client_name="netperf-client", cilium_namespace="kube-system", timeout=300, keep=False, report_dir=None)


def params(**overrides):
    merged = dict(PARAMS)
    merged.update(overrides)
    return merged


def test_validate_params_parses_the_limit():
    assert validate_params(params())["limit_bps"] == 10_000_000
    assert validate_params(params(limit="100Mi", ingress_limit="20M"))["ingress_limit_bps"] == 20_000_000


@pytest.mark.parametrize("overrides,name", [
    ({"limit": "10 M"}, "limit"), ({"limit": "100"}, "limit"), ({"ingress_limit": "x"}, "ingress_limit"),
    ({"tool": "ping"}, "tool"), ({"duration": 0}, "duration"), ({"min_ratio": 1.0}, "min_ratio"),
    ({"tolerance": -0.1}, "tolerance"), ({"namespace": "Bad_NS"}, "namespace"),
])
def test_validate_params_rejects(overrides, name):
    with pytest.raises(ValidationError) as info:
        validate_params(params(**overrides))
    assert info.value.name == name


@pytest.mark.parametrize("measured,passed,word", [
    (9.91e6, True, "ratio 0.991"),   # the blog's result
    (10.4e6, True, "ratio 1.040"),   # within the 5% tolerance
    (10.6e6, False, "above"),
    (19.2e6, False, "above"),        # shaped at 20M while the annotation says 10M
    (4.0e6, False, "broken"),        # under the floor: not a pass "because it is under the limit"
])
def test_verdict(measured, passed, word):
    ratio, ok, reason = verdict(measured, 10_000_000, 0.05, 0.5)
    assert ok is passed and word in reason and ratio == pytest.approx(measured / 1e7)


def test_manifests_follow_the_blog():
    server, client = pod_manifests(validate_params(params()), "1.13.4")
    assert server["metadata"]["annotations"] == {"kubernetes.io/egress-bandwidth": "10M"}
    assert server["metadata"]["labels"]["app.kubernetes.io/name"] == "netperf-server"
    assert "args" not in server["spec"]["containers"][0]  # the image's netserver
    term = client["spec"]["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchExpressions"][0]["values"] == ["netperf-server"]
    assert client["spec"]["containers"][0]["args"] == ["sleep", "infinity"]


def test_manifests_iperf3_and_ingress():
    server, _client = pod_manifests(validate_params(params(tool="iperf3", ingress_limit="20M")), "1.18.11")
    assert server["spec"]["containers"][0]["args"] == ["iperf3", "-s"]
    assert server["metadata"]["annotations"]["kubernetes.io/ingress-bandwidth"] == "20M"


def test_ingress_refused_before_1_18():
    with pytest.raises(ValidationError) as info:
        pod_manifests(validate_params(params(ingress_limit="20M")), "1.17.17")
    assert "1.17.17 does not enforce kubernetes.io/ingress-bandwidth" in str(info.value)


def node(name, ready=True, unschedulable=False, taints=()):
    return {"metadata": {"name": name},
            "spec": {"unschedulable": unschedulable, "taints": [{"key": "k", "effect": e} for e in taints]},
            "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def test_schedulable_nodes():
    nodes = [node("a"), node("b", unschedulable=True), node("c", taints=["NoExecute"]), node("d", ready=False),
             node("e", taints=["PreferNoSchedule"])]
    assert schedulable_nodes(nodes) == ["a", "e"]


def test_measure_argv():
    assert measure_argv("netperf", "10.0.0.1", 10) == ["netperf", "-H", "10.0.0.1", "-t", "TCP_MAERTS", "-l", "10"]
    assert measure_argv("iperf3", "10.0.0.1", 5) == ["iperf3", "-c", "10.0.0.1", "-R", "-J", "-t", "5"]


def test_reports_are_written_0644(tmp_path):
    result = {"passed": True, "limit": "10M", "limit_bps": 10_000_000, "tool": "iperf3", "measured_bps": 9.6e6,
              "ratio": 0.96, "min_ratio": 0.5, "tolerance": 0.05, "server_pod": "s", "server_node": "n1",
              "endpoint_id": 1918, "client_pod": "c", "client_node": "n2", "map_limit": "10M",
              "cilium_version": "1.18.11", "reason": "measured 9.60 Mbit/s"}
    paths = write_reports(str(tmp_path / "out"), result)
    assert json.loads(open(paths["json"]).read())["ratio"] == 0.96
    markdown = open(paths["md"]).read()
    assert "| Verdict | PASSED |" in markdown and "| Ratio measured/limit | 0.960 |" in markdown
    for path in paths.values():
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o644


def pod(name, phase="Pending", waiting=None, unschedulable=None, ip=None):
    statuses = []
    if waiting:
        statuses = [{"image": "cilium/netperf:nope", "state": {"waiting": {"reason": waiting,
                                                                           "message": "manifest unknown"}}}]
    conditions = []
    if unschedulable:
        conditions = [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": unschedulable}]
    return {"metadata": {"name": name}, "spec": {},
            "status": {"phase": phase, "podIP": ip, "containerStatuses": statuses, "conditions": conditions}}


def bare_test(k8s=None):
    return BandwidthTest(k8s, params())


def test_running_pod_detection():
    test = bare_test()
    assert test._running(pod("s", phase="Running", ip="192.168.64.3"), ["a", "b"]) is True
    assert test._running(pod("s", phase="Running"), ["a", "b"]) is False  # no IP yet
    assert test._running(pod("s"), ["a", "b"]) is False


@pytest.mark.parametrize("reason", ["ErrImagePull", "ImagePullBackOff"])
def test_image_pull_failure_is_named(reason):
    with pytest.raises(BandwidthTestError) as info:
        bare_test()._running(pod("netperf-client", waiting=reason), ["a", "b"])
    assert "cilium/netperf:nope cannot be pulled" in str(info.value) and reason in str(info.value)


def test_unschedulable_pod_names_the_node_count():
    message = "0/2 nodes are available: 1 node(s) didn't match pod anti-affinity rules"
    with pytest.raises(BandwidthTestError) as info:
        bare_test()._running(pod("netperf-client", unschedulable=message), ["a", "b"])
    assert message in str(info.value) and "found 2: a, b" in str(info.value)


class FakeK8s:
    """``get`` of a cluster holding ``nodes`` and ``pods`` (names; None when absent, as K8sService answers a 404)."""

    def __init__(self, nodes, pods, deleting=()):
        self.objects = {"Node": set(nodes), "Pod": set(pods)}
        self.deleting = set(deleting)

    def get(self, kind, name, namespace=None):
        if name not in self.objects[kind]:
            return None
        return {"metadata": {"name": name, "deletionTimestamp": "now" if name in self.deleting else None}}


def placed(name, node_name):
    return {"metadata": {"name": name}, "spec": {"nodeName": node_name}}


@pytest.mark.parametrize("nodes, pods, deleting, expected", [
    (["n1", "n2"], ["netperf-server", "netperf-client"], [], []),
    (["n1"], ["netperf-server"], ["netperf-server"], ["pod cilium-bandwidth-test/netperf-server on node n1 was deleted",
                                                      "node n2 (running pod netperf-client) was removed"]),
])
def test_lost_nodes_and_pods_are_named(nodes, pods, deleting, expected):
    test = bare_test(FakeK8s(nodes, pods, deleting))
    assert test.lost_during_test([placed("netperf-server", "n1"), placed("netperf-client", "n2")]) == expected


def test_a_lost_node_fails_the_test_naming_it():
    test = bare_test(FakeK8s(["n1"], ["netperf-server", "netperf-client"]))
    with pytest.raises(BandwidthTestError) as info:
        test.fail_if_lost([placed("netperf-server", "n1"), placed("netperf-client", "n2")], OSError("stream closed"))
    assert str(info.value).startswith("The bandwidth test was cut short: node n2 (running pod netperf-client) was "
                                      "removed. Its pods were deleted; run it again")
    assert info.value.details["cause"] == "stream closed"
