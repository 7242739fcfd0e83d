# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The Cilium table: its rows are consistent, every rule names its source, and the gates open where upstream did."""

from __future__ import annotations

import re

import os

import pytest

from ansible_collections.cloudnet.cilium_eks.plugins.module_utils import cilium_status
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils import cilium_table as table
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.errors import ValidationError


def test_minors_are_consecutive_and_each_pins_a_patch_of_itself():
    minors = [tuple(int(p) for p in minor.split(".")) for minor in table.MINORS]
    assert minors == [(1, n) for n in range(minors[0][1], minors[0][1] + len(minors))]
    for minor, row in table.MINORS.items():
        assert row["tested"].startswith(minor + ".")
    assert table.DEFAULT_VERSION == table.TESTED_VERSIONS[-1]


def test_every_gate_rule_mode_and_kernel_requirement_names_its_upstream_source():
    sources = [gate.source for gate in table.GATES.values()] + [rule.source for rule in table.RULES]
    sources += [row["source"] for row in table.MODES.values()]
    sources += [req.source for req in table.KERNEL_REQUIREMENTS.values()]
    # a documentation page, a file at a tag, or an upstream issue
    unsourced = [s for s in sources if not re.search(r"docs\.cilium\.io/|github\.com/| at v\d+\.\d+", s or "")]
    assert unsourced == []


def test_rule_ids_are_unique_and_gates_have_a_bound():
    assert len({rule.id for rule in table.RULES}) == len(table.RULES)
    assert all(gate.since or gate.until for gate in table.GATES.values())


@pytest.mark.parametrize("feature, below, at", [
    ("routing_mode", "1.13.4", "1.14.0"), ("kpr_boolean", "1.13.9", "1.14.19"),
    ("agent_cli_cilium_dbg", "1.14.19", "1.15.0"), ("cluster_name_checked", "1.15.19", "1.16.0"),
    ("ingress_bandwidth", "1.17.17", "1.18.0"), ("bbr_host_namespace_only", "1.17.17", "1.18.11"),
])
def test_a_gate_opens_at_its_since(feature, below, at):
    assert not table.has(feature, below) and table.has(feature, at)


def test_a_gate_closes_at_its_until():
    assert table.has("tunnel_key", "1.14.19") and not table.has("tunnel_key", "1.15.0")


@pytest.mark.parametrize("version, routing, kpr_on, cli", [
    ("1.13.4", {"tunnel": "disabled"}, "strict", "cilium"),
    ("1.14.19", {"routingMode": "native"}, "true", "cilium"),
    ("1.15.0", {"routingMode": "native"}, "true", "cilium-dbg"),
])
def test_chart_spelling_and_agent_cli_follow_the_gates(version, routing, kpr_on, cli):
    assert table.native_routing(version) == routing
    assert table.kube_proxy_replacement(version, True) == kpr_on
    assert table.agent_cli(version) == cli


@pytest.mark.parametrize("version, cli", [("1.13.4", "cilium"), ("1.14.19", "cilium"), ("1.15.0", "cilium-dbg"),
                                          ("1.20.2", "cilium-dbg"), ("", None), (None, None), ("latest", None)])
def test_agent_cli_renamed_in_1_15(version, cli):
    assert table.agent_cli(version) == cli


def test_release_accepts_a_supported_patch_and_names_the_input_otherwise():
    assert table.release("v1.18.2") == table.Release("1.18", "1.18.2", table.MINORS["1.18"]["tested"])
    with pytest.raises(ValidationError) as err:
        table.release("1.18", name="cilium_eni_version")
    assert err.value.name == "cilium_eni_version" and "not a Cilium release" in err.value.msg


def test_profiles_expect_only_facts_cilium_status_checks():
    for mode, row in table.MODES.items():
        assert set(row["expect"]) <= set(cilium_status.EXPECT_KEYS), mode
        assert set(row) >= {"title", "values", "owned_keys", "expect", "requires", "signature", "source"}
    assert table.expect("eni", True) == {"ipam_mode": "eni", "routing_mode": "native", "kube_proxy_replacement": True}


def test_an_installed_release_is_recognised_by_its_mode_signature():
    assert table.detect_mode({"eni": {"enabled": True}, "cni": {"chainingMode": "aws-cni"}}) == "chaining"
    assert table.detect_mode({"eni": {"enabled": "yes"}}) == "other"


@pytest.mark.parametrize("values, mode, version, rules", [
    ({"bandwidthManager": {"bbr": True}}, "chaining", None, ["bbr-in-chaining"]),
    ({"bandwidthManager": {"bbr": True}}, "eni", None, ["bbr-needs-bpf-host-routing"]),
    ({"bandwidthManager": {"bbr": True}, "kubeProxyReplacement": "true"}, "eni", None, []),
    ({"bandwidthManager": {"bbr": True}, "kubeProxyReplacement": "true"}, "eni", "1.17.17",
     ["bbr-needs-bpf-host-routing"]),  # 1.17's chart masquerades with iptables by default: legacy host routing
    ({"bandwidthManager": {"bbr": True}, "kubeProxyReplacement": "strict"}, "eni", "1.13.4",
     ["bbr-eni-1-13-legacy-routing"]),
    ({"bandwidthManager": {"bbr": True, "bbrHostNamespaceOnly": True}}, "chaining", "1.18.11", []),
    ({"enableIPv4Masquerade": True}, "eni", "1.20.2", ["masquerading-needs-interfaces"]),
    ({"enableIPv4Masquerade": True, "egressMasqueradeInterfaces": "ens+"}, "eni", "1.20.2", []),
    ({"enableIPv4Masquerade": False, "egressMasqueradeInterfaces": "ens+"}, "eni", "1.17.17",
     ["masquerade-interfaces-without-masquerading"]),
    ({"egressMasqueradeInterfaces": "ens+"}, "eni", "1.18.11", ["masquerade-interfaces-without-masquerading"]),
    ({"enableIPv4Masquerade": True, "bpf": {"masquerade": True}}, "eni", "1.20.2",
     ["bpf-masquerade-needs-kube-proxy-replacement"]),
    ({"enableIPv4Masquerade": True, "bpf": {"masquerade": True}, "kubeProxyReplacement": "true",
      "egressMasqueradeInterfaces": "ens+"}, "eni", "1.20.2", ["bpf-masquerade-with-interfaces"]),
    ({"enableIPv4Masquerade": True, "egressMasqueradeInterfaces": "eth+ ens+"}, "eni", "1.14.19",
     ["masquerade-interface-list-before-1-15"]),
    ({"enableIPv4Masquerade": True, "egressMasqueradeInterfaces": "eth+ ens+"}, "eni", "1.15.19", []),
    ({"bandwidthManager": {"bbr": False}}, "chaining", "1.20.2", []),
    ({"eni": {"awsEnablePrefixDelegation": True}}, "chaining", "1.16.0", ["prefix-delegation-in-chaining"]),
    ({"cluster": {"id": 200}}, "eni", None, ["cluster-id-drops-policy-traffic"]),
    ({"cluster": {"id": 300}}, "eni", None, []),
])
def test_conflicts_are_the_rules_the_values_break(values, mode, version, rules):
    assert [rule.id for rule in table.conflicts(values, mode, version)] == rules


def test_a_rule_with_a_version_window_applies_only_inside_it(monkeypatch):
    gated = table.Rule("test-gated", "a", None, "1.18", "1.20", lambda value, *_context: value is True, "p", "s.go")
    monkeypatch.setattr(table, "RULES", (gated,))
    assert table.conflicts({"a": True}, "eni", "1.17.17") == []
    assert table.conflicts({"a": True}, "eni", "1.18.0") == [gated]
    assert table.conflicts({"a": True}, "eni", "1.20.2") == []
    assert table.conflicts({"a": True}, "eni") == [gated]  # no version known: the rule holds


def test_old_kernels_are_named_with_their_node():
    def node(name, kernel):
        return {"metadata": {"name": name}, "status": {"nodeInfo": {"kernelVersion": kernel}}}

    nodes = [node("a", "6.12.40-63.114.amzn2023.x86_64"), node("b", "5.10.238-231.953.amzn2.x86_64"),
             node("c", "5.18"), {"metadata": {"name": "d"}}]
    assert table.old_kernels(nodes, "bandwidthManager.bbr") == [
        "b (kernel 5.10.238-231.953.amzn2.x86_64)", "d (kernel unknown)"]


@pytest.mark.parametrize("mode", sorted(table.MODES))
def test_a_minor_without_new_behaviour_is_one_row(monkeypatch, mode):
    """docs/cilium-versions.md: a hypothetical 1.21 row, and the values and expected facts are the newest minor's."""
    from ansible_collections.cloudnet.cilium_eks.plugins.module_utils import cilium_values

    newest = table.DEFAULT_VERSION
    monkeypatch.setitem(table.MINORS, "1.21", {"tested": "1.21.0"})
    now = cilium_values.build_values(mode, "1.21.0", cluster_name="demo")
    before = cilium_values.build_values(mode, newest, cluster_name="demo")
    assert (now["values"], now["expect"], now["tested"]) == (before["values"], before["expect"], True)
    assert now["minor"] == "1.21" and table.agent_cli("1.21.0") == table.agent_cli(newest)


@pytest.mark.parametrize("installed, target, steps, problem", [
    ("1.19.7", "1.20.2", ["1.20.2"], None),
    ("1.20.0", "1.20.2", ["1.20.2"], None),
    ("1.19.2", "1.20.2", ["1.19.7", "1.20.2"], None),   # the installed minor's newest tested patch first
    ("1.19.9", "1.20.2", ["1.20.2"], None),            # newer than the tested patch: no step back
    ("1.20.2", "1.20.2", [], None),
    (None, "1.20.2", [], None),                         # a first install is not an upgrade
    ("1.20.2", "1.19.7", [], "is a downgrade"),
    ("1.20.2", "1.20.1", [], "is a downgrade"),
    ("1.13.4", "1.20.2", [], "skips 1.14, 1.15, 1.16, 1.17, 1.18, 1.19"),
    ("1.12.9", "1.13.4", [], "of a minor this collection does not know"),
])
def test_upgrade_steps_go_one_minor_at_a_time(installed, target, steps, problem):
    got_steps, got_problem = table.upgrade_steps(installed, target)
    assert got_steps == steps
    assert (got_problem is None) if problem is None else (problem in got_problem)


def test_a_run_makes_one_upgrade_step():
    assert table.upgrade_problem("1.19.7", "1.20.2") is None
    assert "upgrade to 1.19.7 first" in table.upgrade_problem("1.19.2", "1.20.2")
    assert "one run each: 1.14.19, then 1.15.19" in table.upgrade_problem("1.13.4", "1.15.19")


TOOLS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "recordings", "tools")


def cli_reported(name):
    from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.cli_tools import reported_version

    with open(os.path.join(TOOLS, name), encoding="utf-8") as handle:
        return reported_version("cilium", handle.read())


@pytest.mark.parametrize("cli, cilium, refused, wanted", [
    ("v0.19.7", "1.20.2", False, None), ("v0.19.7", "1.16.19", False, None),
    ("v0.19.7", "1.15.19", True, "v0.18.6"), ("v0.19.7", "1.14.19", True, "v0.15.23"),
    ("v0.19.7", "1.13.4", True, "v0.14.8"), ("v0.18.6", "1.15.19", False, None),
    ("v0.15.23", "1.14.19", False, None), ("v0.14.8", "1.13.4", False, None), ("v0.14.8", "1.14.19", True, "v0.15.23"),
])
def test_the_cilium_cli_line_must_support_the_installed_minor(cli, cilium, refused, wanted):
    problem = table.cli_problem(cli, cilium)
    assert (problem is not None) is refused
    if refused:
        assert "use cilium CLI %s" % wanted in problem and "README.md" in problem


def test_the_recorded_clis_are_placed_in_their_line():
    """The sandbox's CLI, built from github.com/cilium/cilium's cilium-cli/ (v1.20.0-pre...), and a v0.18.7 release."""
    main_build, release = cli_reported("cilium-cli-main-gobuild-version-client.txt"), \
        cli_reported("cilium-cli-0.18.7-release-version.txt")
    assert table.cli_line(main_build).newest == "v0.19.7" and table.cli_line(release).cilium_since == "1.16"
    assert table.cli_problem(main_build, "1.15.19").startswith("cilium CLI v1.20.0-pre.1")


def test_kubernetes_outside_cilium_s_tested_range_is_named():
    assert table.kubernetes_warning("1.20.2", "1.34") is None
    assert "(1.33-1.36, Documentation/network/kubernetes/compatibility.rst at v1.20.2" in \
        table.kubernetes_warning("1.20.2", "1.31")
    assert table.kubernetes_warning("1.20.2", None) is None
