"""A release left behind by an interrupted helm run, recognised from its history (module_utils/helm_release.py)."""
import pytest

from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.helm_release import assess, parse_time


def history(*statuses):
    return [{"revision": i + 1, "status": status, "chart": "cilium-1.20.%d" % i, "updated": "2026-12-06T12:00:00Z"}
            for i, status in enumerate(statuses)]


CASES = [
    # (revisions oldest first, age of the last, what is found, action, rollback target)
    ((), None, "none", "none", None),
    (("deployed",), 900, "deployed", "none", None),
    (("superseded", "deployed"), 900, "deployed", "none", None),
    (("pending-install",), 900, "pending-install", "uninstall", None),
    (("superseded", "pending-upgrade"), 900, "pending-upgrade", "rollback", 1),
    (("deployed", "pending-upgrade"), 900, "pending-upgrade", "rollback", 1),
    (("superseded", "superseded", "failed", "pending-rollback"), 900, "pending-rollback", "rollback", 2),
    (("failed",), 900, "failed", "uninstall", None),
    (("superseded", "failed"), 900, "failed", "rollback", 1),
    (("superseded", "uninstalling"), 900, "uninstalling", "uninstall", None),
    (("superseded", "pending-upgrade"), 10, "pending-upgrade", "wait", None),
]


@pytest.mark.parametrize("statuses,age,status,action,target", CASES, ids=["-".join(c[0]) or "none" for c in CASES])
def test_assess(statuses, age, status, action, target):
    state = assess(history(*statuses), age, wait=60)
    assert (state["status"], state["action"], state["to_revision"]) == (status, action, target)
    assert state["interrupted"] is (action in ("rollback", "uninstall"))
    if action == "rollback":
        assert "rolled back to revision %d" % target in state["reason"]


def test_a_pending_release_is_interrupted_once_the_wait_is_over():
    assert assess(history("deployed", "pending-upgrade"), 10, wait=0)["action"] == "rollback"


@pytest.mark.parametrize("text,expected", [("2026-12-06T12:00:00Z", 1796558400.0),
                                           ("2026-12-06T12:00:00.123456789Z", 1796558400.123456),
                                           ("2026-12-06T13:00:00.5+01:00", 1796558400.5)])
def test_parse_time(text, expected):
    assert parse_time(text) == pytest.approx(expected)
