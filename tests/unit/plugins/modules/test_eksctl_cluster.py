# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The eksctl_cluster / eksctl_cluster_info modules: argument spec and failures before any AWS call."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("ansible.module_utils.testing")

from ansible.module_utils.testing import patch_module_args  # noqa: E402

from ansible_collections.cloudnet.cilium_eks.plugins.modules import eksctl_cluster, eksctl_cluster_info  # noqa: E402


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
