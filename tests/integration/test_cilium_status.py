"""cilium_status against a sandbox running the real Cilium 1.18 chart, and the agent simulator behind it.

The sandbox has no Cilium datapath: the agent simulator (tests/platform/eks_sandbox/agent_sim.py) does
what the agent and operator publish through the API (CRDs, taint removal, CiliumNodes, CiliumEndpoints,
per-pod exec routing) and the agent CLI answers from recordings (agent_replay.py).
"""
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
import yaml
from kubernetes import client, config
from kubernetes.stream import stream

from eks_sandbox import charts, kube, sandbox, versions

NAME = "it-status"
CILIUM = versions.CILIUM_CHARTS["1.18"]
NODES = 3


@pytest.fixture(scope="module")
def box(sandbox_factory, helm):
    box = sandbox_factory(NAME, nodes=NODES, agent_not_ready_taint=True, aws=False)
    subprocess.run([str(helm), "install", "cilium", str(charts.ensure_chart(CILIUM)), "--namespace", "kube-system",
                    "--set", "eni.enabled=true", "--set", "ipam.mode=eni", "--set", "routingMode=native",
                    "--set", "operator.replicas=1", "--set", "bandwidthManager.enabled=true",
                    "--set", "bandwidthManager.bbr=true", "--set", f"cluster.name={NAME}",
                    "--wait", "--timeout", "5m"], env=dict(os.environ, **box.env), check=True,
                   capture_output=True, timeout=400)
    return box


@pytest.fixture(scope="module")
def core(box):
    return client.CoreV1Api(config.new_client_from_config(config_file=box.kubeconfig))


@pytest.fixture
def api(box):
    dyn = kube.dynamic_client(box.kubeconfig)
    dyn.resources.invalidate_cache()  # discovery is cached per server URL; the CRDs come and go with sandboxes
    return dyn


def served(api, kind):
    api.resources.invalidate_cache()
    return api.resources.get(api_version="cilium.io/v2", kind=kind)


def agent_pods(core):
    return sorted(core.list_namespaced_pod("kube-system", label_selector="k8s-app=cilium").items,
                  key=lambda p: p.spec.node_name)


def replay_running_for(pod_names):
    """Is the agent replay answering an exec into one of these agent pods right now? (The module execs
    into the Ready agents after reading the DaemonSet and the pods: its first look is under way.)"""
    wanted = {f"CILIUM_REPLAY_POD=kube-system/{name}".encode() for name in pod_names}
    for pid in os.listdir("/proc"):
        try:
            with open(f"/proc/{pid}/environ", "rb") as handle:
                if wanted & set(handle.read().split(b"\0")):
                    return True
        except (OSError, ValueError):
            continue
    return False


def run_status(run_playbook, tmp_path, box, args, check=False, name="cilium status"):
    inventory = tmp_path / "inventory.ini"
    inventory.write_text(f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n")
    playbook = tmp_path / "status.yml"
    playbook.write_text(yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "tasks": [
        {"name": name, "cloudnet.cilium_eks.cilium_status": dict({"kubeconfig": box.kubeconfig}, **args)}]}]))
    result = run_playbook(playbook, inventory, dict(os.environ, **box.env), check=check)
    tasks = result.task_results(name)
    assert tasks, result
    return result, tasks[0]["localhost"]


# ------------------------------------------------------------------------- the agent simulator

def test_simulator_registered_crds_untainted_nodes_and_wrote_cilium_nodes(box, core, api):
    crd = api.resources.get(api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition")
    names = {"ciliumnodes.cilium.io", "ciliumendpoints.cilium.io", "ciliumnetworkpolicies.cilium.io"}
    # The chart installs no CRD: the (simulated) operator registers them when it starts.
    kube.wait_for(lambda: names <= {c.metadata.name for c in crd.get().items}, "Cilium CRDs", timeout=60)
    kube.wait_for(lambda: served(api, "CiliumNode"), "CiliumNode served", timeout=60)
    kube.wait_for(lambda: all(not any(t.key == "node.cilium.io/agent-not-ready" for t in n.spec.taints or [])
                              for n in core.list_node().items), "agent-not-ready taints removed", timeout=60)
    cnodes = api.resources.get(api_version="cilium.io/v2", kind="CiliumNode")
    kube.wait_for(lambda: len(cnodes.get().items) == NODES, "one CiliumNode per node", timeout=60)
    for node in core.list_node().items:
        cnode = cnodes.get(name=node.metadata.name).to_dict()
        addresses = {a["type"]: a["ip"] for a in cnode["spec"]["addresses"]}
        internal = next(a.address for a in node.status.addresses if a.type == "InternalIP")
        assert addresses["InternalIP"] == internal
        assert addresses["CiliumInternalIP"] in cnode["spec"]["ipam"]["pool"]  # ENI IPAM: a VPC address
        assert cnode["spec"]["eni"]["instance-type"] == "t3.medium"


def test_exec_into_each_agent_answers_as_its_own_node(box, core):
    for pod in agent_pods(core):
        resp = stream(core.connect_get_namespaced_pod_exec, pod.metadata.name, "kube-system",
                      container="cilium-agent", command=["cilium-dbg", "status", "-o", "json"],
                      stderr=True, stdin=False, stdout=True, tty=False)
        status = json.loads(resp)
        assert status["cluster"]["self"] == f"{NAME}/{pod.spec.node_name}"
        assert status["cilium"]["msg"].startswith(CILIUM)
        assert status["bandwidth-manager"] == {"congestionControl": "bbr", "devices": ["eth0"], "enabled": True}


def test_endpoints_follow_the_workload_pods(box, core, api):
    ceps = api.resources.get(api_version="cilium.io/v2", kind="CiliumEndpoint")
    kube.wait_for(lambda: len(ceps.get(namespace="kube-system", label_selector="").items) >= 2,
                  "CiliumEndpoints of the coredns pods", timeout=60)
    core.create_namespaced_pod("default", {"metadata": {"name": "web", "labels": {"app": "web"}},
                                           "spec": {"containers": [{"name": "c", "image": "nginx"}]}})
    kube.wait_for(lambda: any(c.metadata.name == "web" for c in ceps.get(namespace="default").items),
                  "CiliumEndpoint default/web", timeout=60)
    cep = ceps.get(name="web", namespace="default").to_dict()
    pod = core.read_namespaced_pod("web", "default")
    assert cep["status"]["networking"]["addressing"] == [{"ipv4": pod.status.pod_ip}]
    assert cep["status"]["state"] == "ready" and 1 <= cep["status"]["id"] <= 4095
    host_network = {p.metadata.name for p in core.list_namespaced_pod("kube-system").items if p.spec.host_network}
    assert host_network and not host_network & {c.metadata.name for c in ceps.get(namespace="kube-system").items}
    core.delete_namespaced_pod("web", "default", grace_period_seconds=0)
    kube.wait_for(lambda: not any(c.metadata.name == "web" for c in ceps.get(namespace="default").items),
                  "CiliumEndpoint default/web removed", timeout=60)


def test_exec_routing_follows_agent_pods(box, core, api):
    execs = api.resources.get(api_version="kwok.x-k8s.io/v1alpha1", kind="Exec")
    old = agent_pods(core)[0]
    assert execs.get(name=old.metadata.name, namespace="kube-system")
    core.delete_namespaced_pod(old.metadata.name, "kube-system", grace_period_seconds=0)
    kube.wait_for(lambda: old.metadata.name not in {e.metadata.name for e in execs.get(namespace="kube-system").items},
                  "Exec of the deleted agent pod removed", timeout=60)
    kube.wait_for(lambda: {p.metadata.name for p in agent_pods(core)} <=
                  {e.metadata.name for e in execs.get(namespace="kube-system").items} and len(agent_pods(core)) == NODES,
                  "an Exec for the replacement agent pod", timeout=60)
    kube.wait_for(lambda: kube.daemonset_rolled_out(api, "kube-system", "cilium"), "agent DaemonSet", timeout=120)


def test_up_restarts_a_dead_simulator(box):
    pid = sandbox.agent_sim_pid(NAME)
    assert pid
    os.kill(pid, signal.SIGKILL)
    kube.wait_for(lambda: sandbox.agent_sim_pid(NAME) is None, "simulator dead", timeout=10)
    sandbox.up(box.spec)
    new_pid = sandbox.agent_sim_pid(NAME)
    assert new_pid and new_pid != pid


# ------------------------------------------------------------------------------- cilium_status

def test_status_ok(box, run_playbook, tmp_path, core):
    result, out = run_status(run_playbook, tmp_path, box, {"expected_version": CILIUM, "timeout": 120})
    assert result.rc == 0, out
    assert out["changed"] is False
    status = out["status"]
    assert status["healthy"] is True and status["version"] == CILIUM
    assert status["ipam_mode"] == "eni" and status["routing_mode"] == "native"
    assert status["chaining_mode"] == "none" and status["kube_proxy_replacement"] is False
    assert status["bandwidth_manager"] == {"enabled": True, "congestion_control": "bbr", "devices": ["eth0"]}
    assert sorted(status["nodes"]) == sorted(n.metadata.name for n in core.list_node().items)
    assert all(n["healthy"] and n["state"] == "Ok" for n in status["nodes"].values())
    assert set(status["source"].values()) == {"json"}
    ceps = client.CustomObjectsApi(core.api_client).list_cluster_custom_object("cilium.io", "v2", "ciliumendpoints")
    assert status["endpoints"] == len(ceps["items"]) >= 2


def login_command_kubeconfig(box, core, tmp_path, name="it-status-reader"):
    """A kubeconfig of the sandbox's API server whose user logs in with a command printing an ExecCredential, as
    eksctl's (aws-iam-authenticator / ``aws eks get-token``) do; the token is a ServiceAccount's that may read pods
    and exec into them and read their logs in kube-system, and nothing else."""
    rbac = client.RbacAuthorizationV1Api(core.api_client)
    core.create_namespaced_service_account("kube-system", client.V1ServiceAccount(
        metadata=client.V1ObjectMeta(name=name)))
    rbac.create_namespaced_role("kube-system", client.V1Role(metadata=client.V1ObjectMeta(name=name), rules=[
        client.V1PolicyRule(api_groups=[""], resources=["pods"], verbs=["get", "list"]),
        client.V1PolicyRule(api_groups=[""], resources=["pods/exec"], verbs=["get", "create"]),
        client.V1PolicyRule(api_groups=[""], resources=["pods/log"], verbs=["get"])]))
    rbac.create_namespaced_role_binding("kube-system", client.V1RoleBinding(
        metadata=client.V1ObjectMeta(name=name), role_ref=client.V1RoleRef(
            api_group="rbac.authorization.k8s.io", kind="Role", name=name),
        subjects=[client.RbacV1Subject(kind="ServiceAccount", name=name, namespace="kube-system")]))
    token = core.create_namespaced_service_account_token(name, "kube-system", client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=3600))).status.token
    with open(box.kubeconfig, encoding="utf-8") as handle:
        admin = yaml.safe_load(handle)
    credential = json.dumps({"apiVersion": "client.authentication.k8s.io/v1beta1", "kind": "ExecCredential",
                             "status": {"token": token}})
    admin["users"] = [{"name": "login", "user": {"exec": {
        "apiVersion": "client.authentication.k8s.io/v1beta1", "command": sys.executable,
        "args": ["-c", "print(%r)" % credential], "interactiveMode": "Never"}}}]
    admin["contexts"] = [{"name": "login", "context": {"cluster": admin["clusters"][0]["name"], "user": "login"}}]
    admin["current-context"] = "login"
    path = tmp_path / "login-kubeconfig"
    path.write_text(yaml.safe_dump(admin))
    return str(path), name


def test_exec_with_a_login_command_user_sends_its_token(box, core, tmp_path):
    """The agents are asked with the token a login-command user gets (eksctl's kubeconfigs on EKS): without it
    the exec reaches this RBAC API server as system:anonymous and gets 403 (fixed in 4de6168)."""
    from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.k8s_client import get_api_client
    from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.k8s_service import K8sService

    kubeconfig, _account = login_command_kubeconfig(box, core, tmp_path)
    service = K8sService(get_api_client(kubeconfig))
    pod = agent_pods(core)[0]
    answer = service.exec("kube-system", pod.metadata.name, "cilium-agent", ["cilium-dbg", "status", "-o", "json"], 30)
    assert answer.rc == 0, answer
    assert json.loads(answer.stdout)["cluster"]["self"] == f"{NAME}/{pod.spec.node_name}"
    # The log of a crashed agent goes through the ordinary request path: the same token (a 403 would raise; this
    # sandbox serves no container logs, so the API server's answer is "none").
    assert service.logs("kube-system", pod.metadata.name, "cilium-agent", previous=True, tail_lines=10) is None


def test_an_impersonating_exec_is_refused_rather_than_run_as_the_kubeconfigs_identity(box, core, monkeypatch):
    """impersonate_user is not carried by the exec websocket: impersonating an identity that may do nothing, the
    ordinary requests are refused but the exec ran with the admin kubeconfig's rights. It is refused instead."""
    from ansible_collections.cloudnet.cilium_eks.plugins.module_utils import k8s_service
    from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.errors import ValidationError
    from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.k8s_client import get_api_client

    nobody = "system:serviceaccount:kube-system:no-such-account"
    service = k8s_service.K8sService(get_api_client(box.kubeconfig, impersonate_user=nobody))
    pod = agent_pods(core)[0].metadata.name
    with pytest.raises(k8s_service.K8sApiError, match="403"):
        service.list("Pod", "kube-system")  # impersonated, and that identity may not
    with pytest.raises(ValidationError, match="impersonate_user"):
        service.exec("kube-system", pod, "cilium-agent", ["cilium-dbg", "status"], 30)
    monkeypatch.setattr(k8s_service, "refuse_impersonated_exec", lambda api_client: None)
    answer = service.exec("kube-system", pod, "cilium-agent", ["cilium-dbg", "status"], 30)
    assert answer.rc == 0 and "Cilium:" in answer.stdout  # what the refusal prevents: run unimpersonated, as admin


def test_status_in_check_mode_with_expectations_met(box, run_playbook, tmp_path):
    result, out = run_status(run_playbook, tmp_path, box, {"expect": {"ipam_mode": "eni", "bandwidth_manager": True,
                                                                      "congestion_control": "bbr"}}, check=True)
    assert result.rc == 0 and out["changed"] is False and out["status"]["mismatches"] == []


def test_expect_mismatch_fails_with_a_clear_message(box, run_playbook, tmp_path):
    result, out = run_status(run_playbook, tmp_path, box, {"expect": {"chaining_mode": "aws-cni",
                                                                      "bandwidth_manager": True}, "timeout": 60})
    assert result.rc != 0 and out["failed"] is True
    assert out["msg"] == ("Cilium is healthy but does not match what was expected:\n"
                          "- chaining_mode: expected aws-cni, found none")
    assert out["status"]["mismatches"] == ["chaining_mode: expected aws-cni, found none"]


def test_not_ready_agent_times_out_naming_the_node(box, run_playbook, tmp_path, core):
    pod = agent_pods(core)[1]
    kube.set_pod_ready(core, "kube-system", pod.metadata.name, False)
    try:
        result, out = run_status(run_playbook, tmp_path, box, {"timeout": 3})
    finally:
        kube.set_pod_ready(core, "kube-system", pod.metadata.name, True)
    assert result.rc != 0
    assert out["msg"].startswith("Cilium is not healthy after waiting")
    assert f"- node {pod.spec.node_name}: agent pod kube-system/{pod.metadata.name} is not Ready" in out["msg"]
    assert out["status"]["nodes"][pod.spec.node_name]["healthy"] is False


def test_waits_for_an_agent_to_become_ready(box, run_playbook, tmp_path, core, api):
    pod = agent_pods(core)[0]
    kube.wait_for(lambda: kube.daemonset_rolled_out(api, "kube-system", "cilium"), "agent DaemonSet", timeout=120)
    kube.set_pod_ready(core, "kube-system", pod.metadata.name, False)
    kube.wait_for(lambda: not kube.daemonset_rolled_out(api, "kube-system", "cilium"), "DaemonSet sees it", timeout=30)
    restored = {}

    others = [p.metadata.name for p in agent_pods(core) if p.metadata.name != pod.metadata.name]

    def restore_later():
        # Fix the agent once the module has had a first look (it is asking the other agents for their status).
        kube.wait_for(lambda: replay_running_for(others), "the module's first check", timeout=120, interval=0.02)
        kube.set_pod_ready(core, "kube-system", pod.metadata.name, True)
        restored["at"] = time.monotonic()

    helper = threading.Thread(target=restore_later)
    helper.start()
    try:
        result, out = run_status(run_playbook, tmp_path, box, {"timeout": 180})
    finally:
        helper.join()
    finished = time.monotonic()
    assert result.rc == 0, out
    summaries = [p["summary"] for p in out["status"]["progress"]]
    assert summaries[-1] == "healthy" and len(summaries) >= 2
    assert any(pod.metadata.name in s or "not rolled out" in s for s in summaries[:-1])
    print(f"readiness noticed {finished - restored['at']:.2f}s after it was restored "
          f"(includes ansible-playbook's own exit); progress: {out['status']['progress']}")


def test_agents_of_1_13_are_asked_with_the_cilium_binary(box, run_playbook, tmp_path, core, api):
    """Before 1.15 the agent image has no cilium-dbg (the replay exits 127 like runc): the module must pick
    `cilium` from the image tag. Only the agent image changes (the operator and CRDs stay 1.18)."""
    apps = client.AppsV1Api(core.api_client)
    old_image = apps.read_namespaced_daemon_set("cilium", "kube-system").spec.template.spec.containers[0].image
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "cilium-agent",
                                                            "image": "quay.io/cilium/cilium:v1.13.4"}]}}}}
    apps.patch_namespaced_daemon_set("cilium", "kube-system", patch)
    try:
        result, out = run_status(run_playbook, tmp_path, box, {"timeout": 180})
        assert result.rc == 0, out.get("msg")
        assert out["status"]["version"] == "1.13.4"
        assert all(n["version"] == "1.13.4" and n["healthy"] for n in out["status"]["nodes"].values())
        assert out["status"]["agent"]["image"] == "quay.io/cilium/cilium:v1.13.4"
    finally:
        patch["spec"]["template"]["spec"]["containers"][0]["image"] = old_image
        apps.patch_namespaced_daemon_set("cilium", "kube-system", patch)
