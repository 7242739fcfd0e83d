# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Helm values of the Cilium chart for EKS, per Cilium version and mode. One table, one pure function.

``build_values(mode, version, ...)`` returns ``{"values": {...}, "warnings": [...], ...}`` or raises
``ValidationError`` naming the input at fault. Modes:

* ``eni``: Cilium owns the pod network, IPAM from AWS ENIs (``eni.enabled``, ``ipam.mode: eni``),
  native routing; the chart then deploys the ``operator-aws`` image. The ``aws-node`` DaemonSet must be
  evicted (the roles do it).
* ``chaining``: the AWS VPC CNI keeps IPAM and pod plumbing, Cilium is chained behind it
  (``cni.chainingMode: aws-cni``, ``cni.exclusive: false``, no masquerading, native routing,
  ``endpointRoutes.enabled``), as docs.cilium.io "AWS VPC CNI plugin" shows (``endpointRoutes``
  is listed there up to 1.17.0; the collection keeps it on every minor).

What changes between minors lives in ``MINORS`` (one row per minor). Pure stdlib; imports without Ansible.
"""

from __future__ import annotations

import copy
import re

from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.errors import ValidationError

MODES = ("eni", "chaining")

# One row per supported minor. ``tested``: the patch the collection's tests render and install.
#   routing:  "tunnel" -> ``tunnel: disabled`` (1.13; the key was deprecated in 1.14 and removed in 1.15,
#             where the chart fails on it); "routingMode" -> ``routingMode: native`` (1.14+).
#   kpr:      values kubeProxyReplacement takes: 1.13 "disabled"/"strict" (also partial);
#             1.14-1.15 "true"/"false" plus the deprecated strings; 1.16+ "true"/"false" only.
#   cluster_name_checked: the chart itself rejects names that are empty, > 32 characters or not
#             DNS-label-like (1.16+); older charts accept them and the agent misbehaves in clustermesh.
#   max_connected_clusters: ``clustermesh.maxConnectedClusters`` exists (1.15+, 255 or 511).
#   schema:   the chart ships values.schema.json (types only; helm enforces it on template/install).
MINORS = {
    "1.13": {"tested": "1.13.4", "routing": "tunnel", "kpr": ("disabled", "strict"),
             "kpr_accepted": ("disabled", "partial", "strict"),
             "cluster_name_checked": False, "max_connected_clusters": False, "schema": False},
    "1.14": {"tested": "1.14.19", "routing": "routingMode", "kpr": ("false", "true"),
             "kpr_accepted": ("true", "false", "disabled", "partial", "strict"),
             "cluster_name_checked": False, "max_connected_clusters": False, "schema": False},
    "1.15": {"tested": "1.15.19", "routing": "routingMode", "kpr": ("false", "true"),
             "kpr_accepted": ("true", "false", "disabled", "partial", "strict"),
             "cluster_name_checked": False, "max_connected_clusters": True, "schema": False},
    "1.16": {"tested": "1.16.19", "routing": "routingMode", "kpr": ("false", "true"),
             "kpr_accepted": ("true", "false"),
             "cluster_name_checked": True, "max_connected_clusters": True, "schema": True},
    "1.17": {"tested": "1.17.17", "routing": "routingMode", "kpr": ("false", "true"),
             "kpr_accepted": ("true", "false"),
             "cluster_name_checked": True, "max_connected_clusters": True, "schema": True},
    "1.18": {"tested": "1.18.11", "routing": "routingMode", "kpr": ("false", "true"),
             "kpr_accepted": ("true", "false"),
             "cluster_name_checked": True, "max_connected_clusters": True, "schema": True},
    "1.19": {"tested": "1.19.7", "routing": "routingMode", "kpr": ("false", "true"),
             "kpr_accepted": ("true", "false"),
             "cluster_name_checked": True, "max_connected_clusters": True, "schema": True},
    "1.20": {"tested": "1.20.2", "routing": "routingMode", "kpr": ("false", "true"),
             "kpr_accepted": ("true", "false"),
             "cluster_name_checked": True, "max_connected_clusters": True, "schema": True},
}
DEFAULT_VERSION = "1.20.2"  # newest stable patch the collection is tested with
TESTED_VERSIONS = tuple(row["tested"] for row in MINORS.values())

# Keys a mode owns: extra values may not change them (switch mode or use the dedicated option).
MODE_KEYS = {
    "eni": ("eni.enabled", "ipam.mode", "routingMode", "tunnel", "cni.chainingMode"),
    "chaining": ("cni.chainingMode", "cni.exclusive", "enableIPv4Masquerade", "routingMode", "tunnel",
                 "endpointRoutes.enabled", "eni.enabled", "ipam.mode"),
}
# Keys set through a dedicated option: naming them in extra values is refused (one source of truth).
OPTION_KEYS = {
    "cluster.name": "cluster_name",
    "cluster.id": "cluster_id",
    "kubeProxyReplacement": "kube_proxy_replacement",
    "k8sServiceHost": "k8s_service_host",
    "k8sServicePort": "k8s_service_port",
    "eni.awsEnablePrefixDelegation": "prefix_delegation",
    "egressMasqueradeInterfaces": "egress_masquerade_interfaces",
    "operator.replicas": "operator_replicas",
}
# Extra values a mode cannot run with (the options have their own checks): key -> why, and what to do.
MODE_CONFLICTS = {
    "chaining": {
        "eni.awsEnablePrefixDelegation": "prefix delegation has no effect in chaining mode, where the AWS VPC CNI "
                                         "does IPAM (enable it on aws-node with ENABLE_PREFIX_DELEGATION=true instead)",
        "bandwidthManager.bbr": "the Cilium agent refuses to start with BBR in CNI chaining mode; keep BBR off "
                                "(the Bandwidth Manager itself works in chaining mode, with CUBIC) or use ENI mode",
    },
}
# Keys removed from the chart: (first minor without it, what to use instead).
REMOVED_KEYS = {
    "tunnel": ("1.15", "routingMode (native|tunnel) and tunnelProtocol (vxlan|geneve)"),
}

# Chart values that are free-form maps even when their default has content (label and annotation maps,
# resources, affinity...): their keys are the user's, not the chart's.
FREE_FORM_KEYS = frozenset(("nodeSelector", "annotations", "labels", "extraConfig", "resources", "affinity",
                            "securityContext", "podSecurityContext", "matchLabels", "extraArgs", "extraEnv"))
_FREE_FORM_SUFFIXES = ("Annotations", "Labels", "Selector", "Resources", "Affinity")

_VERSION_RE = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)$")
_CLUSTER_NAME_RE = re.compile(r"^([a-z0-9][-a-z0-9]*)?[a-z0-9]$")
_VALUES_KEY_RE = re.compile(r"^(\s*)([A-Za-z_][\w.-]*|\"[^\"]+\"|'[^']+'):(?:\s|$)")
_COMMENTED_KEY_RE = re.compile(r"^(\s*)#\s?([A-Za-z_][\w-]*):(?:\s|$)")


def parse_version(version, name="version"):
    """``"1.20.2"``/``"v1.20.2"`` -> ``(minor "1.20", "1.20.2", row)``; unsupported versions raise."""
    match = _VERSION_RE.match(str(version or "").strip())
    if not match:
        raise ValidationError(name, "not a Cilium release version", value=version,
                              accepted="X.Y.Z, e.g. %s" % DEFAULT_VERSION)
    minor = "%s.%s" % (match.group(1), match.group(2))
    if minor not in MINORS:
        raise ValidationError(name, "Cilium %s is not supported by this collection" % minor, value=version,
                              accepted=["%s.x (tested: %s)" % (m, row["tested"]) for m, row in MINORS.items()])
    full = "%s.%s" % (minor, match.group(3))
    return minor, full, MINORS[minor]


def _minor_tuple(minor):
    return tuple(int(p) for p in minor.split("."))


def dotted_paths(values, prefix=""):
    """Leaf key paths of a nested dict: ``{"a": {"b": 1}}`` -> ``["a.b"]`` (empty dicts are leaves)."""
    paths = []
    for key, value in (values or {}).items():
        path = "%s.%s" % (prefix, key) if prefix else str(key)
        if isinstance(value, dict) and value:
            paths.extend(dotted_paths(value, path))
        else:
            paths.append(path)
    return paths


def get_path(values, path, default=None):
    node = values
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def _set_path(values, path, value):
    parts = path.split(".")
    node = values
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def deep_merge(base, override):
    """A new dict: ``override`` merged over ``base`` (dicts merged recursively, everything else replaced)."""
    merged = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _touches(paths, key):
    """True if one of ``paths`` is ``key``, inside it or above it."""
    return any(p == key or p.startswith(key + ".") or key.startswith(p + ".") for p in paths)


def detect_mode(values):
    """Mode of an installed release from its user-supplied values: ``eni``, ``chaining``, ``other`` or None."""
    if not values:
        return None
    if get_path(values, "cni.chainingMode") == "aws-cni":
        return "chaining"
    if get_path(values, "eni.enabled") is True or get_path(values, "ipam.mode") == "eni":
        return "eni"
    return "other"


def known_value_keys(values_yaml_text, parsed):
    """Known key paths of a chart: keys of its values.yaml plus the keys it documents commented out.

    Returns ``(tree, commented)``: ``tree`` is the parsed values.yaml; ``commented`` a set of dotted paths
    such as ``egressMasqueradeInterfaces`` or ``eni.iamRole`` found as ``# key: ...`` lines, placed under the
    real key that encloses them by indentation.
    """
    commented = set()
    stack = []  # (indent, key) of the enclosing real keys
    for line in (values_yaml_text or "").splitlines():
        if not line.strip():
            continue
        match = _VALUES_KEY_RE.match(line)
        comment = None if match else _COMMENTED_KEY_RE.match(line)
        if match:
            indent = len(match.group(1))
            key = match.group(2).strip("\"'")
        elif comment:
            indent = len(comment.group(1))
            key = comment.group(2)
        else:
            continue
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = ".".join([k for _i, k in stack] + [key])
        if match:
            stack.append((indent, key))
        else:
            commented.add(path)
    return parsed or {}, commented


def unknown_keys(extra_values, chart_values, commented=()):
    """Dotted paths of ``extra_values`` the chart does not know.

    A key is known if the chart's values.yaml has it, or documents it commented out. Below a key whose
    chart value is not a non-empty mapping (``{}``, ``~``, a list, a scalar), or that is a free-form map by
    nature (``FREE_FORM_KEYS``: ``nodeSelector``, ``resources``, ``*Annotations``...), everything is accepted.
    """
    commented = set(commented or ())
    found = []

    def walk(extra, chart, prefix):
        for key, value in extra.items():
            path = "%s.%s" % (prefix, key) if prefix else str(key)
            if key in chart:
                sub = chart[key]
                free_form = key in FREE_FORM_KEYS or str(key).endswith(_FREE_FORM_SUFFIXES)
                if isinstance(value, dict) and isinstance(sub, dict) and sub and not free_form:
                    walk(value, sub, path)
            elif path in commented:
                continue
            else:
                found.append(path)

    walk(extra_values or {}, chart_values or {}, "")
    return found


def _check_int(name, value, low, high):
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(name, "must be an integer", value=value, accepted="%d-%d" % (low, high))
    if not low <= value <= high:
        raise ValidationError(name, "out of range", value=value, accepted="%d-%d" % (low, high))


def build_values(mode, version=DEFAULT_VERSION, cluster_name=None, cluster_id=0, prefix_delegation=False,
                 kube_proxy_replacement=False, k8s_service_host=None, k8s_service_port=None,
                 egress_masquerade_interfaces=None, operator_replicas=None, extra_values=None,
                 chart_values=None, chart_values_text=None, installed_values=None, names=None):
    """Values for the Cilium chart ``version`` in ``mode``; ``ValidationError`` on bad or conflicting input.

    ``chart_values`` (parsed values.yaml of the chart that will be used) and ``chart_values_text`` (its
    text, for commented-out keys) enable the unknown-key check of ``extra_values``. ``installed_values``
    (user-supplied values of the installed release) enables the mode-switch check. ``names`` maps
    option names to the names errors should use (e.g. the role variables).
    """
    names = names or {}

    def nm(option):
        return names.get(option, option)

    if mode not in MODES:
        raise ValidationError(nm("mode"), "unknown mode", value=mode, accepted=list(MODES))
    minor, full, row = parse_version(version, nm("version"))
    warnings = []
    values = {}

    # -- cluster identity
    if cluster_name is not None:
        if not isinstance(cluster_name, str) or not cluster_name:
            raise ValidationError(nm("cluster_name"), "must be a non-empty string", value=cluster_name)
        if len(cluster_name) > 32 or not _CLUSTER_NAME_RE.match(cluster_name):
            problem = ("Cilium cluster names are at most 32 lower-case alphanumerics and '-', starting and ending "
                       "with an alphanumeric (EKS allows longer names: set a shorter one here)")
            if row["cluster_name_checked"]:
                raise ValidationError(nm("cluster_name"), problem, value=cluster_name)
            warnings.append("%s %r: %s; the %s chart does not enforce it yet, clustermesh will."
                            % (nm("cluster_name"), cluster_name, problem, minor))
        values["cluster"] = {"name": cluster_name}
    elif mode == "eni":
        raise ValidationError(nm("cluster_name"), "is required in ENI mode (the operator tags and finds the "
                                                  "ENIs it creates with it)", accepted="the EKS cluster name")
    max_id = 511 if row["max_connected_clusters"] and \
        get_path(extra_values or {}, "clustermesh.maxConnectedClusters") == 511 else 255
    _check_int(nm("cluster_id"), cluster_id, 0, max_id)
    if 128 <= cluster_id <= 255 or 384 <= cluster_id <= 511:
        raise ValidationError(
            nm("cluster_id"), "cluster IDs 128-255 (and 384-511) drop policy-matched traffic in ENI and "
            "aws-cni chaining modes (cilium/cilium#21330)", value=cluster_id,
            accepted="0-127" + (" or 256-383" if max_id == 511 else ""))
    values.setdefault("cluster", {})["id"] = cluster_id

    # -- datapath per mode
    native = {"tunnel": "disabled"} if row["routing"] == "tunnel" else {"routingMode": "native"}
    if mode == "eni":
        values["eni"] = {"enabled": True}
        values["ipam"] = {"mode": "eni"}
        values.update(native)
        if prefix_delegation:
            values["eni"]["awsEnablePrefixDelegation"] = True
    else:
        if prefix_delegation:
            raise ValidationError(
                nm("prefix_delegation"), "has no effect in chaining mode: the AWS VPC CNI does IPAM there "
                "(enable prefix delegation on aws-node with ENABLE_PREFIX_DELEGATION=true instead)",
                value=prefix_delegation, accepted=[False])
        values["cni"] = {"chainingMode": "aws-cni", "exclusive": False}
        values["enableIPv4Masquerade"] = False
        values.update(native)
        values["endpointRoutes"] = {"enabled": True}

    # -- kube-proxy replacement
    if not isinstance(kube_proxy_replacement, bool):
        raise ValidationError(nm("kube_proxy_replacement"), "must be a boolean", value=kube_proxy_replacement,
                              accepted=[True, False])
    values["kubeProxyReplacement"] = row["kpr"][1 if kube_proxy_replacement else 0]
    if kube_proxy_replacement:
        if not k8s_service_host:
            raise ValidationError(
                nm("k8s_service_host"), "is required when kube-proxy replacement is on: without kube-proxy the "
                "agents cannot reach the API server through the kubernetes Service",
                accepted="the EKS API endpoint host name, without https://")
        values["k8sServiceHost"] = str(k8s_service_host).replace("https://", "").rstrip("/")
        port = 443 if k8s_service_port is None else k8s_service_port
        _check_int(nm("k8s_service_port"), port, 1, 65535)
        values["k8sServicePort"] = port
        warnings.append("kube-proxy replacement is on: remove the kube-proxy add-on (or its DaemonSet) yourself "
                        "once Cilium is healthy, or both will program services")
    elif k8s_service_host or k8s_service_port is not None:
        warnings.append("%s/%s are ignored while %s is false"
                        % (nm("k8s_service_host"), nm("k8s_service_port"), nm("kube_proxy_replacement")))

    # -- optional knobs
    if egress_masquerade_interfaces:
        if mode == "chaining":
            raise ValidationError(nm("egress_masquerade_interfaces"), "masquerading is off in chaining mode "
                                  "(the AWS VPC CNI SNATs)", value=egress_masquerade_interfaces)
        values["egressMasqueradeInterfaces"] = egress_masquerade_interfaces
        if egress_masquerade_interfaces in ("eth0", "eth+"):
            warnings.append("%s=%s matches no interface on Amazon Linux 2023 nodes (their NICs are ens*): "
                            "pods there would reach nothing outside the VPC. Leave it unset (Cilium masquerades "
                            "traffic leaving the VPC CIDR in ENI mode) or use a pattern that fits your AMI."
                            % (nm("egress_masquerade_interfaces"), egress_masquerade_interfaces))
    if operator_replicas is not None:
        _check_int(nm("operator_replicas"), operator_replicas, 1, 100)
        values["operator"] = {"replicas": operator_replicas}

    # -- extra values
    extra_values = extra_values or {}
    if not isinstance(extra_values, dict):
        raise ValidationError(nm("extra_values"), "must be a mapping of chart values", value=extra_values)
    extra_paths = dotted_paths(extra_values)
    for key, problem in MODE_CONFLICTS.get(mode, {}).items():
        if get_path(extra_values, key) not in (None, False):
            raise ValidationError(nm("extra_values"), "sets %s: %s" % (key, problem))
    for key, option in OPTION_KEYS.items():
        if _touches(extra_paths, key):
            raise ValidationError(nm("extra_values"), "sets %s, which has its own option: use %s instead"
                                  % (key, nm(option)))
    for key in MODE_KEYS[mode]:
        if _touches(extra_paths, key):
            raise ValidationError(nm("extra_values"), "sets %s, which %s mode decides; it cannot be overridden"
                                  % (key, mode))
    for key, (removed_in, instead) in REMOVED_KEYS.items():
        if _touches(extra_paths, key) and _minor_tuple(minor) >= _minor_tuple(removed_in):
            raise ValidationError(nm("extra_values"), "sets %s, removed from the chart in Cilium %s; use %s"
                                  % (key, removed_in, instead))
    if chart_values is not None:
        tree, commented = known_value_keys(chart_values_text, chart_values)
        unknown = unknown_keys(extra_values, tree, commented)
        if unknown:
            raise ValidationError(nm("extra_values"), "the Cilium %s chart has no value %s (checked against its "
                                  "values.yaml)" % (full, ", ".join(sorted(unknown))))
    values = deep_merge(values, extra_values)

    # -- installed release
    installed_mode = detect_mode(installed_values)
    if installed_mode is not None and installed_mode != mode:
        raise ValidationError(
            nm("mode"), "the installed Cilium release runs in %s mode; switching a live cluster to %s mode is "
            "not done in place (pods keep their IPs and routes from the old datapath). Plan a migration: "
            "uninstall Cilium, restore or evict aws-node, restart the nodes, then install in the new mode"
            % (installed_mode, mode), value=mode, accepted=[installed_mode])

    return {
        "values": values,
        "warnings": warnings,
        "mode": mode,
        "version": full,
        "minor": minor,
        "tested_version": row["tested"],
        "tested": full == row["tested"],
        "installed_mode": installed_mode,
    }


OPTIONS = ("mode", "version", "cluster_name", "cluster_id", "prefix_delegation", "kube_proxy_replacement",
           "k8s_service_host", "k8s_service_port", "egress_masquerade_interfaces", "operator_replicas",
           "extra_values", "installed_values")


def read_chart(helm, chart_ref, chart_repo_url=None, chart_version=None, names=None):
    """``(version, values dict, values.yaml text)`` of a chart, read with ``helm show chart|values``.

    ``helm`` is a ``runner.CommandRunner``. Works for a packaged chart, a chart folder, or a chart name
    in a repository (``chart_repo_url``), the same way ``kubernetes.core.helm`` resolves ``chart_ref``.
    """
    import yaml  # PyYAML ships with ansible-core

    names = names or {}
    args = [chart_ref]
    if chart_repo_url:
        args += ["--repo", chart_repo_url]
    if chart_version:
        args += ["--version", chart_version]
    chart = yaml.safe_load(helm.run(["show", "chart"] + args).stdout) or {}
    text = helm.run(["show", "values"] + args).stdout
    try:
        values = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ValidationError(names.get("chart_ref", "chart_ref"), "the chart's values.yaml does not parse: %s"
                              % exc, value=chart_ref)
    if chart.get("name") != "cilium":
        raise ValidationError(names.get("chart_ref", "chart_ref"), "is not the Cilium chart (its Chart.yaml "
                              "names %r)" % chart.get("name"), value=chart_ref)
    return str(chart.get("version")), values, text


def compute(params, helm=None, names=None):
    """What the ``cilium_values`` module returns, from its parameters.

    When ``params["chart_ref"]`` is set, the chart is read with ``helm`` (a ``CommandRunner``): its version
    must be ``params["version"]`` and the keys of ``extra_values`` are checked against its values.yaml.
    """
    names = names or {}
    kwargs = dict((key, params.get(key)) for key in OPTIONS if params.get(key) is not None)
    parse_version(kwargs.get("version", DEFAULT_VERSION), names.get("version", "version"))
    chart = None
    if params.get("chart_ref"):
        wanted = parse_version(kwargs.get("version", DEFAULT_VERSION), names.get("version", "version"))[1]
        chart_version, chart_values, chart_text = read_chart(
            helm, params["chart_ref"], params.get("chart_repo_url"),
            params.get("chart_version") or (wanted if params.get("chart_repo_url") else None), names)
        if chart_version.lstrip("v") != wanted:
            raise ValidationError(names.get("version", "version"), "the chart %s is Cilium %s, not %s: make them "
                                  "agree" % (params["chart_ref"], chart_version, wanted), value=wanted)
        kwargs["chart_values"] = chart_values
        kwargs["chart_values_text"] = chart_text
        chart = {"ref": params["chart_ref"], "version": chart_version, "repo_url": params.get("chart_repo_url")}
    result = build_values(names=names, **kwargs)
    result["chart"] = chart
    result["changed"] = False
    return result
