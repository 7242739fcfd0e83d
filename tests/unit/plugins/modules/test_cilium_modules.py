# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""cilium_status / cilium_connectivity_test as modules: input checked before any cluster call, check mode."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("ansible.module_utils.testing")

from ansible.module_utils.testing import patch_module_args  # noqa: E402

from ansible_collections.cloudnet.cilium_eks.plugins.modules import cilium_connectivity_test, cilium_status  # noqa: E402


def run(module, args, capsys):
    with patch_module_args(args):
        with pytest.raises(SystemExit) as info:
            module.main()
    return info.value.code, json.loads(capsys.readouterr().out)


def test_status_rejects_unknown_expect_key_before_touching_the_cluster(capsys, tmp_path):
    code, out = run(cilium_status, {"kubeconfig": str(tmp_path / "absent"), "expect": {"chaining": "aws-cni"}}, capsys)
    assert code == 1 and out["error_type"] == "ValidationError"
    assert out["msg"].startswith("Invalid `expect`: unknown key 'chaining'. Accepted values: bandwidth_manager,")


def test_status_rejects_negative_timeout(capsys, tmp_path):
    code, out = run(cilium_status, {"kubeconfig": str(tmp_path / "absent"), "timeout": -1}, capsys)
    assert code == 1 and out["msg"] == "Invalid `timeout` -1: must be 0 or more seconds"


def test_status_names_a_missing_kubeconfig(capsys, tmp_path):
    code, out = run(cilium_status, {"kubeconfig": str(tmp_path / "absent")}, capsys)
    assert code == 1 and out["error_type"] == "ValidationError" and "kubeconfig" in out["msg"]


def test_connectivity_check_mode_runs_nothing(capsys, tmp_path):
    args = {"cilium_path": str(tmp_path / "no-such-cilium"), "kubeconfig": str(tmp_path / "absent"),
            "tests": ["no-policies"], "_ansible_check_mode": True}
    code, out = run(cilium_connectivity_test, args, capsys)
    assert code == 0 and out["changed"] is False and out["skipped"] is True
    assert "connectivity test --namespace kube-system --test-namespace cilium-test --test no-policies" in out["msg"]


def test_connectivity_missing_cli_is_named_before_the_cluster_is_read(capsys, tmp_path):
    code, out = run(cilium_connectivity_test, {"cilium_path": str(tmp_path / "no-such-cilium"),
                                               "kubeconfig": str(tmp_path / "absent")}, capsys)
    assert code == 1 and out["error_type"] == "CommandNotFoundError" and out["option"] == "cilium_path"


def test_connectivity_rejects_zero_timeout(capsys, tmp_path):
    code, out = run(cilium_connectivity_test, {"timeout": 0, "kubeconfig": str(tmp_path / "absent")}, capsys)
    assert code == 1 and out["msg"] == "Invalid `timeout` 0: must be a whole number of seconds, at least 1"
