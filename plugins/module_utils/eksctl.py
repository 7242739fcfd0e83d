# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""EKS clusters through eksctl: ClusterConfig rendering, validation, planning, output parsing.

Pure parts (no AWS, no eksctl; unit-tested on recorded outputs):

* ``validate_*`` and ``render_config(params)``: module options -> an eksctl ``ClusterConfig`` dict;
* ``desired_from_config(config)`` / ``observed_from_aws(cluster, nodegroups)`` and
  ``plan(desired, observed, allow_upgrade)``: what eksctl has to do (``actions``) and what it
  cannot change in place (``drift``);
* ``parse_log(text)``, ``parse_failures(text)``: eksctl's ``[ℹ]/[✔]/[!]/[✖]`` log lines.

Impure parts: ``ClusterManager`` reads AWS through boto3 (``aws_client``) and runs eksctl
through the collection's one runner.
"""

from __future__ import annotations

import copy
import hashlib
import os
import re
import tempfile

from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.errors import CiliumEksError, CommandError, ValidationError

# The tag this collection puts on the clusters it creates; ``state: absent`` refuses clusters
# without it unless ``force``. Same key/value as the test platform's aws.OWNERSHIP_TAG.
OWNERSHIP_TAG = ("cloudnet.cilium_eks/managed", "true")
CILIUM_TAINT = {"key": "node.cilium.io/agent-not-ready", "value": "true", "effect": "NoExecute"}
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
EKS_TAINT_EFFECTS = {"NO_SCHEDULE": "NoSchedule", "PREFER_NO_SCHEDULE": "PreferNoSchedule", "NO_EXECUTE": "NoExecute"}
AMI_FAMILIES = ("AmazonLinux2023", "AmazonLinux2", "Bottlerocket", "Ubuntu2004", "Ubuntu2204", "Ubuntu2404",
                "UbuntuPro2204", "UbuntuPro2404", "WindowsServer2019CoreContainer",
                "WindowsServer2019FullContainer", "WindowsServer2022CoreContainer", "WindowsServer2022FullContainer")
# EKS amiType -> eksctl amiFamily (for drift detection).
AMI_TYPE_FAMILY = {
    "AL2023_x86_64_STANDARD": "AmazonLinux2023", "AL2023_ARM_64_STANDARD": "AmazonLinux2023",
    "AL2023_x86_64_NVIDIA": "AmazonLinux2023", "AL2023_x86_64_NEURON": "AmazonLinux2023",
    "AL2_x86_64": "AmazonLinux2", "AL2_ARM_64": "AmazonLinux2", "AL2_x86_64_GPU": "AmazonLinux2",
    "BOTTLEROCKET_x86_64": "Bottlerocket", "BOTTLEROCKET_ARM_64": "Bottlerocket",
}
DEFAULT_AMI_FAMILY = "AmazonLinux2023"  # eksctl's default for Kubernetes >= 1.30
DEFAULT_VOLUME_SIZE = 80  # eksctl's default (GiB)
DEFAULT_DESIRED = 2  # eksctl's default desiredCapacity

CLUSTER_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,99}$")
NODEGROUP_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")
REGION_RE = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d{1,2}$")
VERSION_RE = re.compile(r"^1\.(\d{2})$")
INSTANCE_TYPE_RE = re.compile(r"^[a-z][a-z0-9-]*\d[a-z0-9-]*\.(nano|micro|small|medium|large|metal|\d*xlarge|metal-\d+xl)$")
LABEL_KEY_RE = re.compile(r"^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")

NODEGROUP_FIELDS = ("name", "instance_type", "desired_size", "min_size", "max_size", "volume_size", "labels",
                    "taints", "ami_family", "tags")

# CloudFormation stack statuses after which a stack must be deleted before eksctl can retry.
FAILED_STACK_STATUSES = frozenset(("CREATE_FAILED", "ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "ROLLBACK_IN_PROGRESS",
                                   "DELETE_FAILED"))


# ---------------------------------------------------------------------------------------------
# Validation and rendering (pure)
# ---------------------------------------------------------------------------------------------

def validate_cluster_name(name, option="name"):
    if not isinstance(name, str) or not CLUSTER_NAME_RE.match(name):
        raise ValidationError(option, "an EKS cluster name starts with a letter and has only letters, digits and "
                              "hyphens, at most 100 characters", accepted="e.g. basic-cilium", value=name)
    return name


def validate_region(region, option="region"):
    if not region:
        raise ValidationError(option, "no AWS region given and none in AWS_REGION/AWS_DEFAULT_REGION",
                              accepted="an AWS region name such as us-east-1 or eu-west-3")
    if not isinstance(region, str) or not REGION_RE.match(region):
        raise ValidationError(option, "not an AWS region name", accepted="e.g. us-east-1, eu-west-3, ap-southeast-2",
                              value=region)
    return region


def validate_version(version, option="version", supported=None):
    version = str(version) if version is not None else None
    if version is None or not VERSION_RE.match(version):
        raise ValidationError(option, "a Kubernetes minor version is written 1.NN (quote it in YAML: \"1.33\")",
                              accepted=list(supported) if supported else "e.g. \"1.33\"", value=version)
    if supported and version not in supported:
        raise ValidationError(option, "this version is not one EKS supports", accepted=list(supported), value=version)
    return version


def validate_taint(taint, option):
    if not isinstance(taint, dict) or not taint.get("key"):
        raise ValidationError(option, "a taint is a dict with key, value (optional) and effect",
                              accepted="{key: node.cilium.io/agent-not-ready, value: 'true', effect: NoExecute}",
                              value=taint)
    unknown = sorted(set(taint) - {"key", "value", "effect"})
    if unknown:
        raise ValidationError(option, "unknown taint field(s) %s" % ", ".join(unknown), accepted=["key", "value", "effect"])
    if not LABEL_KEY_RE.match(str(taint["key"])):
        raise ValidationError(option + ".key", "not a valid Kubernetes taint key", value=taint["key"])
    if taint.get("effect") not in TAINT_EFFECTS:
        raise ValidationError(option + ".effect", "not a taint effect", accepted=list(TAINT_EFFECTS),
                              value=taint.get("effect"))
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


def validate_nodegroup(nodegroup, index, option="nodegroups"):
    """Checked copy of one node group in the module's spelling (``name``, ``instance_type``, ``desired_size``...)."""
    where = "%s[%d]" % (option, index)
    if not isinstance(nodegroup, dict):
        raise ValidationError(where, "a node group is a dict", accepted=list(NODEGROUP_FIELDS), value=nodegroup)
    unknown = sorted(set(nodegroup) - set(NODEGROUP_FIELDS))
    if unknown:
        raise ValidationError(where, "unknown field(s) %s" % ", ".join(unknown), accepted=list(NODEGROUP_FIELDS))
    name = nodegroup.get("name")
    if not isinstance(name, str) or not NODEGROUP_NAME_RE.match(name):
        raise ValidationError(where + ".name", "a node group name starts with a letter or digit and has only "
                              "letters, digits, hyphens and underscores, at most 63 characters", value=name)
    where = "%s[%s]" % (option, name)
    result = {"name": name}
    instance_type = nodegroup.get("instance_type")
    if instance_type is not None:
        if not isinstance(instance_type, str) or not INSTANCE_TYPE_RE.match(instance_type):
            raise ValidationError(where + ".instance_type", "not an EC2 instance type",
                                  accepted="<family><generation>.<size>, e.g. t3.medium, m6i.large, c7g.2xlarge",
                                  value=instance_type)
        result["instance_type"] = instance_type
    sizes = {}
    for key in ("desired_size", "min_size", "max_size"):
        sizes[key] = _int_or_none(nodegroup.get(key), where + "." + key)
    low, desired, high = sizes["min_size"], sizes["desired_size"], sizes["max_size"]
    effective_desired = desired if desired is not None else DEFAULT_DESIRED
    if low is not None and low > effective_desired:
        raise ValidationError(where, "min_size (%s) is above desired_size (%s)" % (low, effective_desired),
                              accepted="min_size <= desired_size <= max_size")
    if high is not None and high < effective_desired:
        raise ValidationError(where, "max_size (%s) is below desired_size (%s)" % (high, effective_desired),
                              accepted="min_size <= desired_size <= max_size")
    if high is not None and high < 1:
        raise ValidationError(where + ".max_size", "EKS needs max_size >= 1", value=high)
    result.update((k, v) for k, v in sizes.items() if v is not None)
    volume = _int_or_none(nodegroup.get("volume_size"), where + ".volume_size")
    if volume is not None:
        if not 4 <= volume <= 16384:
            raise ValidationError(where + ".volume_size", "an EBS root volume is 4 to 16384 GiB", value=volume)
        result["volume_size"] = volume
    labels = nodegroup.get("labels")
    if labels:
        if not isinstance(labels, dict):
            raise ValidationError(where + ".labels", "labels are a dict of strings", value=labels)
        for key in labels:
            if not LABEL_KEY_RE.match(str(key)):
                raise ValidationError(where + ".labels", "not a valid Kubernetes label key", value=key)
        result["labels"] = {str(k): str(v) for k, v in labels.items()}
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
    tags = nodegroup.get("tags")
    if tags:
        if not isinstance(tags, dict):
            raise ValidationError(where + ".tags", "tags are a dict of strings", value=tags)
        result["tags"] = {str(k): str(v) for k, v in tags.items()}
    return result


def validate_nodegroups(nodegroups, option="nodegroups"):
    checked = [validate_nodegroup(ng, i, option) for i, ng in enumerate(nodegroups or [])]
    names = [ng["name"] for ng in checked]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValidationError(option, "node group names must be unique; repeated: %s" % ", ".join(duplicates))
    return checked


def nodegroup_to_eksctl(ng, extra_taints=()):
    """One ``managedNodeGroups`` item in eksctl's spelling, keys only when set (eksctl's defaults apply)."""
    item = {"name": ng["name"]}
    for ours, theirs in (("ami_family", "amiFamily"), ("instance_type", "instanceType"),
                         ("desired_size", "desiredCapacity"), ("min_size", "minSize"), ("max_size", "maxSize"),
                         ("volume_size", "volumeSize"), ("labels", "labels")):
        if ng.get(ours) not in (None, {}, []):
            item[theirs] = copy.deepcopy(ng[ours])
    taints = [dict(t) for t in ng.get("taints") or []]
    for taint in extra_taints:
        if not any(t["key"] == taint["key"] and t["effect"] == taint["effect"] for t in taints):
            taints.append(dict(taint))
    if taints:
        item["taints"] = taints
    if ng.get("tags"):
        item["tags"] = dict(ng["tags"])
    return item


def render_config(params, ownership_tag=True):
    """The eksctl ``ClusterConfig`` for the module options ``params``.

    With ``config`` set, that dict is the ClusterConfig (``metadata.name``/``region`` may come from
    ``name``/``region``, which must agree with it when both are given). ``ownership_tag`` adds
    ``metadata.tags[cloudnet.cilium_eks/managed] = "true"``.
    """
    if params.get("config"):
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
    else:
        name = validate_cluster_name(params.get("name"))
        region = validate_region(params.get("region"))
        metadata = {"name": name, "region": region}
        if params.get("version") is not None:
            metadata["version"] = validate_version(params["version"])
        if params.get("tags"):
            metadata["tags"] = {str(k): str(v) for k, v in params["tags"].items()}
        config = {"apiVersion": "eksctl.io/v1alpha5", "kind": "ClusterConfig", "metadata": metadata}
        if params.get("iam_oidc"):
            config["iam"] = {"withOIDC": True}
        if params.get("vpc"):
            config["vpc"] = copy.deepcopy(params["vpc"])
        if params.get("disable_default_addons"):
            config["addonsConfig"] = {"disableDefaultAddons": True}
        if params.get("addons"):
            config["addons"] = copy.deepcopy(params["addons"])
        nodegroups = validate_nodegroups(params.get("nodegroups"))
        if nodegroups:
            config["managedNodeGroups"] = [nodegroup_to_eksctl(ng) for ng in nodegroups]
    if ownership_tag:
        config["metadata"].setdefault("tags", {})[OWNERSHIP_TAG[0]] = OWNERSHIP_TAG[1]
    return config


def nodegroup_from_eksctl(item):
    """A ``managedNodeGroups`` item back to the module's spelling (unknown eksctl keys are dropped)."""
    if not isinstance(item, dict):
        return item
    ng = {"name": item.get("name")}
    for ours, theirs in (("ami_family", "amiFamily"), ("instance_type", "instanceType"),
                         ("desired_size", "desiredCapacity"), ("min_size", "minSize"), ("max_size", "maxSize"),
                         ("volume_size", "volumeSize"), ("labels", "labels"), ("taints", "taints"), ("tags", "tags")):
        if item.get(theirs) is not None:
            ng[ours] = item[theirs]
    if item.get("instanceTypes") and "instance_type" not in ng:
        ng["instance_type"] = item["instanceTypes"][0]
    return ng


def to_yaml(config):
    """The ClusterConfig as the YAML file eksctl reads (key order kept)."""
    import yaml

    return yaml.safe_dump(config, default_flow_style=False, sort_keys=False)


# ---------------------------------------------------------------------------------------------
# Desired vs observed (pure)
# ---------------------------------------------------------------------------------------------

def desired_from_config(config):
    """What the ClusterConfig asks for, in a shape ``plan`` compares with ``observed_from_aws``."""
    metadata = config["metadata"]
    nodegroups = {}
    for item in config.get("managedNodeGroups") or []:
        ng = nodegroup_from_eksctl(item)
        desired = ng.get("desired_size", DEFAULT_DESIRED)
        nodegroups[ng["name"]] = {
            "name": ng["name"],
            "instance_type": ng.get("instance_type"),  # None: not set, eksctl's default, not compared
            "desired_size": desired,
            "min_size": ng.get("min_size", desired),  # eksctl's defaults: min = max = desired
            "max_size": ng.get("max_size", desired),
            "explicit_sizes": [k for k in ("desired_size", "min_size", "max_size") if ng.get(k) is not None],
            "volume_size": ng.get("volume_size"),
            "labels": {str(k): str(v) for k, v in (ng.get("labels") or {}).items()},
            "taints": sorted((validate_taint(t, "taint") for t in ng.get("taints") or []),
                             key=lambda t: (t["key"], t["effect"])),
            "ami_family": ng.get("ami_family"),
        }
    return {
        "name": metadata["name"],
        "region": metadata["region"],
        "version": str(metadata["version"]) if metadata.get("version") is not None else None,
        "tags": {str(k): str(v) for k, v in (metadata.get("tags") or {}).items()},
        "nodegroups": nodegroups,
    }


def observed_from_aws(cluster, nodegroups):
    """EKS DescribeCluster/DescribeNodegroup answers -> the shape of ``desired_from_config``."""
    if cluster is None:
        return None
    observed = {
        "name": cluster.get("name"),
        "version": cluster.get("version"),
        "status": cluster.get("status"),
        "endpoint": cluster.get("endpoint"),
        "arn": cluster.get("arn"),
        "tags": dict(cluster.get("tags") or {}),
        "nodegroups": {},
    }
    for name, ng in (nodegroups or {}).items():
        scaling = ng.get("scalingConfig") or {}
        labels = {k: v for k, v in (ng.get("labels") or {}).items() if not k.startswith("alpha.eksctl.io/")}
        observed["nodegroups"][name] = {
            "name": name,
            "status": ng.get("status"),
            "instance_type": (ng.get("instanceTypes") or [None])[0],
            "desired_size": scaling.get("desiredSize"),
            "min_size": scaling.get("minSize"),
            "max_size": scaling.get("maxSize"),
            # With a launch template (eksctl always uses one) EKS reports no diskSize: unknown, not compared.
            "volume_size": None if ng.get("launchTemplate") else ng.get("diskSize"),
            "labels": labels,
            "taints": sorted(({"key": t["key"], **({"value": t["value"]} if t.get("value") else {}),
                               "effect": EKS_TAINT_EFFECTS.get(t.get("effect"), t.get("effect"))}
                              for t in ng.get("taints") or []), key=lambda t: (t["key"], t["effect"])),
            "ami_family": AMI_TYPE_FAMILY.get(ng.get("amiType")),
            "version": ng.get("version"),
        }
    return observed


def _minor(version):
    match = VERSION_RE.match(str(version or ""))
    return int(match.group(1)) if match else None


def plan(desired, observed, allow_upgrade=False):
    """``{"actions": [...], "drift": [...]}`` to bring ``observed`` (None: no cluster) to ``desired``.

    Actions (in order): ``{"action": "create_cluster"}``, ``{"action": "upgrade_cluster", "from", "to"}``,
    ``{"action": "create_nodegroup", "nodegroup"}``, ``{"action": "scale_nodegroup", "nodegroup",
    "desired_size", "min_size", "max_size", "from": {...}}``. Drift items are dicts with ``field``,
    ``nodegroup`` (or None), ``desired``, ``actual`` and ``reason``: what eksctl cannot change in place.
    """
    actions, drift = [], []
    if observed is None:
        return {"actions": [{"action": "create_cluster"}], "drift": []}

    def report(field, want, have, reason, nodegroup=None):
        drift.append({"field": field, "nodegroup": nodegroup, "desired": want, "actual": have, "reason": reason})

    want, have = desired.get("version"), observed.get("version")
    if want and have and want != have:
        if (_minor(want) or 0) < (_minor(have) or 0):
            report("version", want, have, "EKS cannot downgrade a cluster")
        elif not allow_upgrade:
            report("version", want, have, "upgrading the control plane needs allow_upgrade: true")
        elif (_minor(want) or 0) - (_minor(have) or 0) > 1:
            actions.append({"action": "upgrade_cluster", "from": have, "to": "1.%d" % (_minor(have) + 1)})
            report("version", want, have, "EKS upgrades one minor version at a time; this run upgrades to 1.%d, "
                   "run again for the next step" % (_minor(have) + 1))
        else:
            actions.append({"action": "upgrade_cluster", "from": have, "to": want})
    for key, value in sorted(desired.get("tags", {}).items()):
        if observed["tags"].get(key) != value:
            report("tags.%s" % key, value, observed["tags"].get(key),
                   "eksctl does not update cluster tags in place (use the EKS TagResource API or recreate)")
    for name, ng in desired["nodegroups"].items():
        current = observed["nodegroups"].get(name)
        if current is None:
            actions.append({"action": "create_nodegroup", "nodegroup": name})
            continue
        sizes = {k: ng[k] for k in ("desired_size", "min_size", "max_size")}
        explicit = ng.get("explicit_sizes", list(sizes))
        wanted = {k: (sizes[k] if k in explicit else current[k]) for k in sizes}
        if wanted["desired_size"] is not None:
            wanted["min_size"] = min(wanted["min_size"], wanted["desired_size"]) if wanted["min_size"] is not None \
                else wanted["desired_size"]
            wanted["max_size"] = max(wanted["max_size"], wanted["desired_size"]) if wanted["max_size"] is not None \
                else wanted["desired_size"]
        if any(wanted[k] != current[k] for k in sizes):
            actions.append({"action": "scale_nodegroup", "nodegroup": name, "from":
                            {k: current[k] for k in sizes}, **wanted})
        for field in ("instance_type", "volume_size", "ami_family"):
            if ng.get(field) is not None and current.get(field) is not None and ng[field] != current[field]:
                report(field, ng[field], current[field], "immutable for a managed node group: create a new node "
                       "group with the new value and delete the old one", name)
        for key, value in sorted(ng["labels"].items()):
            if current["labels"].get(key) != value:
                report("labels.%s" % key, value, current["labels"].get(key),
                       "node group labels are not updated by this module (eksctl set labels / recreate)", name)
        if ng["taints"] != current["taints"]:
            report("taints", ng["taints"], current["taints"],
                   "node group taints are not updated by this module (recreate the node group)", name)
    for name in sorted(set(observed["nodegroups"]) - set(desired["nodegroups"])):
        report("nodegroups", None, name, "node group exists but is not in the configuration; this module never "
               "deletes node groups (eksctl delete nodegroup --cluster %s --name %s)" % (desired["name"], name), name)
    return {"actions": actions, "drift": drift}


def observed_config(observed, region):
    """A ClusterConfig-like view of what exists (the ``before`` of ``--diff``)."""
    if observed is None:
        return None
    config = {"apiVersion": "eksctl.io/v1alpha5", "kind": "ClusterConfig",
              "metadata": {"name": observed["name"], "region": region, "version": observed["version"]}}
    if observed["tags"]:
        config["metadata"]["tags"] = {k: v for k, v in observed["tags"].items()
                                      if not k.startswith(("alpha.eksctl.io/", "eksctl.cluster.k8s.io/")) and k != "Name"}
    groups = []
    for name in sorted(observed["nodegroups"]):
        ng = observed["nodegroups"][name]
        item = {"name": name, "instanceType": ng["instance_type"], "desiredCapacity": ng["desired_size"],
                "minSize": ng["min_size"], "maxSize": ng["max_size"], "volumeSize": ng["volume_size"]}
        item = {k: v for k, v in item.items() if v is not None}
        if ng["labels"]:
            item["labels"] = ng["labels"]
        if ng["taints"]:
            item["taints"] = ng["taints"]
        groups.append(item)
    if groups:
        config["managedNodeGroups"] = groups
    return config


# ---------------------------------------------------------------------------------------------
# eksctl output (pure)
# ---------------------------------------------------------------------------------------------

LEVELS = {"ℹ": "info", "✔": "success", "!": "warning", "✖": "error", "▶": "debug"}
_LOG_RE = re.compile(r"^(?:(?P<ts>\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}\S*)\s+)?\[(?P<icon>[ℹ✔!✖▶]|)\]\s+(?P<msg>.*)$")
_FAILURE_RE = re.compile(r"^(?P<type>[A-Za-z0-9]+::[A-Za-z0-9]+::[A-Za-z0-9]+)/(?P<logical>[A-Za-z0-9]+):\s+"
                         r"(?P<status>[A-Z_]+)(?:\s+[–-]\s+(?P<reason>.*))?$")
_STACK_RE = re.compile(r"(?:CloudFormation )?stack \"(?P<stack>eksctl-[^\"]+)\"")


def parse_log(text):
    """eksctl log lines -> ``[{"level", "message", "timestamp"}]``; other lines get level ``output``."""
    entries = []
    for raw in (text or "").splitlines():
        line = raw.rstrip()
        if not line:
            continue
        match = _LOG_RE.match(line)
        if match:
            entries.append({"level": LEVELS.get(match.group("icon"), "info"), "message": match.group("msg").strip(),
                            "timestamp": match.group("ts")})
        elif line.startswith("Error: "):
            entries.append({"level": "fatal", "message": line[len("Error: "):].strip(), "timestamp": None})
        else:
            entries.append({"level": "output", "message": line.strip(), "timestamp": None})
    return entries


def parse_failures(text):
    """What an eksctl failure says: failed resources, stacks named, the final error, cleanup hint."""
    resources, stacks, errors = [], [], []
    cleanup = None
    for entry in parse_log(text):
        message = entry["message"]
        for match in _STACK_RE.finditer(message):
            if match.group("stack") not in stacks:
                stacks.append(match.group("stack"))
        failure = _FAILURE_RE.match(message)
        if failure and failure.group("status").endswith("FAILED"):
            reason = failure.group("reason")
            if reason and len(reason) > 1 and reason[0] == reason[-1] == '"':
                reason = reason[1:-1]
            resources.append({"resource_type": failure.group("type"), "logical_id": failure.group("logical"),
                              "status": failure.group("status"), "reason": reason})
        elif entry["level"] in ("error", "fatal"):
            errors.append(message)
        if "to cleanup resources, run" in message:
            found = re.search(r"'([^']+)'", message)
            cleanup = found.group(1) if found else message
    return {"failed_resources": resources, "stacks": stacks, "errors": errors, "cleanup_hint": cleanup}


def parse_version(text):
    """``eksctl version`` output -> ``"0.220.0"`` (None when unrecognised)."""
    match = re.search(r"(\d+\.\d+\.\d+(?:-[0-9A-Za-z.]+)?)", text or "")
    return match.group(1) if match else None


def stack_names(cluster, nodegroups=()):
    """eksctl's CloudFormation stack names for a cluster and its managed node groups."""
    return ["eksctl-%s-cluster" % cluster] + ["eksctl-%s-nodegroup-%s" % (cluster, ng) for ng in nodegroups]


def failed_stack_events(events, limit=10):
    """The ``*_FAILED`` events of a DescribeStackEvents answer, oldest first, most useful fields only."""
    failed = [e for e in events or [] if str(e.get("ResourceStatus", "")).endswith("FAILED")]
    failed = sorted(failed, key=lambda e: str(e.get("Timestamp", "")))
    return [{"stack": e.get("StackName"), "logical_id": e.get("LogicalResourceId"),
             "resource_type": e.get("ResourceType"), "status": e.get("ResourceStatus"),
             "reason": e.get("ResourceStatusReason"), "timestamp": str(e.get("Timestamp", ""))}
            for e in failed[:limit]]


# ---------------------------------------------------------------------------------------------
# The module's work (AWS through boto3, changes through eksctl)
# ---------------------------------------------------------------------------------------------

def _describe_nodegroups_summary(observed):
    if not observed:
        return []
    return [{"name": name, "status": ng.get("status"), "instance_type": ng["instance_type"],
             "desired_size": ng["desired_size"], "min_size": ng["min_size"], "max_size": ng["max_size"],
             "version": ng.get("version")} for name, ng in sorted(observed["nodegroups"].items())]


class ClusterManager:
    """Reads a cluster through boto3 and changes it through eksctl. ``module`` is a CiliumEksModule."""

    def __init__(self, module, region, aws=None):
        from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.aws_client import AwsClients

        self.module = module
        self.region = region
        self.aws = aws or AwsClients(region)
        self.commands = []
        self._eksctl = None

    # -- AWS reads ------------------------------------------------------------------------------
    def describe(self, name):
        """``(cluster, {nodegroup name: nodegroup})`` from EKS; ``(None, {})`` when there is no such cluster."""
        from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.aws_client import AwsError

        try:
            cluster = self.aws.call("eks", "describe_cluster", name=name)["cluster"]
        except AwsError as err:
            if err.code == "ResourceNotFoundException":
                return None, {}
            raise
        names = self.aws.paginate("eks", "list_nodegroups", "nodegroups", clusterName=name)
        nodegroups = {n: self.aws.call("eks", "describe_nodegroup", clusterName=name, nodegroupName=n)["nodegroup"]
                      for n in names}
        return cluster, nodegroups

    def list_clusters(self):
        return sorted(self.aws.paginate("eks", "list_clusters", "clusters"))

    def stacks(self, name):
        """eksctl's CloudFormation stacks of cluster ``name`` (any status but DELETE_COMPLETE)."""
        prefix = "eksctl-%s-" % name
        found = []
        for stack in self.aws.paginate("cloudformation", "describe_stacks", "Stacks"):
            stack_name = stack.get("StackName", "")
            if not stack_name.startswith(prefix) or stack.get("StackStatus") == "DELETE_COMPLETE":
                continue
            kind = "cluster" if stack_name == prefix + "cluster" else (
                "nodegroup" if stack_name.startswith(prefix + "nodegroup-") else "other")
            found.append({"name": stack_name, "status": stack.get("StackStatus"), "kind": kind,
                          "nodegroup": stack_name[len(prefix + "nodegroup-"):] if kind == "nodegroup" else None,
                          "reason": stack.get("StackStatusReason")})
        return found

    def stack_failures(self, stacks):
        """Failed events of the given stacks (best effort: a stack gone meanwhile is skipped)."""
        from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.aws_client import AwsError

        failures = []
        for stack in stacks:
            try:
                events = self.aws.paginate("cloudformation", "describe_stack_events", "StackEvents",
                                           StackName=stack["name"])
            except AwsError:
                continue
            failures.extend(failed_stack_events(events))
        return failures

    # -- eksctl ---------------------------------------------------------------------------------
    @property
    def eksctl(self):
        if self._eksctl is None:
            self._eksctl = self.module.runner("eksctl")
        return self._eksctl

    def run_eksctl(self, args, config_yaml=None, check=True):
        """Run eksctl (with ``-f <tmpfile>`` holding ``config_yaml`` when given); record it in ``commands``."""
        path = None
        try:
            if config_yaml is not None:
                handle, path = tempfile.mkstemp(prefix="eksctl-", suffix=".yaml")
                with os.fdopen(handle, "w") as stream:
                    stream.write(config_yaml)
                args = list(args) + ["-f", path]
            try:
                result = self.eksctl.run(args, check=check)
            except CommandError as err:
                self.commands.append({"argv": err.argv, "rc": err.rc, "stdout": err.stdout_tail,
                                      "stderr": err.stderr_tail, "duration": err.duration})
                raise
            self.commands.append({"argv": result.argv, "rc": result.rc, "stdout": _tail(result.stdout),
                                  "stderr": _tail(result.stderr), "duration": round(result.duration, 1)})
            return result
        finally:
            if path:
                os.unlink(path)

    def write_kubeconfig(self, name, path):
        """``eksctl utils write-kubeconfig`` into ``path`` (mode 0600). True when the file changed."""
        path = os.path.abspath(os.path.expanduser(path))
        before = _digest(path)
        mode_before = os.stat(path).st_mode & 0o777 if os.path.exists(path) else None
        directory = os.path.dirname(path)
        if not os.path.isdir(directory):
            os.makedirs(directory, mode=0o700)
        self.run_eksctl(["utils", "write-kubeconfig", "--cluster", name, "--region", self.region,
                         "--kubeconfig", path])
        os.chmod(path, 0o600)
        return before != _digest(path) or mode_before != 0o600


def _digest(path):
    try:
        with open(path, "rb") as stream:
            return hashlib.sha256(stream.read()).hexdigest()
    except OSError:
        return None


def _tail(text, lines=40):
    return "\n".join((text or "").rstrip("\n").splitlines()[-lines:])


class CreateFailedError(CiliumEksError):
    """eksctl create failed; carries the failing stack events and what to do next."""


def _leftover_stacks(stacks, observed):
    """Stacks that block a retry: failed ones, and node group stacks whose node group is absent from EKS."""
    blocking = []
    existing = set(observed["nodegroups"]) if observed else set()
    for stack in stacks:
        if stack["status"] in FAILED_STACK_STATUSES:
            blocking.append(stack)
        elif stack["kind"] == "nodegroup" and stack["nodegroup"] not in existing and \
                not stack["status"].startswith("DELETE"):
            blocking.append(stack)
        elif stack["kind"] == "cluster" and observed is None and not stack["status"].startswith("DELETE"):
            blocking.append(stack)
    return blocking


def _delete_advice(stacks, name, region):
    commands = ["aws cloudformation delete-stack --region %s --stack-name %s" % (region, s["name"]) for s in stacks]
    if any(s["kind"] == "cluster" for s in stacks):
        commands = ["eksctl delete cluster --region %s --name %s --wait" % (region, name)]
    return commands


def ensure(module):
    """The ``eksctl_cluster`` module's work; returns the result dict."""
    params = module.params
    from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.aws_client import region_from_env

    region = params.get("region") or ((params.get("config") or {}).get("metadata") or {}).get("region") \
        or region_from_env()
    if params["state"] == "absent":
        name = validate_cluster_name(params.get("name") or ((params.get("config") or {}).get("metadata") or {})
                                     .get("name"))
        validate_region(region)
        return _absent(module, ClusterManager(module, region), name)
    config = render_config(dict(params, region=region))
    return _present(module, ClusterManager(module, config["metadata"]["region"]), config)


def _result(manager, config, observed, changed, actions, drift, kubeconfig=None):
    desired = desired_from_config(config) if config else None
    name = (desired or observed or {}).get("name")
    result = {
        "changed": changed,
        "name": name,
        "region": manager.region,
        "version": observed.get("version") if observed else None,
        "status": observed.get("status") if observed else None,
        "endpoint": observed.get("endpoint") if observed else None,
        "arn": observed.get("arn") if observed else None,
        "nodegroups": _describe_nodegroups_summary(observed),
        "actions": actions,
        "drift": drift,
        "kubeconfig": kubeconfig,
        "commands": manager.commands,
    }
    if config is not None:
        result["config"] = config
    return result


def _present(module, manager, config):
    desired = desired_from_config(config)
    name, region = desired["name"], manager.region
    cluster, nodegroups = manager.describe(name)
    observed = observed_from_aws(cluster, nodegroups)
    if observed and observed["status"] in ("CREATING", "UPDATING", "DELETING", "FAILED"):
        if observed["status"] == "FAILED":
            raise CiliumEksError("EKS cluster %s in %s is in status FAILED; it cannot be repaired in place. Look at "
                                 "its CloudFormation stack events, then delete it (`eksctl delete cluster --region %s "
                                 "--name %s --wait`) and run again" % (name, region, region, name),
                                 cluster=name, status="FAILED")
        if observed["status"] == "DELETING":
            raise CiliumEksError("EKS cluster %s in %s is being deleted; wait for the deletion to finish and run "
                                 "again" % (name, region), cluster=name, status="DELETING")
    result_plan = plan(desired, observed, allow_upgrade=module.params.get("allow_upgrade"))
    actions, drift = result_plan["actions"], result_plan["drift"]
    for item in drift:
        module.warn("EKS cluster %s: drift on %s%s: wanted %r, found %r (%s)" % (
            name, item["field"], " of node group %s" % item["nodegroup"] if item["nodegroup"] else "",
            item["desired"], item["actual"], item["reason"]))
    config_yaml = to_yaml(config)
    diff = {"before": to_yaml(observed_config(observed, region)) if observed else "",
            "after": config_yaml, "before_header": "%s (EKS, %s)" % (name, region),
            "after_header": "%s (rendered ClusterConfig)" % name}

    # Leftovers of an earlier failed create block eksctl: say exactly what to delete, never delete.
    creating = [a for a in actions if a["action"] in ("create_cluster", "create_nodegroup")]
    if creating:
        stacks = manager.stacks(name)
        wanted = {a.get("nodegroup") for a in creating}
        blocking = [s for s in _leftover_stacks(stacks, observed)
                    if s["kind"] == "cluster" or s["nodegroup"] in wanted]
        if blocking:
            raise CreateFailedError(
                "An earlier create of EKS cluster %s in %s left CloudFormation stack(s) behind that block eksctl: %s. "
                "This module never deletes what you did not ask it to delete. Look at the failures below, then "
                "remove the stack(s) with: %s ; and run again" % (
                    name, region, ", ".join("%s (%s)" % (s["name"], s["status"]) for s in blocking),
                    " ; ".join(_delete_advice(blocking, name, region)))
                + (". Stacks still *_IN_PROGRESS may belong to an eksctl run that is still going: wait for it, and "
                   "delete them only if none is running" if any(s["status"].endswith("_IN_PROGRESS") for s in blocking)
                   else ""),
                cluster=name, region=region, stacks=blocking, stack_failures=manager.stack_failures(blocking),
                delete_commands=_delete_advice(blocking, name, region))

    changed = bool(actions)
    if module.check_mode:
        result = _result(manager, config, observed, changed, actions, drift, module.params.get("kubeconfig"))
        result["diff"] = diff
        return result

    for action in actions:
        try:
            _apply(manager, config, config_yaml, action)
        except CommandError as err:
            raise _create_failure(manager, name, region, action, err) from err
    if actions:
        cluster, nodegroups = manager.describe(name)
        observed = observed_from_aws(cluster, nodegroups)
    kubeconfig = module.params.get("kubeconfig")
    if kubeconfig and observed:
        changed = manager.write_kubeconfig(name, kubeconfig) or changed
    result = _result(manager, config, observed, changed, actions, drift, kubeconfig)
    result["diff"] = diff
    return result


def _apply(manager, config, config_yaml, action):
    name, region = config["metadata"]["name"], manager.region
    kind = action["action"]
    if kind == "create_cluster":
        manager.run_eksctl(["create", "cluster", "--write-kubeconfig=false"], config_yaml=config_yaml)
    elif kind == "upgrade_cluster":
        manager.run_eksctl(["upgrade", "cluster", "--name", name, "--region", region, "--version", action["to"],
                            "--approve"])
    elif kind == "create_nodegroup":
        manager.run_eksctl(["create", "nodegroup", "--include", action["nodegroup"]], config_yaml=config_yaml)
    elif kind == "scale_nodegroup":
        manager.run_eksctl(["scale", "nodegroup", "--cluster", name, "--region", region, "--name",
                            action["nodegroup"], "--nodes", str(action["desired_size"]),
                            "--nodes-min", str(action["min_size"]), "--nodes-max", str(action["max_size"])])


def _create_failure(manager, name, region, action, err):
    """Turn a failed eksctl run into an error with eksctl's own diagnosis and the stack events."""
    output = "\n".join(part for part in (err.stdout_tail, err.stderr_tail) if part)
    parsed = parse_failures(output)
    try:
        stacks = manager.stacks(name)
        failures = manager.stack_failures([s for s in stacks if s["status"] in FAILED_STACK_STATUSES
                                           or s["name"] in parsed["stacks"]])
    except CiliumEksError:
        stacks, failures = [], []
    cluster, nodegroups = manager.describe(name)
    observed = observed_from_aws(cluster, nodegroups)
    blocking = _leftover_stacks(stacks, observed)
    reasons = ["%s/%s: %s %s" % (f["resource_type"], f["logical_id"], f["status"],
                                 ("- %s" % f["reason"]) if f["reason"] else "")
               for f in parsed["failed_resources"]]
    reasons += ["%s %s/%s: %s %s" % (f["stack"], f["resource_type"], f["logical_id"], f["status"],
                                     ("- %s" % f["reason"]) if f["reason"] else "") for f in failures]
    msg = "eksctl failed to %s for EKS cluster %s in %s (exit code %s)" % (
        action["action"].replace("_", " ") + (" %s" % action["nodegroup"] if action.get("nodegroup") else ""),
        name, region, err.rc)
    if reasons:
        msg += ". Failures: %s" % "; ".join(r.strip() for r in reasons)
    elif parsed["errors"]:
        msg += ": %s" % parsed["errors"][-1]
    if observed:
        msg += ". The control plane exists (status %s)" % observed["status"]
    if blocking:
        msg += (". Left behind: %s. Nothing was deleted. To retry, delete them (%s) and run again; the next run "
                "resumes from what exists" % (", ".join("%s (%s)" % (s["name"], s["status"]) for s in blocking),
                                              " ; ".join(_delete_advice(blocking, name, region))))
    else:
        msg += ". Run again to resume from what exists"
    return CreateFailedError(msg, cluster=name, region=region, failed_action=action,
                             failed_resources=parsed["failed_resources"], stack_failures=failures,
                             stacks=stacks, delete_commands=_delete_advice(blocking, name, region) if blocking else [],
                             eksctl_errors=parsed["errors"], commands=manager.commands)


def _absent(module, manager, name):
    cluster, nodegroups = manager.describe(name)
    observed = observed_from_aws(cluster, nodegroups)
    if observed is None:
        return _result(manager, None, None, False, [], [])
    tags = observed["tags"]
    if tags.get(OWNERSHIP_TAG[0]) != OWNERSHIP_TAG[1] and not module.params.get("force"):
        raise CiliumEksError(
            "Refusing to delete EKS cluster %s in %s: it does not carry the tag %s=%s that this collection puts on "
            "the clusters it creates. Set force: true to delete it anyway." % (
                name, manager.region, OWNERSHIP_TAG[0], OWNERSHIP_TAG[1]),
            cluster=name, region=manager.region, tags=tags)
    actions = [{"action": "delete_cluster"}]
    if not module.check_mode:
        manager.run_eksctl(["delete", "cluster", "--name", name, "--region", manager.region, "--wait"])
    result = _result(manager, None, observed, True, actions, [])
    result["diff"] = {"before": to_yaml(observed_config(observed, manager.region)), "after": ""}
    return result


def _jsonable(value):
    """DescribeCluster answers hold datetimes: make them ISO strings for the module result."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items() if k != "ResponseMetadata"}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def info(module):
    """The ``eksctl_cluster_info`` module's work."""
    from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.aws_client import region_from_env

    region = validate_region(module.params.get("region") or region_from_env())
    manager = ClusterManager(module, region)
    name = module.params.get("name")
    if not name:
        return {"changed": False, "region": region, "clusters": manager.list_clusters()}
    validate_cluster_name(name)
    cluster, nodegroups = manager.describe(name)
    observed = observed_from_aws(cluster, nodegroups)
    result = {"changed": False, "region": region, "name": name, "exists": observed is not None,
              "cluster": _jsonable(cluster), "nodegroups": _describe_nodegroups_summary(observed),
              "status": observed["status"] if observed else None,
              "version": observed["version"] if observed else None,
              "endpoint": observed["endpoint"] if observed else None,
              "managed": bool(observed) and observed["tags"].get(OWNERSHIP_TAG[0]) == OWNERSHIP_TAG[1]}
    if module.params.get("stacks"):
        stacks = manager.stacks(name)
        result["stacks"] = stacks
        result["stack_failures"] = manager.stack_failures([s for s in stacks if s["status"] in FAILED_STACK_STATUSES])
    return result
