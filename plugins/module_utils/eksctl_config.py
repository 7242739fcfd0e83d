# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""eksctl ClusterConfig from module options: validation and rendering. Pure; no AWS, no eksctl.

``render_config(params)`` turns the ``eksctl_cluster`` options (or a whole ``config``) into the ClusterConfig
eksctl reads; every option is checked first by a ``validate_*`` function that names it. A node group's keys in
this collection's spelling and in eksctl's are one table, ``NODEGROUP_KEYS``, read both ways.
"""

from __future__ import annotations

import copy
import re

from ansible_collections.cloudnet.cilium_eks.plugins.module_utils import inputs
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.errors import ValidationError

# The tag this collection puts on the clusters it creates; ``state: absent`` refuses clusters
# without it unless ``force``. Same key/value as the test platform's aws.OWNERSHIP_TAG.
OWNERSHIP_TAG = ("cloudnet.cilium_eks/managed", "true")
# The taint that keeps application pods off a node until its Cilium agent runs (docs.cilium.io, "Installation
# using Helm": node.cilium.io/agent-not-ready=true:NoExecute, removed by the agent when it is ready).
CILIUM_TAINT = {"key": "node.cilium.io/agent-not-ready", "value": "true", "effect": "NoExecute"}
TAINT_EFFECTS = inputs.TAINT_EFFECTS
AMI_FAMILIES = ("AmazonLinux2023", "AmazonLinux2", "Bottlerocket", "Ubuntu2004", "Ubuntu2204", "Ubuntu2404",
                "UbuntuPro2204", "UbuntuPro2404", "WindowsServer2019CoreContainer",
                "WindowsServer2019FullContainer", "WindowsServer2022CoreContainer", "WindowsServer2022FullContainer")
DEFAULT_DESIRED = 2  # eksctl's default desiredCapacity

# Full-match patterns (fullmatch: a trailing newline does not slip through). EKS cluster names: alphanumerics,
# '-' and '_', starting with an alphanumeric, at most 100 (EKS API reference, CreateCluster "name"); eksctl puts
# the name in CloudFormation stack names (eksctl-<name>-cluster), which allow only letters, digits and '-'
# starting with a letter (CloudFormation API reference, CreateStack "StackName"): hence the stricter pattern.
CLUSTER_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,99}")
NODEGROUP_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}")
REGION_RE = re.compile(r"[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d{1,2}")
VERSION_RE = re.compile(r"1\.(\d{2})")
INSTANCE_TYPE_RE = re.compile(r"[a-z][a-z0-9-]*\d[a-z0-9-]*\.(nano|micro|small|medium|large|metal|\d*xlarge|metal-\d+xl)")

# A managed node group's keys: (the module's name, eksctl's ``managedNodeGroups`` name), in eksctl's order.
NODEGROUP_KEYS = (("name", "name"), ("ami_family", "amiFamily"), ("instance_type", "instanceType"),
                  ("desired_size", "desiredCapacity"), ("min_size", "minSize"), ("max_size", "maxSize"),
                  ("volume_size", "volumeSize"), ("private_networking", "privateNetworking"), ("labels", "labels"),
                  ("taints", "taints"), ("tags", "tags"))
NODEGROUP_FIELDS = tuple(ours for ours, _theirs in NODEGROUP_KEYS)
SIZES = ("desired_size", "min_size", "max_size")


# ------------------------------------------------------------------------------------------ options


def validate_cluster_name(name, option="name"):
    if not isinstance(name, str) or not CLUSTER_NAME_RE.fullmatch(name):
        raise ValidationError(option, "an EKS cluster name starts with a letter and has only letters, digits and "
                              "hyphens, at most 100 characters", accepted="e.g. basic-cilium", value=name)
    return name


def validate_region(region, option="region"):
    if not region:
        raise ValidationError(option, "no AWS region given and none in AWS_REGION/AWS_DEFAULT_REGION",
                              accepted="an AWS region name such as us-east-1 or eu-west-3")
    if not isinstance(region, str) or not REGION_RE.fullmatch(region):
        raise ValidationError(option, "not an AWS region name", accepted="e.g. us-east-1, eu-west-3, ap-southeast-2",
                              value=region)
    return region


def validate_version(version, option="version", supported=None):
    version = str(version) if version is not None else None
    if version is None or not VERSION_RE.fullmatch(version):
        raise ValidationError(option, "a Kubernetes minor version is written 1.NN (quote it in YAML: \"1.33\")",
                              accepted=list(supported) if supported else "e.g. \"1.33\"", value=version)
    if supported and version not in supported:
        raise ValidationError(option, "this version is not one EKS supports", accepted=list(supported), value=version)
    return version


def validate_taint(taint, option):
    """One taint, checked as eksctl v0.225.0 pkg/utils/taints/taints.go Validate does (key, value, effect)."""
    inputs.taint(taint, option)
    result = {"key": str(taint["key"])}
    if taint.get("value") not in (None, ""):
        result["value"] = str(taint["value"])
    result["effect"] = taint["effect"]
    return result


def _int_or_none(value, option):
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValidationError(option, "must be an integer", value=value)
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValidationError(option, "must be an integer", value=value) from None
    if number < 0:
        raise ValidationError(option, "must be >= 0", value=value)
    return number


def _nodegroup_sizes(nodegroup, where):
    """The sizes that are set, checked: integers, ``min <= desired <= max`` (eksctl's default desired is 2)."""
    sizes = {key: _int_or_none(nodegroup.get(key), where + "." + key) for key in SIZES}
    low, high = sizes["min_size"], sizes["max_size"]
    desired = sizes["desired_size"] if sizes["desired_size"] is not None else DEFAULT_DESIRED
    if low is not None and low > desired:
        raise ValidationError(where, "min_size (%s) is above desired_size (%s)" % (low, desired),
                              accepted="min_size <= desired_size <= max_size")
    if high is not None and high < desired:
        raise ValidationError(where, "max_size (%s) is below desired_size (%s)" % (high, desired),
                              accepted="min_size <= desired_size <= max_size")
    if high is not None and high < 1:
        raise ValidationError(where + ".max_size", "EKS needs max_size >= 1", value=high)
    return {key: value for key, value in sizes.items() if value is not None}


def _string_map(value, where, what, check=None):
    """A dict of strings (labels, tags), checked with ``check`` (an ``inputs`` rule function) when given."""
    if not isinstance(value, dict):
        raise ValidationError(where, "%s are a dict of strings" % what, value=value)
    if check is not None:
        check(value, where)
    return {str(k): str(v) for k, v in value.items()}


def _nodegroup_name(nodegroup, index, option):
    where = "%s[%d]" % (option, index)
    if not isinstance(nodegroup, dict):
        raise ValidationError(where, "a node group is a dict", accepted=list(NODEGROUP_FIELDS), value=nodegroup)
    unknown = sorted(set(nodegroup) - set(NODEGROUP_FIELDS))
    if unknown:
        raise ValidationError(where, "unknown field(s) %s" % ", ".join(unknown), accepted=list(NODEGROUP_FIELDS))
    name = nodegroup.get("name")
    if not isinstance(name, str) or not NODEGROUP_NAME_RE.fullmatch(name):
        raise ValidationError(where + ".name", "a node group name starts with a letter or digit and has only "
                              "letters, digits, hyphens and underscores, at most 63 characters", value=name)
    return name


def validate_nodegroup(nodegroup, index, option="nodegroups"):
    """Checked copy of one node group in the module's spelling (``name``, ``instance_type``, ``desired_size``...)."""
    name = _nodegroup_name(nodegroup, index, option)
    where = "%s[%s]" % (option, name)
    result = {"name": name}
    instance_type = nodegroup.get("instance_type")
    if instance_type is not None:
        if not isinstance(instance_type, str) or not INSTANCE_TYPE_RE.fullmatch(instance_type):
            raise ValidationError(where + ".instance_type", "not an EC2 instance type",
                                  accepted="<family><generation>.<size>, e.g. t3.medium, m6i.large, c7g.2xlarge",
                                  value=instance_type)
        result["instance_type"] = instance_type
    result.update(_nodegroup_sizes(nodegroup, where))
    volume = _int_or_none(nodegroup.get("volume_size"), where + ".volume_size")
    if volume is not None:
        if not 4 <= volume <= 16384:
            raise ValidationError(where + ".volume_size", "an EBS root volume is 4 to 16384 GiB", value=volume)
        result["volume_size"] = volume
    if nodegroup.get("labels"):
        result["labels"] = _string_map(nodegroup["labels"], where + ".labels", "labels", inputs.labels)
    taints = nodegroup.get("taints")
    if taints:
        if not isinstance(taints, list):
            raise ValidationError(where + ".taints", "taints are a list of {key, value, effect}", value=taints)
        result["taints"] = [validate_taint(t, "%s.taints[%d]" % (where, i)) for i, t in enumerate(taints)]
    family = nodegroup.get("ami_family")
    if family is not None:
        if family not in AMI_FAMILIES:
            raise ValidationError(where + ".ami_family", "not an eksctl AMI family", accepted=list(AMI_FAMILIES),
                                  value=family)
        result["ami_family"] = family
    if nodegroup.get("tags"):
        result["tags"] = _string_map(nodegroup["tags"], where + ".tags", "tags", inputs.aws_tags)
    private = nodegroup.get("private_networking")
    if private is not None:
        # privateNetworking: the nodes go to the VPC's private subnets (NodeGroupBase.PrivateNetworking,
        # pkg/apis/eksctl.io/v1alpha5/types.go at eksctl v0.225.0 l.1788).
        if not isinstance(private, bool):
            raise ValidationError(where + ".private_networking", "must be a boolean", accepted=[True, False],
                                  value=private)
        result["private_networking"] = private
    return result


def validate_nodegroups(nodegroups, option="nodegroups"):
    checked = [validate_nodegroup(ng, i, option) for i, ng in enumerate(nodegroups or [])]
    names = [ng["name"] for ng in checked]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValidationError(option, "node group names must be unique; repeated: %s" % ", ".join(duplicates))
    return checked


# ------------------------------------------------------------------------------------------ rendering


def nodegroup_to_eksctl(ng, extra_taints=()):
    """One ``managedNodeGroups`` item in eksctl's spelling, keys only when set (eksctl's defaults apply)."""
    taints = [dict(t) for t in ng.get("taints") or []]
    for taint in extra_taints:
        if not any(t["key"] == taint["key"] and t["effect"] == taint["effect"] for t in taints):
            taints.append(dict(taint))
    values = dict(ng, taints=taints)
    return {theirs: copy.deepcopy(values[ours]) for ours, theirs in NODEGROUP_KEYS
            if values.get(ours) not in (None, {}, [])}


def nodegroup_from_eksctl(item):
    """A ``managedNodeGroups`` item back to the module's spelling (unknown eksctl keys are dropped)."""
    if not isinstance(item, dict):
        return item
    ng = {ours: item[theirs] for ours, theirs in NODEGROUP_KEYS if item.get(theirs) is not None}
    ng.setdefault("name", None)
    if item.get("instanceTypes") and "instance_type" not in ng:
        ng["instance_type"] = item["instanceTypes"][0]
    return ng


def _given_config(params):
    """The ``config`` option as the ClusterConfig, with ``name``/``region``/``version`` filled in or checked."""
    config = copy.deepcopy(params["config"])
    if config.get("kind", "ClusterConfig") != "ClusterConfig":
        raise ValidationError("config.kind", "only a ClusterConfig can be applied", accepted=["ClusterConfig"],
                              value=config.get("kind"))
    config.setdefault("apiVersion", "eksctl.io/v1alpha5")
    config.setdefault("kind", "ClusterConfig")
    metadata = config.setdefault("metadata", {})
    for key in ("name", "region", "version"):
        given = params.get(key)
        if given and metadata.get(key) and str(metadata[key]) != str(given):
            raise ValidationError(key, "differs from config.metadata.%s (%r)" % (key, metadata[key]), value=given)
        if given and not metadata.get(key):
            metadata[key] = given
    validate_cluster_name(metadata.get("name"), "config.metadata.name")
    validate_region(metadata.get("region"), "config.metadata.region")
    if metadata.get("version") is not None:
        metadata["version"] = validate_version(metadata["version"], "config.metadata.version")
    # Check the node groups with the same rules as the structured options.
    validate_nodegroups([nodegroup_from_eksctl(ng) for ng in config.get("managedNodeGroups") or []],
                        "config.managedNodeGroups")
    if config.get("nodeGroups"):
        raise ValidationError("config.nodeGroups", "self-managed node groups are not handled by this module; "
                              "use managedNodeGroups")
    return config


def _structured_config(params):
    """The ClusterConfig of the structured options (``name``, ``region``, ``nodegroups``...)."""
    metadata = {"name": validate_cluster_name(params.get("name")), "region": validate_region(params.get("region"))}
    if params.get("version") is not None:
        metadata["version"] = validate_version(params["version"])
    if params.get("tags"):
        metadata["tags"] = _string_map(params["tags"], "tags", "tags", inputs.aws_tags)
    config = {"apiVersion": "eksctl.io/v1alpha5", "kind": "ClusterConfig", "metadata": metadata,
              # Auto Mode off, said explicitly: eksctl 0.215 and 0.225 warn on every create that it "will be enabled by
              # default in an upcoming release ... To maintain current behavior, explicitly set
              # 'autoModeConfig.enabled: false'" (tests/recordings/eksctl/create_cluster_success_0.225.stdout.log);
              # an Auto Mode cluster has no managed node groups and no VPC CNI to replace.
              "autoModeConfig": {"enabled": False}}
    if params.get("iam_oidc"):
        config["iam"] = {"withOIDC": True}
    if params.get("vpc"):
        config["vpc"] = copy.deepcopy(params["vpc"])
    if params.get("disable_default_addons"):
        config["addonsConfig"] = {"disableDefaultAddons": True}
    if params.get("addons"):
        config["addons"] = copy.deepcopy(params["addons"])
    nodegroups = validate_nodegroups(params.get("nodegroups"))
    _check_private_subnets_have_a_nat_gateway(nodegroups, params.get("vpc"))
    if nodegroups:
        config["managedNodeGroups"] = [nodegroup_to_eksctl(ng) for ng in nodegroups]
    return config


def _check_private_subnets_have_a_nat_gateway(nodegroups, vpc):
    """Nodes in private subnets reach outside the VPC through the NAT gateway eksctl makes by default
    (ClusterNATDefault = ClusterSingleNAT, pkg/apis/eksctl.io/v1alpha5/vpc.go at eksctl v0.225.0 l.29); without one,
    nodes and pods reach nothing outside the VPC."""
    gateway = ((vpc or {}).get("nat") or {}).get("gateway")
    private = [ng["name"] for ng in nodegroups if ng.get("private_networking")]
    if private and str(gateway).lower() == "disable":
        raise ValidationError("vpc.nat.gateway", "node groups %s are in private subnets (private_networking), which "
                              "reach outside the VPC only through a NAT gateway: nodes and pods would reach nothing "
                              "outside it" % ", ".join(private), accepted=["Single", "HighlyAvailable"], value=gateway)


def bare_cluster(config):
    """Whether eksctl creates ``config`` as a cluster without a CNI: default add-ons disabled, Auto Mode off and no
    ``vpc-cni`` add-on listed (the condition of ``validateBareCluster``, pkg/ctl/cmdutils/configfile.go at eksctl
    v0.225.0 l.489-503). eksctl then refuses managed node groups in ``create cluster`` (recorded in
    tests/recordings/eksctl/create_cluster_disable_default_addons_with_mng_0.225.stderr.log), and ``create nodegroup``
    waits until the new nodes are Ready (``WaitForNodes``, pkg/eks/client.go l.178, called from
    pkg/actions/nodegroup/create.go l.323-330), which on EKS needs the CNI first: the node groups of such a cluster are
    created once the CNI is installed, as Cilium's own EKS CI does (.github/actions/setup-eks-cluster/action.yml and
    setup-eks-nodegroup/action.yml at cilium v1.20.2)."""
    if not (config.get("addonsConfig") or {}).get("disableDefaultAddons"):
        return False
    return not (config.get("autoModeConfig") or {}).get("enabled") and not any(
        isinstance(addon, dict) and addon.get("name") == "vpc-cni" for addon in config.get("addons") or [])


def without_nodegroups(config):
    """``config`` without its managed node groups: what ``create cluster`` gets for a bare cluster."""
    return {key: value for key, value in config.items() if key != "managedNodeGroups"}


def validate_daemonset_ref(ref, option="cni_daemonset"):
    """``namespace/name`` of a DaemonSet: a DNS-1123 label and a DNS-1123 subdomain (``inputs``' patterns)."""
    parts = ref.split("/") if isinstance(ref, str) else []
    if len(parts) != 2 or len(parts[0]) > 63 or len(parts[1]) > 253 or not (
            inputs.full_match(inputs.DNS1123_LABEL, parts[0]) and inputs.full_match(inputs.DNS1123_SUBDOMAIN, parts[1])):
        raise ValidationError(option, "a DaemonSet is named namespace/name", accepted="e.g. kube-system/cilium",
                              value=ref)
    return tuple(parts)


def render_config(params, ownership_tag=True):
    """The eksctl ``ClusterConfig`` for the module options ``params``.

    With ``config`` set, that dict is the ClusterConfig (``metadata.name``/``region`` may come from
    ``name``/``region``, which must agree with it when both are given). ``ownership_tag`` adds
    ``metadata.tags[cloudnet.cilium_eks/managed] = "true"``.
    """
    config = _given_config(params) if params.get("config") else _structured_config(params)
    if ownership_tag:
        config["metadata"].setdefault("tags", {})[OWNERSHIP_TAG[0]] = OWNERSHIP_TAG[1]
    return config


def to_yaml(config):
    """The ClusterConfig as the YAML file eksctl reads (key order kept)."""
    import yaml

    return yaml.safe_dump(config, default_flow_style=False, sort_keys=False)
