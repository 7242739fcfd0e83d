"""Faults in the middle of a run, each followed by the run that must converge afterwards.

One sandbox with Cilium (installed by the cilium_eni role) takes the faults that do not conflict, in
file order: a run interrupted while helm installs, a helm upgrade rejected by the API server, the API
server restarted while cilium_status waits, AWS throttling and 5xx answered by the sandbox's EKS proxy.
A second, node-less sandbox takes an eksctl create that fails half-way (the eksctl contract double's
``EKSCTL_DOUBLE_FAIL`` knob); a third, with Cilium's Bandwidth Manager and a real shaped datapath,
loses a node during the bandwidth test.
"""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from eks_sandbox import aws, cluster, kube, netns_datapath
from test_bandwidth import TEST_NS, datapath, install_cilium, namespace_exists, start_sandbox  # noqa: F401 pylint: disable=unused-import
from test_bandwidth import module_play as bandwidth_play
from test_bandwidth import module_result as bandwidth_result
from test_cilium_roles import base_vars, failures, helm_json, write_play
from test_eks_cluster import failure_message, role_playbook, role_vars, start_empty_platform

REPO_ROOT = Path(__file__).resolve().parents[2]
ROLE = "cilium_eni"
HELM_TIMEOUT = 30  # also how long the role waits for a helm run that may still hold a pending release
REGION = "us-east-1"


# ------------------------------------------------------------------ helpers


def start_playbook(play, inventory, env, log):
    """ansible-playbook in the background, in a process group of its own (as a terminal would run it)."""
    argv = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory), str(play)]
    run_env = dict(env, ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_NOCOLOR="1",
                   ANSIBLE_COLLECTIONS_PATH=str(REPO_ROOT / ".collections"),
                   ANSIBLE_CONFIG=str(REPO_ROOT / "ansible.cfg"))
    with open(log, "w") as out:
        return subprocess.Popen(argv, env=run_env, cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def _parent(pid):
    with open(f"/proc/{pid}/stat") as stat:
        return int(stat.read().rsplit(")", 1)[1].split()[1])


def descendants(root, *words):
    """Pids of the processes under ``root`` whose command line holds every one of ``words``.

    Ansible runs each module in a session of its own, so the playbook's process group does not reach
    them: they are found through their parents."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
            pid = int(entry.name)
            if not all(any(word in arg for arg in argv) for word in words):
                continue
            while pid > 1 and pid != root:
                pid = _parent(pid)
        except (OSError, ValueError, IndexError):
            continue
        if pid == root:
            found.append(int(entry.name))
    return found


def wait_until(condition, what, timeout=180, proc=None):
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc is None or proc.poll() is None, f"the playbook ended before {what}"
        assert time.monotonic() < deadline, f"no {what} within {timeout}s"
        time.sleep(0.1)


def release_secrets(box, status):
    secrets = kube.core_v1(box.kubeconfig).list_namespaced_secret(
        "kube-system", label_selector=f"owner=helm,name=cilium,status={status}")
    return secrets.items


def component_command(name, component):
    """(argv, env, cwd) of a running component of the sandbox's kwok cluster, read from /proc."""
    proc_dir = Path(f"/proc/{cluster.component_pids(name)[component]}")
    argv = proc_dir.joinpath("cmdline").read_bytes().split(b"\0")[:-1]
    env = dict(item.split(b"=", 1) for item in proc_dir.joinpath("environ").read_bytes().split(b"\0") if b"=" in item)
    return argv, env, os.readlink(proc_dir / "cwd")


def spawn_component(name, component, command):
    """Start a component again with its recorded command; its pid file is updated so ``sandbox.down`` stops it."""
    argv, env, cwd = command
    with open(cluster.cluster_dir(name) / "logs" / f"{component}.log", "ab") as log:
        started = subprocess.Popen(argv, cwd=cwd, env=env, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
    (cluster.cluster_dir(name) / "pids" / f"{component}.pid").write_text(str(started.pid))


def restart_api_server(box, downtime):
    """Kill the sandbox's kube-apiserver (SIGKILL, as a crashed control plane) and start it again after
    ``downtime`` seconds. The controller manager and the scheduler exit when they cannot renew their
    leader lease meanwhile (as on a real control plane, where the kubelet restarts them): they are
    restarted too once the API server answers."""
    name = box.spec.name
    commands = {c: component_command(name, c) for c in ("kube-apiserver", "kube-controller-manager", "kube-scheduler")}
    pid = cluster.component_pids(name)["kube-apiserver"]
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not cluster.alive(pid), "kube-apiserver exit", timeout=10)
    time.sleep(downtime)
    spawn_component(name, "kube-apiserver", commands.pop("kube-apiserver"))
    back = kube.dynamic_client(box.kubeconfig)
    wait_until(lambda: _answers(back), "API server back", timeout=60)
    time.sleep(2)
    for component, command in commands.items():
        if not cluster.alive(cluster.component_pids(name)[component]):
            spawn_component(name, component, command)
    return back


def module_play(tmp_path, module, params, hosts="cluster"):
    play = tmp_path / f"{module}.yml"
    play.write_text(yaml.safe_dump([{"name": module, "hosts": hosts, "gather_facts": False, "tasks": [
        {"name": module, f"cloudnet.cilium_eks.{module}": params}]}]))
    return play


def host_result(report, task_name, host="sandbox"):
    found = [task["hosts"][host] for play in report.get("plays", []) for task in play["tasks"]
             if task["task"]["name"].split(" : ")[-1] == task_name and host in task["hosts"]]
    assert found, f"no task {task_name!r} ran"
    return found[-1]


# ------------------------------------------------------------------ the Cilium sandbox


@pytest.fixture(scope="module")
def box(sandbox_factory):
    return sandbox_factory("flt-cilium", nodes=2, agent_not_ready_taint=True)


@pytest.fixture(scope="module")
def api(box):
    return kube.dynamic_client(box.kubeconfig)


@pytest.fixture(scope="module")
def eni_play(box, helm, tmp_path_factory):
    """Playbook + inventory of the cilium_eni role for this sandbox: ``eni_play(**extra role options)``."""
    tmp = tmp_path_factory.mktemp("eni")

    def make(**extra):
        return write_play(tmp, ROLE, base_vars(ROLE, box, str(helm), helm_timeout=HELM_TIMEOUT, **extra))

    return make


def test_install_interrupted_mid_helm_is_repaired_by_the_next_run(box, eni_play, helm, run_playbook, tmp_path):
    play, inventory = eni_play()
    running = start_playbook(play, inventory, box.env, tmp_path / "interrupted.json")
    try:
        wait_until(lambda: descendants(running.pid, "/helm", "upgrade") and release_secrets(box, "pending-install"),
                   "helm install in flight", proc=running)
        # The runner is lost while helm is at work: helm dies without its atomic clean-up, then Ctrl-C.
        for pid in descendants(running.pid, "/helm", "upgrade"):
            os.kill(pid, signal.SIGKILL)
        os.killpg(running.pid, signal.SIGINT)
        assert running.wait(timeout=60) != 0
    finally:
        if running.poll() is None:
            os.killpg(running.pid, signal.SIGKILL)
    wait_until(lambda: not descendants(running.pid, "AnsiballZ"), "no module left running", timeout=30)
    assert [r["status"] for r in helm_json(helm, box.env, "history", "cilium")] == ["pending-install"]

    started = time.monotonic()
    repaired = run_playbook(play, inventory, box.env)
    assert repaired.rc == 0, failures(repaired)
    assert host_result(repaired.report, "Roll back the pending upgrade, or uninstall the pending install, that no "
                                        "helm run will finish")["changed"] is True
    print(f"re-run after the interrupted install: {time.monotonic() - started:.1f}s")
    assert helm_json(helm, box.env, "status", "cilium")["info"]["status"] == "deployed"

    again = run_playbook(play, inventory, box.env)
    assert again.rc == 0 and again.changed("sandbox") == 0, failures(again)


def test_upgrade_rejected_by_the_api_server_keeps_the_running_release(box, eni_play, helm, run_playbook):
    before = helm_json(helm, box.env, "get", "values", "cilium")
    deployed = helm_json(helm, box.env, "status", "cilium")
    play, inventory = eni_play(extra_values={"resources": {"limits": {"memory": "lots"}}})
    failed = run_playbook(play, inventory, box.env)
    assert failed.rc != 0 and failed.failed("sandbox") == 1, failed
    message = host_result(failed.report, "Report the failed install/upgrade and what was left running")["msg"]
    assert "UPGRADE FAILED" in message and "quantities must match the regular expression" in message
    assert "Invalid value: <the whole object>" in message and len(message) < 3000, message[:3000]
    assert "the release was rolled back" in message and "deployed) is running, as before" in message

    now = helm_json(helm, box.env, "status", "cilium")
    assert now["info"]["status"] == "deployed" and now["version"] > deployed["version"]  # the rollback revision
    assert helm_json(helm, box.env, "get", "values", "cilium") == before
    assert helm_json(helm, box.env, "history", "cilium")[-2]["status"] == "failed"

    play, inventory = eni_play()
    again = run_playbook(play, inventory, box.env)
    assert again.rc == 0 and again.changed("sandbox") == 0, failures(again)


def test_api_server_restart_while_cilium_status_waits(box, api, run_playbook, tmp_path):
    daemonsets = api.resources.get(api_version="apps/v1", kind="DaemonSet")
    # No node matches: the agents go away and the wait has something to wait for.
    daemonsets.patch(name="cilium", namespace="kube-system",
                     body={"spec": {"template": {"spec": {"nodeSelector": {"flt.test/nowhere": "true"}}}}},
                     content_type="application/strategic-merge-patch+json")
    _play, inventory = write_play(tmp_path, "unused", {})
    play = module_play(tmp_path, "cilium_status", {"kubeconfig": box.kubeconfig, "timeout": 240,
                                                   "expected_version": "1.20.2"})
    waiting = start_playbook(play, inventory, box.env, tmp_path / "status.json")
    try:
        wait_until(lambda: descendants(waiting.pid, "AnsiballZ_cilium_status"), "cilium_status running",
                   proc=waiting)
        time.sleep(2)
        back = restart_api_server(box, downtime=5)
        back.resources.get(api_version="apps/v1", kind="DaemonSet").patch(
            name="cilium", namespace="kube-system",
            body=[{"op": "remove", "path": "/spec/template/spec/nodeSelector/flt.test~1nowhere"}],
            content_type="application/json-patch+json")
        assert waiting.wait(timeout=300) == 0, (tmp_path / "status.json").read_text()[-3000:]
    finally:
        if waiting.poll() is None:
            os.killpg(waiting.pid, signal.SIGKILL)
    result = host_result(json.loads((tmp_path / "status.json").read_text()), "cilium_status")
    assert result["status"]["healthy"] is True
    summaries = [step["summary"] for step in result["status"]["progress"]]
    assert any("did not answer (connection refused" in line for line in summaries), summaries
    assert summaries[-1] == "healthy"


def _answers(api):
    try:
        api.resources.get(api_version="v1", kind="Namespace").get(name="kube-system")
        return True
    except Exception:  # noqa: BLE001 - still starting
        return False


def test_aws_throttling_and_5xx_are_retried_with_backoff(box, run_playbook, tmp_path):
    endpoint = box.env["AWS_ENDPOINT_URL"]
    _play, inventory = write_play(tmp_path, "unused", {})
    play = module_play(tmp_path, "eksctl_cluster_info", {"name": box.spec.name, "region": REGION})
    try:
        aws.inject_faults(endpoint, "eks:DescribeCluster", count=3, status=429)
        aws.inject_faults(endpoint, "eks:ListNodegroups", count=2, status=503)
        ridden_out = run_playbook(play, inventory, box.env)
        assert ridden_out.rc == 0, failures(ridden_out)
        assert host_result(ridden_out.report, "eksctl_cluster_info")["exists"] is True
        assert aws.fault_report(endpoint) == {"pending": [], "served": {"eks:DescribeCluster": 3,
                                                                        "eks:ListNodegroups": 2}}

        aws.inject_faults(endpoint)
        aws.inject_faults(endpoint, "eks:DescribeCluster", count=50, status=429)
        started = time.monotonic()
        throttled = run_playbook(play, inventory, box.env)
        took = time.monotonic() - started
        assert throttled.rc != 0
        message = host_result(throttled.report, "eksctl_cluster_info")["msg"]
        assert message.startswith(f"AWS call eks:DescribeCluster in {REGION} failed with ThrottlingException")
        assert "kept throttling after 8 attempts with backoff; retry later" in message
        assert aws.fault_report(endpoint)["served"] == {"eks:DescribeCluster": 8}  # MAX_ATTEMPTS, then gave up
        print(f"8 throttled attempts, with backoff: {took:.1f}s")
    finally:
        aws.inject_faults(endpoint)


# ------------------------------------------------------------------ eksctl create failing half-way


@pytest.fixture(scope="module")
def eks_platform(sandbox_factory):
    """A node-less sandbox with its own moto + proxy and nothing in them: the eksctl double creates it all."""
    return start_empty_platform(sandbox_factory, "flt-eks")


def test_eksctl_create_failing_half_way_then_the_runs_converge(eks_platform, run_playbook, tmp_path):
    import boto3

    name = "flt-half"
    inventory = tmp_path / "inventory.ini"
    inventory.write_text(f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n")
    play = role_playbook(tmp_path, **role_vars(tmp_path, name, eks_cluster_nodegroups=[
        {"name": "ng-1", "instance_type": "t3.medium", "desired_size": 2}]))
    stack = f"eksctl-{name}-nodegroup-ng-1"

    failed = run_playbook(play, inventory, dict(eks_platform["env"], EKSCTL_DOUBLE_FAIL="create-nodegroup"))
    assert failed.rc != 0
    message = failure_message(failed)
    assert f"eksctl failed to create cluster for EKS cluster {name}" in message
    assert "AWS::EKS::Nodegroup/ManagedNodeGroup: CREATE_FAILED" in message
    assert f"Left behind: {stack}" in message and "Nothing was deleted" in message

    blocked = run_playbook(play, inventory, eks_platform["env"])  # the knob is off: eksctl would work now
    assert blocked.rc != 0
    message = failure_message(blocked)
    assert "left CloudFormation stack(s) behind that block eksctl" in message and stack in message
    assert f"aws cloudformation delete-stack --region {REGION} --stack-name {stack}" in message

    cfn = boto3.session.Session(region_name=REGION, **{k.lower(): v for k, v in aws.DUMMY_CREDENTIALS.items()}) \
        .client("cloudformation", endpoint_url=eks_platform["endpoint"])
    cfn.delete_stack(StackName=stack)  # what the message says to do
    resumed = run_playbook(play, inventory, eks_platform["env"])
    assert resumed.rc == 0, failure_message(resumed)
    assert resumed.changed("localhost") >= 1
    final = run_playbook(play, inventory, eks_platform["env"])
    assert final.rc == 0 and final.changed("localhost") == 0, failure_message(final)


# ------------------------------------------------------------------ a node removed during the bandwidth test


@pytest.fixture(scope="module")
def bandwidth_box(sandbox_factory):
    return start_sandbox(sandbox_factory, "flt-bwm", nodes=3, aws=False)


def test_node_removed_during_the_bandwidth_test(bandwidth_box, helm, datapath, run_playbook, tmp_path):
    from kubernetes import client

    api = install_cilium(str(helm), bandwidth_box, extra=("bandwidthManager.enabled=true",))
    core = client.CoreV1Api(api)
    binding = netns_datapath.bind_namespace(api, TEST_NS, datapath, bandwidth_box.kubeconfig)
    try:
        play, inventory = bandwidth_play(tmp_path, bandwidth_box, limit="10M", duration=15, timeout=180)
        running = start_playbook(play, inventory, bandwidth_box.env, tmp_path / "cut.json")

        def server_node():
            pods = {p.metadata.name: p for p in core.list_namespaced_pod(TEST_NS).items}
            pair = ("netperf-server", "netperf-client")
            if all(name in pods and pods[name].status.phase == "Running" for name in pair):
                return pods["netperf-server"].spec.node_name
            return None

        try:
            wait_until(server_node, "test pods running", proc=running)
            node = server_node()
            time.sleep(3)  # the measurement is under way
            core.delete_node(node)
            assert running.wait(timeout=400) != 0
        finally:
            if running.poll() is None:
                os.killpg(running.pid, signal.SIGKILL)
        failure = host_result(json.loads((tmp_path / "cut.json").read_text()), "bandwidth test")
        assert f"The bandwidth test was cut short: node {node} (running pod netperf-server) was removed" \
            in failure["msg"], failure["msg"]
        assert not namespace_exists(api, TEST_NS)  # its pods were cleaned up

        again = run_playbook(play, inventory, bandwidth_box.env)  # on the two nodes left
        assert again.rc == 0, failures(again)
        outcome = bandwidth_result(again)
        assert outcome["passed"] is True and node not in (outcome["server_node"], outcome["client_node"])
    finally:
        netns_datapath.unbind_namespace(api, binding)
