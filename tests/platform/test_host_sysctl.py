"""The host sysctl lease (host_sysctl.py), on stand-in files: the first holder records, the last restores."""
import pytest

from eks_sandbox import host_sysctl


@pytest.fixture
def files(tmp_path, monkeypatch):
    allowed, available = tmp_path / "allowed", tmp_path / "available"
    allowed.write_text("reno bbr\n")
    available.write_text("reno bbr cubic\n")
    monkeypatch.setattr(host_sysctl, "ALLOWED", allowed)
    monkeypatch.setattr(host_sysctl, "AVAILABLE", available)
    monkeypatch.setattr(host_sysctl, "LEASE_DIR", tmp_path / "lease")
    return allowed, available


def test_with_algorithm():
    assert host_sysctl.with_algorithm("reno bbr", "cubic") == "reno bbr cubic"
    assert host_sysctl.with_algorithm("reno cubic", "cubic") == "reno cubic"


def test_lease_restores_exactly_when_the_last_holder_leaves(files):
    allowed, _available = files
    assert host_sysctl.acquire("a", "sandbox a") and host_sysctl.acquire("b", "sandbox b")
    assert allowed.read_text() == "reno bbr cubic"
    assert host_sysctl.holders() == ["a", "b"]
    assert host_sysctl.release("a") is False
    assert allowed.read_text() == "reno bbr cubic"  # b still needs it
    assert host_sysctl.release("b") is True
    assert allowed.read_text() == "reno bbr\n"
    assert host_sysctl.release("b") is False  # idempotent


def test_no_change_when_already_allowed_and_none_when_unavailable(files):
    allowed, available = files
    allowed.write_text("reno cubic\n")
    assert host_sysctl.acquire("a", "x")
    assert allowed.read_text() == "reno cubic\n"
    host_sysctl.release("a")
    available.write_text("reno bbr\n")
    assert host_sysctl.acquire("c", "x") is False
    assert host_sysctl.holders() == []


def test_holder_ids_differ_per_state_folder():
    assert host_sysctl.holder_id("/s1", "sbx") != host_sysctl.holder_id("/s2", "sbx")


def test_lease_state_reads_holders_and_the_kept_original_together(files):
    assert host_sysctl.lease_state() == {"holders": [], "original_kept": False}
    host_sysctl.acquire("a", "sandbox a")
    assert host_sysctl.lease_state() == {"holders": ["a"], "original_kept": True}
    host_sysctl.release("a")
    assert host_sysctl.lease_state() == {"holders": [], "original_kept": False}
