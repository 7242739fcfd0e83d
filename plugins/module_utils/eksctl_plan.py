# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""What eksctl has to do: the desired cluster (from the ClusterConfig) against the observed one (from EKS). Pure.

``desired_from_config(config)`` and ``observed_from_aws(cluster, nodegroups)`` bring both sides to one shape;
``plan(desired, observed, allow_upgrade)`` returns the ``actions`` eksctl takes, in order, and the ``drift`` it
cannot change in place; ``observed_config`` is the ``before`` of ``--diff``.
"""

from __future__ import annotations

from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.eksctl_config import (
    DEFAULT_DESIRED,
    SIZES,
    VERSION_RE,
    nodegroup_from_eksctl,
    validate_taint,
)

EKS_TAINT_EFFECTS = {"NO_SCHEDULE": "NoSchedule", "PREFER_NO_SCHEDULE": "PreferNoSchedule", "NO_EXECUTE": "NoExecute"}
# EKS amiType -> eksctl amiFamily (for drift detection).
AMI_TYPE_FAMILY = {
    "AL2023_x86_64_STANDARD": "AmazonLinux2023", "AL2023_ARM_64_STANDARD": "AmazonLinux2023",
    "AL2023_x86_64_NVIDIA": "AmazonLinux2023", "AL2023_x86_64_NEURON": "AmazonLinux2023",
    "AL2_x86_64": "AmazonLinux2", "AL2_ARM_64": "AmazonLinux2", "AL2_x86_64_GPU": "AmazonLinux2",
    "BOTTLEROCKET_x86_64": "Bottlerocket", "BOTTLEROCKET_ARM_64": "Bottlerocket",
}


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


def _drift(field, want, have, reason, nodegroup=None, creation_only=False):
    """One difference eksctl cannot fix. ``creation_only``: a setting applied when the cluster or node group is
    created and never changed afterwards (reported in the plan, not warned about on every run)."""
    return {"field": field, "nodegroup": nodegroup, "desired": want, "actual": have, "reason": reason,
            "creation_only": creation_only}


# Creation-only settings. eksctl v0.225.0 has no command that changes them on what exists: ``eksctl update nodegroup``
# sends only ``updateConfig`` (pkg/actions/nodegroup/update.go), no command calls eks:TagResource on a cluster
# (pkg/ctl/update, pkg/ctl/utils), and the EKS API takes instance types, disk size and AMI type at CreateNodegroup
# only (UpdateNodegroupConfig: labels, taints, scalingConfig, updateConfig; EKS API reference).
_NODEGROUP_CREATION_ONLY = ("set when the node group is created; to change it, create a node group with the new value "
                            "and delete the old one")
_LABELS_CREATION_ONLY = "set when the node group is created; this module does not change it (eksctl set labels)"
_TAINTS_CREATION_ONLY = "set when the node group is created; this module does not change it (recreate the node group)"
_TAGS_CREATION_ONLY = "set when the cluster is created; eksctl does not change cluster tags (the EKS TagResource API does)"


def version_plan(desired, observed, allow_upgrade):
    """``(actions, drift)`` for the control plane version: one minor per run, never down, only when allowed."""
    want, have = desired.get("version"), observed.get("version")
    if not want or not have or want == have:
        return [], []
    low, high = _minor(have) or 0, _minor(want) or 0
    if high < low:
        return [], [_drift("version", want, have, "EKS cannot downgrade a cluster")]
    if not allow_upgrade:
        return [], [_drift("version", want, have, "upgrading the control plane needs allow_upgrade: true")]
    if high - low > 1:
        step = "1.%d" % (low + 1)
        return [{"action": "upgrade_cluster", "from": have, "to": step}], [_drift(
            "version", want, have, "EKS upgrades one minor version at a time; this run upgrades to %s, run again for "
            "the next step" % step)]
    return [{"action": "upgrade_cluster", "from": have, "to": want}], []


def scaling(ng, current):
    """The sizes to scale ``current`` to (the explicit ones of ``ng``, kept consistent), or None when equal."""
    explicit = ng.get("explicit_sizes", list(SIZES))
    wanted = {k: (ng[k] if k in explicit else current[k]) for k in SIZES}
    if wanted["desired_size"] is not None:
        desired = wanted["desired_size"]
        wanted["min_size"] = desired if wanted["min_size"] is None else min(wanted["min_size"], desired)
        wanted["max_size"] = desired if wanted["max_size"] is None else max(wanted["max_size"], desired)
    return wanted if any(wanted[k] != current[k] for k in SIZES) else None


def nodegroup_drift(name, ng, current):
    """What eksctl cannot change in place on an existing node group."""
    drift = []
    for field in ("instance_type", "volume_size", "ami_family"):
        if ng.get(field) is not None and current.get(field) is not None and ng[field] != current[field]:
            drift.append(_drift(field, ng[field], current[field], _NODEGROUP_CREATION_ONLY, name, True))
    for key, value in sorted(ng["labels"].items()):
        if current["labels"].get(key) != value:
            drift.append(_drift("labels.%s" % key, value, current["labels"].get(key), _LABELS_CREATION_ONLY, name,
                                True))
    if ng["taints"] != current["taints"]:
        drift.append(_drift("taints", ng["taints"], current["taints"], _TAINTS_CREATION_ONLY, name, True))
    return drift


def plan(desired, observed, allow_upgrade=False):
    """``{"actions": [...], "drift": [...]}`` to bring ``observed`` (None: no cluster) to ``desired``.

    Actions (in order): ``{"action": "create_cluster"}``, ``{"action": "upgrade_cluster", "from", "to"}``,
    ``{"action": "create_nodegroup", "nodegroup"}``, ``{"action": "scale_nodegroup", "nodegroup",
    "desired_size", "min_size", "max_size", "from": {...}}``. Drift items are dicts with ``field``,
    ``nodegroup`` (or None), ``desired``, ``actual`` and ``reason``: what eksctl cannot change in place.
    """
    if observed is None:
        return {"actions": [{"action": "create_cluster"}], "drift": []}
    actions, drift = version_plan(desired, observed, allow_upgrade)
    for key, value in sorted(desired.get("tags", {}).items()):
        if observed["tags"].get(key) != value:
            drift.append(_drift("tags.%s" % key, value, observed["tags"].get(key), _TAGS_CREATION_ONLY,
                                creation_only=True))
    for name, ng in desired["nodegroups"].items():
        current = observed["nodegroups"].get(name)
        if current is None:
            actions.append({"action": "create_nodegroup", "nodegroup": name})
            continue
        wanted = scaling(ng, current)
        if wanted:
            actions.append(dict({"action": "scale_nodegroup", "nodegroup": name,
                                 "from": {k: current[k] for k in SIZES}}, **wanted))
        drift.extend(nodegroup_drift(name, ng, current))
    for name in sorted(set(observed["nodegroups"]) - set(desired["nodegroups"])):
        drift.append(_drift("nodegroups", None, name, "node group exists but is not in the configuration; this module "
                            "never deletes node groups (eksctl delete nodegroup --cluster %s --name %s)"
                            % (desired["name"], name), name))
    return {"actions": actions, "drift": drift}


def defer_nodegroups(actions, desired, bare, cni_installed):
    """``(actions, deferred node group names)``: in a ``bare`` cluster (``eksctl_config.bare_cluster``) the node
    groups wait for the CNI. A cluster being created gets none (eksctl refuses them there); missing node groups of an
    existing one are created only when ``cni_installed()`` (called only then) says the CNI is there, because
    ``eksctl create nodegroup`` waits for Ready nodes, which a node without a CNI never becomes."""
    if not bare:
        return actions, []
    if any(a["action"] == "create_cluster" for a in actions):
        return actions, list(desired["nodegroups"])
    creating = [a for a in actions if a["action"] == "create_nodegroup"]
    if not creating or cni_installed():
        return actions, []
    return [a for a in actions if a not in creating], [a["nodegroup"] for a in creating]


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


def nodegroups_summary(observed):
    """The node groups of an observed cluster, as the modules return them."""
    if not observed:
        return []
    return [{"name": name, "status": ng.get("status"), "instance_type": ng["instance_type"],
             "desired_size": ng["desired_size"], "min_size": ng["min_size"], "max_size": ng["max_size"],
             "version": ng.get("version")} for name, ng in sorted(observed["nodegroups"].items())]
