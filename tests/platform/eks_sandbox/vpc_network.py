"""The sandbox's VPC as a kernel network: one network namespace per node, joined by a "VPC" namespace.

Real Cilium agents need a node to run on: interfaces named and addressed like an EC2 instance's, whose
MACs are the MACs of the instance's ENIs in moto (the operator reads each ENI's MAC from EC2,
``pkg/aws/api/api.go``:479 at v1.20.2, and the agent sets up the link of each ENI by that MAC,
``pkg/ipam/eni.go``:293-327), and a network delivering packets to those ENIs.
This module builds that on this machine's kernel, inside namespaces only (no host interface, route or
sysctl is touched):

* ``cek-<tag>-vpc``: the VPC router. Every subnet's router address (``x.y.z.1``, which AWS reserves for
  it) is on its ``lo``; it forwards, answers ARP for every address it has a route to (``proxy_arp``)
  and reaches every private IP of every ENI through a ``/32`` route and a permanent neighbour entry on
  the veth of that ENI: the VPC delivers by IP, it needs no ARP from the instance (which would not
  answer for the secondary IPs Cilium gives to pods).
* ``cek-<tag>-<node>``: a node. ``eth<N>`` is ENI device index N (MAC from moto); ``eth0`` carries the
  primary private IP with the subnet's prefix and the default route via the subnet's router, the
  other ENIs are brought up without address, as on an instance before the OS configures them (Cilium
  routes pod traffic over them by itself). ``169.254.169.254`` is on its ``lo`` for IMDS.

``tag`` comes from the sandbox name and the state folder (``sandbox_tag``), so two sandboxes, or two
``$CILIUM_EKS_STATE`` folders, never share a namespace. ``interfaces_from_moto`` reads what to build
from moto (DescribeNetworkInterfaces of the node's instance), so ENIs the real operator attaches
appear as links, like a hot-plugged NIC.
"""
from __future__ import annotations

import ipaddress
import zlib
from dataclasses import dataclass, field

from . import linux_ns

PREFIX = "cek"
IMDS_ADDRESS = "169.254.169.254"
EC2_MTU = 9001  # what EC2 gives ENIs of current instance types


def sandbox_tag(state_dir, name: str) -> str:
    """6 hex digits naming a sandbox's namespaces (interface names are limited to 15 characters)."""
    return f"{zlib.crc32(f'{state_dir}/{name}'.encode()):08x}"[:6]


def short(name: str) -> str:
    return f"{zlib.crc32(name.encode()):08x}"[:5]


@dataclass(frozen=True)
class Interface:
    """One attached ENI as the instance sees it."""
    device_index: int
    mac: str
    eni_id: str
    subnet_cidr: str
    addresses: tuple  # private IPs, primary first

    @property
    def gateway(self) -> str:
        return str(ipaddress.ip_network(self.subnet_cidr).network_address + 1)


def interfaces_from_moto(ec2, instance_id: str) -> list:
    """The ENIs attached to ``instance_id``, by device index (ENI and subnet facts from moto)."""
    enis = ec2.describe_network_interfaces(
        Filters=[{"Name": "attachment.instance-id", "Values": [instance_id]}])["NetworkInterfaces"]
    subnets = {s["SubnetId"]: s["CidrBlock"] for s in ec2.describe_subnets(
        SubnetIds=sorted({eni["SubnetId"] for eni in enis}))["Subnets"]} if enis else {}
    found = []
    for eni in enis:
        addresses = sorted(eni.get("PrivateIpAddresses") or [], key=lambda a: not a.get("Primary"))
        found.append(Interface(device_index=int(eni["Attachment"]["DeviceIndex"]), mac=eni["MacAddress"].lower(),
                               eni_id=eni["NetworkInterfaceId"], subnet_cidr=subnets[eni["SubnetId"]],
                               addresses=tuple(a["PrivateIpAddress"] for a in addresses)))
    return sorted(found, key=lambda i: i.device_index)


@dataclass
class VpcNetwork:
    tag: str
    built: dict = field(default_factory=dict)  # (node, device index) -> Interface as last programmed

    @property
    def vpc_ns(self) -> str:
        return f"{PREFIX}-{self.tag}-vpc"

    def node_ns(self, node: str) -> str:
        return f"{PREFIX}-{self.tag}-{short(node)}"

    def vpc_link(self, node: str, device_index: int) -> str:
        return f"v{self.tag}{short(node)[:3]}{device_index}"[:15]

    def namespaces(self) -> list:
        return linux_ns.netns_names(f"{PREFIX}-{self.tag}-")

    # ---------------------------------------------------------------------------- lifecycle
    def up(self) -> None:
        if self.vpc_ns in linux_ns.netns_names():
            return
        linux_ns.ip("netns", "add", self.vpc_ns)
        linux_ns.ip("link", "set", "lo", "up", netns=self.vpc_ns)
        for key, value in (("net.ipv4.ip_forward", "1"), ("net.ipv4.conf.all.rp_filter", "0"),
                           ("net.ipv4.conf.default.rp_filter", "0"), ("net.ipv4.conf.default.proxy_arp", "1")):
            linux_ns.run(["ip", "netns", "exec", self.vpc_ns, "sysctl", "-qw", f"{key}={value}"])

    def ensure_node(self, node: str) -> str:
        """The node's namespace (created with ``lo`` up and the IMDS address)."""
        self.up()
        ns = self.node_ns(node)
        if ns not in linux_ns.netns_names():
            linux_ns.ip("netns", "add", ns)
            linux_ns.ip("link", "set", "lo", "up", netns=ns)
            linux_ns.ip("addr", "add", f"{IMDS_ADDRESS}/32", "dev", "lo", netns=ns)
        return ns

    def remove_node(self, node: str) -> None:
        """Delete the node's namespace; its veths, and the VPC's routes over them, go with it."""
        linux_ns.ip("netns", "del", self.node_ns(node), check=False)
        for key in [k for k in self.built if k[0] == node]:
            del self.built[key]

    def down(self) -> None:
        for ns in self.namespaces():
            linux_ns.ip("netns", "del", ns, check=False)
        self.built.clear()

    # ---------------------------------------------------------------------------- interfaces
    def sync_node(self, node: str, interfaces) -> list:
        """Make the node's links match ``interfaces`` (from :func:`interfaces_from_moto`); returns what changed."""
        ns = self.ensure_node(node)
        changes = []
        wanted = {i.device_index: i for i in interfaces}
        for index in sorted(k[1] for k in self.built if k[0] == node and k[1] not in wanted):
            linux_ns.ip("link", "del", f"eth{index}", netns=ns, check=False)
            del self.built[(node, index)]
            changes.append(f"eth{index} detached")
        for index, interface in sorted(wanted.items()):
            previous = self.built.get((node, index))
            if previous == interface:
                continue
            if previous is None or previous.mac != interface.mac:
                self._plug(node, ns, interface, replace=previous is not None)
                changes.append(f"eth{index} {interface.mac} ({interface.eni_id})")
            self._route(node, interface, previous)
            self.built[(node, index)] = interface
        return changes

    def _plug(self, node: str, ns: str, interface: Interface, replace: bool) -> None:
        name, peer = f"eth{interface.device_index}", self.vpc_link(node, interface.device_index)
        if replace:
            linux_ns.ip("link", "del", name, netns=ns, check=False)
        linux_ns.ip("link", "add", peer, "mtu", str(EC2_MTU), "type", "veth", "peer", "name", name, "netns", ns,
                    "address", interface.mac, "mtu", str(EC2_MTU), netns=self.vpc_ns)
        linux_ns.ip("link", "set", peer, "up", netns=self.vpc_ns)
        linux_ns.run(["ip", "netns", "exec", self.vpc_ns, "sysctl", "-qw", f"net.ipv4.conf.{peer}.proxy_arp=1"])
        linux_ns.ip("addr", "replace", f"{interface.gateway}/32", "dev", "lo", netns=self.vpc_ns)
        linux_ns.ip("link", "set", name, "up", netns=ns)
        if interface.device_index == 0:
            prefix = ipaddress.ip_network(interface.subnet_cidr).prefixlen
            linux_ns.ip("addr", "replace", f"{interface.addresses[0]}/{prefix}", "dev", name, netns=ns)
            linux_ns.ip("route", "replace", "default", "via", interface.gateway, "dev", name, netns=ns)

    def _route(self, node: str, interface: Interface, previous: Interface | None) -> None:
        """The VPC reaches each private IP of the ENI over its veth (route + permanent neighbour)."""
        peer = self.vpc_link(node, interface.device_index)
        kept = set(previous.addresses) if previous and previous.mac == interface.mac else set()
        for address in set(interface.addresses) - kept:
            linux_ns.ip("route", "replace", f"{address}/32", "dev", peer, netns=self.vpc_ns)
            linux_ns.ip("neigh", "replace", address, "lladdr", interface.mac, "dev", peer, "nud", "permanent",
                        netns=self.vpc_ns)
        for address in kept - set(interface.addresses):
            linux_ns.ip("route", "del", f"{address}/32", "dev", peer, netns=self.vpc_ns, check=False)
            linux_ns.ip("neigh", "del", address, "dev", peer, netns=self.vpc_ns, check=False)
