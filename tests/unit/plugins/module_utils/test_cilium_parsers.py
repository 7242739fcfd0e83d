# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""cilium_parsers on the recorded real outputs of tests/recordings/cilium (provenance in SOURCES.md).

Degraded and failing inputs are DERIVED in the tests from those recordings (each edit is spelled out
where it is made); no recording exists of an unhealthy agent.
"""

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.cloudnet.cilium_eks.plugins.module_utils import cilium_parsers as parsers

RECORDINGS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "recordings", "cilium")
SG_HINT = parsers.SECURITY_GROUP_HINT % "54.158.35.146, 54.243.4.228"  # the blog's nodes' public IPs


def recording(path):
    with open(os.path.join(RECORDINGS, path), encoding="utf-8") as handle:
        return handle.read()


# (directory, text file) -> what the agent printed, read by eye from the recording.
EXPECTED_STATUS = {
    "1.13.3": ("status-verbose.txt", dict(version="1.13.3", masquerading="iptables", chaining_mode="none", kube_proxy_replacement_mode="Strict",
                                          kube_proxy_replacement=True, routing_mode=None, host_routing="Legacy",
                                          ipam="IPv4: 12/254 allocated from 10.0.0.0/24,",
                                          bandwidth_manager={"enabled": False, "congestion_control": None, "devices": []})),
    "1.13.4": ("status-verbose.txt", dict(version="1.13.4", masquerading="iptables", chaining_mode="none", kube_proxy_replacement_mode="Disabled",
                                          kube_proxy_replacement=False, routing_mode=None, host_routing="Legacy",
                                          ipam="IPv4: 4/12 allocated,",
                                          bandwidth_manager={"enabled": False, "congestion_control": None, "devices": []})),
    "1.17.4": ("status.txt", dict(version="1.17.4", masquerading="iptables", chaining_mode="none", kube_proxy_replacement_mode="True",
                                  kube_proxy_replacement=True, routing_mode="native", tunnel_protocol=None,
                                  host_routing="Legacy", ipam="IPv4: 4/12 allocated,",
                                  bandwidth_manager={"enabled": False, "congestion_control": None, "devices": []})),
    "1.18.4": ("status.txt", dict(version="1.18.4", masquerading="bpf", chaining_mode="none", kube_proxy_replacement_mode="True",
                                  kube_proxy_replacement=True, routing_mode="native", host_routing="BPF",
                                  ipam="IPv4: 2/254 allocated from 10.100.1.0/24,",
                                  bandwidth_manager={"enabled": True, "congestion_control": "bbr", "devices": ["eth0"]})),
    "1.19.0": ("status.txt", dict(version="1.19.0", masquerading="iptables", chaining_mode="none", kube_proxy_replacement_mode="False",
                                  kube_proxy_replacement=False, routing_mode="tunnel", tunnel_protocol="vxlan",
                                  host_routing="Legacy", ipam="IPv4: 3/254 allocated from 10.0.0.0/24,",
                                  bandwidth_manager={"enabled": False, "congestion_control": None, "devices": []})),
}


@pytest.mark.parametrize("version", sorted(EXPECTED_STATUS))
def test_text_status_of_each_recorded_version(version):
    name, expected = EXPECTED_STATUS[version]
    status, source = parsers.parse_agent_status(recording(os.path.join(version, name)))
    assert source == "text"
    assert status["state"] == "Ok"
    for key, value in expected.items():
        assert status[key] == value, key
    assert parsers.status_problems(status) == ([], [])


@pytest.mark.parametrize("version", sorted(EXPECTED_STATUS))
def test_json_status_gives_the_same_facts_as_the_text(version):
    name, expected = EXPECTED_STATUS[version]
    from_json, source = parsers.parse_agent_status(recording(os.path.join(version, "status.model-derived.json")))
    from_text = parsers.parse_status_text(recording(os.path.join(version, name)))
    assert source == "json"
    for key in list(expected) + ["state", "components"]:
        if key == "components":  # the text has no proxy state, the JSON no hubble detail beyond state
            for component, state in from_text["components"].items():
                if component in from_json["components"]:
                    assert from_json["components"][component] == state, component
            continue
        assert from_json[key] == from_text[key], key


# Real 1.20.2 texts whose value column moved (a failing controller's table, another node's health row): the same
# facts as the regular recording, and the states that are not healthy become a problem and a warning.
@pytest.mark.parametrize("name, bandwidth_manager, problems", [
    ("status.failing-controller.txt", {"enabled": False, "congestion_control": None, "devices": []},
     (["1/21 controllers failing: resolve-labels-kube-system/coredns-f8899c7b5-9q6bb"], [])),
    ("status.node-unreachable.txt", {"enabled": True, "congestion_control": "cubic", "devices": ["eth0"]},
     ([], ["cluster health: 1/2 nodes reachable"])),
])
def test_real_text_status_whose_columns_moved(name, bandwidth_manager, problems):
    status = parsers.parse_status_text(recording(os.path.join("1.20.2", name)))
    assert (status["state"], status["version"], status["routing_mode"], status["host_routing"]) == \
        ("Ok", "1.20.2", "native", "Legacy")
    assert status["ipam"] == "IPv4: 1 IPAM pool(s) available,"
    assert status["bandwidth_manager"] == bandwidth_manager
    assert parsers.status_problems(status) == problems


# The real 1.20.2 agent with masquerading off (ENI mode, egress vpc), as recorded from the agent on the sandbox's
# real-Cilium platform: the JSON has an empty enabledProtocols and no mode, the text says Disabled
# (pkg/client/client.go at v1.20.2 l.535-579).
@pytest.mark.parametrize("output, masquerading", [
    ('{"masquerading": {"enabledProtocols": {}}}', "disabled"),
    ('{"masquerading": {"enabled": false}}', "disabled"),
    ('{"masquerading": {"enabled": true, "enabledProtocols": {"ipv4": true}, "mode": "BPF"}}', "bpf"),
    ('{"masquerading": {"enabled": true, "enabledProtocols": {"ipv6": true}, "mode": "iptables"}}', "disabled"),
    ("{}", None),
])
def test_json_masquerading_is_ipv4_masquerading(output, masquerading):
    assert parsers.parse_status_json(output)["masquerading"] == masquerading


@pytest.mark.parametrize("line, masquerading", [
    ("Disabled", "disabled"), ("IPTables [IPv4: Enabled, IPv6: Disabled]", "iptables"),
    ("IPTables [IPv4: Disabled, IPv6: Enabled]", "disabled"),
    ("BPF   [ens5]   192.168.0.0/16  [IPv4: Enabled, IPv6: Disabled]", "bpf"),
])
def test_text_masquerading_line(line, masquerading):
    text = recording("1.17.4/status.txt").replace("IPTables [IPv4: Enabled, IPv6: Disabled]", line)
    assert parsers.parse_status_text(text)["masquerading"] == masquerading


def test_text_controllers_modules_and_cluster_health_are_read():
    status = parsers.parse_status_text(recording("1.18.4/status.txt"))
    assert status["controllers"] == {"healthy": 16, "total": 16, "failing": []}
    assert status["modules"] == {"stopped": 11, "degraded": 0, "ok": 77}
    assert status["cluster_health"] == {"reachable": 3, "total": 3}
    assert status["components"]["kvstore"] == "Disabled"
    assert status["components"]["cilium-health"] == "Ok"


def test_blog_grepped_lines_bandwidth_manager_and_chaining():
    # Derived: the 1.13.4 verbose status with its BandwidthManager / CNI Chaining lines replaced by the lines the
    # part-4 blog grepped from an agent running aws-cni chaining with the bandwidth manager on.
    text = recording("1.13.4/status-verbose.txt")
    bwm_line = recording("1.13.4/status.grep-bandwidthmanager.txt").strip()
    chaining_line = recording("1.13.4/status.grep-cni-chaining.txt").strip()
    lines = [bwm_line if line.startswith("BandwidthManager:") else
             chaining_line if line.startswith("CNI Chaining:") else line for line in text.splitlines()]
    status = parsers.parse_status_text("\n".join(lines))
    assert status["chaining_mode"] == "aws-cni"
    assert status["bandwidth_manager"] == {"enabled": True, "congestion_control": "cubic", "devices": ["eth0", "eth1"]}


def test_kube_proxy_replacement_line_of_1_13_strict():
    text = recording("1.17.4/status.txt").replace(
        "KubeProxyReplacement:    True   [ens5   192.168.190.239 fe80::de:f7ff:fe5a:d4ad (Direct Routing), "
        "ens6   192.168.186.8 fe80::62:48ff:fe8a:1133]",
        recording("1.13.4/status.grep-kube-proxy-replacement.txt").strip())
    status = parsers.parse_status_text(text)
    assert status["kube_proxy_replacement_mode"] == "Strict" and status["kube_proxy_replacement"] is True


# ------------------------------------------------------------------------ degraded (derived) inputs

def test_text_agent_in_failure_is_a_problem():
    # Derived: 1.19.0 status with the Cilium line's state changed from Ok to Failure and a message.
    text = recording("1.19.0/status.txt").replace(
        "Cilium:                  Ok   1.19.0 (v1.19.0-7c6667e1)",
        "Cilium:                  Failure   Kubernetes service is not ready")
    status = parsers.parse_status_text(text)
    problems, _warnings = parsers.status_problems(status)
    assert status["state"] == "Failure"
    assert problems == ["agent state is Failure (Kubernetes service is not ready)"]


def test_text_failing_controllers_and_kubernetes_failure():
    # Derived: 1.17.4 status with 2 of 32 controllers failing and the Kubernetes line in Failure.
    text = recording("1.17.4/status.txt").replace("32/32 healthy", "30/32 healthy").replace(
        "Kubernetes:              Ok         1.30+", "Kubernetes:              Failure    1.30+")
    problems, _warnings = parsers.status_problems(parsers.parse_status_text(text))
    assert "kubernetes is Failure" in problems
    assert "2/32 controllers failing" in problems


def test_verbose_text_names_the_failing_controllers():
    # Derived: 1.13.4 verbose status where endpoint-gc failed 3 times in a row (Count column) and 25/26 are healthy.
    text = recording("1.13.4/status-verbose.txt").replace("26/26 healthy", "25/26 healthy").replace(
        "  endpoint-gc                           3m12s ago      never        0       no error",
        "  endpoint-gc                           3m12s ago      5s ago       3       timeout")
    status = parsers.parse_status_text(text)
    assert status["controllers"] == {"healthy": 25, "total": 26, "failing": ["endpoint-gc"]}
    assert parsers.status_problems(status)[0] == ["1/26 controllers failing: endpoint-gc"]


def test_text_degraded_modules_and_unreachable_nodes_are_warnings_only():
    # Derived: 1.18.4 status with 2 degraded modules and 2/3 nodes reachable.
    text = recording("1.18.4/status.txt").replace("Degraded(0)", "Degraded(2)").replace("3/3 reachable", "2/3 reachable")
    problems, warnings = parsers.status_problems(parsers.parse_status_text(text))
    assert problems == []
    assert warnings == ["2 modules degraded", "cluster health: 2/3 nodes reachable"]


def test_json_degraded_states_and_controllers():
    # Derived: 1.18.4 model-derived JSON with cilium in Warning, cilium-health in Failure, hubble in Warning and a
    # controllers list where one controller has consecutive failures.
    data = json.loads(recording("1.18.4/status.model-derived.json"))
    data["cilium"]["state"] = "Warning"
    data["cluster"]["ciliumHealth"] = {"state": "Failure", "msg": "probe timed out"}
    data["hubble"]["state"] = "Warning"
    data["controllers"] = [
        {"name": "sync-lb-maps-with-k8s-services", "status": {"consecutive-failure-count": 0}},
        {"name": "ipcache-inject-labels", "status": {"consecutive-failure-count": 4, "last-failure-msg": "boom"}},
    ]
    status = parsers.parse_status_json(json.dumps(data))
    problems, warnings = parsers.status_problems(status)
    assert problems == ["agent state is Warning (1.18.4 (v1.18.4-afda2aa9))", "cilium-health is Failure",
                        "1/2 controllers failing: ipcache-inject-labels"]
    assert warnings == ["hubble is Warning"]


def test_json_bandwidth_manager_disabled_is_devices_null():
    status = parsers.parse_status_json(recording("1.19.0/status.model-derived.json"))
    assert status["bandwidth_manager"] == {"enabled": False, "congestion_control": None, "devices": []}


def test_not_a_status_output_is_rejected():
    with pytest.raises(ValueError, match="Cilium:"):
        parsers.parse_agent_status("Error: unknown command \"stat\" for \"cilium-dbg\"\n")
    with pytest.raises(ValueError):
        parsers.parse_status_json("[1, 2]")


# ------------------------------------------------------------------------- connectivity reports

def test_old_success_form():
    report = parsers.parse_connectivity_report(recording("1.13.3/connectivity-test-success.txt"))
    assert report["result"] == "success"
    assert (report["tests"], report["actions"], report["tests_skipped"], report["scenarios_skipped"]) == (42, 300, 12, 1)
    assert report["test_namespace"] is None and report["failed_tests"] == []


def test_current_success_form():
    report = parsers.parse_connectivity_report(recording("1.17.4/connectivity-test-success.txt"))
    assert report["result"] == "success"
    assert report["test_namespace"] == "cilium-test-1"
    assert (report["tests"], report["actions"], report["tests_skipped"], report["scenarios_skipped"]) == (72, 630, 43, 0)


def test_old_failure_form_of_the_blog():
    report = parsers.parse_connectivity_report(recording("1.13.3/connectivity-test-failure.txt"))
    assert report["result"] == "failure"
    assert (report["tests_failed"], report["tests"], report["actions_failed"], report["actions"]) == (4, 42, 20, 300)
    assert [t["name"] for t in report["failed_tests"]] == ["no-policies", "no-policies-extra", "allow-all-except-world",
                                                           "host-entity"]
    assert sum(len(t["actions"]) for t in report["failed_tests"]) == 20
    first = report["failed_tests"][0]["actions"][0]
    assert first == {"name": "no-policies/pod-to-host/ping-ipv4-1", "test": "no-policies", "scenario": "pod-to-host",
                     "source": "cilium-test/client-6965d549d5-hwmbt (192.168.61.62)",
                     "destination": "54.243.4.228 (54.243.4.228:0)", "message": None}
    nodeport = report["failed_tests"][1]["actions"][0]
    assert nodeport["scenario"] == "pod-to-remote-nodeport"
    assert nodeport["destination"] == "cilium-test/echo-same-node (echo-same-node:8080)"


def test_current_failure_form_with_messages_and_truncated_listing():
    report = parsers.parse_connectivity_report(recording("1.18.2/connectivity-test-failure.excerpt.txt"))
    assert report["result"] == "failure"
    assert report["test_namespace"] == "cilium-test-1"
    assert (report["tests_failed"], report["tests"], report["actions_failed"], report["actions"]) == (11, 77, 39, 794)
    assert len(report["failed_tests"]) == 3
    action = report["failed_tests"][0]["actions"][0]
    assert action["name"] == "client-egress-l7/pod-to-world:http-to-one.one.one.one.-ipv4-0"
    assert action["scenario"] == "pod-to-world"
    assert action["destination"] == "one.one.one.one.-http (one.one.one.one.:80)"
    assert action["message"].startswith('command "curl --silent') and action["message"].endswith("exit code 22")
    split = parsers.classify_failures(report, ["client-egress-l7*"])
    assert split == {"expected": ["client-egress-l7", "client-egress-l7-port-range", "client-egress-l7-named-port"],
                     "unexpected": [], "unlisted": 8}
    assert parsers.security_group_hint(report) is None


def test_blog_failures_are_security_group_failures():
    report = parsers.parse_connectivity_report(recording("1.13.3/connectivity-test-failure.txt"))
    assert parsers.security_group_hint(report) == SG_HINT
    assert parsers.classify_failures(report, ["*/pod-to-host", "*nodeport*"])["unexpected"] == []
    split = parsers.classify_failures(report, ["*/pod-to-host"])
    assert split["unexpected"] == ["no-policies-extra"]
    assert split["expected"] == ["no-policies", "allow-all-except-world", "host-entity"]
    # A single action pattern does not make its whole test expected.
    assert parsers.classify_failures(report, ["no-policies/pod-to-host/ping-ipv4-1"])["expected"] == []


def test_trailer_only_output_is_a_failure():
    report = parsers.parse_connectivity_report("some progress\n[cilium-test-1] 3 tests failed\n")
    assert report["result"] == "failure" and report["tests_failed"] == 3 and report["test_namespace"] == "cilium-test-1"
    assert parsers.classify_failures(report, ["*"])["unlisted"] == 3


def test_output_without_report():
    report = parsers.parse_connectivity_report("ℹ️  Monitor aggregation detected, will skip some flow validation steps\n")
    assert report["result"] is None


def test_no_security_group_hint_for_failures_towards_private_addresses():
    """Pings to the nodes' InternalIPs fail for other reasons: the node security group allows the VPC already."""
    blog = recording("1.13.3/connectivity-test-failure.txt")
    private = blog.replace("54.243.4.228", "192.168.40.10").replace("54.158.35.146", "192.168.50.20")
    assert parsers.security_group_hint(parsers.parse_connectivity_report(private)) is None


def test_security_group_hint_by_the_external_ip_action_names_of_newer_clis():
    """cilium-cli v0.15+ names the pings by address type (connectivity/tests/host.go: ping-ipv4-external-ip)."""
    blog = recording("1.13.3/connectivity-test-failure.txt")
    renamed = blog.replace("54.243.4.228 (54.243.4.228:0)", "ip-192-168-1-1 (ip-192-168-1-1:0)").replace(
        "54.158.35.146 (54.158.35.146:0)", "ip-192-168-2-2 (ip-192-168-2-2:0)")
    for number in ("1", "3", "5", "7"):
        renamed = renamed.replace("ping-ipv4-%s:" % number, "ping-ipv4-external-ip:")
    assert parsers.security_group_hint(parsers.parse_connectivity_report(renamed)) == \
        parsers.SECURITY_GROUP_HINT % "ExternalIP"


def test_a_multi_line_failure_message_is_kept_whole_and_owners_lines_end_it():
    report = parsers.parse_connectivity_report(recording("1.20.2/connectivity-test-failure-drops.from-source.txt"))
    assert report["result"] == "failure" and report["tests_failed"] == 1
    action = report["failed_tests"][0]["actions"][0]
    assert action["name"] == "no-unexpected-packet-drops/no-unexpected-packet-drops/cilium-eks-sandbox/" \
                             "ip-192-168-0-11.ec2.internal"
    lines = action["message"].split("\n")
    assert lines[0] == "Found unexpected packet drops:" and lines[1] == "{" and lines[-1] == "}"
    assert json.loads("\n".join(lines[1:])) == {"labels": {"direction": "EGRESS", "reason": "FIB lookup failed"},
                                                "name": "cilium_drop_count_total", "value": 322}
    assert "owners" not in action["message"]
