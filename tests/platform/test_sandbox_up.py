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


def test_two_clusters_created_at_the_same_moment_get_their_own_ports(tmp_path, monkeypatch):
    """kwokctl picks ports by counting down from 32767; two creates at once must not pick the same ones."""
    import threading

    import yaml

    from eks_sandbox import gobuild
    reason = next(filter(None, (gobuild.unavailable_reason(tool) for tool in sandbox.KWOK_TOOLS)), None)
    if reason:
        pytest.skip(reason)
    monkeypatch.setenv("CILIUM_EKS_STATE", str(tmp_path / "state"))
    binaries = sandbox._binaries()  # pylint: disable=protected-access
    names = ["race-a", "race-b"]
    errors = []

    def create(name):
        try:
            cluster.create(name, tmp_path / name / "kubeconfig", binaries)
        except cluster.SandboxError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=create, args=(name,)) for name in names]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
        assert errors == []
        servers = {yaml.safe_load((tmp_path / name / "kubeconfig").read_text())["clusters"][0]["cluster"]["server"]
                   for name in names}
        assert len(servers) == 2, servers
    finally:
        for name in names:
            cluster.delete(name, binaries)


def test_exec_shims_are_replaced_whole_and_left_alone_when_unchanged(tmp_path, monkeypatch):
    """Parallel test workers share one state folder: a sandbox starting must never leave another's kwok an
    empty or half-written shim to exec, so the shims are written beside and renamed over, and only when their
    text changed."""
    import os

    monkeypatch.setenv("CILIUM_EKS_STATE", str(tmp_path / "state"))
    shim = cluster.write_exec_shims() / "cilium"
    assert os.access(shim, os.X_OK) and "agent_replay.main(['cilium']" in shim.read_text()
    first = shim.stat().st_ino
    cluster.write_exec_shims()
    assert shim.stat().st_ino == first  # unchanged: not rewritten under a running exec
    shim.write_text("#!/bin/sh\nexit 3\n")  # a shim of another interpreter (say, an older venv)
    cluster.write_exec_shims()
    assert shim.stat().st_ino != first and "agent_replay.main(['cilium']" in shim.read_text()
    assert os.access(shim, os.X_OK)
    assert sorted(p.name for p in shim.parent.iterdir()) == ["cilium", "cilium-dbg"]  # no temporary file left


def test_a_real_vpc_cni_needs_the_node_runtime_and_the_built_version():
    spec = sandbox.SandboxSpec(cilium="real", vpc_cni_runtime="real")
    assert sandbox.real_vpc_cni(spec) and sandbox.real_vpc_cni_unavailable_reason(spec) is None
    assert sandbox.real_vpc_cni_unavailable_reason(sandbox.SandboxSpec()) is None  # kwok's aws-node: always
    assert "--cilium real" in sandbox.real_vpc_cni_unavailable_reason(sandbox.SandboxSpec(vpc_cni_runtime="real"))
    assert "v1.19.2" in sandbox.real_vpc_cni_unavailable_reason(
        sandbox.SandboxSpec(cilium="real", vpc_cni_runtime="real", vpc_cni_tag="v1.10.4-eksbuild.1"))
    assert "'kwok' or 'real'" in sandbox.real_vpc_cni_unavailable_reason(sandbox.SandboxSpec(vpc_cni_runtime="yes"))
