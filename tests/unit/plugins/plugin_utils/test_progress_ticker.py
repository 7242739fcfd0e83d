# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The controller side of progress lines: one line per interval, with the module's latest line."""

from __future__ import annotations

import threading

from ansible_collections.cloudnet.cilium_eks.plugins.plugin_utils.progress import (
    ProgressTicker,
    latest_line,
    progress_line,
)


def test_the_line_says_host_elapsed_what_and_the_latest_module_line():
    assert progress_line("sbx", 61.7, "waiting for helm", "") == "sbx: 61s waiting for helm"
    assert progress_line("sbx", 30, "waiting for Cilium", "1/2 agents ready") == \
        "sbx: 30s waiting for Cilium: 1/2 agents ready"


def test_latest_line_is_empty_before_the_module_wrote_one(tmp_path):
    assert latest_line(None) == ""
    assert latest_line(str(tmp_path / "absent")) == ""
    (tmp_path / "p").write_text("stack CREATE_IN_PROGRESS\n")
    assert latest_line(str(tmp_path / "p")) == "stack CREATE_IN_PROGRESS"


def test_the_ticker_shows_a_line_per_interval_until_stopped(tmp_path):
    path = tmp_path / "p"
    path.write_text("1/2 agents ready\n")
    shown, three = [], threading.Event()

    def show(line):
        shown.append(line)
        if len(shown) == 3:
            three.set()

    ticker = ProgressTicker("sbx", "waiting for Cilium", 0.05, path=str(path), show=show).start()
    assert three.wait(5)
    ticker.stop()
    count = len(shown)
    assert all(line.startswith("sbx: ") and line.endswith("s waiting for Cilium: 1/2 agents ready") for line in shown)
    threading.Event().wait(0.2)
    assert len(shown) == count  # nothing after stop()


def test_a_module_that_ends_before_the_first_interval_prints_nothing():
    shown = []
    ticker = ProgressTicker("sbx", "waiting for helm", 30, show=shown.append).start()
    ticker.stop()
    assert shown == []
