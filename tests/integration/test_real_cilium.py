"""The real-agent tier: the Cilium 1.20.2 chart on a sandbox whose agents and operator run for real.

Nothing of Cilium is replayed here: the chart's DaemonSet and Deployment pods are run by the node runtime
(tests/platform/eks_sandbox/node_runtime.py) as real cilium-agent and cilium-operator-aws processes, one node
network namespace per kwok node, the operator allocating ENIs and IPs in moto, the CNI plugin giving pods IPs
from those ENIs. What these tests prove could not be proven against the replay: the agent's own answers,
its refusal of a bad configuration, ENI IPAM against EC2's API, the Bandwidth Manager's BPF map, a rollout
restarting real processes, and that `down` leaves nothing behind. Needs root, iproute2, iptables, ipset and
clang-19 (scripts/install_debs.sh); skips naming the missing piece otherwise.
"""
import json
import os
import signal
import subprocess

import boto3
import pytest
from helpers import cilium_role_vars, folded, local_inventory, status_play, write_play
from kubernetes import client, config

from eks_sandbox import charts, gobuild, kube, linux_ns, pod_runtime, sandbox, vpc_network

NAME = "it-real"
VERSION = "1.20.2"
NODES = 2
ENI_VALUES = ["--set", "eni.enabled=true", "--set", "ipam.mode=eni", "--set", "routingMode=native",
              "--set", f"cluster.name={NAME}", "--set", "kubeProxyReplacement=false"]
MASQUERADE_PANIC = ("Egress masquerading interfaces cannot be empty when IP masquerading is enabled with IPAM mode "
                    "other than ClusterPool or Kubernetes")


def _skip_reason():
    reason = sandbox.real_cilium_unavailable_reason(sandbox.SandboxSpec(cilium="real"))
    return reason or gobuild.unavailable_reason(gobuild.cilium_tool(VERSION))


pytestmark = pytest.mark.skipif(bool(_skip_reason()), reason=str(_skip_reason()))


@pytest.fixture(scope="module")
def box(sandbox_factory):
    return sandbox_factory(NAME, nodes=NODES, agent_not_ready_taint=True, cilium="real")


@pytest.fixture(scope="module")
def env(box):
    return dict(os.environ, **box.env)


@pytest.fixture(scope="module")
def core(box):
    return client.CoreV1Api(config.new_client_from_config(config_file=box.kubeconfig))


@pytest.fixture(scope="module")
def custom(box):
    return client.CustomObjectsApi(config.new_client_from_config(config_file=box.kubeconfig))


@pytest.fixture(scope="module")
def ec2(box):
    return boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                 region_name=box.spec.region).client("ec2", endpoint_url=box.aws_env["AWS_ENDPOINT_URL"])


def helm_run(helm, env, *args, timeout=400):
    return subprocess.run([str(helm), *args, "--namespace", "kube-system"], env=env, capture_output=True, text=True,
                          timeout=timeout, check=True)


def run_kubectl(kubectl_path, env, *args, check=True, timeout=120):
    return subprocess.run([str(kubectl_path), *args], env=env, capture_output=True, text=True, timeout=timeout,
                          check=check)


def agents(core):
    return sorted(core.list_namespaced_pod("kube-system", label_selector="k8s-app=cilium").items,
                  key=lambda p: p.spec.node_name)


def all_ready(core):
    pods = agents(core)
    return len(pods) == NODES and all(p.metadata.deletion_timestamp is None and any(
        c.type == "Ready" and c.status == "True" for c in p.status.conditions or []) for p in pods)


def agent_pid(box, pod):
    """The pid of the real cilium-agent process behind an agent pod (the node runtime's record)."""
    state = sandbox.real_cilium_state(NAME) / "pods" / pod.metadata.uid / "cilium-agent" / "state.json"
    return json.loads(state.read_text())["pid"]


def cmdline(pid):
    return open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")


def rollout(kubectl_path, env, what="ds/cilium"):
    run_kubectl(kubectl_path, env, "-n", "kube-system", "rollout", "restart", what)
    run_kubectl(kubectl_path, env, "-n", "kube-system", "rollout", "status", what, "--timeout", "300s", timeout=320)


@pytest.fixture(scope="module")
def installed(box, env, helm, core):
    helm_run(helm, env, "install", "cilium", str(charts.ensure_chart(VERSION)), *ENI_VALUES, "--wait", "--timeout", "5m")
    kube.wait_for(lambda: all_ready(core), "every agent pod Ready", timeout=300)
    return True


def test_the_agents_are_real_processes_configured_by_the_chart(installed, box, core, env, kubectl):
    for pod in agents(core):
        argv = cmdline(agent_pid(box, pod))
        assert argv[0] == b"cilium-agent" and b"--config-dir=/tmp/cilium/config-map" in argv
        out = run_kubectl(kubectl, env, "-n", "kube-system", "exec", pod.metadata.name, "-c", "cilium-agent", "--",
                          "cilium-dbg", "version").stdout
        assert f"Client: {VERSION}" in out and f"Daemon: {VERSION}" in out
    # The real operator removed the agent-not-ready taint once the agents were Ready.
    for node in core.list_node().items:
        assert not [t for t in node.spec.taints or [] if t.key == "node.cilium.io/agent-not-ready"]


def _eni_state(custom, ec2, node):
    """(CiliumNode, the instance's ENIs in moto, the node namespace's links) of one node."""
    instance_id = node.spec.provider_id.rsplit("/", 1)[-1]
    cnode = custom.get_cluster_custom_object("cilium.io", "v2", "ciliumnodes", node.metadata.name)
    enis = ec2.describe_network_interfaces(
        Filters=[{"Name": "attachment.instance-id", "Values": [instance_id]}])["NetworkInterfaces"]
    links = linux_ns.ip("-o", "link", netns=vpc_network.VpcNetwork(sandbox.real_cilium_tag(NAME)).node_ns(
        node.metadata.name)).stdout
    return instance_id, cnode, enis, links


def test_eni_ipam_happens_in_moto(installed, box, core, custom, ec2):
    for node in core.list_node().items:
        def settled(n=node):
            """The operator's pre-allocation is done when the pool has 8 IPs, all on the instance's ENIs in moto, one
            of them an ENI the operator created, and the node namespace shows every attached ENI (synced every 2 s)."""
            instance_id, cnode, enis, links = _eni_state(custom, ec2, n)
            in_moto = {a["PrivateIpAddress"]: e["NetworkInterfaceId"] for e in enis for a in e["PrivateIpAddresses"]}
            pool = {ip: entry["resource"] for ip, entry in cnode["spec"].get("ipam", {}).get("pool", {}).items()}
            done = len(pool) >= 8 and pool.items() <= in_moto.items() and all(e["MacAddress"] in links for e in enis)
            return (instance_id, cnode, enis) if done and any(
                e.get("Description", "").startswith("Cilium-CNI") for e in enis) else None

        instance_id, cnode, enis = kube.wait_for(settled, f"ENI IPAM of {node.metadata.name} settled", timeout=90)
        assert cnode["spec"]["instance-id"] == instance_id  # from IMDS (1.20 keeps only spec.instance-id)
        assert set(cnode["status"]["eni"]["enis"]) <= {e["NetworkInterfaceId"] for e in enis}
        created = next(e for e in enis if e["Description"].startswith("Cilium-CNI"))
        assert created["Description"] == f"Cilium-CNI ({instance_id})"
        assert {t["Key"]: t["Value"] for t in created.get("TagSet", created.get("Tags", []))}.get(
            "io.cilium/cilium-managed") == "true"


def test_the_agent_answers_status_in_json_and_text(installed, core, env, kubectl):
    pod = agents(core)[0].metadata.name
    raw = run_kubectl(kubectl, env, "-n", "kube-system", "exec", pod, "-c", "cilium-agent", "--",
                      "cilium-dbg", "status", "-o", "json").stdout
    status = json.loads(raw)
    assert status["cilium"]["state"] == "Ok" and status["kubernetes"]["state"] == "Ok"
    assert status["routing"]["intra-host-routing-mode"] == "Legacy"  # the chart's ConfigMap, read by the agent
    assert status["routing"]["inter-host-routing-mode"] == "Native"
    text = run_kubectl(kubectl, env, "-n", "kube-system", "exec", pod, "-c", "cilium-agent", "--", "cilium", "status").stdout
    assert f"Cilium: Ok {VERSION}" in folded(text), text
    assert "Routing: Network: Native Host: Legacy" in folded(text), text


def test_the_collections_cilium_status_reads_the_real_agents(installed, box, env, run_playbook, tmp_path):
    """The module users run, against agents that answer for real (their JSON, their versions, their IPAM), cross-checked
    with the real Cilium CLI's own `cilium status -o json`."""
    play, inventory = status_play(tmp_path, box.kubeconfig, timeout=120, expected_version=VERSION, expect={
        "ipam_mode": "eni", "routing_mode": "native", "kube_proxy_replacement": False, "host_routing": "legacy"},
        cli_cross_check=True, cilium_path=str(gobuild.ensure("cilium-cli")["cilium"]))
    result = run_playbook(play, inventory, env)
    assert result.rc == 0, result
    status = result.task_results("status")[0]["localhost"]["status"]
    assert status["healthy"] and status["version"] == VERSION and status["ipam_mode"] == "eni"
    assert len(status["nodes"]) == NODES
    for node in status["nodes"].values():
        assert node["state"] == "Ok" and node["version"] == VERSION
        assert node["ipam"].startswith("IPv4: 1 IPAM pool(s) available")  # what real 1.20.2 prints in ENI mode
        assert node["crash"] is None
    cli = status["cli"]
    assert cli["disagreements"] == [] and cli["exit_code"] == 0
    assert (cli["components"]["cilium"]["desired"], cli["components"]["cilium"]["ready"]) == (NODES, NODES)
    assert cli["components"]["cilium"]["errors"] == [] and cli["components"]["cilium-operator"]["ready"] >= 1
    assert cli["helm_chart_version"] == VERSION


def test_the_real_cilium_cli_status_wait_settles(installed, env, box):
    cli = gobuild.ensure("cilium-cli")["cilium"]
    result = subprocess.run([str(cli), "status", "--wait", "--wait-duration", "3m"], env=env, capture_output=True,
                            text=True, timeout=240, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Cilium: OK" in folded(result.stdout.replace("\x1b[32m", "").replace("\x1b[0m", "")), result.stdout


def _pod(name, node, annotations=None):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "annotations": annotations or {}},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}],
                     "terminationGracePeriodSeconds": 0}}


def _with_ip(pod):
    return pod if pod.status.pod_ip else None


def _wait_endpoint(custom, name):
    return kube.wait_for(lambda: (custom.get_namespaced_custom_object("cilium.io", "v2", "default", "ciliumendpoints",
                                                                      name).get("status") or {}).get("id"),
                         f"CiliumEndpoint default/{name}", timeout=120)


def test_pods_get_eni_addresses_and_talk_through_the_bpf_datapath(installed, box, core, custom):
    nodes = sorted(n.metadata.name for n in core.list_node().items)
    for index, node in enumerate(nodes):
        core.create_namespaced_pod("default", _pod(f"web-{index}", node))
    addresses = {}
    for index, node in enumerate(nodes):
        _wait_endpoint(custom, f"web-{index}")
        pod = kube.wait_for(lambda i=index: _with_ip(core.read_namespaced_pod(f"web-{i}", "default")),
                            f"web-{index} IP")
        pool = custom.get_cluster_custom_object("cilium.io", "v2", "ciliumnodes", node)["spec"]["ipam"]["pool"]
        assert pod.status.pod_ip in pool  # an address of one of the node's ENIs in moto
        addresses[index] = pod
    networks = {json.loads(p.read_text())["name"]: json.loads(p.read_text())
                for p in (sandbox.real_cilium_state(NAME) / "networks").glob("*.json")}
    server, client_net = networks["web-1"], networks["web-0"]
    listener = linux_ns.listen_in(linux_ns.netns_path(server["netns"]), "0.0.0.0", 8080)
    with listener:
        conn = linux_ns.connect_in(linux_ns.netns_path(client_net["netns"]), server["ip"], 8080)
        conn.sendall(b"ping")
        accepted, peer = listener.accept()
        assert accepted.recv(4) == b"ping"
        assert peer[0] == client_net["ip"]  # from the other node's pod, not masqueraded (ENI mode, 1.18+)
        accepted.close()
        conn.close()


def test_bandwidth_manager_puts_the_annotation_in_the_bpf_map(installed, box, core, custom, env, helm, kubectl):
    helm_run(helm, env, "upgrade", "cilium", str(charts.ensure_chart(VERSION)), *ENI_VALUES,
             "--set", "bandwidthManager.enabled=true")
    rollout(kubectl, env)  # helm does not restart the agents on a values change (rollOutCiliumPods: false)
    node = sorted(n.metadata.name for n in core.list_node().items)[0]
    agent = next(p.metadata.name for p in agents(core) if p.spec.node_name == node)
    status = run_kubectl(kubectl, env, "-n", "kube-system", "exec", agent, "--", "cilium-dbg", "status").stdout
    assert "BandwidthManager: EDT with BPF [CUBIC] [eth0]" in folded(status), status
    core.create_namespaced_pod("default", _pod("limited", node, {"kubernetes.io/egress-bandwidth": "10M"}))
    endpoint = _wait_endpoint(custom, "limited")
    listing = run_kubectl(kubectl, env, "-n", "kube-system", "exec", agent, "--", "cilium-dbg", "bpf", "bandwidth",
                          "list").stdout
    rows = [line.split() for line in listing.splitlines()[1:]]
    assert [str(endpoint), "Egress", "0", "10M"] in rows, listing


def _crash_looping_agent(core):
    """An agent pod of the current rollout whose container crash-loops (restarted at least once), or None."""
    for pod in core.list_namespaced_pod("kube-system", label_selector="k8s-app=cilium").items:
        if pod.metadata.deletion_timestamp is None and any(
                c.state.waiting and c.state.waiting.reason == "CrashLoopBackOff" and c.last_state.terminated
                for c in pod.status.container_statuses or []):
            return pod
    return None


def test_bbr_and_host_routing_as_the_real_agent_treats_them(installed, box, core, env, helm, kubectl):
    """What the real 1.20.2 agent does with BBR, for cilium_table's BBR rules (not shown by the replay):

    * legacy host routing set in cilium-config (what the chart sets in CNI chaining mode,
      templates/cilium-configmap.yaml at v1.20.2 l.419-422; bpf.hostLegacyRouting here): the agent refuses BBR for
      pods and crash-loops (pkg/datapath/linux/bandwidth/bandwidth.go at v1.20.2 l.229-230);
    * bbrHostNamespaceOnly lifts that refusal (the same line);
    * without kube-proxy replacement the agent falls back to legacy host routing itself
      (pkg/kpr/initializer/kube_proxy_replacement.go at v1.20.2 l.46-58), but only after the bandwidth manager's
      probe: it starts and reports BBR over legacy host routing, which BBR for pods does not work through
      (Documentation/network/kubernetes/bandwidth-manager.rst at v1.20.2 l.248-252). No crash warns about it.
    """
    chart = str(charts.ensure_chart(VERSION))
    bbr = ("--set", "bandwidthManager.enabled=true", "--set", "bandwidthManager.bbr=true")
    helm_run(helm, env, "upgrade", "cilium", chart, *ENI_VALUES, *bbr)
    rollout(kubectl, env)
    agent = agents(core)[0].metadata.name
    status = run_kubectl(kubectl, env, "-n", "kube-system", "exec", agent, "--", "cilium-dbg", "status").stdout
    assert "BandwidthManager: EDT with BPF [BBR] [eth0]" in folded(status), status
    assert "Routing: Network: Native Host: Legacy" in folded(status), status

    helm_run(helm, env, "upgrade", "cilium", chart, *ENI_VALUES, *bbr, "--set", "bpf.hostLegacyRouting=true")
    run_kubectl(kubectl, env, "-n", "kube-system", "rollout", "restart", "ds/cilium")
    pod = kube.wait_for(lambda: _crash_looping_agent(core), "an agent in CrashLoopBackOff", timeout=180)
    previous = run_kubectl(kubectl, env, "-n", "kube-system", "logs", pod.metadata.name, "-c", "cilium-agent",
                           "--previous").stdout
    assert "BBR setup requires BPF host routing" in previous, previous[-2000:]

    helm_run(helm, env, "upgrade", "cilium", chart, *ENI_VALUES, *bbr, "--set", "bpf.hostLegacyRouting=true",
             "--set", "bandwidthManager.bbrHostNamespaceOnly=true")
    rollout(kubectl, env)
    kube.wait_for(lambda: all_ready(core), "agents Ready with BBR for the host namespace only", timeout=180)
    helm_run(helm, env, "upgrade", "cilium", chart, *ENI_VALUES)
    rollout(kubectl, env)
    assert all_ready(core)


def test_killing_the_agent_process_restarts_it_and_ready_follows(installed, box, core):
    pod = agents(core)[0]
    pid = agent_pid(box, pod)
    os.kill(pid, signal.SIGKILL)
    kube.wait_for(lambda: not all_ready(core), "the pod not Ready after its agent died", timeout=30)
    kube.wait_for(lambda: all_ready(core), "the agent restarted and Ready again", timeout=120)
    again = core.read_namespaced_pod(pod.metadata.name, "kube-system")
    assert again.status.container_statuses[0].restart_count >= 1
    assert again.status.container_statuses[0].last_state.terminated.exit_code == 137
    assert agent_pid(box, again) != pid


def test_a_configuration_the_agent_refuses_crashloops_with_its_reason(installed, box, core, env, helm, kubectl,
                                                                      run_playbook, tmp_path):
    """ENI mode, IPv4 masquerading on, no egress masquerade interfaces: Cilium 1.19+ panics
    (pkg/datapath/iptables/iptables.go at v1.20.2, PR cilium/cilium#42531). The collection's wait (cilium_status,
    as cilium_install's wait phase runs it) names the panic and stops once the agent crash-looped 3 times, long
    before its timeout."""
    helm_run(helm, env, "upgrade", "cilium", str(charts.ensure_chart(VERSION)), *ENI_VALUES,
             "--set", "enableIPv4Masquerade=true")
    run_kubectl(kubectl, env, "-n", "kube-system", "rollout", "restart", "ds/cilium")

    def crashing():
        """An agent pod of the new rollout whose container crash-loops (restarted at least once)."""
        for pod in agents(core):
            statuses = pod.status.container_statuses or []
            if pod.metadata.deletion_timestamp is None and any(
                    c.state.waiting and c.state.waiting.reason == "CrashLoopBackOff" and c.last_state.terminated
                    for c in statuses):
                return pod
        return None

    pod = kube.wait_for(crashing, "an agent in CrashLoopBackOff", timeout=180)
    previous = run_kubectl(kubectl, env, "-n", "kube-system", "logs", pod.metadata.name, "-c", "cilium-agent",
                           "--previous").stdout
    assert MASQUERADE_PANIC in previous
    assert pod.status.container_statuses[0].last_state.terminated.exit_code == 2  # a Go panic
    play, inventory = status_play(tmp_path, box.kubeconfig, timeout=900, expected_version=VERSION)
    result = run_playbook(play, inventory, env)
    assert result.rc != 0, result
    failed = result.task_results("status")[0]["localhost"]
    status = failed["status"]
    assert status["crash_looping"] and status["elapsed"] < 900
    assert failed["msg"].startswith("Cilium agents crash-loop on ")
    assert f"panic: {MASQUERADE_PANIC}" in failed["msg"] and "last exit code 2" in failed["msg"]
    crash = status["nodes"][status["crash_looping"][0]]["crash"]
    assert crash["restarts"] >= 3 and crash["exit_code"] == 2 and crash["log_line"] == f"panic: {MASQUERADE_PANIC}"
    helm_run(helm, env, "upgrade", "cilium", str(charts.ensure_chart(VERSION)), *ENI_VALUES)
    rollout(kubectl, env)
    assert all_ready(core)


def test_rollout_restart_restarts_the_processes(installed, box, core, env, kubectl):
    before = {p.spec.node_name: agent_pid(box, p) for p in agents(core)}
    rollout(kubectl, env)
    kube.wait_for(lambda: all_ready(core), "agents Ready after the restart", timeout=120)
    after = {p.spec.node_name: agent_pid(box, p) for p in agents(core)}
    assert set(after) == set(before) and all(after[n] != before[n] for n in before)
    assert all(not os.path.exists(f"/proc/{pid}") for pid in before.values())


def test_the_eni_role_cross_checks_the_real_agents_with_the_cilium_cli(installed, box, env, helm, run_playbook,
                                                                       tmp_path):
    """cilium_eni_cli_cross_check reaches cilium_status in the role's wait: the real CLI's report comes back and agrees
    with the real agents (the replay cannot answer the CLI's `cilium-dbg endpoint list`)."""
    cli_dir = gobuild.ensure("cilium-cli")["cilium"].parent
    play = write_play(tmp_path / "eni.yml", "cilium eni", role="cilium_eni",
                      variables=cilium_role_vars("cilium_eni", box, helm, VERSION, cli_cross_check=True))
    result = run_playbook(play, local_inventory(tmp_path / "inventory.ini"),
                          dict(env, PATH=f"{cli_dir}:{env.get('PATH', '')}"))
    assert result.rc == 0, result
    waits = [task["hosts"]["sandbox"] for play_ in result.report["plays"] for task in play_["tasks"]
             if "Wait for Cilium to be healthy on every node" in task["task"]["name"] and "sandbox" in task["hosts"]]
    assert waits and waits[-1]["status"]["cli"]["disagreements"] == [], waits
    assert waits[-1]["status"]["cli"]["components"]["cilium"]["desired"] == NODES


def test_down_leaves_no_process_namespace_mount_cgroup_or_rule(installed, box, core):
    from eks_sandbox import host_sysctl

    tag = sandbox.real_cilium_tag(NAME)
    state = sandbox.real_cilium_state(NAME)
    pids = [agent_pid(box, p) for p in agents(core)]
    iptables_before = _host_rules()
    assert linux_ns.netns_names(f"{vpc_network.PREFIX}-{tag}-")
    leftovers = sandbox.down(NAME)
    assert leftovers == {"killed_after_delete": [], "open_ports": []}, leftovers
    assert linux_ns.netns_names(f"{vpc_network.PREFIX}-{tag}-") == []
    assert linux_ns.mounts_under(sandbox.sandbox_dir(NAME)) == [] and not state.exists()
    assert not (pod_runtime.cgroup2_root() / pod_runtime.CGROUP_BASE / tag).exists()
    assert all(not os.path.exists(f"/proc/{pid}") for pid in pids)
    assert not [p for p in os.listdir("/proc") if p.isdigit() and _mentions(p, str(sandbox.sandbox_dir(NAME)))]
    assert _host_rules() == iptables_before  # the agents' rules lived in their nodes' namespaces
    lease = host_sysctl.lease_state()  # other real-Cilium sandboxes (parallel workers) may hold it meanwhile
    assert host_sysctl.holder_id(sandbox.sandbox_dir(NAME), NAME) not in lease["holders"]
    if not lease["holders"]:  # the last holder wrote the original value back and forgot it
        assert not lease["original_kept"]


def _host_rules():
    return [line for line in linux_ns.run(["iptables-save"]).stdout.splitlines() if not line.startswith("#")]


def _mentions(pid, text):
    try:
        return text in open(f"/proc/{pid}/cmdline", "rb").read().decode(errors="replace")
    except OSError:
        return False
