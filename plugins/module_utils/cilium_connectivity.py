# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""``cilium connectivity test`` through the shared runner: argv, report, verdict and namespace cleanup.

The pure parts (``build_argv``, ``is_test_namespace``, ``verdict``) are unit tested; ``run_module`` is the
entry point of the ``cilium_connectivity_test`` module.
"""

from __future__ import annotations

import os
import re

from ansible_collections.cloudnet.cilium_eks.plugins.module_utils import cilium_parsers as parsers
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils import inputs
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils import cilium_table as table
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.cli_tools import VERSION_TIMEOUT, reported_version
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.errors import (
    CiliumEksError,
    CommandError,
    ValidationError,
    format_argv,
    tail,
)
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.k8s_client import cli_kubeconfig
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.k8s_service import K8sService
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.versions import image_version
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.waiter import Waiter

CLI_LABEL = ("app.kubernetes.io/name", "cilium-cli")  # the CLI labels the namespaces it creates
# Namespaces the CLI creates with fixed names besides --test-namespace: cilium-test-ccnp1/2 and cilium-test-ztunnel-*
# (cilium-cli/connectivity/check/deployment.go l.954, l.1780, l.753-772 of the CLI pinned as versions.CILIUM_CLI,
# cilium v1.20.0-pre.1.0.20260419120955-62bccdec3fb9).
FIXED_TEST_NAMESPACES = re.compile(r"^cilium-test-(ccnp\d+|ztunnel-[a-z0-9-]+)$")
NAMESPACE_GONE_TIMEOUT = 60
REPORT_MODE = 0o644  # the JUnit report, readable by CI collectors like the collection's other reports


class ConnectivityTestFailed(CiliumEksError):
    """Tests failed that were not expected to."""


def build_argv(params):
    """Arguments after ``cilium`` for the module parameters."""
    args = ["connectivity", "test", "--namespace", params["cilium_namespace"],
            "--test-namespace", params["namespace"]]
    if params.get("context"):
        args += ["--context", params["context"]]
    for test in params.get("tests") or []:
        args += ["--test", test]
    if params.get("junit_file"):
        args += ["--junit-file", params["junit_file"]]
    for flag in params.get("extra_flags") or []:
        if not isinstance(flag, str) or not flag:
            raise ValidationError("extra_flags", "every element must be a non-empty string", value=flag)
        args.append(flag)
    return args


def is_test_namespace(name, test_namespace):
    """Is ``name`` one of the namespaces ``--test-namespace test_namespace`` makes the CLI create?"""
    if name == test_namespace or re.match(r"^%s-\d+$" % re.escape(test_namespace), name):
        return True
    return bool(FIXED_TEST_NAMESPACES.match(name))


def namespaces_to_clean(before, after, test_namespace):
    """Test namespaces to delete: created during the run, or labelled by the CLI (left by an earlier run).

    ``before``: names before the run; ``after``: ``{name: labels}`` after it."""
    doomed = []
    for name, labels in sorted(after.items()):
        if not is_test_namespace(name, test_namespace):
            continue
        if name not in before or (labels or {}).get(CLI_LABEL[0]) == CLI_LABEL[1]:
            doomed.append(name)
    return doomed


def action_lines(action):
    """A failed action for the failure message: name, source -> destination when the action has them, and its
    whole message, the lines after the first indented under it (the JSON of unexpected packet drops...)."""
    where = ": %s -> %s" % (action["source"] or "?", action["destination"] or "?") \
        if action["source"] or action["destination"] else ""
    message = (action["message"] or "").split("\n")
    head = "    %s%s%s" % (action["name"], where, (": " + message[0]) if message[0] else "")
    return "\n".join([head] + ["      " + line for line in message[1:]])


def verdict(report, expected_failures):
    """(ok, message, details) for a parsed report."""
    split = parsers.classify_failures(report, expected_failures)
    failed_tests = []
    for test in report["failed_tests"]:
        failed_tests.append(dict(test, expected=test["name"] in split["expected"]))
    hint = parsers.security_group_hint(report)
    details = {
        "result": report["result"], "tests": report["tests"], "actions": report["actions"],
        "tests_failed": report["tests_failed"], "actions_failed": report["actions_failed"],
        "tests_skipped": report["tests_skipped"], "scenarios_skipped": report["scenarios_skipped"],
        "test_namespace": report["test_namespace"], "failed_tests": failed_tests,
        "expected_failures_seen": split["expected"], "hint": hint,
    }
    if report["result"] == "success":
        return True, "All %s tests (%s actions) successful" % (report["tests"], report["actions"]), details
    if not split["unexpected"] and not split["unlisted"]:
        return True, "%d tests failed, all expected (%s)" % (report["tests_failed"], ", ".join(split["expected"])), details
    lines = ["%s/%s tests failed (%s/%s actions)" % (report["tests_failed"], report["tests"], report["actions_failed"],
                                                     report["actions"])]
    for test in failed_tests:
        if test["expected"]:
            continue
        lines.append("- %s" % test["name"])
        lines.extend(action_lines(action) for action in test["actions"][:5])
        if len(test["actions"]) > 5:
            lines.append("    ... and %d more failed actions" % (len(test["actions"]) - 5))
    if split["unlisted"]:
        lines.append("- %d more failed tests the output does not list" % split["unlisted"])
    if split["expected"]:
        lines.append("Expected failures (ignored): %s" % ", ".join(split["expected"]))
    unexpected_hint = parsers.security_group_hint(report, tests=split["unexpected"])
    if unexpected_hint:
        lines.append("These failures are what a node security group closed to the nodes' public IPs causes: "
                     + unexpected_hint + "; or list them in expected_failures (e.g. '*/pod-to-host', '*nodeport*').")
    return False, "Cilium connectivity test failed: " + "\n".join(lines), details


class NamespaceJanitor:
    """Lists and deletes the test namespaces through ``k8s`` (a ``K8sService``)."""

    def __init__(self, k8s, test_namespace, waiter=Waiter):
        self.k8s = k8s
        self.test_namespace = test_namespace
        self.waiter = waiter

    def current(self):
        return {ns["metadata"]["name"]: dict(ns["metadata"].get("labels") or {}) for ns in self.k8s.list("Namespace")}

    def clean(self, before, timeout=NAMESPACE_GONE_TIMEOUT):
        """Delete the run's namespaces and wait (up to ``timeout``) for them to go; returns (deleted, remaining)."""
        doomed = namespaces_to_clean(before, self.current(), self.test_namespace)
        for name in doomed:
            self.k8s.delete("Namespace", name, propagation_policy="Background")
        remaining = list(doomed)

        def gone():
            remaining[:] = [n for n in remaining if n in self.current()]
            return not remaining

        if remaining:
            self.waiter(timeout).until(gone)
        return doomed, remaining


def run_cli(module, cli, args, janitor, before):
    """``(result, error, deleted, kept)`` of the CLI run; the test namespaces are cleaned up whatever happens."""
    params = module.params
    kubeconfig = cli_kubeconfig(params, module.tmpdir)
    env = {"KUBECONFIG": kubeconfig} if kubeconfig else None
    result = error = None
    deleted, kept = [], []
    try:
        try:
            result = cli.run(args, check=False, env=env)
        except CommandError as exc:  # timed out (the runner killed the CLI's process group)
            error = exc
    finally:
        if params["keep_namespaces"]:
            kept = [n for n in janitor.current() if is_test_namespace(n, params["namespace"])]
        else:
            deleted, remaining = janitor.clean(before)
            if remaining:
                module.warn("Test namespaces still terminating after %ss: %s" % (NAMESPACE_GONE_TIMEOUT,
                                                                                 ", ".join(remaining)))
    return result, error, deleted, kept


def installed_cilium_version(k8s, namespace):
    """The Cilium version of the agent DaemonSet's image (``cilium-agent`` container), None when unknown."""
    daemonset = k8s.get("DaemonSet", "cilium", namespace) or {}
    containers = ((((daemonset.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or [])
    agent = next((c for c in containers if c.get("name") == "cilium-agent"), containers[0] if containers else {})
    return image_version(agent.get("image"))


def check_cli_pairing(cli, k8s, namespace):
    """Refuse a cilium CLI whose release line does not support the installed Cilium minor (``cilium_table.
    CLI_LINES``, from the cilium-cli README of each line); nothing is refused when either version is unknown.
    The version query has its own timeout: the test's ``timeout`` bounds the test, not this local query."""
    query = cli.run(["version", "--client"], check=False, timeout=VERSION_TIMEOUT)
    cli_version = reported_version("cilium", query.stdout)
    cilium_version = installed_cilium_version(k8s, namespace)
    if cli_version is None or cilium_version is None:
        return
    problem = table.cli_problem(cli_version, cilium_version)
    if problem:
        raise ValidationError("cilium_path", problem + " (tools_versions.cilium, or cilium_path)", value=cli_version)


def incomplete_run(result, report, deleted, kept):
    """The error for a run that did not get to a report (or reported success with a failing exit code)."""
    reason = "no test report in its output" if report["result"] is None else \
        "a success report but exit code %s" % result.rc
    return CommandError(result.argv, result.rc, stdout=result.stdout, stderr=result.stderr,
                        duration=round(result.duration, 1), namespaces_deleted=deleted, namespaces_kept=kept,
                        context="cilium connectivity test did not complete (%s)" % reason)


def run_module(module):
    """Entry point of the ``cilium_connectivity_test`` module."""
    params = module.params
    inputs.timeout(params["timeout"], "timeout")
    if params.get("junit_file"):
        inputs.file_path(params["junit_file"], "junit_file")
    args = build_argv(params)
    if module.check_mode:
        return {"changed": False, "skipped": True, "namespaces_deleted": [], "namespaces_kept": [],
                "msg": "check mode: `cilium %s` not run" % format_argv(args)}
    cli = module.runner("cilium", path_option="cilium_path")
    cli.executable  # pylint: disable=pointless-statement  # CommandNotFoundError before touching the cluster
    k8s = K8sService(module.k8s_client())
    check_cli_pairing(cli, k8s, params["cilium_namespace"])
    janitor = NamespaceJanitor(k8s, params["namespace"])
    before = set(janitor.current())
    if params.get("junit_file") and not os.path.isdir(os.path.dirname(os.path.abspath(params["junit_file"]))):
        os.makedirs(os.path.dirname(os.path.abspath(params["junit_file"])))
    result, error, deleted, kept = run_cli(module, cli, args, janitor, before)
    if error is not None:
        raise CommandError(error.argv, error.rc, stdout=error.stdout_tail, stderr=error.stderr_tail,
                           timed_out=error.timed_out, timeout=error.timeout, duration=error.duration,
                           namespaces_deleted=deleted, namespaces_kept=kept) from error
    report = parsers.parse_connectivity_report(result.stdout + ("\n" + result.stderr if result.stderr else ""))
    if report["result"] is None or (report["result"] == "success" and result.rc != 0):
        raise incomplete_run(result, report, deleted, kept)
    ok, message, details = verdict(report, params["expected_failures"])
    # Not "rc": Ansible fails any task whose result has a non-zero "rc", even when the failures were expected.
    details.update(cmd=format_argv(result.argv), exit_code=result.rc, duration=round(result.duration, 1),
                   stdout_tail=tail(result.stdout), namespaces_deleted=deleted, namespaces_kept=kept)
    if params.get("junit_file") and os.path.isfile(params["junit_file"]):
        os.chmod(params["junit_file"], REPORT_MODE)  # the CLI creates it with the umask's mode
        details["junit_file"] = params["junit_file"]
    if not ok:
        raise ConnectivityTestFailed(message, **details)
    details.update(msg=message, changed=bool([n for n in kept if n not in before]))
    return details
