"""cilium_connectivity_test against a sandbox running the real Cilium chart.

* The REAL cilium CLI (built from source by gobuild) runs against the sandbox: there is no datapath, so
  it fails; the module must turn that into a clean structured error and clean up the test namespaces.
* A RECORDING REPLAY (a tiny executable that prints a recorded `cilium connectivity test` report
  verbatim, after creating the test namespace the way the CLI does) exercises the report parsing and
  the verdict end-to-end through the module. It is not a cilium CLI and is named as what it is.
"""
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from kubernetes import client, config

from eks_sandbox import charts, gobuild, kube, versions

NAME = "it-connectivity"
CILIUM = versions.CILIUM_CHARTS["1.18"]
RECORDINGS = Path(__file__).resolve().parents[1] / "recordings" / "cilium"
# The hint names the blog's nodes' public IPs the failing pings went to (cilium_parsers.SECURITY_GROUP_HINT).
SG_HINT = "pods reach the nodes' public IPs (54.158.35.146, 54.243.4.228) through the internet gateway"

REPLAY = '''#!{python}
"""RECORDING REPLAY, not the cilium CLI: creates <--test-namespace>-1 labelled like the CLI does, then prints
the recorded connectivity test output named by $CILIUM_RECORDING verbatim and exits with $CILIUM_RECORDING_RC."""
import os
import sys

from kubernetes import client, config

args = sys.argv[1:]
assert args[:2] == ["connectivity", "test"], args
namespace = args[args.index("--test-namespace") + 1] + "-1"
core = client.CoreV1Api(config.new_client_from_config())
core.create_namespace({{"metadata": {{"name": namespace, "labels": {{"app.kubernetes.io/name": "cilium-cli"}}}}}})
with open(os.environ["CILIUM_RECORDING"], encoding="utf-8") as handle:
    sys.stdout.write(handle.read())
sys.exit(int(os.environ["CILIUM_RECORDING_RC"]))
'''


@pytest.fixture(scope="module")
def box(sandbox_factory, helm):
    box = sandbox_factory(NAME, nodes=2, agent_not_ready_taint=True, aws=False)
    subprocess.run([str(helm), "install", "cilium", str(charts.ensure_chart(CILIUM)), "--namespace", "kube-system",
                    "--set", "eni.enabled=true", "--set", "ipam.mode=eni", "--set", "routingMode=native",
                    "--set", "operator.replicas=1", "--wait", "--timeout", "5m"],
                   env=dict(os.environ, **box.env), check=True, capture_output=True, timeout=400)
    return box


@pytest.fixture(scope="module")
def cilium_cli():
    """The real cilium CLI built from source, or skip saying why it cannot be built here."""
    reason = gobuild.unavailable_reason("cilium-cli")
    if reason:
        pytest.skip(reason)
    return gobuild.ensure("cilium-cli")["cilium"]


@pytest.fixture(scope="module")
def core(box):
    return client.CoreV1Api(config.new_client_from_config(config_file=box.kubeconfig))


@pytest.fixture
def replay(tmp_path):
    path = tmp_path / "bin" / "cilium"
    path.parent.mkdir()
    path.write_text(REPLAY.format(python=sys.executable))
    path.chmod(0o755)
    return path


def namespace_gone_or_terminating(core, name):
    found = [n for n in core.list_namespace().items if n.metadata.name == name]
    return not found or found[0].status.phase == "Terminating"


def run_module(run_playbook, tmp_path, box, args, environment=None, check=False, name="connectivity test",
               variables=None):
    inventory = tmp_path / "inventory.ini"
    inventory.write_text(f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n")
    task = {"name": name, "cloudnet.cilium_eks.cilium_connectivity_test": dict({"kubeconfig": box.kubeconfig}, **args)}
    if environment:
        task["environment"] = environment
    if variables:
        task["vars"] = variables
    playbook = tmp_path / "connectivity.yml"
    playbook.write_text(yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "tasks": [task]}]))
    result = run_playbook(playbook, inventory, dict(os.environ, **box.env), check=check)
    tasks = result.task_results(name)
    assert tasks, result
    return result, tasks[0]["localhost"]


def test_real_cli_failure_is_a_clean_structured_error(box, core, run_playbook, tmp_path, cilium_cli):
    cli = cilium_cli
    # What an interrupted earlier run leaves behind: a labelled test namespace. It must be cleaned up too.
    core.create_namespace({"metadata": {"name": "cilium-test-1", "labels": {"app.kubernetes.io/name": "cilium-cli"}}})
    args = {"cilium_path": str(cli), "timeout": 300, "tests": ["no-policies"]}
    result, out = run_module(run_playbook, tmp_path, box, args)
    assert result.rc != 0 and out["failed"] is True
    assert out["error_type"] == "CommandError"
    assert out["cmd"].startswith(f"{cli} connectivity test --namespace kube-system --test-namespace cilium-test")
    assert out["rc"] == 1 and out["timed_out"] is False
    assert out["stderr"], out  # the real CLI's own reason, e.g. it cannot read the agent's runtime config
    assert out["msg"].startswith("cilium connectivity test did not complete (no test report in its output).")
    assert "cilium-test-1" in out["namespaces_deleted"]
    kube.wait_for(lambda: namespace_gone_or_terminating(core, "cilium-test-1"), "cilium-test-1 deleted", timeout=60)
    print(f"real cilium CLI: rc={out['rc']} stderr tail: {out['stderr'][-300:]!r}")


@pytest.fixture
def stalled_context(box, tmp_path):
    """A kubeconfig whose current context is the sandbox, plus a context ``stalled`` whose API server accepts
    TCP connections on 127.0.0.1 and never answers: the real CLI sent there waits (its TLS handshake timeout
    is 10 s), whatever the sandbox's speed, while the module's own clean-up uses the sandbox context."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    kubeconfig = yaml.safe_load(Path(box.kubeconfig).read_text())
    current = {c["name"]: c for c in kubeconfig["contexts"]}[kubeconfig["current-context"]]
    kubeconfig["clusters"].append({"name": "stalled", "cluster": {
        "server": "https://127.0.0.1:%d" % listener.getsockname()[1], "insecure-skip-tls-verify": True}})
    kubeconfig["contexts"].append({"name": "stalled", "context": {"cluster": "stalled",
                                                                  "user": current["context"]["user"]}})
    path = tmp_path / "kubeconfig-with-stalled-context"
    path.write_text(yaml.safe_dump(kubeconfig))
    path.chmod(0o600)
    yield path
    listener.close()


def test_real_cli_timeout_kills_it_and_cleans_up(box, run_playbook, tmp_path, cilium_cli, stalled_context):
    cli = cilium_cli
    args = {"cilium_path": str(cli), "timeout": 1, "kubeconfig": str(stalled_context),
            "extra_flags": ["--context", "stalled"]}
    result, out = run_module(run_playbook, tmp_path, box, args)
    assert result.rc != 0 and out["error_type"] == "CommandError"
    assert out["timed_out"] is True and "timed out after 1s" in out["msg"], out
    assert out["namespaces_kept"] == []


def test_a_running_test_says_so_every_interval(box, run_playbook, tmp_path, cilium_cli, stalled_context):
    """The real CLI stalled on an API server that never answers: while the module waits for it, a line every
    interval (cilium_eks_progress_interval) on stderr says what runs, until the module's timeout stops it."""
    args = {"cilium_path": str(cilium_cli), "timeout": 7, "kubeconfig": str(stalled_context),
            "extra_flags": ["--context", "stalled"]}
    result, out = run_module(run_playbook, tmp_path, box, args, variables={"cilium_eks_progress_interval": 2})
    assert out["timed_out"] is True, out
    lines = [line for line in result.stderr.splitlines()
             if re.match(r"localhost: \d+s waiting for cilium connectivity test \(timeout 7s\)", line)]
    assert len(lines) >= 2, result.stderr  # the module also cleans up after the CLI's timeout: no upper bound
    seconds = [int(re.match(r"localhost: (\d+)s", line).group(1)) for line in lines]
    assert seconds == sorted(seconds) and seconds[0] >= 2


@pytest.mark.parametrize("recording, rc", [
    ("1.17.4/connectivity-test-success.txt", 0),
    ("1.13.3/connectivity-test-success.txt", 0),
])
def test_recorded_success_reports(box, core, run_playbook, tmp_path, replay, recording, rc):
    result, out = run_module(run_playbook, tmp_path, box, {"cilium_path": str(replay)},
                             environment={"CILIUM_RECORDING": str(RECORDINGS / recording), "CILIUM_RECORDING_RC": rc})
    assert result.rc == 0, out
    assert out["changed"] is False and out["result"] == "success" and out["tests_failed"] == 0
    assert out["tests"] in (72, 42)
    assert out["namespaces_deleted"] == ["cilium-test-1"]
    kube.wait_for(lambda: namespace_gone_or_terminating(core, "cilium-test-1"), "cilium-test-1 deleted", timeout=60)


def test_recorded_blog_failure_says_to_open_the_security_group(box, run_playbook, tmp_path, replay):
    env = {"CILIUM_RECORDING": str(RECORDINGS / "1.13.3/connectivity-test-failure.txt"), "CILIUM_RECORDING_RC": 1}
    result, out = run_module(run_playbook, tmp_path, box, {"cilium_path": str(replay)}, environment=env)
    assert result.rc != 0 and out["error_type"] == "ConnectivityTestFailed"
    assert out["msg"].startswith("Cilium connectivity test failed: 4/42 tests failed (20/300 actions)")
    assert SG_HINT in out["msg"]
    assert [t["name"] for t in out["failed_tests"]] == ["no-policies", "no-policies-extra", "allow-all-except-world",
                                                        "host-entity"]
    assert out["namespaces_deleted"] == ["cilium-test-1"]

    result, out = run_module(run_playbook, tmp_path, box, {"cilium_path": str(replay), "expected_failures":
                                                           ["*/pod-to-host", "*nodeport*"]}, environment=env)
    assert result.rc == 0, out["msg"]
    assert out["changed"] is False and out["result"] == "failure" and out["hint"].startswith(SG_HINT)
    assert out["expected_failures_seen"] == ["no-policies", "no-policies-extra", "allow-all-except-world", "host-entity"]


def test_recorded_current_failure_form(box, run_playbook, tmp_path, replay):
    env = {"CILIUM_RECORDING": str(RECORDINGS / "1.18.2/connectivity-test-failure.excerpt.txt"), "CILIUM_RECORDING_RC": 1}
    result, out = run_module(run_playbook, tmp_path, box, {"cilium_path": str(replay)}, environment=env)
    assert result.rc != 0
    assert out["test_namespace"] == "cilium-test-1" and out["tests_failed"] == 11
    assert "- client-egress-l7\n" in out["msg"] and SG_HINT not in out["msg"]


def test_kept_namespaces_are_a_change(box, core, run_playbook, tmp_path, replay):
    env = {"CILIUM_RECORDING": str(RECORDINGS / "1.17.4/connectivity-test-success.txt"), "CILIUM_RECORDING_RC": 0}
    result, out = run_module(run_playbook, tmp_path, box, {"cilium_path": str(replay), "keep_namespaces": True,
                                                           "namespace": "ct-kept"}, environment=env)
    assert result.rc == 0 and out["changed"] is True and out["namespaces_kept"] == ["ct-kept-1"]
    assert core.read_namespace("ct-kept-1").status.phase == "Active"
    core.delete_namespace("ct-kept-1")


def test_check_mode_runs_nothing(box, core, run_playbook, tmp_path, replay):
    env = {"CILIUM_RECORDING": str(RECORDINGS / "1.17.4/connectivity-test-success.txt"), "CILIUM_RECORDING_RC": 0}
    result, out = run_module(run_playbook, tmp_path, box, {"cilium_path": str(replay), "namespace": "ct-check"},
                             environment=env, check=True)
    assert result.rc == 0 and out["changed"] is False and out.get("skipped") is True
    assert "ct-check-1" not in {n.metadata.name for n in core.list_namespace().items}


def test_a_cli_that_does_not_support_the_installed_minor_is_refused_before_running(sandbox_factory, helm, run_playbook,
                                                                                   tmp_path, cilium_cli):
    """The sandbox's CLI is of the line that supports Cilium 1.16 and newer (cilium-cli README); against a 1.15
    release it is refused before it runs, naming the CLI to use."""
    old = sandbox_factory(NAME + "-115", nodes=1, aws=False)
    subprocess.run([str(helm), "install", "cilium", str(charts.ensure_chart(versions.CILIUM_CHARTS["1.15"])),
                    "--namespace", "kube-system", "--set", "eni.enabled=true", "--set", "ipam.mode=eni",
                    "--set", "routingMode=native", "--set", "operator.replicas=1"],
                   env=dict(os.environ, **old.env), check=True, capture_output=True, timeout=400)
    old_core = client.CoreV1Api(config.new_client_from_config(config_file=old.kubeconfig))
    before = sorted(n.metadata.name for n in old_core.list_namespace().items)
    result, out = run_module(run_playbook, tmp_path, old, {"cilium_path": str(cilium_cli), "timeout": 300})
    assert result.rc != 0 and out["failed"] is True
    assert "Invalid `cilium_path`" in out["msg"] and "supports Cilium 1.16 and newer, not Cilium 1.15" in out["msg"]
    assert "use cilium CLI v0.18.6" in out["msg"]
    assert sorted(n.metadata.name for n in old_core.list_namespace().items) == before  # nothing deployed
