"""Chaining's real tier, first half: the AWS VPC CNI that ``cni.chainingMode=aws-cni`` chains Cilium behind, for real.

The sandbox runs aws-node from the add-on's own manifest (amazon-vpc-cni-k8s v1.19.2 config/master/aws-k8s-cni.yaml,
``vpc_cni_runtime="real"``): per node, the real ``aws-vpc-cni`` entrypoint starts the real ipamd (aws-k8s-agent)
against moto (its ENIs' secondary IPs), installs the real aws-cni and egress-cni plugins and writes 10-aws.conflist;
the pod is Ready when the real grpc-health-probe says ipamd serves, and pods started before Cilium (coredns) get
their addresses through the real aws-cni plugin. The second half, cilium_chaining on real agents in chaining mode
with the real cilium-operator-generic, is not proven yet (docs/real-cilium.md, "Chaining").

Not real here: the network policy agent (aws-eks-nodeagent, v1.1.6 in the manifest: its Go module version is refused
by the proxy; it enforces nothing with the manifest's --enable-network-policy=false), and everything
docs/real-cilium.md lists for ENI mode. Skips naming the missing piece when a piece cannot be had.
"""
import json

import pytest
from helpers import sandbox_apis

from eks_sandbox import gobuild, kube, sandbox

NAME = "it-chain"
VERSION = "1.20.2"
NODES = 2


def _skip_reason():
    spec = sandbox.SandboxSpec(cilium="real", vpc_cni_runtime="real")
    reason = sandbox.real_cilium_unavailable_reason(spec) or sandbox.real_vpc_cni_unavailable_reason(spec)
    for tool in (gobuild.cilium_tool(VERSION), "aws-vpc-cni", "cni-plugins"):
        reason = reason or gobuild.unavailable_reason(tool)
    return reason


pytestmark = pytest.mark.skipif(bool(_skip_reason()), reason=str(_skip_reason()))


@pytest.fixture(scope="module")
def box(sandbox_factory):
    return sandbox_factory(NAME, nodes=NODES, cilium="real", vpc_cni_runtime="real")


@pytest.fixture(scope="module")
def apis(box):
    return sandbox_apis(box)


@pytest.fixture(scope="module")
def core(apis):
    return apis[0]


@pytest.fixture(scope="module")
def ec2(apis):
    return apis[2]


def pods(core, selector):
    return sorted(core.list_namespaced_pod("kube-system", label_selector=selector).items,
                  key=lambda p: p.spec.node_name)


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
