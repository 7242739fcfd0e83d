# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Helm values of the Cilium chart for EKS, per Cilium version and mode: small pure steps over ``cilium_table``.

``build_values(mode, version, **options)`` returns ``{"values": {...}, "warnings": [...], "expect": {...}, ...}``
or raises ``ValidationError`` naming the input at fault. What a mode sets, owns and refuses, what changes
between minors and which settings conflict are rows of ``cilium_table`` (``MODES``, ``GATES``, ``RULES``); this
file only applies them, one step per concern (``STEPS``): cluster identity, the mode's datapath, kube-proxy
replacement, the options with a chart key of their own, then the extra values, checked against the chart.
Pure stdlib; imports without Ansible.
"""

from __future__ import annotations

import copy
import os
import re

from ansible_collections.cloudnet.cilium_eks.plugins.module_utils import cilium_table as table
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.cilium_table import (
    DEFAULT_VERSION,
    detect_mode,
    get_path,
)
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.errors import ValidationError

# Chart keys set through a dedicated option: naming them in extra values is refused (one source of truth).
OPTION_KEYS = {
    "cluster.name": "cluster_name",
    "cluster.id": "cluster_id",
    "kubeProxyReplacement": "kube_proxy_replacement",
    "k8sServiceHost": "k8s_service_host",
    "k8sServicePort": "k8s_service_port",
    "eni.awsEnablePrefixDelegation": "prefix_delegation",
    "enableIPv4Masquerade": "egress",
    "bpf.masquerade": "egress",
    "egressMasqueradeInterfaces": "egress_masquerade_interfaces",
    "operator.replicas": "operator_replicas",
    "upgradeCompatibility": "upgrade_compatibility",
}
# Options whose value goes to one chart key as it is, when set (``None``/``False``/``""``: the chart's default).
PLAIN_OPTIONS = {"prefix_delegation": "eni.awsEnablePrefixDelegation",
                 "operator_replicas": "operator.replicas"}

# Chart values that are free-form maps even when their default has content (label and annotation maps,
# resources, affinity...): their keys are the user's, not the chart's.
FREE_FORM_KEYS = frozenset(("nodeSelector", "annotations", "labels", "extraConfig", "resources", "affinity",
                            "securityContext", "podSecurityContext", "matchLabels", "extraArgs", "extraEnv"))
_FREE_FORM_SUFFIXES = ("Annotations", "Labels", "Selector", "Resources", "Affinity")

# Chart keys another role of this collection owns (role -> keys): an install or upgrade by cilium_eni or
# cilium_chaining keeps their installed values unless extra_values sets them, so that neither role undoes the other
# when a playbook composes them (the install role would otherwise reset them to the chart's default, and the owner
# would set them again and restart the agents, on every run).
KEPT_FROM_RELEASE = {"bandwidthManager": "bandwidth_manager"}

_CLUSTER_NAME_RE = re.compile(r"([a-z0-9][-a-z0-9]*)?[a-z0-9]")  # full match
_VALUES_KEY_RE = re.compile(r"^(\s*)([A-Za-z_][\w.-]*|\"[^\"]+\"|'[^']+'):(?:\s|$)")
_COMMENTED_KEY_RE = re.compile(r"^(\s*)#\s?([A-Za-z_][\w-]*):(?:\s|$)")

OPTIONS = ("mode", "version", "cluster_name", "cluster_id", "prefix_delegation", "kube_proxy_replacement",
           "k8s_service_host", "k8s_service_port", "egress", "egress_masquerade_interfaces", "operator_replicas",
           "extra_values", "installed_values", "upgrade_compatibility", "kubernetes_version")
DEFAULTS = {"cluster_name": None, "cluster_id": 0, "prefix_delegation": False, "kube_proxy_replacement": False,
            "k8s_service_host": None, "k8s_service_port": None, "egress": None, "egress_masquerade_interfaces": None,
            "operator_replicas": None, "extra_values": None, "installed_values": None, "upgrade_compatibility": None,
            "kubernetes_version": None}


# ------------------------------------------------------------------------------------ dict helpers


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


def nested(path, value):
    """``nested("a.b", 1)`` -> ``{"a": {"b": 1}}``."""
    for part in reversed(path.split(".")):
        value = {part: value}
    return value


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


# ------------------------------------------------------------------------------------ the build


class Build:
    """What every step sees: the options, the mode's profile, the release row, the names errors use."""

    def __init__(self, mode, version, options, names=None):
        self.names = names or {}
        self.mode = mode
        self.profile = table.profile(mode, self.name("mode"))
        self.release = table.release(version, self.name("version"))
        self.options = options
        self.warnings = []
        self.egress = None

    def name(self, option):
        """The name errors give ``option`` (a role variable when the caller says so)."""
        return self.names.get(option, option)

    def invalid(self, option, problem, **kwargs):
        return ValidationError(self.name(option), problem, **kwargs)


def check_int(name, value, low, high):
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(name, "must be an integer", value=value, accepted="%d-%d" % (low, high))
    if not low <= value <= high:
        raise ValidationError(name, "out of range", value=value, accepted="%d-%d" % (low, high))


def cluster_name_values(build):
    """``cluster.name``: checked like the chart checks it (an error where the chart enforces it, else a warning)."""
    name = build.options["cluster_name"]
    if name is None:
        for option, why in build.profile["requires"].items():
            if option == "cluster_name":
                raise build.invalid(option, "is required in %s mode (%s)" % (build.profile["title"], why),
                                    accepted="the EKS cluster name")
        return {}
    if not isinstance(name, str) or not name:
        raise build.invalid("cluster_name", "must be a non-empty string", value=name)
    if len(name) > 32 or not _CLUSTER_NAME_RE.fullmatch(name):
        problem = ("Cilium cluster names are at most 32 lower-case alphanumerics and '-', starting and ending "
                   "with an alphanumeric (EKS allows longer names: set a shorter one here)")
        if table.has("cluster_name_checked", build.release.version):
            raise build.invalid("cluster_name", problem, value=name)
        build.warnings.append("%s %r: %s; the %s chart does not enforce it yet, clustermesh will."
                              % (build.name("cluster_name"), name, problem, build.release.minor))
    return {"cluster": {"name": name}}


def cluster_id_values(build):
    """``cluster.id``: 0-255, or 0-511 with ``clustermesh.maxConnectedClusters: 511`` where the chart has it."""
    extra = build.options["extra_values"] if isinstance(build.options["extra_values"], dict) else {}
    wide = table.has("max_connected_clusters", build.release.version) and \
        get_path(extra, "clustermesh.maxConnectedClusters") == 511
    check_int(build.name("cluster_id"), build.options["cluster_id"], 0, 511 if wide else 255)
    return {"cluster": {"id": build.options["cluster_id"]}}


def datapath_values(build):
    """The mode's own values and native routing in the chart's spelling of this minor."""
    values = copy.deepcopy(build.profile["values"])
    if build.profile["native_routing"]:
        values.update(table.native_routing(build.release.version))
    for gate, gated in build.profile["gated_values"].items():
        if table.has(gate, build.release.version):
            values = deep_merge(values, gated)
    return values


def kube_proxy_replacement_values(build):
    """``kubeProxyReplacement`` in this minor's spelling; the API server's address when it is on."""
    enabled, host, port = (build.options[k] for k in (
        "kube_proxy_replacement", "k8s_service_host", "k8s_service_port"))
    if not isinstance(enabled, bool):
        raise build.invalid("kube_proxy_replacement", "must be a boolean", value=enabled, accepted=[True, False])
    values = {"kubeProxyReplacement": table.kube_proxy_replacement(build.release.version, enabled)}
    if not enabled:
        if host or port is not None:
            build.warnings.append("%s/%s are ignored while %s is false" % (
                build.name("k8s_service_host"), build.name("k8s_service_port"), build.name("kube_proxy_replacement")))
        return values
    if not host:
        raise build.invalid("k8s_service_host", "is required when kube-proxy replacement is on: without kube-proxy "
                            "the agents cannot reach the API server through the kubernetes Service",
                            accepted="the EKS API endpoint host name, without https://")
    port = 443 if port is None else port
    check_int(build.name("k8s_service_port"), port, 1, 65535)
    build.warnings.append("kube-proxy replacement is on: remove the kube-proxy add-on (or its DaemonSet) yourself "
                          "once Cilium is healthy, or both will program services")
    values.update(k8sServiceHost=str(host).replace("https://", "").rstrip("/"), k8sServicePort=port)
    return values


def plain_option_values(build):
    """The options with a chart key of their own (``PLAIN_OPTIONS``), when set."""
    values = {}
    replicas = build.options["operator_replicas"]
    if replicas is not None:
        check_int(build.name("operator_replicas"), replicas, 1, 100)
    for option, key in PLAIN_OPTIONS.items():
        if build.options[option] not in (None, False, ""):
            values = deep_merge(values, nested(key, build.options[option]))
    return values


def egress_values(build):
    """How pods reach outside the VPC (``cilium_table.EGRESS``): the mode's default or the ``egress`` option, with
    the masquerade interfaces when given (``RULES`` refuse them where they do nothing or break the agent)."""
    egress, offered = build.options["egress"], build.profile["egress"]
    interfaces = build.options["egress_masquerade_interfaces"]
    values = {"egressMasqueradeInterfaces": interfaces} if interfaces not in (None, "") else {}
    if not offered:
        if egress not in (None, ""):
            raise build.invalid("egress", "%s mode has no egress choice: the AWS VPC CNI masquerades pod traffic "
                                "leaving the VPC" % build.profile["title"], value=egress)
        return values
    egress = egress or build.profile["default_egress"]
    if egress not in offered:
        raise build.invalid("egress", "unknown egress", value=egress, accepted=list(offered))
    build.egress = egress
    return deep_merge(copy.deepcopy(table.EGRESS[egress].values), values)


def upgrade_compatibility_values(build):
    """``upgradeCompatibility``, quoted: defaults that changed in later minors stay as first installed (given by
    ``compute`` on a minor upgrade, kept from the release afterwards). The chart's schema types it ``[null,
    string]`` (values.schema.json at v1.20.2); YAML 1.20 would be the float 1.2."""
    pinned = build.options["upgrade_compatibility"]
    if pinned in (None, ""):
        return {}
    parsed = table.parse_version(pinned)
    if parsed is None or parsed.minor_string != str(pinned).strip():
        raise build.invalid("upgrade_compatibility", "not a Cilium minor", value=pinned, accepted="X.Y, e.g. 1.18")
    return {"upgradeCompatibility": parsed.minor_string}


STEPS = (cluster_name_values, cluster_id_values, datapath_values, kube_proxy_replacement_values, plain_option_values,
         egress_values, upgrade_compatibility_values)


def check_rules(build, values, extra_paths):
    """``cilium_table.RULES`` on the final values: the error names the option or ``extra_values`` behind the key."""
    for rule in table.conflicts(values, build.mode, build.release.version):
        if _touches(extra_paths, rule.key):
            raise build.invalid("extra_values", "sets %s: %s" % (rule.key, rule.problem))
        option = OPTION_KEYS.get(rule.key, "extra_values")  # PLAIN_OPTIONS' keys are among them
        raise build.invalid(option, rule.problem, value=build.options.get(option, get_path(values, rule.key)))


def checked_extra_values(build, chart_values=None, chart_values_text=None):
    """``extra_values``, refused when they set a key a rule, an option or the mode owns, or the chart lacks."""
    extra = build.options["extra_values"] or {}
    if not isinstance(extra, dict):
        raise build.invalid("extra_values", "must be a mapping of chart values", value=extra)
    paths = dotted_paths(extra)
    for key in build.profile["owned_keys"]:
        if _touches(paths, key):
            raise build.invalid("extra_values", "sets %s, which %s mode decides; it cannot be overridden"
                                % (key, build.mode))
    for key, option in OPTION_KEYS.items():
        if _touches(paths, key):
            raise build.invalid("extra_values", "sets %s, which has its own option: use %s instead"
                                % (key, build.name(option)))
    for key, problem in table.gated_key_problems(paths, build.release.version):
        raise build.invalid("extra_values", "sets %s, %s" % (key, problem))
    if chart_values is not None:
        tree, commented = known_value_keys(chart_values_text, chart_values)
        unknown = unknown_keys(extra, tree, commented)
        if unknown:
            raise build.invalid("extra_values", "the Cilium %s chart has no value %s (checked against its "
                                "values.yaml)" % (build.release.version, ", ".join(sorted(unknown))))
    return extra


def check_installed_mode(build, installed_values):
    """The mode of the installed release; a release in another mode is refused (no switch in place)."""
    installed = detect_mode(installed_values)
    if installed is not None and installed != build.mode:
        raise build.invalid(
            "mode", "the installed Cilium release runs in %s mode; switching a live cluster to %s mode is not done "
            "in place (pods keep their IPs and routes from the old datapath). Plan a migration: uninstall Cilium, "
            "restore or evict aws-node, restart the nodes, then install in the new mode" % (installed, build.mode),
            value=build.mode, accepted=[installed])
    return installed


def kept_from_release(values, installed_values):
    """``values`` plus the installed values of the keys another role owns (``KEPT_FROM_RELEASE``) that ``values``
    does not set; returns ``(values, kept keys)``."""
    kept = [key for key in sorted(KEPT_FROM_RELEASE)
            if get_path(values, key) is None and get_path(installed_values or {}, key) is not None]
    for key in kept:
        values = deep_merge(values, nested(key, copy.deepcopy(get_path(installed_values, key))))
    return values, kept


def egress_change_warning(build, installed_values):
    """A warning when the egress changes on a running release whose target agent does not migrate the ENI
    endpoints' ip rules (the 'Cleaning up stale CIDR specific egress rules' code of
    pkg/datapath/linux/routing/routing.go exists from v1.20.2 l.141-213, not up to v1.19.7): pods running before keep
    the old rules until they restart."""
    if not build.egress or not installed_values or table.has("eni_egress_rule_migration", build.release.version):
        return None
    before = table.egress_of(installed_values, build.mode, build.release.version)
    if before == build.egress:
        return None
    return ("egress changes from %s to %s on a running Cilium %s release: its agents do not migrate the ip rules of "
            "the pods already running (pkg/datapath/linux/routing/routing.go has that code from 1.20 only), so "
            "those pods keep the old egress path until they restart (roll the nodes or restart the pods)"
            % (before or "masquerading that matches nothing (enableIPv4Masquerade without interfaces)", build.egress,
               build.release.minor))


def build_values(mode, version=None, names=None, chart_values=None, chart_values_text=None, **options):
    """Values for the Cilium chart ``version`` (default: the newest tested) in ``mode``; see ``OPTIONS``.

    ``chart_values`` (parsed values.yaml of the chart that will be used) and ``chart_values_text`` (its text,
    for commented-out keys) enable the unknown-key check of ``extra_values``. ``installed_values`` (user-supplied
    values of the installed release) enables the mode-switch check and keeps the keys another role owns
    (``KEPT_FROM_RELEASE``) at their installed values unless ``extra_values`` sets them. ``names`` maps option names to the names
    errors use (e.g. the role variables). ``ValidationError`` on bad or conflicting input.
    """
    unknown = sorted(set(options) - set(DEFAULTS))
    if unknown:
        raise TypeError("build_values() got unknown options %s" % ", ".join(unknown))
    build = Build(mode, version or DEFAULT_VERSION, dict(DEFAULTS, **options), names)
    values = {}
    for step in STEPS:
        values = deep_merge(values, step(build))
    extra = checked_extra_values(build, chart_values, chart_values_text)
    values = deep_merge(values, extra)
    check_rules(build, values, dotted_paths(extra))
    installed_mode = check_installed_mode(build, build.options["installed_values"])
    values, kept = kept_from_release(values, build.options["installed_values"])
    for warning in (egress_change_warning(build, build.options["installed_values"]),
                    table.kubernetes_warning(build.release.version, build.options["kubernetes_version"])):
        if warning:
            build.warnings.append(warning)
    return {
        "values": values, "kept_from_release": kept, "warnings": build.warnings, "mode": mode,
        "version": build.release.version,
        "minor": build.release.minor, "tested_version": build.release.tested,
        "tested": build.release.version == build.release.tested, "installed_mode": installed_mode,
        "egress": build.egress,
        "expect": table.expect(mode, build.options["kube_proxy_replacement"], build.egress),
    }


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


# Release states in which a release runs (its values are the installed ones); pending-* are an interrupted helm run.
RUNNING_STATES = ("deployed", "failed")


def helm_cluster_args(params):
    """helm's flags for the module's Kubernetes access (``kubeconfig``, ``context``)."""
    args = []
    if params.get("kubeconfig"):
        args += ["--kubeconfig", params["kubeconfig"]]
    if params.get("context"):
        args += ["--kube-context", params["context"]]
    return args


def read_release(helm, name, namespace, cluster_args=()):
    """The release as ``helm list --all`` shows it (any state: ``name``, ``namespace``, ``revision``, ``updated``,
    ``status``, ``chart``, ``app_version``) with its user-supplied ``values``; None when there is none. The same
    fields as ``status`` of kubernetes.core.helm_info."""
    import json

    listed = helm.run(["list", "--all", "--namespace", namespace, "--filter", "^%s$" % re.escape(name),
                       "--output", "json"] + list(cluster_args)).stdout
    release = next((item for item in json.loads(listed or "[]") if item.get("name") == name), None)
    if release is None:
        return None
    values = helm.run(["get", "values", name, "--namespace", namespace, "--output", "json"]
                      + list(cluster_args)).stdout
    release["values"] = json.loads(values or "null") or {}
    return release


def check_kubeconfig(path, names):
    """A kubeconfig that is named but missing is refused with its variable, before helm says less."""
    if path and not os.path.exists(os.path.expanduser(path)):
        raise ValidationError(names.get("kubeconfig", "kubeconfig"), "the file does not exist. Give the kubeconfig of "
                              "the cluster (the eks_cluster role writes it when it creates the cluster; in check mode, "
                              "before the cluster exists, the roles plan without it)", value=path)


def compute(params, helm=None, names=None):
    """What the ``cilium_values`` module returns, from its parameters.

    When ``params["chart_ref"]`` is set, the chart is read with ``helm`` (a ``CommandRunner``): its version
    must be ``params["version"]`` and the keys of ``extra_values`` are checked against its values.yaml. When
    ``params["release_name"]`` is set, the installed release is read with ``helm`` too (returned as ``release``),
    and a running one is what ``installed_values`` would have said.
    """
    names = names or {}
    release = None
    if params.get("release_name"):
        check_kubeconfig(params.get("kubeconfig"), names)
        release = read_release(helm, params["release_name"], params.get("release_namespace") or "kube-system",
                               helm_cluster_args(params))
        if release and release.get("status") in RUNNING_STATES and params.get("installed_values") is None:
            params = dict(params, installed_values=release["values"])
    options = dict((key, params.get(key)) for key in OPTIONS if params.get(key) is not None)
    options["version"] = table.release(options.get("version") or DEFAULT_VERSION,
                                       names.get("version", "version")).version
    upgrade = plan_upgrade(options, release, names)
    chart = None
    if params.get("chart_ref"):
        wanted = options["version"]
        chart_version, chart_values, chart_text = read_chart(
            helm, params["chart_ref"], params.get("chart_repo_url"),
            params.get("chart_version") or (wanted if params.get("chart_repo_url") else None), names)
        if chart_version.lstrip("v") != wanted:
            raise ValidationError(names.get("version", "version"), "the chart %s is Cilium %s, not %s: make them "
                                  "agree" % (params["chart_ref"], chart_version, wanted), value=wanted)
        options.update(chart_values=chart_values, chart_values_text=chart_text)
        chart = {"ref": params["chart_ref"], "version": chart_version, "repo_url": params.get("chart_repo_url")}
    result = build_values(names=names, **options)
    result.update(chart=chart, release=release, upgrade=upgrade, changed=False)
    return result


_RELEASE_CHART_RE = re.compile(r"^cilium-(\d+\.\d+\.\d+\S*)$")


def plan_upgrade(options, release, names):
    """The upgrade this run makes of a running ``release`` (``{"from", "to", "minor_upgrade"}``), None when there is
    none; refuses a downgrade, a jump over minors and a minor upgrade from an older patch (``cilium_table.
    upgrade_problem``). Fills ``options["upgrade_compatibility"]``, unless given: the release's own, or on a minor
    upgrade the installed minor, since an unset upgradeCompatibility on chart X means X
    (Documentation/operations/upgrade.rst at v1.20.2 l.157-159), so the defaults the cluster runs do not flip."""
    match = _RELEASE_CHART_RE.match(str((release or {}).get("chart") or ""))
    if not match or release.get("status") not in RUNNING_STATES:
        return None
    installed, target = match.group(1), options["version"]
    problem = table.upgrade_problem(installed, target)
    if problem:
        raise ValidationError(names.get("version", "version"), problem, value=target)
    minor_upgrade = table.parse_version(installed).minor_string != table.parse_version(target).minor_string
    pinned = (options.get("installed_values") or {}).get("upgradeCompatibility")
    if pinned in (None, "") and minor_upgrade:
        pinned = table.parse_version(installed).minor_string
    if options.get("upgrade_compatibility") in (None, "") and pinned not in (None, ""):
        options["upgrade_compatibility"] = str(pinned)
    if installed == target:
        return None
    return {"from": installed, "to": target, "minor_upgrade": minor_upgrade}


def names_for(variable_prefix):
    """The names errors give the options when a role passes its variables (``cilium_eni_`` + option)."""
    if not variable_prefix:
        return {}
    names = dict((key, variable_prefix + key) for key in OPTIONS + ("chart_ref", "kubeconfig"))
    names["mode"] = "%s role mode" % variable_prefix.rstrip("_")
    return names


def run_module(module):
    """Entry point of the ``cilium_values`` module: errors name role variables when ``variable_prefix`` is given."""
    names = names_for(module.params.get("variable_prefix"))
    result = compute(module.params, helm=module.runner("helm", "helm_path", timeout=120), names=names)
    result["notes"] = result.pop("warnings")
    for note in result["notes"]:
        module.warn(note)
    return result
