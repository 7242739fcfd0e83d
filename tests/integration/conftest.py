"""Integration fixtures: local EKS look-alikes and a way to run playbooks against them.

``eks_sandbox`` is one sandbox for the whole session (its own name, so a developer's
``make sandbox`` cluster is never touched). Tests that change a cluster in ways others must not
see (installing Cilium in a given mode, say) take their own from ``sandbox_factory``; each is
stopped when its module ends, and teardown fails if a process or port is left behind.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from eks_sandbox import gobuild, sandbox

REPO_ROOT = Path(__file__).resolve().parents[2]
SESSION_SANDBOX = os.environ.get("CILIUM_EKS_TEST_SANDBOX", "pytest-eks")


def tool_or_skip(name: str) -> dict:
    """Binaries of a Go-built tool, or skip naming the piece that cannot be had here."""
    reason = gobuild.unavailable_reason(name)
    if reason:
        pytest.skip(reason)
    return gobuild.ensure(name)


def _down_cleanly(name: str) -> None:
    leftovers = sandbox.down(name)
    assert leftovers == {"killed_after_delete": [], "open_ports": []}, leftovers


@pytest.fixture(scope="session")
def eks_sandbox():
    spec = sandbox.SandboxSpec(name=SESSION_SANDBOX, nodes=3, agent_not_ready_taint=True)
    box = sandbox.up(spec)
    yield box
    _down_cleanly(spec.name)


@pytest.fixture(scope="module")
def sandbox_factory():
    """``sandbox_factory(name, **SandboxSpec fields)`` -> a running Sandbox, stopped at module end."""
    started = []

    def start(name: str, **spec_fields):
        box = sandbox.up(sandbox.SandboxSpec(name=name, **spec_fields))
        started.append(name)
        return box

    yield start
    leftovers = {name: sandbox.down(name) for name in started}  # stop them all, then judge
    unclean = {name: left for name, left in leftovers.items() if left != {"killed_after_delete": [], "open_ports": []}}
    assert not unclean, unclean


@pytest.fixture(scope="session")
def sandbox_env(eks_sandbox):
    """os.environ plus what clients need to reach the session sandbox (KUBECONFIG, AWS endpoint)."""
    return dict(os.environ, **eks_sandbox.env)


@pytest.fixture(scope="session")
def kubectl():
    return tool_or_skip("kubernetes")["kubectl"]


@pytest.fixture(scope="session")
def helm():
    return tool_or_skip("helm")["helm"]


class PlaybookResult:
    """What one ansible-playbook run did: exit code, output, and the per-host stats."""

    def __init__(self, completed: subprocess.CompletedProcess):
        self.rc = completed.returncode
        self.stdout = completed.stdout
        self.stderr = completed.stderr
        self.report = json.loads(completed.stdout) if completed.stdout.strip().startswith("{") else {}

    @property
    def stats(self) -> dict:
        return self.report.get("stats", {})

    def changed(self, host: str) -> int:
        return self.stats.get(host, {}).get("changed", 0)

    def failed(self, host: str) -> int:
        return self.stats.get(host, {}).get("failures", 0)

    def task_results(self, task_name: str) -> list:
        """Per-host results of every task whose name matches exactly."""
        return [task["hosts"] for play in self.report.get("plays", []) for task in play["tasks"]
                if task["task"]["name"] == task_name]

    def __repr__(self):
        return f"PlaybookResult(rc={self.rc}, stats={self.stats}, stderr={self.stderr[-2000:]!r})"


@pytest.fixture(scope="session")
def run_playbook():
    """``run_playbook(playbook, inventory, env, extra_vars=None, check=False, diff=False)``.

    Runs the real ansible-playbook of this venv with the json callback, against the collection
    as installed in .collections (this repository, linked), and returns a PlaybookResult.
    """
    ansible_playbook = Path(sys.executable).parent / "ansible-playbook"

    def run(playbook, inventory, env, extra_vars=None, check=False, diff=False, timeout=900, args=()):
        argv = [str(ansible_playbook), "-i", str(inventory), str(playbook)]
        if extra_vars:
            argv += ["--extra-vars", json.dumps(extra_vars)]
        if check:
            argv.append("--check")
        if diff:
            argv.append("--diff")
        argv += list(args)
        run_env = dict(env, ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
                       ANSIBLE_COLLECTIONS_PATH=str(REPO_ROOT / ".collections"),
                       ANSIBLE_CONFIG=str(REPO_ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
        completed = subprocess.run(argv, env=run_env, capture_output=True, text=True, timeout=timeout,
                                   cwd=REPO_ROOT, check=False)
        return PlaybookResult(completed)

    return run
