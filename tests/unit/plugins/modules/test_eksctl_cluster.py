# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The eksctl_cluster / eksctl_cluster_info modules: argument spec, failures before any AWS call, and the case table
(test_eksctl_cluster.yaml: options in, the eksctl command lines, the result out)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import yaml

pytest.importorskip("ansible.module_utils.testing")

from ansible.module_utils.testing import patch_module_args  # noqa: E402

from ansible_collections.cloudnet.cilium_eks.plugins.module_utils import eks_service, eksctl  # noqa: E402
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.aws_client import AwsError  # noqa: E402
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.eks_service import ClusterManager  # noqa: E402
from ansible_collections.cloudnet.cilium_eks.plugins.modules import eksctl_cluster, eksctl_cluster_info  # noqa: E402

HERE = Path(__file__).resolve().parent
RECORDINGS = HERE.parents[2] / "recordings" / "eksctl"
CASES = yaml.safe_load((HERE / "test_eksctl_cluster.yaml").read_text())["cases"]


def _run(module, args, capsys, monkeypatch):
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    with patch_module_args(args):
        with pytest.raises(SystemExit) as caught:
            module.main()
    return caught.value.code, json.loads(capsys.readouterr().out)


def test_config_and_structured_options_are_mutually_exclusive(capsys, monkeypatch):
    code, out = _run(eksctl_cluster, {"config": {"metadata": {"name": "a"}}, "nodegroups": [{"name": "x"}]},
                     capsys, monkeypatch)
    assert code == 1 and "mutually exclusive: config|nodegroups" in out["msg"]


def test_name_or_config_is_required(capsys, monkeypatch):
    code, out = _run(eksctl_cluster, {"region": "us-east-1"}, capsys, monkeypatch)
    assert code == 1 and "one of the following is required: name, config" in out["msg"]


def test_nodegroup_name_is_required_by_the_spec(capsys, monkeypatch):
    code, out = _run(eksctl_cluster, {"name": "a", "nodegroups": [{"instance_type": "t3.medium"}]}, capsys,
                     monkeypatch)
    assert code == 1 and "missing required arguments: name" in out["msg"]


def test_missing_region_fails_before_any_aws_call(capsys, monkeypatch):
    code, out = _run(eksctl_cluster, {"name": "basic-cilium", "_ansible_check_mode": True}, capsys, monkeypatch)
    assert code == 1
    assert out["error_type"] == "ValidationError" and out["name"] == "region"
    assert "AWS_REGION/AWS_DEFAULT_REGION" in out["msg"]


def test_bad_taint_fails_with_the_option_named(capsys, monkeypatch):
    args = {"name": "basic-cilium", "region": "us-east-1",
            "nodegroups": [{"name": "ng-1", "taints": [{"key": "k", "effect": "NoStart"}]}]}
    code, out = _run(eksctl_cluster, args, capsys, monkeypatch)
    assert code == 1 and out["name"] == "nodegroups[ng-1].taints[0].effect"
    assert out["accepted"] == ["NoSchedule", "PreferNoSchedule", "NoExecute"]


def test_info_needs_a_region(capsys, monkeypatch):
    code, out = _run(eksctl_cluster_info, {}, capsys, monkeypatch)
    assert code == 1 and out["name"] == "region"


# --------------------------------------------------------------------------- the case table (UTHelper style)

# The eksctl stand-in: records its argv (a rendered ``-f`` file as ``<config>``, its text kept), answers with the
# recorded output of the call at its index. It judges nothing: the test compares the calls afterwards.
FAKE_EKSCTL = """#!%s
import json, os, sys
calls = json.load(open(os.environ["FAKE_EKSCTL_CALLS"]))
log = os.environ["FAKE_EKSCTL_LOG"]
seen = json.load(open(log)) if os.path.exists(log) else []
argv, config = sys.argv[1:], None
if "-f" in argv:
    config = open(argv[argv.index("-f") + 1]).read()
    argv[argv.index("-f") + 1] = "<config>"
written = argv[argv.index("--kubeconfig") + 1] if "--kubeconfig" in argv else None
if written and "/eksctl-kubeconfig-" in written:  # the scratch copy check mode compares
    argv[argv.index("--kubeconfig") + 1] = "<scratch copy>"
seen.append({"argv": argv, "config": config})
json.dump(seen, open(log, "w"))
call = calls[len(seen) - 1] if len(seen) <= len(calls) else {"rc": 99, "stderr": "unexpected eksctl call"}
if call.get("kubeconfig") and written:
    open(written, "w").write(call["kubeconfig"])
sys.stdout.write(call.get("stdout", ""))
sys.stderr.write(call.get("stderr", ""))
sys.exit(call.get("rc", 0))
"""


class RecordedAws:
    """AwsClients answering from a case's ``aws`` section: ``before`` until eksctl ran once, ``after`` then."""

    def __init__(self, answers, eksctl_log):
        self.answers, self.eksctl_log, self.region = answers or {}, eksctl_log, "us-east-1"

    @property
    def state(self):
        ran = self.eksctl_log.exists() and json.loads(self.eksctl_log.read_text())
        return (self.answers.get("after") if ran and "after" in self.answers else self.answers.get("before")) or {}

    def call(self, service, operation, missing_ok=(), **kwargs):
        if operation == "describe_cluster":
            if self.state.get("cluster") is None:
                if "ResourceNotFoundException" in missing_ok:
                    return None
                raise AwsError("eks:DescribeCluster", self.region, "ResourceNotFoundException", "No cluster found")
            return {"cluster": self.state["cluster"]}
        if operation == "describe_nodegroup":
            return {"nodegroup": self.state["nodegroups"][kwargs["nodegroupName"]]}
        raise AssertionError(operation)

    def paginate(self, service, operation, key, **kwargs):
        if operation == "list_nodegroups":
            return list(self.state.get("nodegroups") or {})
        if operation == "describe_stacks":
            return self.state.get("stacks") or []
        if operation == "describe_stack_events":
            return (self.state.get("events") or {}).get(kwargs["StackName"], [])
        raise AssertionError(operation)


def _with_tmp(value, tmp):
    if isinstance(value, str):
        return value.replace("{tmp}", str(tmp))
    if isinstance(value, list):
        return [_with_tmp(v, tmp) for v in value]
    if isinstance(value, dict):
        return {k: _with_tmp(v, tmp) for k, v in value.items()}
    return value


def _at(result, path):
    for part in path.split("."):
        result = result[part]
    return result


def run_case(case, tmp_path, capsys, monkeypatch):
    """``(module result, eksctl calls)`` of one case, run through the real module and the real runner."""
    case = _with_tmp(case, tmp_path)
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    for name, value in (case.get("env") or {}).items():
        monkeypatch.setenv(name, value)
    if case.get("on_path"):  # stand-ins for the commands a kubeconfig logs in with, first on PATH
        (tmp_path / "bin").mkdir()
        for name in case["on_path"]:
            (tmp_path / "bin" / name).write_text("#!/bin/sh\nexit 0\n")
            (tmp_path / "bin" / name).chmod(0o755)
        monkeypatch.setenv("PATH", "%s:%s" % (tmp_path / "bin", os.environ["PATH"]))
    calls = [dict(call, stdout=(RECORDINGS / call["stdout_recording"]).read_text()) if "stdout_recording" in call
             else call for call in case["eksctl"]]
    fake, log = tmp_path / "eksctl", tmp_path / "eksctl-calls.json"
    fake.write_text(FAKE_EKSCTL % sys.executable)
    fake.chmod(0o755)
    (tmp_path / "answers.json").write_text(json.dumps(calls))
    monkeypatch.setenv("FAKE_EKSCTL_CALLS", str(tmp_path / "answers.json"))
    monkeypatch.setenv("FAKE_EKSCTL_LOG", str(log))
    if case.get("kubeconfig_before"):
        (tmp_path / "kubeconfig").write_text(case["kubeconfig_before"])
        (tmp_path / "kubeconfig").chmod(0o600)
    aws = RecordedAws(case.get("aws"), log)
    read = []  # the DaemonSets the module looked for (``daemonsets``: those that exist)
    monkeypatch.setattr(ClusterManager, "daemonset_exists", staticmethod(lambda _kubeconfig, namespace, name: (
        read.append("%s/%s" % (namespace, name)) or "%s/%s" % (namespace, name) in case.get("daemonsets", []))))
    args = dict(case["input"], eksctl_path=str(fake), _ansible_check_mode=case.get("check_mode", False))
    with patch_module_args(args):
        module = eksctl_cluster.build_module()
        region = module.params.get("region") or os.environ.get("AWS_DEFAULT_REGION")
        warned, warn = [], module.warn
        module.warn = lambda msg: (warned.append(msg), warn(msg))
        with pytest.raises(SystemExit):
            module.run(lambda m: eksctl.ensure(m, ClusterManager(m, region, aws=aws)))
    result = json.loads(capsys.readouterr().out)
    result["daemonsets_read"] = read
    result["warned"] = warned  # what module.warn was given (Ansible de-duplicates its own warnings per process)
    return result, json.loads(log.read_text()) if log.exists() else []


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_eksctl_cluster_case(case, tmp_path, capsys, monkeypatch):
    result, calls = run_case(case, tmp_path, capsys, monkeypatch)
    case = _with_tmp(case, tmp_path)
    assert [call["argv"] for call in calls] == [call["argv"] for call in case["eksctl"]], result.get("msg")
    for call, expected in zip(calls, case["eksctl"]):
        assert expected.get("config_contains", "") in (call["config"] or "")
        assert not expected.get("config_lacks") or expected["config_lacks"] not in call["config"]
    assert bool(result.get("failed")) is bool(case.get("failed")), result.get("msg")
    for path, value in (case.get("output") or {}).items():
        assert _at(result, path) == value, path
    for path, wanted in (case.get("contains") or {}).items():
        found = json.dumps(_at(result, path))
        for text in wanted if isinstance(wanted, list) else [wanted]:
            assert text in found, (path, text, found[:2000])
    if "kubeconfig_after" in case:
        assert (tmp_path / "kubeconfig").read_text() == case["kubeconfig_after"]


def test_the_case_table_covers_every_eksctl_command_the_module_runs():
    commands = {tuple(call["argv"][:2]) for case in CASES for call in case["eksctl"]}
    assert commands == {("create", "cluster"), ("create", "nodegroup"), ("utils", "write-kubeconfig"),
                        ("scale", "nodegroup"), ("delete", "cluster")}


def test_info_lists_or_describes_with_stacks(capsys, monkeypatch, tmp_path):
    answers = {"before": {
        "cluster": CASES[1]["aws"]["after"]["cluster"], "nodegroups": CASES[1]["aws"]["after"]["nodegroups"],
        "stacks": [{"StackName": "eksctl-basic-cilium-cluster", "StackStatus": "CREATE_COMPLETE",
                    "EnableTerminationProtection": True},
                   {"StackName": "eksctl-basic-cilium-nodegroup-ng-1", "StackStatus": "ROLLBACK_COMPLETE"},
                   {"StackName": "eksctl-other-cluster", "StackStatus": "CREATE_COMPLETE"}],
        "events": {"eksctl-basic-cilium-nodegroup-ng-1": [
            {"StackName": "eksctl-basic-cilium-nodegroup-ng-1", "LogicalResourceId": "ManagedNodeGroup",
             "ResourceType": "AWS::EKS::Nodegroup", "ResourceStatus": "CREATE_FAILED", "Timestamp": "t",
             "ResourceStatusReason": "Nodegroup ng-1 failed to stabilize: Internal Failure"}]}}}
    aws = RecordedAws(answers, tmp_path / "none.json")
    with patch_module_args({"name": "basic-cilium", "region": "us-east-1", "stacks": True}):
        module = eksctl_cluster_info.build_module()
        described = eksctl.info(module, ClusterManager(module, "us-east-1", aws=aws))
    assert described["exists"] is True and described["managed"] is True and described["status"] == "ACTIVE"
    assert [(s["name"], s["kind"], s["nodegroup"]) for s in described["stacks"]] == [
        ("eksctl-basic-cilium-cluster", "cluster", None), ("eksctl-basic-cilium-nodegroup-ng-1", "nodegroup", "ng-1")]
    assert [s["termination_protection"] for s in described["stacks"]] == [True, False]
    assert described["stack_failures"][0]["reason"] == "Nodegroup ng-1 failed to stabilize: Internal Failure"


def test_eksctl_gets_the_modules_timeout_and_is_killed_only_a_grace_later(tmp_path):
    with patch_module_args({"name": "basic-cilium", "region": "us-east-1", "timeout": 900}):
        module = eksctl_cluster.build_module()
        manager = ClusterManager(module, "us-east-1", aws=RecordedAws({}, tmp_path / "none.json"))
        assert manager.timeout_flag() == ["--timeout", "900s"]
        assert manager.eksctl.timeout == 900 + eks_service.KILL_GRACE


def test_the_login_of_a_recorded_real_kubeconfig_is_found_on_the_given_path(tmp_path):
    recorded = RECORDINGS / "write_kubeconfig_0.215.kubeconfig.yaml"  # eksctl 0.215 with the AWS CLI on PATH
    assert eks_service.kubeconfig_login(str(recorded), search_path=str(tmp_path)) == {"command": "aws", "path": None}
    (tmp_path / "aws").write_text("#!/bin/sh\n")
    (tmp_path / "aws").chmod(0o755)
    assert eks_service.kubeconfig_login(str(recorded), search_path=str(tmp_path))["path"] == str(tmp_path / "aws")
    assert eks_service.kubeconfig_login(str(tmp_path / "missing")) is None
