"""Chaining's real tier: the AWS VPC CNI and Cilium 1.20.2 chained behind it (``cni.chainingMode=aws-cni``), for real.

The sandbox runs aws-node from the add-on's own manifest (amazon-vpc-cni-k8s v1.19.2 config/master/aws-k8s-cni.yaml,
``vpc_cni_runtime="real"``): per node, the real ``aws-vpc-cni`` entrypoint starts the real ipamd (aws-k8s-agent)
against moto (its ENIs' secondary IPs), installs the real aws-cni and egress-cni plugins and writes 10-aws.conflist;
the pod is Ready when the real grpc-health-probe says ipamd serves. The cilium_chaining role then installs the real
chart; its agents and generic operator run for real (node_runtime.py), the agent merges cilium-cni into the VPC CNI's
list (05-cilium.conflist), and a pod's sandbox goes through the real chain: an address of a moto ENI from ipamd and
an endpoint of the real agent.

Not real here: the network policy agent (aws-eks-nodeagent, v1.1.6 in the manifest: its Go module version is refused
by the proxy; it enforces nothing with the manifest's --enable-network-policy=false), and everything
docs/real-cilium.md lists for ENI mode. Skips naming the missing piece when a piece cannot be had.
"""
import json
import os
import subprocess

import pytest
from helpers import cilium_role_vars, local_inventory, sandbox_apis, status_play, write_play
from kubernetes import client

from eks_sandbox import charts, gobuild, kube, linux_ns, sandbox

NAME = "it-chain"
VERSION = "1.20.2"
NODES = 2
# The agent's refusal of BBR for pods over legacy host routing, which the chart sets in every chaining mode
# (pkg/datapath/linux/bandwidth/bandwidth.go at v1.20.2 l.229-230; templates/cilium-configmap.yaml l.419-422).
BBR_REFUSAL = "BPF bandwidth manager's BBR setup requires BPF host routing."


def _skip_reason():
    spec = sandbox.SandboxSpec(cilium="real", vpc_cni_runtime="real")
    reason = sandbox.real_cilium_unavailable_reason(spec) or sandbox.real_vpc_cni_unavailable_reason(spec)
    for tool in (gobuild.cilium_tool(VERSION), "cilium-operator-generic", "aws-vpc-cni", "cni-plugins"):
        reason = reason or gobuild.unavailable_reason(tool)
    return reason


pytestmark = pytest.mark.skipif(bool(_skip_reason()), reason=str(_skip_reason()))


@pytest.fixture(scope="module")
def box(sandbox_factory):
    # The chaining operator's "image" is built on first use: before the role's timed waits, not during them (the
    # sandbox builds the agents', aws-node's and the CNI plugins' itself).
    gobuild.ensure("cilium-operator-generic")
    return sandbox_factory(NAME, nodes=NODES, cilium="real", vpc_cni_runtime="real")


@pytest.fixture(scope="module")
def env(box):
    return dict(os.environ, **box.env)


@pytest.fixture(scope="module")
def apis(box):
    return sandbox_apis(box)


@pytest.fixture(scope="module")
def core(apis):
    return apis[0]


@pytest.fixture(scope="module")
def custom(apis):
    return apis[1]


@pytest.fixture(scope="module")
def ec2(apis):
    return apis[2]


def pods(core, selector):
    return sorted(core.list_namespaced_pod("kube-system", label_selector=selector).items,
                  key=lambda p: p.spec.node_name)


def live_pods(core, selector):
    """The pods of ``selector`` that are not going away."""
    return [p for p in pods(core, selector) if p.metadata.deletion_timestamp is None]


def ready(pod):
    return pod.metadata.deletion_timestamp is None and any(
        c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


def process_argv(pod, container):
    """argv of the real process behind ``container`` of ``pod`` (the node runtime's record of it)."""
    state = sandbox.real_cilium_state(NAME) / "pods" / pod.metadata.uid / container / "state.json"
    pid = json.loads(state.read_text())["pid"]
    return open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")


def node_file(node, path):
    return sandbox.real_cilium_state(NAME) / "nodes" / node / "root" / path


def eni_addresses(ec2, core, node_name):
    """The private IPv4 addresses of the moto ENIs attached to the instance behind ``node_name``."""
    instance_id = core.read_node(node_name).spec.provider_id.rsplit("/", 1)[-1]
    enis = ec2.describe_network_interfaces(
        Filters=[{"Name": "attachment.instance-id", "Values": [instance_id]}])["NetworkInterfaces"]
    return {a["PrivateIpAddress"] for eni in enis for a in eni["PrivateIpAddresses"]}, enis


def run_kubectl(kubectl_path, env, *args, check=True, timeout=120):
    return subprocess.run([str(kubectl_path), *args], env=env, capture_output=True, text=True, timeout=timeout,
                          check=check)


def chaining_play(tmp_path, box, helm):
    play = write_play(tmp_path / "chaining.yml", "cilium chaining", role="cilium_chaining",
                      variables=cilium_role_vars("cilium_chaining", box, helm, VERSION, wait_timeout=600))
    return play, local_inventory(tmp_path / "inventory.ini")


@pytest.fixture(scope="module")
def installed(box, env, helm, core, run_playbook, tmp_path_factory):
    """The cilium_chaining role's first run on the sandbox (its wait and verify phases against the real agents)."""
    play, inventory = chaining_play(tmp_path_factory.mktemp("chaining"), box, helm)
    result = run_playbook(play, inventory, env, timeout=1200)
    assert result.rc == 0, result
    assert result.changed("sandbox") > 0
    return result


def test_aws_node_runs_the_real_ipamd_against_moto(box, core, ec2):
    """Before Cilium: the aws-node pods are the real VPC CNI, Ready by the real grpc-health-probe, with the secondary
    IPs ipamd took from moto and the CNI configuration aws-vpc-cni writes (cmd/aws-vpc-cni/main.go at v1.19.2)."""
    nodes = pods(core, "k8s-app=aws-node")
    assert len(nodes) == NODES and all(ready(p) for p in nodes)
    for pod in nodes:
        argv = process_argv(pod, "aws-node")
        assert argv[0] == b"/app/aws-vpc-cni"  # the image's ENTRYPOINT (scripts/dockerfiles/Dockerfile.release)
        assert [c.name for c in pod.spec.containers] == ["aws-node"]  # no network policy agent: not buildable here
        conflist = json.loads(node_file(pod.spec.node_name, "etc/cni/net.d/10-aws.conflist").read_text())
        assert conflist["name"] == "aws-cni" and [p["type"] for p in conflist["plugins"]] == [
            "aws-cni", "egress-cni", "portmap"]
        assert conflist["plugins"][0]["vethPrefix"] == "eni" and conflist["plugins"][0]["mtu"] == "9001"
        for plugin in ("aws-cni", "egress-cni", "portmap", "host-local", "loopback"):
            assert node_file(pod.spec.node_name, f"opt/cni/bin/{plugin}").is_file(), plugin
        addresses, enis = eni_addresses(ec2, core, pod.spec.node_name)
        assert len(addresses) > len(enis)  # ipamd's warm pool: secondary IPs on the node's ENIs, in moto
        ipam = json.loads(node_file(pod.spec.node_name, "run/aws-node/ipam.json").read_text())
        assert {a["ipv4"] for a in ipam["allocations"]} <= addresses  # what the aws-cni plugin handed out
    # Pods started before Cilium (coredns) got their addresses through the real aws-cni plugin, from ipamd.
    coredns = kube.wait_for(lambda: [p for p in pods(core, "k8s-app=kube-dns") if p.status.pod_ip] or None,
                            "coredns pods with an address", timeout=120)
    for pod in coredns:
        ipam = json.loads(node_file(pod.spec.node_name, "run/aws-node/ipam.json").read_text())
        assert any(a["ipv4"] == pod.status.pod_ip and a["metadata"]["k8sPodName"] == pod.metadata.name
                   for a in ipam["allocations"]), (pod.metadata.name, pod.status.pod_ip, ipam)


def test_the_chaining_role_installs_on_real_agents_in_chaining_mode(installed, box, core):
    agents = pods(core, "k8s-app=cilium")
    assert len(agents) == NODES and all(ready(p) for p in agents)
    for pod in agents:
        argv = process_argv(pod, "cilium-agent")
        assert argv[0] == b"cilium-agent" and b"--config-dir=/tmp/cilium/config-map" in argv
        chained = json.loads(node_file(pod.spec.node_name, "etc/cni/net.d/05-cilium.conflist").read_text())
        # The real agent merged cilium-cni into the VPC CNI's list (daemon/cmd/cni/config.go at v1.20.2:
        # mergeExistingCNIConfig; cni-chaining-target defaults to aws-cni, daemon/cmd/cni/config/config.go l.55-56).
        assert chained["name"] == "aws-cni"
        assert [p["type"] for p in chained["plugins"]] == ["aws-cni", "egress-cni", "portmap", "cilium-cni"]
    operator = pods(core, "io.cilium/app=operator")
    assert operator and all(ready(p) for p in operator)
    assert process_argv(operator[0], "cilium-operator")[0] == b"cilium-operator-generic"


def test_the_role_reports_the_real_agents_healthy_in_chaining_mode(installed):
    waits = [task["hosts"]["sandbox"] for play in installed.report["plays"] for task in play["tasks"]
             if "Wait for Cilium to be healthy on every node" in task["task"]["name"] and "sandbox" in task["hosts"]]
    status = waits[-1]["status"]
    assert status["healthy"] and status["version"] == VERSION and len(status["nodes"]) == NODES
    assert status["chaining_mode"] == "aws-cni" and status["routing_mode"] == "native"
    assert all(node["state"] == "Ok" and node["version"] == VERSION for node in status["nodes"].values())


RESTART_TASK = "Restart the workloads whose pods Cilium does not manage yet (like kubectl rollout restart)"


def cilium_endpoint_ipv4(custom, namespace, name):
    """The IPv4 address of the CiliumEndpoint ``namespace/name`` once the agent gave it an identity, else None."""
    status = custom.get_namespaced_custom_object("cilium.io", "v2", namespace, "ciliumendpoints", name).get("status")
    addressing = ((status or {}).get("networking") or {}).get("addressing") or [{}]
    return addressing[0].get("ipv4") if (status or {}).get("id") else None


def test_the_role_moves_the_pods_of_the_vpc_cni_era_onto_cilium(installed, core, custom):
    """coredns started on the VPC CNI alone and was restarted once Cilium ran, and its new pods went through the
    chain: an ipamd address and an endpoint of the real agent. Two restart it, whichever comes first: the role's wait
    (cilium_install wait.yml) and the real operator's unmanaged-pod watcher, which the chart turns on for the pods
    labelled k8s-app=kube-dns every 15 s (values.yaml l.3470-3481 at v1.20.2: operator.unmanagedPodWatcher). When
    the operator was first, the role rightly found nothing left to restart; then coredns's pods must still be younger
    than the cilium DaemonSet (made once by the install; its pods may be replaced later, it is not)."""
    restarted = installed.task_results(RESTART_TASK)[-1]["sandbox"]["restarted"]
    if {"kind": "Deployment", "namespace": "kube-system", "name": "coredns"} not in restarted:
        installed_at = client.AppsV1Api(core.api_client).read_namespaced_daemon_set(
            "cilium", "kube-system").metadata.creation_timestamp
        current = live_pods(core, "k8s-app=kube-dns")
        assert current and all(p.metadata.creation_timestamp >= installed_at for p in current), restarted

    def coredns_on_cilium():
        current = live_pods(core, "k8s-app=kube-dns")
        if not current or not all(p.status.pod_ip for p in current):
            return None
        endpoints = {p.metadata.name: cilium_endpoint_ipv4(custom, "kube-system", p.metadata.name) for p in current}
        return current if all(endpoints[p.metadata.name] == p.status.pod_ip for p in current) else None

    for pod in kube.wait_for(coredns_on_cilium, "coredns's new pods as Cilium endpoints", timeout=180):
        ipam = json.loads(node_file(pod.spec.node_name, "run/aws-node/ipam.json").read_text())
        assert any(a["ipv4"] == pod.status.pod_ip and a["metadata"]["k8sPodName"] == pod.metadata.name
                   for a in ipam["allocations"]), (pod.metadata.name, pod.status.pod_ip, ipam)


def test_a_pod_goes_through_the_real_chain(installed, box, core, custom, ec2, env, kubectl):
    """aws-cni (an address of a moto ENI from ipamd), egress-cni, portmap, then cilium-cni (an endpoint of the real
    agent), as the container runtime runs 05-cilium.conflist."""
    node = sorted(n.metadata.name for n in core.list_node().items)[0]
    core.create_namespaced_pod("default", {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "chained"},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}],
                 "terminationGracePeriodSeconds": 0}})

    def chained_pod_with_ip():
        pod = core.read_namespaced_pod("chained", "default")
        return pod if pod.status.pod_ip else None

    pod = kube.wait_for(chained_pod_with_ip, "the chained pod's IP", timeout=180)
    addresses, _enis = eni_addresses(ec2, core, node)
    assert pod.status.pod_ip in addresses
    ipam = json.loads(node_file(node, "run/aws-node/ipam.json").read_text())
    assert any(a["ipv4"] == pod.status.pod_ip and a["metadata"]["k8sPodName"] == "chained"
               for a in ipam["allocations"])
    kube.wait_for(lambda: cilium_endpoint_ipv4(custom, "default", "chained") == pod.status.pod_ip,
                  "CiliumEndpoint default/chained with the pod's IP", timeout=120)
    agent = next(p for p in pods(core, "k8s-app=cilium") if p.spec.node_name == node)
    endpoints = json.loads(run_kubectl(kubectl, env, "-n", "kube-system", "exec", agent.metadata.name, "-c",
                                       "cilium-agent", "--", "cilium-dbg", "endpoint", "list", "-o", "json").stdout)
    ours = [e for e in endpoints if any(a.get("ipv4") == pod.status.pod_ip for a in (
        ((e.get("status") or {}).get("networking") or {}).get("addressing") or []))]
    assert len(ours) == 1, [e.get("status", {}).get("networking") for e in endpoints]
    network = next(json.loads(p.read_text()) for p in (sandbox.real_cilium_state(NAME) / "networks").glob("*.json")
                   if json.loads(p.read_text())["name"] == "chained")
    links = linux_ns.ip("-o", "addr", "show", "eth0", netns=network["netns"]).stdout
    assert f"inet {pod.status.pod_ip}/32" in links  # aws-cni's /32 on the pod's eth0
    core.delete_namespaced_pod("chained", "default", grace_period_seconds=0)


def test_a_second_run_changes_nothing(installed, box, env, helm, run_playbook, tmp_path):
    play, inventory = chaining_play(tmp_path, box, helm)
    result = run_playbook(play, inventory, env, timeout=900)
    assert result.rc == 0, result
    assert result.changed("sandbox") == 0, result


def test_a_chaining_configuration_the_agent_refuses_is_reported(installed, box, core, env, helm, kubectl,
                                                                run_playbook, tmp_path):
    """BBR for pods in chaining mode, set behind the collection's back (its validate refuses it: cilium_table rule
    bbr-in-chaining): the real agent crash-loops, and cilium_status names the agent's own reason."""
    chart = str(charts.ensure_chart(VERSION))
    helm_args = ("--namespace", "kube-system", "--reuse-values")
    subprocess.run([str(helm), "upgrade", "cilium", chart, *helm_args, "--set", "bandwidthManager.enabled=true",
                    "--set", "bandwidthManager.bbr=true"], env=env, check=True, capture_output=True, timeout=300)
    run_kubectl(kubectl, env, "-n", "kube-system", "rollout", "restart", "ds/cilium")
    play, inventory = status_play(tmp_path, box.kubeconfig, timeout=600, expected_version=VERSION)
    try:
        result = run_playbook(play, inventory, env)
        assert result.rc != 0, result
        failed = result.task_results("status")[0]["localhost"]
        assert failed["status"]["crash_looping"] and failed["status"]["elapsed"] < 600
        assert failed["msg"].startswith("Cilium agents crash-loop on ") and BBR_REFUSAL in failed["msg"], failed["msg"]
    finally:
        subprocess.run([str(helm), "upgrade", "cilium", chart, *helm_args, "--set", "bandwidthManager.enabled=false",
                        "--set", "bandwidthManager.bbr=false"], env=env, check=True, capture_output=True, timeout=300)
        run_kubectl(kubectl, env, "-n", "kube-system", "rollout", "restart", "ds/cilium")
        run_kubectl(kubectl, env, "-n", "kube-system", "rollout", "status", "ds/cilium", "--timeout", "300s",
                    timeout=320)
