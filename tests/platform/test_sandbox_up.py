"""sandbox.up: a start that fails half-way is taken down again (nothing left running for the next run to trip on)."""
import pytest

from eks_sandbox import cluster, sandbox


def test_a_failed_start_is_taken_down(monkeypatch):
    downs = []
    monkeypatch.setattr(sandbox, "load", lambda name: None)
    monkeypatch.setattr(cluster, "component_pids", lambda name: [])
    monkeypatch.setattr(sandbox, "_binaries", lambda: {})

    def create(*_args, **_kwargs):
        raise cluster.SandboxError("kwok-controller: listen tcp 127.0.0.1:32763: bind: address already in use")

    monkeypatch.setattr(cluster, "create", create)
    monkeypatch.setattr(sandbox, "down", lambda name, out=None: downs.append(name) or {})
    with pytest.raises(cluster.SandboxError, match="address already in use"):
        sandbox.up(sandbox.SandboxSpec(name="half-up", aws=False))
    assert downs == ["half-up"]
