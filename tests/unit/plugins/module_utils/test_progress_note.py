# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The module side of progress lines: the latest line in the file the action plugin named, or nothing."""

from __future__ import annotations

import sys

from ansible_collections.cloudnet.cilium_eks.plugins.module_utils import progress
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.runner import CommandRunner


def test_note_keeps_only_the_latest_line_folded_and_cut(tmp_path, monkeypatch):
    path = tmp_path / "progress"
    monkeypatch.setenv(progress.PROGRESS_FILE_ENV, str(path))
    progress.note("first")
    progress.note("  second\n  line  ")
    assert path.read_text() == "second line\n"
    progress.note("   ")  # a blank line keeps the last one
    assert path.read_text() == "second line\n"
    progress.note("x" * 1000)
    assert path.read_text() == "x" * progress.MAX_LINE + "\n"


def test_without_the_variable_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.delenv(progress.PROGRESS_FILE_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    progress.note("nobody asked")
    assert progress.line_writer() is None
    assert list(tmp_path.iterdir()) == []


def test_a_file_that_cannot_be_written_does_not_fail_the_module(tmp_path):
    progress.note("line", path=str(tmp_path / "missing-folder" / "progress"))


def test_the_runner_notes_each_output_line_of_the_cli(tmp_path, monkeypatch):
    path = tmp_path / "progress"
    monkeypatch.setenv(progress.PROGRESS_FILE_ENV, str(path))
    runner = CommandRunner("python", path=sys.executable, timeout=30)
    result = runner.run(["-c", "print('waiting for CloudFormation stack a'); print('waiting for stack b')"])
    assert result.ok
    assert path.read_text() == "waiting for stack b\n"
