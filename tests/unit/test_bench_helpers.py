"""The pure helpers of the benchmarks in bench/ (the benchmarks themselves run with `make bench`, not here)."""
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import _common  # noqa: E402
import many_clusters  # noqa: E402
import noop_cost  # noqa: E402

PROFILE = """\
TASKS RECAP ********************************************************************
Sunday 22 November 2026  05:36:08 +0000 (0:00:00.082)       0:00:55.350 *******
===============================================================================
cloudnet.cilium_eks.bandwidth_manager : Ask the agents what they run --- 6.02s
Wait for Cilium to be healthy, in mode eni ------------------------------ 4.96s
Summarise the cluster --------------------------------------------------- 0.08s
"""

RECAP = """\
PLAY RECAP *********************************************************************
bench-mc4-0                : ok=83   changed=0    unreachable=0    failed=0    skipped=27   rescued=0    ignored=0
bench-mc4-1                : ok=85   changed=3    unreachable=0    failed=1    skipped=25   rescued=0    ignored=0
"""


def test_slowest_tasks_reads_the_profile_recap_in_order():
    assert noop_cost.slowest_tasks(PROFILE, count=2) == [
        ("cloudnet.cilium_eks.bandwidth_manager : Ask the agents what they run", 6.02),
        ("Wait for Cilium to be healthy, in mode eni", 4.96)]


def test_changed_count_of_one_host():
    assert noop_cost.changed_count(RECAP, "bench-mc4-1") == 3
    assert noop_cost.changed_count(RECAP, "bench-mc4-0") == 0
    assert noop_cost.changed_count(RECAP, "bench-mc4") is None


def test_recap_per_host():
    assert many_clusters.recap(RECAP) == {"bench-mc4-0": (83, 0, 0), "bench-mc4-1": (85, 3, 1)}


def test_table_aligns_columns_and_shows_none_as_a_dash():
    assert _common.table(["what", "s"], [["site.yml", 12.5], ["helm", None]]).splitlines() == [
        "what         s", "--------  ----", "site.yml  12.5", "helm         -"]


def test_quick_keeps_the_smallest_size_once(monkeypatch):
    monkeypatch.setattr(_common, "prepare_environment", lambda: None)
    args = _common.options(_common.parser("x", sizes=[10, 100], repeat=3), ["--quick"])
    assert (args.sizes, args.repeat) == ([10], 1)
    args = _common.options(_common.parser("x", sizes=[10, 100], repeat=3), ["--sizes", "1,4", "--repeat", "2"])
    assert (args.sizes, args.repeat) == ([1, 4], 2)
