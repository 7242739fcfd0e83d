"""Integration fixtures: local EKS look-alikes and a way to run playbooks against them.

``eks_sandbox`` is one sandbox for the whole session (its own name, so a developer's
``make sandbox`` cluster is never touched). Tests that change a cluster in ways others must not
see (installing Cilium in a given mode, say) take their own from ``sandbox_factory``; each is
stopped when its module ends, and teardown fails if a process or port is left behind. What the test files
share besides fixtures is in helpers.py (test files never import each other).

``make integration`` runs the files on several pytest-xdist workers, a whole file per worker (``--dist loadfile``:
a module's sandbox stays on one worker). So what is session-wide here is per worker: the session sandbox and the
datapath namespaces carry the worker's number, and the sandbox names of the test files are all different. Files
are handed out longest first (``pytest_collection_modifyitems``), so no long file starts last.
"""
import os

import helpers
import pytest

from eks_sandbox import gobuild, netns_datapath, sandbox

# "gw0", "gw1", ... on a pytest-xdist worker, "" in a run without workers
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
WORKER_NUMBER = WORKER.removeprefix("gw")
SESSION_SANDBOX = os.environ.get("CILIUM_EKS_TEST_SANDBOX", "pytest-eks") + (f"-{WORKER}" if WORKER else "")

# Minutes per file in CI (92c944f, serial, 2 cores). Only the order matters: xdist hands whole files to idle
# workers in collection order, so the longest go first and the short ones fill the gaps at the end. A file not
# listed counts as short. Refresh from the --durations report when a file's time changes a lot.
FILE_MINUTES = {
    "test_cilium_upgrades.py": 7.0,  # real agents since round 4: estimated from 25.5 min at load 20-27
    "test_playbooks.py": 6.8, "test_faults.py": 6.1, "test_real_eksctl.py": 5.8, "test_real_eksctl_bare.py": 4.0,
    "test_cilium_roles.py": 3.1, "test_composition.py": 2.8, "test_bandwidth.py": 2.7, "test_real_cilium.py": 2.7,
    "test_bad_input.py": 1.7, "test_connectivity_test.py": 1.5,
    "test_real_chaining.py": 1.4,  # Cilium chained on the real VPC CNI since round 4: 2.7 min at load 4-5 (2 cores)
    "test_safety.py": 0.9, "test_tools_role.py": 0.7,
}


def pytest_collection_modifyitems(items):
    """Longest files first; the tests of a file keep their order (a stable sort)."""
    items.sort(key=lambda item: -FILE_MINUTES.get(item.path.name, 0.0))


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


@pytest.fixture(scope="session")
def run_playbook():
    """``run_playbook(playbook, inventory, env, extra_vars=None, check=False, diff=False, timeout=900, args=())``:
    the real ansible-playbook of this venv with the json callback, against the collection as installed in
    .collections (this repository, linked); returns a ``helpers.PlaybookResult``."""
    return helpers.run_playbook


@pytest.fixture
def datapath():
    """Two network namespaces shaped like two nodes (``eks_sandbox.netns_datapath``), down again after the test."""
    reason = netns_datapath.unavailable_reason()
    if reason:
        pytest.skip(reason)
    pair = netns_datapath.NetnsPair(f"itbw{WORKER_NUMBER}").up()  # one pair per worker
    yield pair
    pair.down()
    assert not pair.exists()
