"""Faults in the middle of a run, each followed by the run that must converge afterwards.

One sandbox with Cilium (installed by the cilium_eni role) takes the faults that do not conflict, in
file order: a run interrupted while helm installs, a helm upgrade rejected by the API server, the API
server restarted while cilium_status waits, a run interrupted while helm upgrades (repaired by the
bandwidth_manager role run next), two runs at once (the cluster lock), AWS throttling and 5xx answered by the
sandbox's EKS proxy. A second sandbox, with Cilium's Bandwidth Manager and a real shaped datapath, loses a node
during the bandwidth test. A create whose node group stack fails, and the runs after it, are tested with the real
eksctl in test_real_eksctl.py.
"""
import concurrent.futures
import getpass
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from helpers import (
    REGION,
    PlaybookResult,
    cilium_role_vars,
    helm_json,
    helm_run,
    install_cilium,
    local_inventory,
    namespace_exists,
    start_playbook,
    start_sandbox,
    wait_until,
    write_play,
)

from eks_sandbox import aws, kube, linux_ns, netns_datapath
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
        # its first look taken (past its reachability probe, which fails at once on a refusal): on a loaded
        # machine the module's start alone can take longer than any fixed pause
        wait_until(lambda: progress_noted(descendants(waiting.pid, "AnsiballZ_cilium_status")),
                   "cilium_status waiting", proc=waiting)
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


def progress_noted(pids) -> bool:
    """Has one of these module processes written its first progress line? (The action plugin names the file in
    the module's CILIUM_EKS_PROGRESS_FILE, plugins/module_utils/progress.py; cilium_status notes each new
    summary of its wait loop.)"""
    for pid in pids:
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        for entry in environ:
            if entry.startswith(b"CILIUM_EKS_PROGRESS_FILE="):
                noted = Path(entry.split(b"=", 1)[1].decode())
                if noted.is_file() and noted.read_text().strip():
                    return True
    return False


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


LOCK = "cloudnet-cilium-eks"
TAKE_LOCK = "Take the cluster lock, so that one run at a time changes this cluster"


def leases(api):
    return api.resources.get(api_version="coordination.k8s.io/v1", kind="Lease")


def cluster_lock(api):
    """The cluster lock's Lease as a dict, or None."""
    from kubernetes.dynamic.exceptions import NotFoundError

    try:
        return leases(api).get(name=LOCK, namespace="kube-system").to_dict()
    except NotFoundError:
        return None


def revisions(helm, box):
    """``helm history cilium`` (oldest first); [] before the first install."""
    done = helm_run(helm, box.env, "history", "cilium", "-n", "kube-system", "-o", "json", check=False, timeout=120)
    assert done.returncode == 0 or "not found" in done.stderr, done.stderr
    return json.loads(done.stdout) if done.returncode == 0 else []


def lock_holder(api):
    return ((cluster_lock(api) or {}).get("spec") or {}).get("holderIdentity") or ""


def test_a_second_run_is_refused_while_the_first_holds_the_cluster_lock(box, api, helm, run_playbook, tmp_path):
    """Two runs against one cluster: the second stops at the lock, naming the first, and changes nothing (the Helm
    history as it was, no failed revision); the first finishes and gives the lock back. The first run is paused
    (SIGSTOP) once the Lease names it, so the second meets the lock however loaded the machine is."""
    inventory = local_inventory(tmp_path / "inventory.ini")
    # An upgrade (or, on a fresh sandbox, the install): the first run has work to do under the lock. 300 s for helm:
    # its wait goes on while the run is paused.
    first_play = write_play(tmp_path / "first.yml", ROLE, role=ROLE, variables=cilium_role_vars(
        ROLE, box, helm, VERSION, operator_replicas=2, helm_timeout=300))
    second_play = write_play(tmp_path / "second.yml", ROLE, role=ROLE, variables=cilium_role_vars(
        ROLE, box, helm, VERSION, operator_replicas=1, helm_timeout=300))
    assert cluster_lock(api) is None
    first = start_playbook(first_play, inventory, box.env, tmp_path / "first.json")
    try:
        wait_until(lambda: f" pid {first.pid} run " in lock_holder(api), "the first run holding the cluster lock",
                   timeout=300, proc=first)
        os.killpg(first.pid, signal.SIGSTOP)
        held = cluster_lock(api)
        history = revisions(helm, box)

        started = time.monotonic()
        second = run_playbook(second_play, inventory, box.env, timeout=600)
        print(f"second run refused after {time.monotonic() - started:.1f}s")
        assert second.rc != 0 and second.failed("sandbox") == 1, second
        assert second.changed("sandbox") == 0, second
        message = second.task(TAKE_LOCK, "sandbox")["msg"]
        holder = held["spec"]["holderIdentity"]
        assert f"Another run is changing this cluster: it holds the lock, Lease kube-system/{LOCK}, held by " \
               f"'{holder}' since {held['spec']['acquireTime']}" in message, message
        assert "This run changed nothing here" in message
        assert f"kubectl -n kube-system delete lease {LOCK}" in message
        assert revisions(helm, box) == history  # no revision, failed or other
        assert cluster_lock(api)["spec"] == held["spec"]  # not renewed, not taken: the second run wrote nothing
    finally:
        os.killpg(first.pid, signal.SIGCONT)  # never leave a stopped run behind, whatever failed above
        try:
            first.wait(timeout=600)
        except subprocess.TimeoutExpired:
            os.killpg(first.pid, signal.SIGKILL)
    finished = PlaybookResult.from_log(tmp_path / "first.json")
    assert first.returncode == 0, finished
    assert finished.task(TAKE_LOCK, "sandbox")["acquired"] is True
    assert finished.task("Give the cluster lock back", "sandbox")["released"] is True
    assert cluster_lock(api) is None
    after = revisions(helm, box)
    assert after[-1]["status"] == "deployed" and "failed" not in [r["status"] for r in after[len(history):]], after


@pytest.mark.parametrize("holder, renewed_ago, reason", [
    ("ops@elsewhere pid 4242 run 1 for an-old-run", 3600, "stale: not renewed for"),
    # a run on this controller whose process is gone: taken over at once, although renewed just now
    ("{user}@{host} pid {dead} run 1 for a-killed-run", 0, "its process on this host is gone"),
], ids=["stale", "holder-process-gone"])
def test_a_cluster_lock_left_by_a_run_that_is_gone_is_taken_over(box, api, helm, run_playbook, tmp_path, holder,
                                                                 renewed_ago, reason):
    from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.cluster_lock import format_time

    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    holder = holder.format(user=getpass.getuser(), host=socket.gethostname(), dead=int(done.stdout))
    leases(api).create(namespace="kube-system", body={
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": LOCK},
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": 600,
                 "acquireTime": format_time(time.time() - renewed_ago - 60),
                 "renewTime": format_time(time.time() - renewed_ago)}})
    try:
        play = write_play(tmp_path / "again.yml", ROLE, role=ROLE, variables=cilium_role_vars(
            ROLE, box, helm, VERSION, operator_replicas=2, helm_timeout=300))
        again = run_playbook(play, local_inventory(tmp_path / "inventory.ini"), box.env)
        assert again.rc == 0, again
        taken = again.task(TAKE_LOCK, "sandbox")
        assert taken["outcome"] == "take_over" and taken["previous_holder"] == holder, taken
        assert reason in taken["reason"]
        assert f"over from '{holder}'" in json.dumps(taken.get("warnings")), taken  # the run says so
        assert cluster_lock(api) is None  # given back
    finally:
        if cluster_lock(api) is not None:
            leases(api).delete(name=LOCK, namespace="kube-system")


def test_runs_racing_for_a_free_cluster_lock_get_it_one_at_a_time(box):
    """Eight takers at the same moment, against the real API server: the create (409 AlreadyExists) and the replace
    with a resourceVersion (409 Conflict) let exactly one win; the others are refused naming it. Check mode writes
    nothing; a release by another holder leaves the lock; a renewal keeps it."""
    from ansible_collections.cloudnet.cilium_eks.plugins.module_utils import cluster_lock as lock
    from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.k8s_client import get_api_client
    from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.k8s_service import K8sService

    def new_service():
        return K8sService(get_api_client(box.kubeconfig))

    holders = [f"ci@racer-{n} pid {n} run 1" for n in range(8)]
    assert lock.acquire(new_service(), LOCK, "kube-system", holders[0], 60, check_mode=True)["outcome"] == "create"
    assert new_service().get("Lease", LOCK, "kube-system") is None

    barrier = threading.Barrier(len(holders))

    def take(holder):
        barrier.wait()
        try:
            return lock.acquire(new_service(), LOCK, "kube-system", holder, 60)["holder"]
        except lock.LockHeldError as refused:
            return refused

    with concurrent.futures.ThreadPoolExecutor(len(holders)) as pool:
        outcomes = list(pool.map(take, holders))
    service = new_service()
    try:
        winners = [outcome for outcome in outcomes if isinstance(outcome, str)]
        assert len(winners) == 1, outcomes
        held = service.get("Lease", LOCK, "kube-system")
        assert held["spec"]["holderIdentity"] == winners[0]
        assert all(f"held by '{winners[0]}'" in refused.msg for refused in outcomes if refused != winners[0])
        other = next(holder for holder in holders if holder != winners[0])
        assert lock.release(service, LOCK, "kube-system", other)["released"] is False
        renewed = lock.acquire(service, LOCK, "kube-system", winners[0] + " for another-host", 120)
        assert renewed["outcome"] == "renew" and renewed["acquired"] is False
        assert renewed["lease"]["acquire_time"] == held["spec"]["acquireTime"]
        assert renewed["lease"]["duration"] == 120 and renewed["holder"] == winners[0]
        assert lock.release(service, LOCK, "kube-system", winners[0], check_mode=True)["released"] is True
        assert service.get("Lease", LOCK, "kube-system") is not None
        assert lock.release(service, LOCK, "kube-system", winners[0])["released"] is True
        assert service.get("Lease", LOCK, "kube-system") is None
    finally:
        service.delete("Lease", LOCK, "kube-system")


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
            # the measurement under way: its client runs in the datapath's client namespace (a fixed pause was
            # not enough on a loaded machine)
            wait_until(lambda: linux_ns.pids_in_netns(datapath.client_ns), "the measuring client", proc=running)
            time.sleep(1)
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
