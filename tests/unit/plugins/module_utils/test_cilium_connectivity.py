# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""cilium_connectivity: argv, namespace selection and the verdict on the recorded reports."""

from __future__ import annotations

import os

import pytest

from ansible_collections.cloudnet.cilium_eks.plugins.module_utils import cilium_connectivity as cc
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils import cilium_parsers as parsers
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.errors import ValidationError

RECORDINGS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "recordings", "cilium")
SG_HINT = parsers.SECURITY_GROUP_HINT % "54.158.35.146, 54.243.4.228"  # the blog's nodes' public IPs


def report(path):
    with open(os.path.join(RECORDINGS, path), encoding="utf-8") as handle:
        return parsers.parse_connectivity_report(handle.read())


def params(**changes):
    base = dict(cilium_namespace="kube-system", namespace="cilium-test", context=None, tests=None, junit_file=None,
                extra_flags=[])
    base.update(changes)
    return base


def test_build_argv_defaults():
    assert cc.build_argv(params()) == ["connectivity", "test", "--namespace", "kube-system",
                                       "--test-namespace", "cilium-test"]


def test_build_argv_every_option():
    argv = cc.build_argv(params(context="eks", tests=["no-policies", "!pod-to-world"], junit_file="/r/j.xml",
                                extra_flags=["--test-concurrency", "1"], namespace="ct"))
    assert argv == ["connectivity", "test", "--namespace", "kube-system", "--test-namespace", "ct", "--context", "eks",
                    "--test", "no-policies", "--test", "!pod-to-world", "--junit-file", "/r/j.xml",
                    "--test-concurrency", "1"]


def test_build_argv_rejects_empty_flag():
    with pytest.raises(ValidationError, match="extra_flags"):
        cc.build_argv(params(extra_flags=["--x", ""]))


@pytest.mark.parametrize("name, ours", [
    ("cilium-test", True), ("cilium-test-1", True), ("cilium-test-12", True), ("cilium-test-ccnp1", True),
    ("cilium-test-ztunnel-enrolled-0", True), ("cilium-testing", False), ("kube-system", False),
    ("cilium-test-prod", False),
])
def test_is_test_namespace(name, ours):
    assert cc.is_test_namespace(name, "cilium-test") is ours


def test_namespaces_to_clean_spares_pre_existing_unlabelled_ones():
    before = {"default", "kube-system", "cilium-test", "cilium-test-2"}
    after = {"default": {}, "kube-system": {}, "cilium-test": {},  # the user's own, not labelled: kept
             "cilium-test-2": {"app.kubernetes.io/name": "cilium-cli"},  # left by an earlier run: cleaned
             "cilium-test-1": {"app.kubernetes.io/name": "cilium-cli"}, "cilium-test-ccnp1": {}}
    assert cc.namespaces_to_clean(before, after, "cilium-test") == ["cilium-test-1", "cilium-test-2",
                                                                    "cilium-test-ccnp1"]


def test_verdict_success():
    ok, message, details = cc.verdict(report("1.17.4/connectivity-test-success.txt"), [])
    assert ok and message == "All 72 tests (630 actions) successful"
    assert details["failed_tests"] == [] and details["hint"] is None


def test_verdict_blog_failure_says_to_open_the_security_group():
    ok, message, details = cc.verdict(report("1.13.3/connectivity-test-failure.txt"), [])
    assert not ok
    assert message.startswith("Cilium connectivity test failed: 4/42 tests failed (20/300 actions)\n- no-policies\n"
                              "    no-policies/pod-to-host/ping-ipv4-1: cilium-test/client-6965d549d5-hwmbt "
                              "(192.168.61.62) -> 54.243.4.228 (54.243.4.228:0)")
    assert SG_HINT in message
    assert "... and 3 more failed actions" in message  # no-policies-extra lists 8
    assert details["hint"] == SG_HINT
    assert [t["name"] for t in details["failed_tests"] if not t["expected"]] == [
        "no-policies", "no-policies-extra", "allow-all-except-world", "host-entity"]


def test_verdict_blog_failure_expected():
    ok, message, details = cc.verdict(report("1.13.3/connectivity-test-failure.txt"), ["*/pod-to-host", "*nodeport*"])
    assert ok
    assert message == "4 tests failed, all expected (no-policies, no-policies-extra, allow-all-except-world, host-entity)"
    assert details["expected_failures_seen"] == ["no-policies", "no-policies-extra", "allow-all-except-world",
                                                 "host-entity"]


def test_verdict_partly_expected_lists_only_the_rest():
    ok, message, _details = cc.verdict(report("1.13.3/connectivity-test-failure.txt"), ["*/pod-to-host"])
    assert not ok
    assert "- no-policies-extra" in message and "- host-entity" not in message
    assert "Expected failures (ignored): no-policies, allow-all-except-world, host-entity" in message
    assert SG_HINT in message  # the remaining NodePort failures are security-group ones too


def test_verdict_l7_failures_have_no_security_group_hint_and_count_unlisted_tests():
    ok, message, details = cc.verdict(report("1.18.2/connectivity-test-failure.excerpt.txt"), ["client-egress-l7*"])
    assert not ok  # 8 failed tests are not listed in the excerpt: they cannot be known to be expected
    assert "- 8 more failed tests the output does not list" in message
    assert SG_HINT not in message and details["hint"] is None


class _Listed:
    """What the runner returns (``stdout``) and what K8sService.get returns (a dict): the two inputs of the check."""

    def __init__(self, stdout="", daemonset=None):
        self.stdout, self.daemonset = stdout, daemonset
        self.timeouts = []

    def run(self, _args, check=True, timeout=None):
        assert check is False
        self.timeouts.append(timeout)
        return self

    def get(self, kind, name, namespace=None):
        assert (kind, name, namespace) == ("DaemonSet", "cilium", "kube-system")
        return self.daemonset


def _agent(image):
    return {"spec": {"template": {"spec": {"containers": [{"name": "cilium-agent", "image": image}]}}}}


def test_a_cli_of_a_line_that_does_not_support_the_installed_minor_is_refused():
    cli = _Listed("cilium-cli: v0.19.7 compiled with go1.25.5 on linux/amd64\n")
    cc.check_cli_pairing(cli, _Listed(daemonset=_agent("quay.io/cilium/cilium:v1.20.2@sha256:ab")), "kube-system")
    with pytest.raises(ValidationError, match=r"`cilium_path` 'v0.19.7': .*not Cilium 1.14.*use cilium CLI v0.15.23"):
        cc.check_cli_pairing(cli, _Listed(daemonset=_agent("quay.io/cilium/cilium:v1.14.19")), "kube-system")
    # unknown either side: nothing refused (a replay that is not a CLI, no agent DaemonSet)
    cc.check_cli_pairing(_Listed("not a cli"), _Listed(daemonset=_agent("quay.io/cilium/cilium:v1.14.19")),
                         "kube-system")
    cc.check_cli_pairing(cli, _Listed(daemonset=None), "kube-system")


def test_the_version_query_is_not_bounded_by_the_tests_timeout():
    """A connectivity test run with ``timeout: 1`` must not time out in ``cilium version --client`` on a loaded
    machine (the CI failure of stop 21): the local query has the CLI tools' own version timeout."""
    cli = _Listed("cilium-cli: v0.19.7 compiled with go1.25.5 on linux/amd64\n")
    cli.timeout = 1  # what the runner was built with: the test's timeout
    cc.check_cli_pairing(cli, _Listed(daemonset=None), "kube-system")
    assert cli.timeouts == [cc.VERSION_TIMEOUT]


def test_verdict_keeps_a_multi_line_failure_whole():
    ok, message, details = cc.verdict(report("1.20.2/connectivity-test-failure-drops.from-source.txt"), [])
    assert not ok
    lines = message.split("\n")
    at = lines.index("    no-unexpected-packet-drops/no-unexpected-packet-drops/cilium-eks-sandbox/"
                     "ip-192-168-0-11.ec2.internal: Found unexpected packet drops:")
    assert lines[at + 1:at + 4] == ["      {", '        "labels": {', '          "direction": "EGRESS",']
    assert '        "value": 322' in lines and "owners" not in message
    assert details["failed_tests"][0]["actions"][0]["message"].endswith('"value": 322\n}')
