# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The module's own layer: check mode touches nothing, bad input fails naming the option."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("ansible.module_utils.testing")

from ansible.module_utils.testing import patch_module_args  # noqa: E402

from ansible_collections.cloudnet.cilium_eks.plugins.modules import cilium_bandwidth_test  # noqa: E402


def run_module(args, capsys):
    with patch_module_args(args):
        with pytest.raises(SystemExit) as info:
            cilium_bandwidth_test.main()
    return info.value.code, json.loads(capsys.readouterr().out)


def test_check_mode_validates_and_creates_nothing(capsys):
    # No kubeconfig exists here: any call to the cluster would fail the task.
    code, out = run_module({"limit": "100Mi", "_ansible_check_mode": True, "kubeconfig": "/nonexistent"}, capsys)
    assert code == 0 and out["changed"] is True and out["limit_bps"] == 104_857_600 and out["passed"] is None


@pytest.mark.parametrize("args,fragment", [
    ({"limit": "10Mbit"}, "Invalid `limit` '10Mbit'"),
    ({"limit": "500"}, "unreasonably small"),
    ({"min_ratio": 1.5}, "Invalid `min_ratio`"),
])
def test_bad_input_fails_before_any_call(args, fragment, capsys):
    args = dict(args, _ansible_check_mode=True, kubeconfig="/nonexistent")
    code, out = run_module(args, capsys)
    assert code == 1 and out["failed"] is True and fragment in out["msg"]
