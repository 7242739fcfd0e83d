"""EC2 instances in moto behind the sandbox's kwok Nodes, agreeing with each other.

On EKS every node is an EC2 instance: the Node's ``spec.providerID`` is ``aws:///<zone>/<instance id>``,
its InternalIP is the instance's private IP and its name the private DNS name of that IP. Cilium's ENI
IPAM relies on this: the agent reads its instance from IMDS and writes it into its CiliumNode, and the
operator finds the instance (DescribeInstances, DescribeNetworkInterfaces) to attach ENIs and assign
IPs to it. ``launch_instance_nodes`` makes both sides at once: instances in moto (one per node, spread
over the node group's subnets like an Auto Scaling group spreads over AZs) and the kwok Node dicts that
describe them. The primary ENI's id and MAC ride on the Node as annotations (:data:`PRIMARY_ENI`,
:data:`PRIMARY_MAC`): the platform gives the node's ``eth0`` that MAC, as EC2 does.

Used by ``sandbox.up`` (the sandbox's own node group) and by node group reconcilers.
"""
from __future__ import annotations

import ipaddress

from . import eks_objects

PRIMARY_ENI = "eks-sandbox.cloudnet.io/primary-eni"
PRIMARY_MAC = "eks-sandbox.cloudnet.io/primary-eni-mac"
IMAGE_ID = "ami-0f9c4b3c0d1e2a3b4"  # the node group image label of eks_objects; moto accepts any AMI id
FIRST_HOST, HOST_STEP = 11, 37  # ip-192-168-0-11, -48, -85 ...: addresses like the blog's nodes


def _free_address(cidr: str, taken: set) -> str:
    """The first of network+11, +48, +85 ... (then any host) not in ``taken``."""
    network = ipaddress.ip_network(cidr)
    hosts = network.num_addresses - 2
    for offset in [FIRST_HOST + k * HOST_STEP for k in range(hosts // HOST_STEP)] + list(range(4, hosts)):
        address = str(network.network_address + offset)
        if offset <= hosts and address not in taken:
            return address
    raise RuntimeError(f"subnet {cidr} has no free address left")


def _used_addresses(ec2, subnet_id: str) -> set:
    interfaces = ec2.describe_network_interfaces(Filters=[{"Name": "subnet-id", "Values": [subnet_id]}])
    return {a["PrivateIpAddress"] for eni in interfaces["NetworkInterfaces"] for a in eni["PrivateIpAddresses"]}


def _running(ec2, cluster: str, nodegroup: str) -> list:
    reservations = ec2.describe_instances(Filters=[
        {"Name": "tag:eks:cluster-name", "Values": [cluster]}, {"Name": "tag:eks:nodegroup-name", "Values": [nodegroup]},
        {"Name": "instance-state-name", "Values": ["pending", "running"]}])["Reservations"]
    return [i for r in reservations for i in r["Instances"]]


def instance_tags(cluster: str, nodegroup: str) -> dict:
    """Tags EKS puts on a managed node group's instances (those the API lets a caller set)."""
    return {"Name": f"{cluster}-{nodegroup}-Node", "eks:cluster-name": cluster, "eks:nodegroup-name": nodegroup,
            f"kubernetes.io/cluster/{cluster}": "owned"}


def node_for_instance(instance: dict, *, cluster, region, nodegroup, labels=None, taints=(), kubelet_version,
                      capacity_type="ON_DEMAND") -> dict:
    """The kwok Node of an EC2 instance (a DescribeInstances item)."""
    primary = next(eni for eni in instance["NetworkInterfaces"] if eni["Attachment"]["DeviceIndex"] == 0)
    return eks_objects.instance_node(
        name=eks_objects.private_dns_name(instance["PrivateIpAddress"], region), address=instance["PrivateIpAddress"],
        zone=instance["Placement"]["AvailabilityZone"], instance_id=instance["InstanceId"], cluster=cluster,
        region=region, nodegroup=nodegroup, instance_type=instance["InstanceType"], kubelet_version=kubelet_version,
        capacity_type=capacity_type, taints=taints, labels=labels,
        annotations={PRIMARY_ENI: primary["NetworkInterfaceId"], PRIMARY_MAC: primary["MacAddress"]})


def launch_instance_nodes(ec2, *, cluster, nodegroup, count, subnets, security_groups, instance_type, labels=None,
                          taints=(), kubelet_version, capacity_type="ON_DEMAND", region, avoid_addresses=()) -> list:
    """Run ``count`` instances of ``nodegroup`` in moto and return their kwok Node dicts (not applied).

    ``ec2``: a boto3 EC2 client of the sandbox; ``subnets``: the node group's subnet ids (instances go to
    the subnet holding the fewest of the group's instances, first listed first, as an Auto Scaling group
    balances its AZs); ``security_groups``: ids for the primary ENI (EKS: the cluster security group).
    Each instance gets the first free of .11, .48, .85 ... of its subnet as private IP, skipping
    ``avoid_addresses`` (every eksctl VPC is 192.168.0.0/16: two clusters' instances must not share an
    address, hence a Node name, in the sandbox's one API server)."""
    described = {s["SubnetId"]: s for s in ec2.describe_subnets(SubnetIds=list(subnets))["Subnets"]}
    per_subnet = {subnet: 0 for subnet in subnets}
    for instance in _running(ec2, cluster, nodegroup):
        if instance.get("SubnetId") in per_subnet:
            per_subnet[instance["SubnetId"]] += 1
    tags = [{"Key": k, "Value": v} for k, v in instance_tags(cluster, nodegroup).items()]
    nodes = []
    for _instance in range(count):
        subnet = min(subnets, key=lambda s: per_subnet[s])
        per_subnet[subnet] += 1
        address = _free_address(described[subnet]["CidrBlock"], _used_addresses(ec2, subnet) | set(avoid_addresses))
        instance = ec2.run_instances(
            ImageId=IMAGE_ID, InstanceType=instance_type, MinCount=1, MaxCount=1, SubnetId=subnet,
            PrivateIpAddress=address, SecurityGroupIds=list(security_groups),
            TagSpecifications=[{"ResourceType": "instance", "Tags": tags}])["Instances"][0]
        nodes.append(node_for_instance(instance, cluster=cluster, region=region, nodegroup=nodegroup, labels=labels,
                                       taints=taints, kubelet_version=kubelet_version, capacity_type=capacity_type))
    return nodes


def terminate_instance_nodes(ec2, instance_ids) -> None:
    """Terminate the instances behind deleted nodes. On EC2 the ENIs attached with DeleteOnTermination go with
    the instance (the primary one; Cilium's with ``eni.deleteOnTermination``, its default). moto 5.2.5 keeps
    every ENI: it ignores ``ModifyNetworkInterfaceAttribute(Attachment.DeleteOnTermination)`` (Cilium's way of
    setting it), and its DescribeInstances of a terminated instance needs the primary ENI (``Instance.private_ip``
    reads ``nics[0]``), so neither can be deleted here."""
    if instance_ids:
        ec2.terminate_instances(InstanceIds=list(instance_ids))


def instance_id_of(node: dict) -> str:
    """``i-...`` from a Node's ``spec.providerID`` (``aws:///us-east-1a/i-0abc``)."""
    return ((node.get("spec") or {}).get("providerID") or "").rsplit("/", 1)[-1]
