# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""ICMP and the NodePort range opened on an EKS cluster's security group, from an explicit source.

Why the source matters (docs/running-on-real-eks.md, "Security group"):

* ``cilium connectivity test`` pings and curls every address of ``node.Status.Addresses``, the ExternalIP included
  (cilium-cli ``connectivity/tests/host.go`` l.38-62, action names ``ping-ipv4-external-ip``, and ``service.go``
  ``curlNodePort`` l.223-263, at the CLI vendored in cilium v1.20.0-pre.1.0.20260419120955-62bccdec3fb9; the same loops
  at cilium-cli v0.14.6 ``host.go`` l.37-47, ``service.go`` l.210-231). Towards a node's public IP the packet leaves
  through the internet gateway and comes back from the *other node's public IP*.
* The EKS cluster security group already allows all traffic from itself, and a rule that names a security group
  matches "the private IP addresses of the instances that are associated with the source security group (and not the
  public IP or Elastic IP addresses)" (Amazon VPC User Guide, "Security group rules"). The VPC CIDR is private
  addresses too: a rule from it changes nothing. Only the nodes' public IPs (or a range the user names) do.

The rules this collection owns are those whose description starts with :data:`OWNER` on the two port ranges
(:data:`PORT_RANGES`); nothing else in the group is read as ours or touched. The planning half is pure
(:func:`plan`); :func:`reconcile` does the AWS calls through the collection's ``AwsClients``.
"""

from __future__ import annotations

import ipaddress
import re

from ansible_collections.cloudnet.cilium_eks.plugins.module_utils import inputs
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.aws_client import AwsClients, region_from_env
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.eksctl_config import validate_cluster_name, validate_region
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.errors import CiliumEksError, ValidationError

SOURCES = ("node_public_ips", "cidrs")
# Every rule this collection writes starts its description with this (AWS allows a-z, A-Z, 0-9, spaces and
# ._-:/()#,@[]+=;{}!$* in a rule description, up to 255 characters: Amazon VPC User Guide, "Security group rules").
OWNER = "cloudnet.cilium_eks "
# (protocol, from port, to port, what). ICMP -1/-1 is every type and code (EC2 API reference, IpPermission); 30000-32767
# is Kubernetes' default --service-node-port-range (kube-apiserver), which EKS does not change.
PORT_RANGES = (("icmp", -1, -1, "ICMP"), ("tcp", 30000, 32767, "NodePort range"))
NO_PUBLIC_IPS = ("the nodes have no public IPs (private subnets): the connectivity test has no node public address to "
                 "reach, so there is nothing to open")


# The forms of a Node's spec.providerID on AWS, and the instance id as its last path element starting with ``i-``:
# k8s.io/cloud-provider-aws v1.34.1 pkg/providers/v1/instances.go l.52-91 (KubernetesInstanceID, MapToAWSInstanceID):
# ``aws:///<zone>/<id>``, ``aws:////<id>``, ``aws:///<zone>/fargate-<eni ip>`` and a bare ``<id>``.
_PROVIDER_ID = re.compile(r"^(?:aws://(?:/[^/]*)?/)?(?P<last>[^/]+)$")
_INSTANCE_ID = re.compile(r"^i-[^/]*$")  # awsInstanceRegMatch, same file l.39
FARGATE_PREFIX = "fargate-"  # a Fargate node (variant/fargate): no EC2 instance, no public IP of ours to allow


def instance_id_of_provider_id(provider_id, name="provider_ids"):
    """The EC2 instance id in a Node's ``spec.providerID`` (the forms above), None for a Fargate node; a
    ``ValidationError`` naming ``name`` for anything else (another cloud's node, a typo)."""
    match = _PROVIDER_ID.match(provider_id or "")
    last = match.group("last") if match else ""
    if last.startswith(FARGATE_PREFIX):
        return None
    if not _INSTANCE_ID.match(last):
        raise ValidationError(name, "not an AWS node's providerID", value=provider_id,
                              accepted="aws:///<zone>/<instance id> (what the AWS cloud provider sets on a Node)")
    return last


def rule_text(rule):
    """``icmp from 54.1.2.3/32`` / ``tcp 30000-32767 from 54.1.2.3/32`` (plan, diff and messages)."""
    protocol, low, high, cidr = rule
    ports = "" if protocol == "icmp" else " %d-%d" % (low, high)
    return "%s%s from %s" % (protocol, ports, cidr)


def public_sources(instances):
    """``{"54.1.2.3/32": "node i-0abc"}`` for the instances (DescribeInstances items) that have a public IPv4 address.
    EC2 gives one to an instance launched in a subnet with ``MapPublicIpOnLaunch`` (eksctl's public subnets:
    ``pkg/cfn/builder/vpc_ipv4.go`` l.315 at v0.225.0; ``privateNetworking: true`` node groups go to the private ones)."""
    return {"%s/32" % i["PublicIpAddress"]: "node %s" % i["InstanceId"]
            for i in instances if i.get("PublicIpAddress")}


def cidr_sources(cidrs):
    return {str(ipaddress.ip_network(cidr)): "user CIDR" for cidr in cidrs}


def desired_rules(sources):
    """``{(protocol, from, to, cidr): description}`` for every source (``{cidr: who}``) and port range."""
    return {(protocol, low, high, cidr): "%s%s from %s (cilium connectivity test)" % (OWNER, what, who)
            for cidr, who in sources.items() for protocol, low, high, what in PORT_RANGES}


def existing_rules(permissions):
    """``(owned, present)`` of a group's ``IpPermissions``: ``owned`` the IPv4 rules on our port ranges whose
    description starts with :data:`OWNER` ({rule: description}); ``present`` every IPv4 rule on those ranges."""
    ranges = {(protocol, low, high) for protocol, low, high, _what in PORT_RANGES}
    owned, present = {}, set()
    for permission in permissions:
        key = (permission.get("IpProtocol"), permission.get("FromPort"), permission.get("ToPort"))
        if key not in ranges:
            continue
        for item in permission.get("IpRanges") or []:
            rule = key + (item["CidrIp"],)
            present.add(rule)
            if (item.get("Description") or "").startswith(OWNER):
                owned[rule] = item["Description"]
    return owned, present


def plan(desired, permissions):
    """What to change in a group (its ``IpPermissions``) so that the rules we own are exactly ``desired``. Pure.

    Returns ``{"add": {rule: description}, "remove": [rules], "before": [texts], "after": [texts]}``: a desired rule
    someone else already wrote (same protocol, ports and CIDR, another description) is left to its owner, not
    duplicated (EC2 refuses a duplicate); an owned rule no longer desired is removed."""
    owned, present = existing_rules(permissions)
    add = {rule: text for rule, text in desired.items() if rule not in present}
    remove = sorted(rule for rule in owned if rule not in desired)
    after = (set(owned) - set(remove)) | set(add)
    return {"add": add, "remove": remove, "before": sorted(rule_text(r) for r in sorted(owned)),
            "after": sorted(rule_text(r) for r in sorted(after))}


def ip_permissions(rules):
    """EC2 ``IpPermissions`` for ``rules`` ({rule: description} or a list of rules), one entry per range."""
    grouped = {}
    for rule in rules:
        protocol, low, high, cidr = rule
        item = {"CidrIp": cidr}
        if isinstance(rules, dict):
            item["Description"] = rules[rule]
        grouped.setdefault((protocol, low, high), []).append(item)
    return [{"IpProtocol": p, "FromPort": low, "ToPort": high, "IpRanges": items}
            for (p, low, high), items in sorted(grouped.items())]


def cluster_security_group(aws, cluster):
    """The EKS cluster security group (``resourcesVpcConfig.clusterSecurityGroupId`` of DescribeCluster): the group
    EKS puts on managed node groups' instances, with its rule allowing all traffic from itself (EKS User Guide,
    "View Amazon EKS security group requirements for clusters")."""
    found = aws.call("eks", "describe_cluster", missing_ok=("ResourceNotFoundException",), name=cluster)
    if found is None:
        raise CiliumEksError("EKS cluster %s does not exist in %s: create it first (the eks_cluster role opens the "
                             "ports after the nodes registered)" % (cluster, aws.region), option="cluster")
    group_id = found["cluster"].get("resourcesVpcConfig", {}).get("clusterSecurityGroupId")
    if not group_id:
        raise CiliumEksError("EKS cluster %s has no cluster security group (resourcesVpcConfig."
                             "clusterSecurityGroupId): clusters created before EKS platform version eks.3 lack it; "
                             "open the ports on the nodes' own group by hand" % cluster, option="cluster")
    return group_id


def node_instances(aws, instance_ids):
    """DescribeInstances of the nodes' instances (their ids from ``spec.providerID``), running or pending only."""
    if not instance_ids:
        return []
    # A filter, not InstanceIds: an instance already gone from EC2 is then left out instead of failing the call.
    reservations = aws.paginate("ec2", "describe_instances", "Reservations",
                                Filters=[{"Name": "instance-id", "Values": sorted(set(instance_ids))}])
    return [i for r in reservations for i in r.get("Instances", [])
            if (i.get("State") or {}).get("Name") in ("pending", "running")]


def reconcile(aws, cluster, source, cidrs=(), instance_ids=(), check_mode=False):
    """Make the rules this collection owns on the cluster security group match the source; returns the result dict
    (``changed``, ``security_group_id``, ``sources``, ``added``, ``removed``, ``rules``, ``diff``, ``msg``)."""
    group_id = cluster_security_group(aws, cluster)
    sources = public_sources(node_instances(aws, instance_ids)) if source == "node_public_ips" \
        else cidr_sources(cidrs)
    (group,) = aws.call("ec2", "describe_security_groups", GroupIds=[group_id])["SecurityGroups"]
    todo = plan(desired_rules(sources), group.get("IpPermissions") or [])
    if not check_mode and todo["remove"]:
        aws.call("ec2", "revoke_security_group_ingress", GroupId=group_id, IpPermissions=ip_permissions(todo["remove"]))
    if not check_mode and todo["add"]:
        aws.call("ec2", "authorize_security_group_ingress", GroupId=group_id,
                 IpPermissions=ip_permissions(todo["add"]))
    changed = bool(todo["add"] or todo["remove"])
    return {
        "changed": changed, "security_group_id": group_id, "source": source, "sources": sources,
        "added": sorted(rule_text(r) for r in todo["add"]), "removed": [rule_text(r) for r in todo["remove"]],
        "rules": todo["after"], "diff": {"before": "\n".join(todo["before"]) + "\n", "after": "\n".join(todo["after"]) + "\n"},
        "msg": summary(source, sources, todo, group_id),
    }


def summary(source, sources, todo, group_id):
    """One line for the play output."""
    if source == "node_public_ips" and not sources:
        head = NO_PUBLIC_IPS
    else:
        head = "ICMP and TCP 30000-32767 open on %s from %s" % (group_id, ", ".join(
            "%s (%s)" % (cidr, who) for cidr, who in sorted(sources.items())))
    moved = ["%d rule(s) added" % len(todo["add"])] if todo["add"] else []
    moved += ["%d rule(s) of gone sources removed" % len(todo["remove"])] if todo["remove"] else []
    return "%s; %s" % (head, ", ".join(moved) or "nothing to change")


def run(module, aws=None):
    """The ``eks_nodeport_access`` module's work: every input checked (the collection's one checker) before the first
    AWS call, then :func:`reconcile`."""
    params = module.params
    region = validate_region(params.get("region") or region_from_env())
    validate_cluster_name(params["cluster"], option="cluster")
    inputs.check(params["cidrs"], "cidrs", {"rule": "source_cidrs", "source": params["source"], "source_name": "source",
                                            "version": 4})
    for index, instance in enumerate(params["instance_ids"]):
        inputs.text(instance, "instance_ids[%d]" % index, r"i-[0-9a-f]{8,17}",
                    "an EC2 instance id (i-0123456789abcdef0); a Node's spec.providerID goes in provider_ids")
    instance_ids = list(params["instance_ids"])
    for index, provider_id in enumerate(params["provider_ids"]):
        instance_id = instance_id_of_provider_id(provider_id, "provider_ids[%d]" % index)
        if instance_id:
            instance_ids.append(instance_id)
    aws = aws or AwsClients(region, params=params, calls=module.aws_calls)
    result = reconcile(aws, params["cluster"], params["source"], params["cidrs"], instance_ids,
                       check_mode=module.check_mode)
    return dict(result, region=region)
