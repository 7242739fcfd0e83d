# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The values diff cilium_release shows under --diff (the action plugin's pure part)."""

from __future__ import annotations

import types

import pytest
import yaml

from ansible_collections.cloudnet.cilium_eks.plugins.action.cilium_release import (
    HELM_DIFF_WARNING,
    values_diff,
    values_yaml,
    warning_text,
)


def test_the_diff_is_the_values_before_and_after_as_sorted_yaml():
    diff = values_diff({"ipam": {"mode": "eni"}, "bandwidthManager": {"enabled": False}},
                       {"ipam": {"mode": "eni"}, "bandwidthManager": {"enabled": True}, "debug": {"enabled": True}},
                       "kube-system/cilium", "cilium 1.20.2")
    assert diff["before"] == "bandwidthManager:\n  enabled: false\nipam:\n  mode: eni\n"
    assert yaml.safe_load(diff["after"]) == {"ipam": {"mode": "eni"}, "bandwidthManager": {"enabled": True},
                                             "debug": {"enabled": True}}
    assert diff["before_header"] == "kube-system/cilium: user-supplied values (helm get values)"
    assert diff["after_header"] == "kube-system/cilium: values to install (chart cilium 1.20.2)"
    assert "managedFields" not in str(diff)


def test_without_a_release_the_before_is_empty():
    diff = values_diff(None, {"debug": {"enabled": True}}, "kube-system/cilium", "cilium")
    assert diff["before"] == "" and diff["before_header"] == "kube-system/cilium: no release"
    assert values_yaml({}) == ""


def test_the_helm_diff_warning_is_recognised_as_a_string_and_as_a_2_19_warning_summary():
    text = HELM_DIFF_WARNING + " Install helm diff >= 3.4.1 for better results."
    assert warning_text(text).startswith(HELM_DIFF_WARNING)
    summary = types.SimpleNamespace(event=types.SimpleNamespace(msg=text))
    assert warning_text(summary).startswith(HELM_DIFF_WARNING)


def test_task_arguments_tagged_by_ansible_core_are_dumped_as_plain_yaml():
    """ansible-core 2.19 hands action plugins tagged str/dict subclasses (their origin), which yaml.safe_dump
    refuses (the --diff run failed on it)."""
    tags = pytest.importorskip("ansible._internal._datatag._tags")
    origin = tags.Origin(path="/site.yml", line_num=1)
    values = origin.tag({"ipam": origin.tag({"mode": origin.tag("eni")})})
    assert values_yaml(values) == "ipam:\n  mode: eni\n"
