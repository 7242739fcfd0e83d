# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import json
import os
import sys

import pytest

pytest.importorskip("ansible.module_utils.testing")

from ansible.module_utils.testing import patch_module_args  # noqa: E402

from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.errors import ValidationError  # noqa: E402
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.module_base import CiliumEksModule  # noqa: E402

SPEC = dict(
    timeout=dict(type="int", default=600),
    python_path=dict(type="path"),
    token=dict(type="str", no_log=True),
)


def _exit(module_args, fn, capsys, **kwargs):
    with patch_module_args(module_args):
        module = CiliumEksModule(argument_spec=SPEC, **kwargs)
        with pytest.raises(SystemExit) as info:
            module.run(fn)
    return info.value.code, json.loads(capsys.readouterr().out)


def test_run_exits_with_result(capsys):
    code, out = _exit({}, lambda m: dict(changed=True, answer=42), capsys)
    assert code == 0 and out["changed"] is True and out["answer"] == 42


def test_run_turns_cilium_eks_error_into_fail_json(capsys):
    def fail(module):
        raise ValidationError("cilium_version", "not supported", accepted=["1.18", "1.19"], value="1.2")

    code, out = _exit({}, fail, capsys)
    assert code == 1 and out["failed"] is True
    assert out["error_type"] == "ValidationError" and out["accepted"] == ["1.18", "1.19"]
    assert "cilium_version" in out["msg"]


def test_runner_uses_path_option_timeout_and_redacts_no_log(capsys):
    def use_runner(module):
        runner = module.runner("python")
        assert runner.executable == os.path.abspath(sys.executable)
        assert runner.timeout == 33
        runner.run(["-c", "import sys; sys.exit(4)", module.params["token"]])

    code, out = _exit({"timeout": 33, "python_path": sys.executable, "token": "tok-123456"}, use_runner, capsys)
    assert code == 1 and out["rc"] == 4 and out["error_type"] == "CommandError"
    assert "tok-123456" not in json.dumps(out)


def test_k8s_auth_options_merged(capsys):
    with patch_module_args({"kubeconfig": "~/kc", "context": "c"}):
        module = CiliumEksModule(argument_spec=SPEC, k8s_auth=True)
    assert module.params["context"] == "c"
    assert module.params["kubeconfig"].endswith("/kc") and "~" not in module.params["kubeconfig"]
    assert module.params["validate_certs"] is None
