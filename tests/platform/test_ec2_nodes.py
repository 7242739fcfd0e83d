"""EC2 instances behind kwok nodes (ec2_nodes.py) and moto_eks's fix of moto's AssignPrivateIpAddresses answer,
against a real moto server behind the sandbox's proxy."""
import ipaddress

import boto3
import pytest

from eks_sandbox import aws, ec2_nodes, eks_objects

REGION = "us-east-1"
CLUSTER = "ec2n"


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CILIUM_EKS_CACHE", str(tmp_path_factory.mktemp("cache")))
        patch.delenv("CILIUM_EKS_STATE", raising=False)  # its moto in that cache, not in a shared state folder
        result = aws.start_aws(CLUSTER, REGION, "1.34", ["ng-1"], None)
        yield result
        aws.stop_aws()


@pytest.fixture(scope="module")
def ec2(seeded):
    return boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                 region_name=REGION).client("ec2", endpoint_url=seeded["endpoint"])


def launch(ec2, seeded, count, nodegroup="ng-1", **extra):
    return ec2_nodes.launch_instance_nodes(
        ec2, cluster=CLUSTER, nodegroup=nodegroup, count=count, subnets=seeded["seed"]["subnet_ids"]["public"],
        security_groups=[seeded["seed"]["cluster_security_group_id"]], instance_type="t3.medium",
        kubelet_version="v1.34.4-eks-1234", region=REGION, **extra)


def test_nodes_and_instances_agree(ec2, seeded):
    nodes = launch(ec2, seeded, 3, nodegroup="ng-agree", labels={"role": "worker"},
                   taints=[eks_objects.AGENT_NOT_READY_TAINT])
    subnets = {s["SubnetId"]: s for s in ec2.describe_subnets(SubnetIds=seeded["seed"]["subnet_ids"]["public"])["Subnets"]}
    zones_used = set()
    for node in nodes:
        instance_id = ec2_nodes.instance_id_of(node)
        instance = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
        internal_ip = next(a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP")
        zone = instance["Placement"]["AvailabilityZone"]
        zones_used.add(zone)
        assert node["spec"]["providerID"] == f"aws:///{zone}/{instance_id}"
        assert internal_ip == instance["PrivateIpAddress"]
        assert node["metadata"]["name"] == "ip-" + internal_ip.replace(".", "-") + ".ec2.internal"
        assert node["metadata"]["labels"]["topology.kubernetes.io/zone"] == zone
        assert node["metadata"]["labels"]["role"] == "worker"
        assert node["spec"]["taints"] == [eks_objects.AGENT_NOT_READY_TAINT]
        primary = next(e for e in instance["NetworkInterfaces"] if e["Attachment"]["DeviceIndex"] == 0)
        annotations = node["metadata"]["annotations"]
        assert annotations[ec2_nodes.PRIMARY_ENI] == primary["NetworkInterfaceId"]
        assert annotations[ec2_nodes.PRIMARY_MAC] == primary["MacAddress"]
        assert [g["GroupId"] for g in primary["Groups"]] == [seeded["seed"]["cluster_security_group_id"]]
        assert ipaddress.ip_address(internal_ip) in ipaddress.ip_network(subnets[instance["SubnetId"]]["CidrBlock"])
        tags = {t["Key"]: t["Value"] for t in instance["Tags"]}
        assert tags["eks:cluster-name"] == CLUSTER and tags["eks:nodegroup-name"] == "ng-agree"
    assert len(zones_used) == 3  # one per AZ, as an Auto Scaling group balances them


def test_addresses_are_the_first_free_of_the_blog_pattern(ec2, seeded):
    first = launch(ec2, seeded, 1, nodegroup="ng-pattern")[0]
    second = launch(ec2, seeded, 3, nodegroup="ng-pattern")
    ips = [next(a["address"] for a in n["status"]["addresses"] if a["type"] == "InternalIP") for n in [first] + second]
    assert len(set(ips)) == 4  # never an address already in use in the subnet
    assert all(int(ip.split(".")[-1]) in (11, 48, 85, 122) for ip in ips)


def test_addresses_of_other_clusters_are_avoided(ec2, seeded):
    """Another cluster's VPC has the same subnets: its nodes' addresses are passed in and skipped."""
    subnet = ec2.describe_subnets(SubnetIds=seeded["seed"]["subnet_ids"]["public"][:1])["Subnets"][0]
    would_be = ec2_nodes._free_address(subnet["CidrBlock"], ec2_nodes._used_addresses(ec2, subnet["SubnetId"]))
    (node,) = launch(ec2, seeded, 1, nodegroup="ng-avoid", avoid_addresses={would_be})
    address = next(a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP")
    assert address != would_be and ipaddress.ip_address(address) in ipaddress.ip_network(subnet["CidrBlock"])


def test_terminate_instance_nodes(ec2, seeded):
    nodes = launch(ec2, seeded, 2, nodegroup="ng-gone")
    ids = [ec2_nodes.instance_id_of(n) for n in nodes]
    ec2_nodes.terminate_instance_nodes(ec2, ids)
    states = {i["InstanceId"]: i["State"]["Name"] for r in ec2.describe_instances(InstanceIds=ids)["Reservations"]
              for i in r["Instances"]}
    assert set(states.values()) <= {"shutting-down", "terminated"}
    assert ec2_nodes._running(ec2, CLUSTER, "ng-gone") == []


def test_assign_private_ip_addresses_answers_only_what_it_assigned(ec2, seeded):
    """The answer lists the call's addresses only (moto's own lists every address of the ENI), through the
    proxy and straight from moto_eks's moto."""
    subnet = seeded["seed"]["subnet_ids"]["private"][0]
    eni = ec2.create_network_interface(SubnetId=subnet, SecondaryPrivateIpAddressCount=2)["NetworkInterface"]
    before = {a["PrivateIpAddress"] for a in eni["PrivateIpAddresses"]}
    answer = ec2.assign_private_ip_addresses(NetworkInterfaceId=eni["NetworkInterfaceId"],
                                             SecondaryPrivateIpAddressCount=3)
    assigned = [a["PrivateIpAddress"] for a in answer["AssignedPrivateIpAddresses"]]
    after = {a["PrivateIpAddress"] for a in ec2.describe_network_interfaces(
        NetworkInterfaceIds=[eni["NetworkInterfaceId"]])["NetworkInterfaces"][0]["PrivateIpAddresses"]}
    assert len(assigned) == 3 and set(assigned) == after - before

    explicit = str(ipaddress.ip_network(ec2.describe_subnets(SubnetIds=[subnet])["Subnets"][0]["CidrBlock"])[200])
    answer = ec2.assign_private_ip_addresses(NetworkInterfaceId=eni["NetworkInterfaceId"], PrivateIpAddresses=[explicit])
    assert [a["PrivateIpAddress"] for a in answer["AssignedPrivateIpAddresses"]] == [explicit]

    raw = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                region_name=REGION).client("ec2", endpoint_url=seeded["moto_endpoint"])
    before = after | {explicit}
    answer = raw.assign_private_ip_addresses(NetworkInterfaceId=eni["NetworkInterfaceId"], SecondaryPrivateIpAddressCount=1)
    (one,) = [a["PrivateIpAddress"] for a in answer["AssignedPrivateIpAddresses"]]
    assert one not in before
