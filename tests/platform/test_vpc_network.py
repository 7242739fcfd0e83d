"""The sandbox's VPC on this kernel (vpc_network.py): nodes in two subnets reach each other and the secondary IPs of
each other's ENIs through the VPC namespace, links carry the ENIs' MACs, and down() leaves no namespace."""
import os
import shutil

import pytest

from eks_sandbox import linux_ns, vpc_network


@pytest.fixture
def vpc():
    if os.geteuid() != 0 or not shutil.which("ip"):
        pytest.skip("the VPC namespaces need root and iproute2")
    network = vpc_network.VpcNetwork(vpc_network.sandbox_tag("/test-state", f"vpc-{os.getpid()}"))
    yield network
    network.down()
    assert network.namespaces() == []


def eni(index, mac, cidr, *addresses):
    return vpc_network.Interface(device_index=index, mac=mac, eni_id=f"eni-{index}{mac[-2:]}", subnet_cidr=cidr,
                                 addresses=tuple(addresses))


def reaches(source_ns, target_ns, address, port=7070):
    """A TCP connection from ``source_ns`` to a listener on ``address`` in ``target_ns`` (no ping on this machine)."""
    listener = linux_ns.listen_in(linux_ns.netns_path(target_ns), address, port)
    try:
        linux_ns.connect_in(linux_ns.netns_path(source_ns), address, port, timeout=3).close()
        return True
    except OSError:
        return False
    finally:
        listener.close()


def test_nodes_reach_each_other_and_eni_addresses(vpc):
    a = [eni(0, "02:00:00:00:0a:00", "192.168.0.0/19", "192.168.0.11")]
    b = [eni(0, "02:00:00:00:0b:00", "192.168.32.0/19", "192.168.32.11"),
         eni(1, "02:00:00:00:0b:01", "192.168.32.0/19", "192.168.40.5", "192.168.40.6")]
    assert vpc.sync_node("node-a", a) == ["eth0 02:00:00:00:0a:00 (eni-000)"]
    assert len(vpc.sync_node("node-b", b)) == 2
    ns_a, ns_b = vpc.node_ns("node-a"), vpc.node_ns("node-b")
    link = linux_ns.ip("-o", "link", "show", "eth1", netns=ns_b).stdout
    assert "02:00:00:00:0b:01" in link and "mtu 9001" in link
    assert "169.254.169.254/32" in linux_ns.ip("-o", "addr", "show", "lo", netns=ns_a).stdout
    assert reaches(ns_a, ns_b, "192.168.32.11")  # across subnets, through the VPC router
    assert reaches(ns_b, vpc.vpc_ns, "192.168.32.1")  # the subnet's router address
    # A secondary IP answers once the node uses it (as Cilium does for a pod); the VPC delivers it to eth1.
    linux_ns.ip("addr", "add", "192.168.40.6/32", "dev", "eth1", netns=ns_b)
    assert reaches(ns_a, ns_b, "192.168.40.6")
    assert vpc.sync_node("node-b", b) == []  # nothing changed


def test_addresses_and_links_follow_moto(vpc):
    vpc.sync_node("node-a", [eni(0, "02:00:00:00:0a:00", "192.168.0.0/19", "192.168.0.11")])
    one = eni(1, "02:00:00:00:0a:01", "192.168.0.0/19", "192.168.9.1")
    vpc.sync_node("node-a", [eni(0, "02:00:00:00:0a:00", "192.168.0.0/19", "192.168.0.11"), one])
    routes = linux_ns.ip("route", "show", netns=vpc.vpc_ns).stdout
    assert "192.168.9.1 dev" in routes
    more = eni(1, "02:00:00:00:0a:01", "192.168.0.0/19", "192.168.9.1", "192.168.9.2")
    vpc.sync_node("node-a", [eni(0, "02:00:00:00:0a:00", "192.168.0.0/19", "192.168.0.11"), more])
    assert "192.168.9.2 dev" in linux_ns.ip("route", "show", netns=vpc.vpc_ns).stdout
    assert vpc.sync_node("node-a", [eni(0, "02:00:00:00:0a:00", "192.168.0.0/19", "192.168.0.11")]) == ["eth1 detached"]
    assert "192.168.9.1 dev" not in linux_ns.ip("route", "show", netns=vpc.vpc_ns).stdout
    vpc.remove_node("node-a")
    assert vpc.node_ns("node-a") not in linux_ns.netns_names()


def test_names_are_per_sandbox_and_state_folder():
    assert vpc_network.sandbox_tag("/s1", "x") != vpc_network.sandbox_tag("/s2", "x")
    network = vpc_network.VpcNetwork("abc123")
    assert len(network.vpc_link("ip-192-168-0-11.ec2.internal", 3)) <= 15
