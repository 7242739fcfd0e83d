"""The security-group rules of eks_nodeport_access: which rules the collection owns, what a run adds and removes.
The AWS side runs on the sandbox (tests/integration/test_real_eksctl.py)."""
import pytest

from ansible_collections.cloudnet.cilium_eks.plugins.module_utils import nodeport_access as access

ICMP, NODEPORTS = ("icmp", -1, -1), ("tcp", 30000, 32767)
EKS_SELF_RULE = {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": "sg-0eks"}], "IpRanges": []}


def permission(ports, *ranges):
    protocol, low, high = ports
    return {"IpProtocol": protocol, "FromPort": low, "ToPort": high,
            "IpRanges": [dict(CidrIp=cidr, **({"Description": text} if text else {})) for cidr, text in ranges]}


def owned(ports, cidr):
    return access.desired_rules({cidr: "node i-0a"})[ports + (cidr,)]


def test_each_public_node_gets_a_slash_32_and_nodes_without_public_ip_none():
    instances = [{"InstanceId": "i-0a", "PublicIpAddress": "54.1.2.3"}, {"InstanceId": "i-0b"},
                 {"InstanceId": "i-0c", "PublicIpAddress": "3.4.5.6"}]
    assert access.public_sources(instances) == {"54.1.2.3/32": "node i-0a", "3.4.5.6/32": "node i-0c"}
    assert access.public_sources([{"InstanceId": "i-0b", "PrivateIpAddress": "192.168.0.11"}]) == {}


def test_desired_rules_cover_icmp_and_the_nodeport_range_with_owned_descriptions():
    rules = access.desired_rules({"54.1.2.3/32": "node i-0a"})
    assert set(rules) == {ICMP + ("54.1.2.3/32",), NODEPORTS + ("54.1.2.3/32",)}
    assert all(text.startswith(access.OWNER) and "node i-0a" in text for text in rules.values())
    assert all(len(text) <= 255 for text in rules.values())  # EC2's limit for a rule description


def test_a_first_run_adds_every_rule():
    todo = access.plan(access.desired_rules({"54.1.2.3/32": "node i-0a"}), [EKS_SELF_RULE])
    assert sorted(todo["add"]) == [ICMP + ("54.1.2.3/32",), NODEPORTS + ("54.1.2.3/32",)]
    assert todo["remove"] == [] and todo["before"] == []
    assert todo["after"] == ["icmp from 54.1.2.3/32", "tcp 30000-32767 from 54.1.2.3/32"]


def test_nothing_moves_when_the_rules_are_there():
    existing = [EKS_SELF_RULE, permission(ICMP, ("54.1.2.3/32", owned(ICMP, "54.1.2.3/32"))),
                permission(NODEPORTS, ("54.1.2.3/32", owned(NODEPORTS, "54.1.2.3/32")))]
    todo = access.plan(access.desired_rules({"54.1.2.3/32": "node i-0a"}), existing)
    assert todo["add"] == {} and todo["remove"] == [] and todo["before"] == todo["after"]


def test_a_gone_node_loses_its_rules_and_a_new_one_gets_them():
    existing = [permission(ICMP, ("54.1.2.3/32", owned(ICMP, "54.1.2.3/32"))),
                permission(NODEPORTS, ("54.1.2.3/32", owned(NODEPORTS, "54.1.2.3/32")))]
    todo = access.plan(access.desired_rules({"3.4.5.6/32": "node i-0c"}), existing)
    assert sorted(todo["add"]) == [ICMP + ("3.4.5.6/32",), NODEPORTS + ("3.4.5.6/32",)]
    assert todo["remove"] == [ICMP + ("54.1.2.3/32",), NODEPORTS + ("54.1.2.3/32",)]


def test_rules_of_others_are_never_removed_nor_duplicated():
    """Same ports and CIDR written by someone else (another description, or none): kept and not added again (EC2
    refuses a duplicate); other ports and the earlier releases' VPC-CIDR rules, owned, are told apart."""
    existing = [EKS_SELF_RULE,
                permission(ICMP, ("54.1.2.3/32", "ops team"), ("0.0.0.0/0", None),
                           ("192.168.0.0/16", "cloudnet.cilium_eks ICMP (cilium connectivity test)")),
                permission(("tcp", 22, 22), ("10.0.0.0/8", "cloudnet.cilium_eks but not our ports"))]
    todo = access.plan(access.desired_rules({"54.1.2.3/32": "node i-0a"}), existing)
    assert sorted(todo["add"]) == [NODEPORTS + ("54.1.2.3/32",)]
    assert todo["remove"] == [ICMP + ("192.168.0.0/16",)]  # the VPC CIDR rule of earlier releases: ours, useless


def test_private_nodes_open_nothing_and_say_so():
    todo = access.plan(access.desired_rules({}), [EKS_SELF_RULE])
    assert todo["add"] == {} and todo["remove"] == []
    message = access.summary("node_public_ips", {}, todo, "sg-0eks")
    assert message.startswith("the nodes have no public IPs (private subnets)") and "nothing to change" in message


def test_user_cidrs_are_the_sources_in_their_canonical_form():
    assert access.cidr_sources(["203.0.113.0/24"]) == {"203.0.113.0/24": "user CIDR"}


@pytest.mark.parametrize("rules,expected", [
    ({ICMP + ("54.1.2.3/32",): "d1", NODEPORTS + ("54.1.2.3/32",): "d2", ICMP + ("3.4.5.6/32",): "d3"},
     [{"IpProtocol": "icmp", "FromPort": -1, "ToPort": -1,
       "IpRanges": [{"CidrIp": "54.1.2.3/32", "Description": "d1"}, {"CidrIp": "3.4.5.6/32", "Description": "d3"}]},
      {"IpProtocol": "tcp", "FromPort": 30000, "ToPort": 32767,
       "IpRanges": [{"CidrIp": "54.1.2.3/32", "Description": "d2"}]}]),
    ([ICMP + ("54.1.2.3/32",)],
     [{"IpProtocol": "icmp", "FromPort": -1, "ToPort": -1, "IpRanges": [{"CidrIp": "54.1.2.3/32"}]}]),
])
def test_ip_permissions_group_the_rules_per_range(rules, expected):
    assert access.ip_permissions(rules) == expected


@pytest.mark.parametrize("provider_id, instance_id", [
    ("aws:///us-east-1a/i-0123456789abcdef0", "i-0123456789abcdef0"),  # what EKS nodes carry
    ("aws:////i-0123456789abcdef0", "i-0123456789abcdef0"),  # no zone
    ("i-0abc1234", "i-0abc1234"),  # bare id
    ("aws:///us-east-1a/fargate-ip-192-168-1-2.ec2.internal", None),  # a Fargate node: no instance
])
def test_the_instance_id_is_the_last_part_of_an_aws_provider_id(provider_id, instance_id):
    assert access.instance_id_of_provider_id(provider_id) == instance_id


@pytest.mark.parametrize("provider_id", ["", "kwok://node-1", "gce://project/zone/node-1", "aws:///us-east-1a/",
                                         "aws:///us-east-1a/vol-0abc"])
def test_a_provider_id_that_is_no_aws_instance_is_refused_by_its_position(provider_id):
    with pytest.raises(access.ValidationError, match=r"Invalid `provider_ids\[2\]`.*not an AWS node's providerID"):
        access.instance_id_of_provider_id(provider_id, "provider_ids[2]")
