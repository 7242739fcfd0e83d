# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The action plugins' part of progress lines: when they show lines, and the file the module gets to write in.

The module is replaced by a function standing for ``_execute_module`` (it reads the environment the plugin set and
writes a line, as ``module_utils/progress.note`` does); the real module runs in tests/integration."""

from __future__ import annotations

import threading
import types

import pytest

from ansible_collections.cloudnet.cilium_eks.plugins.action import cilium_bandwidth_test, cilium_connectivity_test
from ansible_collections.cloudnet.cilium_eks.plugins.action import cilium_release
from ansible_collections.cloudnet.cilium_eks.plugins.action import cilium_status, eksctl_cluster
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.progress import PROGRESS_FILE_ENV
from ansible_collections.cloudnet.cilium_eks.plugins.plugin_utils import progress


class Templar:
    @staticmethod
    def template(value):
        return value


def action(module, args, check_mode=False, transport="local"):
    plugin = object.__new__(module.ActionModule)
    plugin._task = types.SimpleNamespace(args=args, check_mode=check_mode, environment=[{"A": "1"}])
    plugin._connection = types.SimpleNamespace(transport=transport)
    plugin._templar = Templar()
    return plugin


@pytest.mark.parametrize("module, args, expected", [
    (cilium_status, {"namespace": "kube-system", "timeout": 600},
     "waiting for Cilium to be healthy on every node (namespace kube-system, timeout 600s)"),
    (cilium_status, {"wait": False}, None),
    (cilium_connectivity_test, {"timeout": 1800}, "waiting for cilium connectivity test (timeout 1800s)"),
    (eksctl_cluster, {"name": "demo", "state": "absent", "timeout": 1800},
     "waiting for eksctl to delete EKS cluster demo (timeout 1800s)"),
    (cilium_release, {"release_name": "cilium", "release_namespace": "kube-system", "atomic": True, "timeout": "600s"},
     "waiting for helm upgrade --install of release kube-system/cilium (timeout 600s)"),
    (cilium_release, {"release_name": "cilium", "release_namespace": "kube-system"}, None),
    (cilium_bandwidth_test, {"limit": "10M", "tool": "iperf3"}, "waiting for the bandwidth test (limit 10M, iperf3)"),
])
def test_what_each_module_waits_for(module, args, expected):
    assert action(module, args).waiting_for(args) == expected


def test_nothing_is_awaited_in_check_mode_where_the_module_does_not_run_its_command():
    for module in (cilium_connectivity_test, eksctl_cluster, cilium_release, cilium_bandwidth_test):
        args = {"name": "demo", "state": "absent", "atomic": True, "release_name": "c", "release_namespace": "n"}
        assert action(module, args, check_mode=True).waiting_for(args) is None


def test_the_module_writes_its_line_in_the_file_named_in_its_environment(monkeypatch):
    shown = []
    monkeypatch.setattr(progress.display, "display", lambda line, stderr=False: shown.append((line, stderr)))
    plugin = action(cilium_status, {"timeout": 60})

    def execute_module(module_name=None, module_args=None, task_vars=None, wrap_async=False):
        environment = {}
        for entry in plugin._task.environment:
            environment.update(entry)
        with open(environment[PROGRESS_FILE_ENV], "w") as stream:
            stream.write("1/2 agents ready\n")
        threading.Event().wait(1.4)  # the module waits; the plugin shows a line meanwhile
        return {"changed": False, "environment": environment}

    plugin._execute_module = execute_module
    result = plugin.execute_with_progress({"inventory_hostname": "sbx", progress.INTERVAL_VARIABLE: "1"})
    assert result["environment"]["A"] == "1"  # the task's own environment is kept
    assert plugin._task.environment == [{"A": "1"}]  # and given back as it was
    assert shown == [("sbx: 1s waiting for Cilium to be healthy on every node (namespace kube-system, timeout 60s): "
                      "1/2 agents ready", True)]


def test_lines_every_interval_while_the_module_runs_and_none_after(monkeypatch):
    shown = []
    monkeypatch.setattr(progress, "ProgressTicker", progress_ticker_recording(shown))
    plugin = action(cilium_status, {"timeout": 60})
    plugin._execute_module = lambda **kwargs: {"changed": False}
    plugin.execute_with_progress({"inventory_hostname": "sbx", progress.INTERVAL_VARIABLE: 5})
    assert shown == [("sbx", "waiting for Cilium to be healthy on every node (namespace kube-system, timeout 60s)",
                      5, "started", "stopped")]


def test_no_file_and_no_lines_when_the_interval_is_zero_or_the_module_runs_in_the_background(monkeypatch):
    shown = []
    monkeypatch.setattr(progress, "ProgressTicker", progress_ticker_recording(shown))
    plugin = action(cilium_status, {"timeout": 60})
    calls = []
    plugin._execute_module = lambda **kwargs: calls.append(kwargs) or {"changed": False}
    plugin.execute_with_progress({progress.INTERVAL_VARIABLE: 0})
    plugin.execute_with_progress({}, wrap_async=True)
    assert shown == [] and [call["wrap_async"] for call in calls] == [False, True]
    assert plugin._task.environment == [{"A": "1"}]


def test_a_remote_target_gets_no_file_but_the_lines_still_say_what_is_awaited(monkeypatch):
    shown = []
    monkeypatch.setattr(progress, "ProgressTicker", progress_ticker_recording(shown))
    plugin = action(cilium_status, {"timeout": 60}, transport="ssh")
    plugin._execute_module = lambda **kwargs: {"changed": False, "env": list(plugin._task.environment)}
    result = plugin.execute_with_progress({"inventory_hostname": "sbx"})
    assert result["env"] == [{"A": "1"}]
    assert shown[0][2] == progress.DEFAULT_INTERVAL and shown[0][-2:] == ("started", "stopped")


def progress_ticker_recording(shown):
    class Recording:
        def __init__(self, host, waiting_for, interval, path=None):
            self.entry = [host, waiting_for, interval]

        def start(self):
            self.entry.append("started")
            return self

        def stop(self):
            self.entry.append("stopped")
            shown.append(tuple(self.entry))
    return Recording
