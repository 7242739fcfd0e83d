"""Cilium upgrades through cilium_eni: the pre-flight check first, one minor at a time, upgradeCompatibility kept,
downgrades and jumps refused.

Cilium's upgrade guide: "The only tested rollback and upgrade path is between consecutive minor releases"
(Documentation/operations/upgrade-warning.rst at v1.20.2 l.16-22), ``upgradeCompatibility`` "should be set to the
initial Cilium version which was installed in this cluster" (Documentation/operations/upgrade.rst l.157-159), and the
pre-flight check is "Required" (upgrade.rst l.20-118).

The 1.19.7 -> 1.20.2 upgrade, the pre-flight check and the refused downgrade run on the real-agent tier (the agents,
the operator and the pre-flight pods are real processes run by the node runtime: tests/platform/eks_sandbox/
node_runtime.py; they skip naming the missing piece without root or the built Cilium). The refused 1.13 -> 1.20 jump
runs on the replayed agents: Cilium 1.13 cannot be built here (docs/real-cilium.md), and the refusal happens before
any agent is asked.
"""
import json
import os

import pytest
from helpers import cilium_role_vars, folded, helm_json, helm_run, local_inventory, start_sandbox, write_play
from kubernetes import client, config

from eks_sandbox import charts, gobuild, kube, sandbox

REAL = "it-upgrade-real"
FROM, TO = "1.19.7", "1.20.2"
# Envoy is not built here (C++; docs/real-cilium.md), so the real tier runs Cilium with Envoy in the agent: then the
# pre-flight DaemonSet has no container of the cilium-envoy image either (templates/cilium-preflight/daemonset.yaml at
# v1.20.2 l.118-150, "envoyDaemonSetEnabled" in templates/_helpers.tpl l.172-184), and the agents start Envoy only
# for L7 policy, which these tests do not have.
NO_ENVOY = {"envoy": {"enabled": False}}


def _real_skip_reason():
    reason = sandbox.real_cilium_unavailable_reason(sandbox.SandboxSpec(cilium="real"))
    return reason or gobuild.unavailable_reason(gobuild.cilium_tool(FROM)) or gobuild.unavailable_reason(
        gobuild.cilium_tool(TO))


real_tier = pytest.mark.skipif(bool(_real_skip_reason()), reason=str(_real_skip_reason()))


def role_play(tmp_path, box, helm, version, **extra):
    if box.spec.cilium == "real":
        extra["extra_values"] = {**NO_ENVOY, **extra.get("extra_values", {})}
    variables = cilium_role_vars("cilium_eni", box, helm, version, **extra)
    return (write_play(tmp_path / f"eni-{version}.yml", f"cilium_eni {version}", role="cilium_eni",
                       variables=variables),
            local_inventory(tmp_path / "inventory.ini"))


def history(helm, box):
    return [(r["revision"], r["chart"], r["status"]) for r in helm_json(helm, box.env, "history", "cilium")]


def releases(helm, box):
    return sorted(r["name"] for r in helm_json(helm, box.env, "list", "--all"))


# ------------------------------------------------------------------------------------------ real agents

@pytest.fixture(scope="module")
def real_box(sandbox_factory):
    # The agents' "images" of both versions are built before any timed step (on a cold machine 1.19.7 is built on
    # first use, about 11 minutes idle and far more under load: longer than the role's waits).
    for version in (FROM, TO):
        gobuild.ensure(gobuild.cilium_tool(version))
    return start_sandbox(sandbox_factory, REAL, nodes=1, cilium="real")


@pytest.fixture(scope="module")
def api(real_box):
    return config.new_client_from_config(config_file=real_box.kubeconfig)


@pytest.fixture(scope="module")
def installed(real_box, helm, run_playbook, tmp_path_factory):
    play, inventory = role_play(tmp_path_factory.mktemp("install"), real_box, helm, FROM)
    result = run_playbook(play, inventory, real_box.env)
    assert result.rc == 0, result
    assert "upgradeCompatibility" not in helm_json(helm, real_box.env, "get", "values", "cilium")
    return result


def agent_pods(api):
    return client.CoreV1Api(api).list_namespaced_pod("kube-system", label_selector="k8s-app=cilium").items


def agent_pid(pod):
    """The pid of the real cilium-agent process behind an agent pod (the node runtime's record)."""
    state = sandbox.real_cilium_state(REAL) / "pods" / pod.metadata.uid / "cilium-agent" / "state.json"
    return json.loads(state.read_text())["pid"]


def agent_version(kubectl, box, pod):
    return kube_exec(kubectl, box, pod, "cilium-dbg", "version")


def kube_exec(kubectl, box, pod, *argv):
    import subprocess
    return subprocess.run([str(kubectl), "-n", "kube-system", "exec", pod.metadata.name, "-c", "cilium-agent", "--",
                           *argv], env=dict(os.environ, **box.env), capture_output=True, text=True, timeout=120,
                          check=True).stdout


def preflight_left(api, helm, box):
    """Whatever of the pre-flight check is still there: its release, DaemonSet, Deployment, pods."""
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    return ([r for r in releases(helm, box) if r == "cilium-preflight"]
            + [d.metadata.name for d in apps.list_namespaced_daemon_set("kube-system").items
               if d.metadata.name == "cilium-pre-flight-check"]
            + [d.metadata.name for d in apps.list_namespaced_deployment("kube-system").items
               if d.metadata.name == "cilium-pre-flight-check"]
            + [p.metadata.name for p in core.list_namespaced_pod(
                "kube-system", label_selector="k8s-app in (cilium-pre-flight-check,cilium-pre-flight-check-deployment)"
            ).items])


# A policy Cilium 1.19 accepts and 1.20 no longer does: Envoy Go Extensions (toPorts[].rules.l7proto) were removed in
# 1.20 ("remove the corresponding rules section from the policy before upgrading": Documentation/operations/
# upgrade-current.inc at v1.20.2 l.17-22; pkg/policy/api/l4.go has L7Proto at v1.19.7 l.308, not at v1.20.2).
OLD_POLICY = {"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy", "metadata": {"name": "r2d2-only"},
              "spec": {"endpointSelector": {"matchLabels": {"app": "droid"}},
                       "ingress": [{"toPorts": [{"ports": [{"port": "4242", "protocol": "TCP"}],
                                                 "rules": {"l7proto": "r2d2", "l7": [{"cmd": "READ"}]}}]}]}}


@real_tier
def test_check_mode_says_the_upgrade_would_run_the_preflight_check(
        installed, real_box, helm, run_playbook, tmp_path, api):
    play, inventory = role_play(tmp_path, real_box, helm, TO)
    result = run_playbook(play, inventory, real_box.env, check=True)
    assert result.rc == 0, result
    said = result.task("Say that check mode would run Cilium's pre-flight check before the upgrade")["msg"]
    assert f"Cilium {FROM} -> {TO} would first run Cilium's pre-flight check (release kube-system/cilium-preflight" in folded(said)
    assert preflight_left(api, helm, real_box) == [] and len(history(helm, real_box)) == 1


@real_tier
def test_a_policy_the_new_version_refuses_stops_the_upgrade_in_the_preflight_check(
        installed, real_box, api, helm, run_playbook, tmp_path):
    """The real `cilium-dbg preflight validate-cnp` of 1.20.2 refuses the 1.19 policy: its Deployment never gets Ready,
    the role stops before `helm upgrade` naming the validator's complaint, and the pre-flight release is gone."""
    custom = client.CustomObjectsApi(api)
    custom.create_namespaced_custom_object("cilium.io", "v2", "default", "ciliumnetworkpolicies", OLD_POLICY)
    try:
        play, inventory = role_play(tmp_path, real_box, helm, TO, wait_timeout=40)
        result = run_playbook(play, inventory, real_box.env)
    finally:
        custom.delete_namespaced_custom_object("cilium.io", "v2", "default", "ciliumnetworkpolicies", "r2d2-only")
    assert result.rc != 0 and result.failed("sandbox") == 1, result
    message = result.failure_message("sandbox")
    assert f"Cilium's pre-flight check of the upgrade {FROM} -> {TO} did not pass within 40 s, so Cilium was not " \
           "upgraded" in message, message
    assert "Deployment cilium-pre-flight-check (validate-cnp) 0/1 Ready" in message, message
    # what the real validator printed about the policy (cilium-dbg/cmd/preflight_k8s_valid_cnp.go l.141-147)
    assert "Unexpected validation error" in message and "default/r2d2-only" in message, message
    assert 'level=fatal msg="failed to start: Found invalid CiliumNetworkPolicy"' in message, message
    assert "The pre-flight release kube-system/cilium-preflight was removed" in message
    assert "cilium_eni_upgrade_preflight: false" in message
    assert [chart for _rev, chart, _status in history(helm, real_box)] == [f"cilium-{FROM}"]
    assert preflight_left(api, helm, real_box) == []


@real_tier
def test_an_image_the_nodes_cannot_pull_stops_the_upgrade_in_the_preflight_check(
        installed, real_box, api, helm, run_playbook, tmp_path):
    """What the pre-flight DaemonSet is for (upgrade.rst l.25-28: "to prevent ErrImagePull errors during upgrade"): an
    image the node cannot have (Cilium 1.18 is not built here) leaves the DaemonSet short of Ready pods."""
    play, inventory = role_play(tmp_path, real_box, helm, TO, wait_timeout=30, extra_values={
        "preflight": {"image": {"tag": "v1.18.11"}}})
    result = run_playbook(play, inventory, real_box.env)
    assert result.rc != 0 and result.failed("sandbox") == 1, result
    message = result.failure_message("sandbox")
    assert "DaemonSet cilium-pre-flight-check 0 Ready against 1 Ready Cilium agents" in message, message
    assert "container cilium-pre-flight-check: ImagePullBackOff: image quay.io/cilium/cilium:v1.18.11: Cilium 1.18.11 " \
           "is not built in this sandbox" in message, message
    assert [chart for _rev, chart, _status in history(helm, real_box)] == [f"cilium-{FROM}"]
    assert preflight_left(api, helm, real_box) == []


@real_tier
def test_the_upgrade_restarts_the_real_agents_on_the_next_minor_and_keeps_the_pods_addresses(
        installed, real_box, api, helm, kubectl, run_playbook, tmp_path):
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    node = core.list_node().items[0].metadata.name
    core.create_namespaced_pod("default", {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}], "terminationGracePeriodSeconds": 0}})
    pod_ip = kube.wait_for(lambda: core.read_namespaced_pod("web", "default").status.pod_ip, "web's IP", timeout=120)
    before_node = custom.get_cluster_custom_object("cilium.io", "v2", "ciliumnodes", node)
    [agent] = agent_pods(api)
    before_pid = agent_pid(agent)
    assert f"Daemon: {FROM}" in agent_version(kubectl, real_box, agent)

    play, inventory = role_play(tmp_path, real_box, helm, TO)
    result = run_playbook(play, inventory, real_box.env)
    assert result.rc == 0, result
    # the pre-flight check ran on the real node (its pods are run by the node runtime, not kwok) and is gone
    assert result.task("Install the pre-flight check (preflight.enabled=true, agent=false, operator.enabled=false)")[
        "changed"]
    ready = result.task("Wait until the pre-flight DaemonSet has as many Ready pods as the cilium DaemonSet")
    assert {d["metadata"]["name"]: d["status"].get("numberReady") for d in ready["resources"]}[
        "cilium-pre-flight-check"] == 1
    validated = result.task("Wait until the pre-flight Deployment (validate-cnp) is Ready 1/1")
    assert validated["resources"][0]["status"]["readyReplicas"] == 1
    assert preflight_left(api, helm, real_box) == []
    assert [chart for _rev, chart, _status in history(helm, real_box)] == [f"cilium-{FROM}", f"cilium-{TO}"]
    # unset on chart 1.19 means "1.19": pinned so that 1.20's new defaults do not flip on this cluster
    assert helm_json(helm, real_box.env, "get", "values", "cilium")["upgradeCompatibility"] == "1.19"

    # the agent is a new process of the 1.20.2 binaries, and the role's wait read it from the real agent
    [agent] = agent_pods(api)
    assert agent_pid(agent) != before_pid and not os.path.exists(f"/proc/{before_pid}")
    version = agent_version(kubectl, real_box, agent)
    assert f"Client: {TO}" in version and f"Daemon: {TO}" in version
    waited = result.task(f"Wait for Cilium to be healthy on every node and configured as installed, version {TO}")
    assert waited["status"]["healthy"] and waited["status"]["version"] == TO
    assert {n["version"] for n in waited["status"]["nodes"].values()} == {TO}

    # the pod keeps its address, the node its ENIs and IPs: the 1.20.2 agent restored the endpoint
    assert core.read_namespaced_pod("web", "default").status.pod_ip == pod_ip
    after_node = custom.get_cluster_custom_object("cilium.io", "v2", "ciliumnodes", node)
    assert set(after_node["status"]["eni"]["enis"]) == set(before_node["status"]["eni"]["enis"])
    assert pod_ip in after_node["spec"]["ipam"]["pool"]
    assert set(before_node["spec"]["ipam"]["pool"]) <= set(after_node["spec"]["ipam"]["pool"])
    endpoint = kube.wait_for(lambda: custom.get_namespaced_custom_object(
        "cilium.io", "v2", "default", "ciliumendpoints", "web").get("status"), "web's CiliumEndpoint", timeout=60)
    assert [a["ipv4"] for a in endpoint["networking"]["addressing"]] == [pod_ip]

    again = run_playbook(play, inventory, real_box.env)
    assert again.rc == 0 and again.changed("sandbox") == 0, again
    assert "Install the pre-flight check (preflight.enabled=true, agent=false, operator.enabled=false)" not in \
        again.task_names()
    assert len(history(helm, real_box)) == 2


@real_tier
def test_a_downgrade_is_refused_before_any_change(installed, real_box, helm, run_playbook, tmp_path):
    before = history(helm, real_box)
    play, inventory = role_play(tmp_path, real_box, helm, FROM)
    result = run_playbook(play, inventory, real_box.env)
    assert result.rc != 0 and result.failed("sandbox") == 1, result
    assert f"Invalid `cilium_eni_version` '{FROM}': Cilium {TO} is installed and {FROM} is a downgrade" in \
        result.stdout
    assert "helm rollback" in result.stdout
    assert history(helm, real_box) == before


# ------------------------------------------------------------------------------------------ replayed agents

@pytest.fixture(scope="module")
def replay_box(sandbox_factory):
    return start_sandbox(sandbox_factory, "it-cilium-upgrade", nodes=1)


def test_a_jump_over_minors_is_refused_before_any_change(replay_box, helm, run_playbook, tmp_path):
    """Cilium 1.13 cannot be built here: the 1.13.4 chart runs on the replayed agents."""
    helm_run(helm, replay_box.env, "install", "cilium", str(charts.ensure_chart("1.13.4")), "-n", "kube-system",
             "--set", "eni.enabled=true,ipam.mode=eni,tunnel=disabled,cluster.name=it-cilium-upgrade")
    before = history(helm, replay_box)
    play, inventory = role_play(tmp_path, replay_box, helm, "1.20.2")
    result = run_playbook(play, inventory, replay_box.env)
    assert result.rc != 0 and result.failed("sandbox") == 1, result
    assert "Cilium 1.13.4 -> 1.20.2 skips 1.14, 1.15, 1.16, 1.17, 1.18, 1.19" in result.stdout
    assert history(helm, replay_box) == before
    assert "cilium-preflight" not in releases(helm, replay_box)
