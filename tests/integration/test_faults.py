"""Faults in the middle of a run, each followed by the run that must converge afterwards.

One sandbox with Cilium (installed by the cilium_eni role) takes the faults that do not conflict, in
file order: a run interrupted while helm installs, a helm upgrade rejected by the API server, the API
server restarted while cilium_status waits, a run interrupted while helm upgrades (repaired by the
bandwidth_manager role run next), AWS throttling and 5xx answered by the sandbox's EKS proxy.
A second sandbox, with Cilium's Bandwidth Manager and a real shaped datapath, loses a node during the bandwidth
test. A create whose node group stack fails, and the runs after it, are tested with the real eksctl in
test_real_eksctl.py.
"""
import os
import signal
import time

import pytest
from helpers import (
    REGION,
    PlaybookResult,
    cilium_role_vars,
    helm_json,
    install_cilium,
    local_inventory,
    namespace_exists,
    start_playbook,
    start_sandbox,
    wait_until,
    write_play,
)

from eks_sandbox import aws, kube, netns_datapath
from eks_sandbox.procs import descendants, restart_api_server

ROLE = "cilium_eni"
VERSION = "1.20.2"
HELM_TIMEOUT = 30  # also how long the role waits for a helm run that may still hold a pending release
BANDWIDTH_VERSION = "1.18.11"
BANDWIDTH_NS = "flt-bwm-test"
BANDWIDTH_VALUES = ("eni.enabled=true", "ipam.mode=eni", "routingMode=native", "cluster.name=flt-bwm",
                    "operator.replicas=1", "hubble.relay.enabled=false", "bandwidthManager.enabled=true")


def release_secrets(box, status):
    secrets = kube.core_v1(box.kubeconfig).list_namespaced_secret(
        "kube-system", label_selector=f"owner=helm,name=cilium,status={status}")
    return secrets.items


def module_play(tmp_path, module, params, hosts="cluster"):
    return write_play(tmp_path / f"{module}.yml", module, module=module, args=params, hosts=hosts)


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
        variables = cilium_role_vars(ROLE, box, helm, VERSION, **dict({"helm_timeout": HELM_TIMEOUT}, **extra))
        return write_play(tmp / f"{ROLE}.yml", ROLE, role=ROLE, variables=variables), local_inventory(tmp / "inv.ini")

    return make


def test_install_interrupted_mid_helm_is_repaired_by_the_next_run(box, eni_play, helm, run_playbook, tmp_path):
    play, inventory = eni_play()
    interrupt_helm(box, play, inventory, tmp_path / "interrupted.json", "pending-install")
    assert [r["status"] for r in helm_json(helm, box.env, "history", "cilium")] == ["pending-install"]

    started = time.monotonic()
    repaired = run_playbook(play, inventory, box.env)
    assert repaired.rc == 0, repaired
    assert repaired.task("Roll back the pending upgrade, or uninstall the pending install, that no helm run will "
                         "finish", "sandbox")["changed"] is True
    print(f"re-run after the interrupted install: {time.monotonic() - started:.1f}s")
    assert helm_json(helm, box.env, "status", "cilium")["info"]["status"] == "deployed"

    again = run_playbook(play, inventory, box.env)
    assert again.rc == 0 and again.changed("sandbox") == 0, again


def interrupt_helm(box, play, inventory, log, status):
    """Start ``play``, wait until its helm run holds the release ``status``, then lose helm and press Ctrl-C: the
    runner is lost while helm is at work, helm dies without its atomic clean-up."""
    running = start_playbook(play, inventory, box.env, log)
    try:
        wait_until(lambda: descendants(running.pid, "/helm", "upgrade") and release_secrets(box, status),
                   f"helm run in flight ({status})", proc=running)
        for pid in descendants(running.pid, "/helm", "upgrade"):
            os.kill(pid, signal.SIGKILL)
        os.killpg(running.pid, signal.SIGINT)
        assert running.wait(timeout=60) != 0
    finally:
        if running.poll() is None:
            os.killpg(running.pid, signal.SIGKILL)
    wait_until(lambda: not descendants(running.pid, "AnsiballZ"), "no module left running", timeout=30)


def test_upgrade_rejected_by_the_api_server_keeps_the_running_release(box, eni_play, helm, run_playbook):
    before = helm_json(helm, box.env, "get", "values", "cilium")
    deployed = helm_json(helm, box.env, "status", "cilium")
    play, inventory = eni_play(extra_values={"resources": {"limits": {"memory": "lots"}}})
    failed = run_playbook(play, inventory, box.env)
    assert failed.rc != 0 and failed.failed("sandbox") == 1, failed
    message = failed.task("Report the failed install/upgrade and what was left running", "sandbox")["msg"]
    assert "UPGRADE FAILED" in message and "quantities must match the regular expression" in message
    assert "Invalid value: <the whole object>" in message and len(message) < 3000, message[:3000]
    assert "the release was rolled back" in message and "deployed) is running, as before" in message

    now = helm_json(helm, box.env, "status", "cilium")
    assert now["info"]["status"] == "deployed" and now["version"] > deployed["version"]  # the rollback revision
    assert helm_json(helm, box.env, "get", "values", "cilium") == before
    assert helm_json(helm, box.env, "history", "cilium")[-2]["status"] == "failed"

    play, inventory = eni_play()
    again = run_playbook(play, inventory, box.env)
    assert again.rc == 0 and again.changed("sandbox") == 0, again


def test_api_server_restart_while_cilium_status_waits(box, api, run_playbook, tmp_path):
    daemonsets = api.resources.get(api_version="apps/v1", kind="DaemonSet")
    # No node matches: the agents go away and the wait has something to wait for.
    daemonsets.patch(name="cilium", namespace="kube-system",
                     body={"spec": {"template": {"spec": {"nodeSelector": {"flt.test/nowhere": "true"}}}}},
                     content_type="application/strategic-merge-patch+json")
    inventory = local_inventory(tmp_path / "inventory.ini")
    play = module_play(tmp_path, "cilium_status", {"kubeconfig": box.kubeconfig, "timeout": 240,
                                                   "expected_version": "1.20.2"})
    waiting = start_playbook(play, inventory, box.env, tmp_path / "status.json")
    try:
        wait_until(lambda: descendants(waiting.pid, "AnsiballZ_cilium_status"), "cilium_status running",
                   proc=waiting)
        time.sleep(2)
        back = restart_api_server(box.spec.name, box.kubeconfig, downtime=5)
        back.resources.get(api_version="apps/v1", kind="DaemonSet").patch(
            name="cilium", namespace="kube-system",
            body=[{"op": "remove", "path": "/spec/template/spec/nodeSelector/flt.test~1nowhere"}],
            content_type="application/json-patch+json")
        assert waiting.wait(timeout=300) == 0, (tmp_path / "status.json").read_text()[-3000:]
    finally:
        if waiting.poll() is None:
            os.killpg(waiting.pid, signal.SIGKILL)
    result = PlaybookResult.from_log(tmp_path / "status.json").task("cilium_status", "sandbox")
    assert result["status"]["healthy"] is True
    summaries = [step["summary"] for step in result["status"]["progress"]]
    assert any("did not answer (connection refused" in line for line in summaries), summaries
    assert summaries[-1] == "healthy"


def test_upgrade_interrupted_is_recognised_and_rolled_back_by_the_next_run(box, eni_play, helm, run_playbook,
                                                                           tmp_path):
    """Ctrl-C during a helm upgrade leaves pending-upgrade over the deployed revision. The next run, here the
    bandwidth_manager role on its own, used to say there is no Cilium release (helm list hides pending ones); it
    must say that an interrupted run left it, roll back to what ran before, and go on."""
    before = [r["status"] for r in helm_json(helm, box.env, "history", "cilium")]
    assert before[-1] == "deployed", before
    play, inventory = eni_play(operator_replicas=2)
    interrupt_helm(box, play, inventory, tmp_path / "interrupted.json", "pending-upgrade")
    history = helm_json(helm, box.env, "history", "cilium")
    assert history[-1]["status"] == "pending-upgrade", history
    ran = history[-2]["revision"]

    bwm = write_play(tmp_path / "bwm.yml", "bandwidth manager", role="bandwidth_manager", variables={
        "bandwidth_manager_chart_path": cilium_role_vars(ROLE, box, helm, VERSION)[f"{ROLE}_chart_path"],
        "bandwidth_manager_helm_path": str(helm), "bandwidth_manager_kubeconfig": box.kubeconfig,
        "bandwidth_manager_helm_timeout": HELM_TIMEOUT, "bandwidth_manager_rollout_timeout": 300})
    started = time.monotonic()
    repaired = run_playbook(bwm, inventory, box.env)
    print(f"bandwidth_manager after the interrupted upgrade: {time.monotonic() - started:.1f}s")
    assert repaired.rc == 0, repaired
    repair = repaired.task("Repair the Cilium release if an interrupted helm run left it behind, unless the Cilium "
                           "role just read it", "sandbox")
    assert repair["changed"] is True
    assert ("left pending-upgrade by a helm run that did not finish: rolled back to revision %d" % ran) in repair["msg"]
    after = helm_json(helm, box.env, "history", "cilium")  # helm rollback leaves the pending revision in history
    assert after[-1]["status"] == "deployed" and after[-1]["revision"] > history[-1]["revision"], after

    again = run_playbook(bwm, inventory, box.env)
    assert again.rc == 0 and again.changed("sandbox") == 0, again


def test_aws_throttling_and_5xx_are_retried_with_backoff(box, run_playbook, tmp_path):
    endpoint = box.env["AWS_ENDPOINT_URL"]
    inventory = local_inventory(tmp_path / "inventory.ini")
    play = module_play(tmp_path, "eksctl_cluster_info", {"name": box.spec.name, "region": REGION})
    try:
        aws.inject_faults(endpoint, "eks:DescribeCluster", count=3, status=429)
        aws.inject_faults(endpoint, "eks:ListNodegroups", count=2, status=503)
        ridden_out = run_playbook(play, inventory, box.env)
        assert ridden_out.rc == 0, ridden_out
        assert ridden_out.task("eksctl_cluster_info", "sandbox")["exists"] is True
        assert aws.fault_report(endpoint) == {"pending": [], "served": {"eks:DescribeCluster": 3,
                                                                        "eks:ListNodegroups": 2}}

        aws.inject_faults(endpoint)
        aws.inject_faults(endpoint, "eks:DescribeCluster", count=50, status=429)
        started = time.monotonic()
        throttled = run_playbook(play, inventory, box.env)
        took = time.monotonic() - started
        assert throttled.rc != 0
        message = throttled.task("eksctl_cluster_info", "sandbox")["msg"]
        assert message.startswith(f"AWS call eks:DescribeCluster in {REGION} failed with ThrottlingException")
        assert "kept throttling after 8 attempts with backoff; retry later" in message
        assert aws.fault_report(endpoint)["served"] == {"eks:DescribeCluster": 8}  # MAX_ATTEMPTS, then gave up
        print(f"8 throttled attempts, with backoff: {took:.1f}s")
    finally:
        aws.inject_faults(endpoint)


# ------------------------------------------------------------------ a node removed during the bandwidth test


@pytest.fixture(scope="module")
def bandwidth_box(sandbox_factory):
    return start_sandbox(sandbox_factory, "flt-bwm", nodes=3, aws=False)


def test_node_removed_during_the_bandwidth_test(bandwidth_box, helm, datapath, run_playbook, tmp_path):
    from kubernetes import client

    api = install_cilium(helm, bandwidth_box, BANDWIDTH_VALUES, BANDWIDTH_VERSION)
    core = client.CoreV1Api(api)
    binding = netns_datapath.bind_namespace(api, BANDWIDTH_NS, datapath, bandwidth_box.kubeconfig)
    try:
        play = module_play(tmp_path, "cilium_bandwidth_test", {
            "kubeconfig": bandwidth_box.kubeconfig, "namespace": BANDWIDTH_NS, "tool": "iperf3", "limit": "10M",
            "duration": 15, "timeout": 180})
        inventory = local_inventory(tmp_path / "inventory.ini")
        running = start_playbook(play, inventory, bandwidth_box.env, tmp_path / "cut.json")

        def server_node():
            pods = {p.metadata.name: p for p in core.list_namespaced_pod(BANDWIDTH_NS).items}
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
        failure = PlaybookResult.from_log(tmp_path / "cut.json").task("cilium_bandwidth_test", "sandbox")
        assert f"The bandwidth test was cut short: node {node} (running pod netperf-server) was removed" \
            in failure["msg"], failure["msg"]
        assert not namespace_exists(api, BANDWIDTH_NS)  # its pods were cleaned up

        again = run_playbook(play, inventory, bandwidth_box.env)  # on the two nodes left
        assert again.rc == 0, again
        outcome = again.task("cilium_bandwidth_test", "sandbox")
        assert outcome["passed"] is True and node not in (outcome["server_node"], outcome["client_node"])
    finally:
        netns_datapath.unbind_namespace(api, binding)
