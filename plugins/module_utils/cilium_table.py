# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The Cilium table: what one Cilium minor and one mode mean to this collection, in one place.

Everything the collection knows about Cilium versions and modes is data here, each entry next to its
upstream source, and everything else reads it (``cilium_values`` for the Helm values, ``cilium_status`` and the
roles for the facts the agents must report, ``bandwidth`` for the agent CLI and the ingress limit, the
``cilium_table`` filters for the roles and playbooks):

* ``MINORS``: one row per supported minor, the patch the tests render and install. A new minor with no new
  behaviour is one row here (plus its chart pin in the test platform).
* ``GATES``: what changed at a version (``since``/``until``), asked with ``has(feature, version)``.
* ``MODES``: one profile per mode: the values it sets, the keys it owns, the facts the agents report in it,
  the options it refuses, what it needs, how an installed release is recognised.
* ``RULES``: settings that cannot go together (with a mode, a version, each other), checked by
  ``conflicts(values, mode, version)`` on the Helm values, wherever the settings come from.
* ``KERNEL_REQUIREMENTS``: node kernels a setting needs, checked by ``old_kernels(nodes, key)``.

Adding a rule: a ``Rule`` row (its ``when`` sees the value at ``key`` and the whole values), or a ``Gate`` and
a test of it where the values are built. Pure stdlib; importable without Ansible.
"""

from __future__ import annotations

import collections
import re

from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.errors import ValidationError
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.versions import at_least, parse_version

# ------------------------------------------------------------------------------------------ minors

# minor -> the patch the collection's tests render (the real chart) and install (the sandbox).
# Source of each pin: the chart the test platform fetches (tests/platform/eks_sandbox/versions.py CILIUM_CHARTS).
MINORS = collections.OrderedDict([
    ("1.13", {"tested": "1.13.4"}),
    ("1.14", {"tested": "1.14.19"}),
    ("1.15", {"tested": "1.15.19"}),
    ("1.16", {"tested": "1.16.19"}),
    ("1.17", {"tested": "1.17.17"}),
    ("1.18", {"tested": "1.18.11"}),
    ("1.19", {"tested": "1.19.7"}),
    ("1.20", {"tested": "1.20.2"}),
])
TESTED_VERSIONS = tuple(row["tested"] for row in MINORS.values())
DEFAULT_VERSION = TESTED_VERSIONS[-1]  # the newest tested patch: what a role installs when no version is given

Release = collections.namedtuple("Release", "minor version tested")

# ------------------------------------------------------------------------------------------- gates

Gate = collections.namedtuple("Gate", "since until what source")

GATES = {
    "routing_mode": Gate(
        "1.14", None, "routingMode (native|tunnel) replaces tunnel",
        "docs.cilium.io/en/v1.14/operations/upgrade/ (1.14 upgrade notes: tunnel deprecated for routingMode)"),
    "tunnel_key": Gate(
        None, "1.15", "the tunnel value (disabled|vxlan|geneve); the 1.15 chart fails on it",
        "docs.cilium.io/en/v1.15/operations/upgrade/ (1.15 upgrade notes: the deprecated tunnel option is removed)"),
    "kpr_boolean": Gate(
        "1.14", None, 'kubeProxyReplacement is "true"/"false" (was "disabled"/"partial"/"strict")',
        "docs.cilium.io/en/v1.14/operations/upgrade/ (1.14 upgrade notes: kubeProxyReplacement values)"),
    "cluster_name_checked": Gate(
        "1.16", None, "the chart refuses a cluster.name that is empty, over 32 characters or not DNS-label-like",
        "install/kubernetes/cilium/templates/validate.yaml at v1.16.19, 'validate cluster name'"),
    "max_connected_clusters": Gate(
        "1.15", None, "clustermesh.maxConnectedClusters (255 or 511) exists",
        "install/kubernetes/cilium/values.yaml at v1.15.19, clustermesh.maxConnectedClusters"),
    "agent_cli_cilium_dbg": Gate(
        "1.15", None, "the agent container's CLI is cilium-dbg (cilium before)",
        "docs.cilium.io/en/v1.15/operations/upgrade/ (1.15 upgrade notes: cilium CLI in the agent renamed cilium-dbg)"),
    "ingress_bandwidth": Gate(
        "1.18", None, "the agent enforces kubernetes.io/ingress-bandwidth",
        "docs.cilium.io/en/v1.18/network/kubernetes/bandwidth-manager/ (ingress limits, bwmap direction key)"),
    "bbr_host_namespace_only": Gate(
        "1.18", None, "bandwidthManager.bbrHostNamespaceOnly exists",
        "install/kubernetes/cilium/values.yaml at v1.18.11 (absent at v1.17.17)"),
}


def has(feature, version):
    """Does Cilium ``version`` (``"1.18.2"``, ``"1.18"``, a Version) have ``feature`` (a ``GATES`` key)?"""
    gate = GATES[feature]
    opened = gate.since is None or at_least(version, gate.since)
    return opened and (gate.until is None or not at_least(version, gate.until))


def release(version, name="version"):
    """``Release(minor, version, tested)`` of a supported Cilium ``X.Y.Z``; ``ValidationError`` naming ``name``."""
    text = str(version or "").strip()
    parsed = parse_version(text) if re.fullmatch(r"v?\d+\.\d+\.\d+", text) else None
    if parsed is None:
        raise ValidationError(name, "not a Cilium release version", value=version,
                              accepted="X.Y.Z, e.g. %s" % DEFAULT_VERSION)
    if parsed.minor_string not in MINORS:
        raise ValidationError(name, "Cilium %s is not supported by this collection" % parsed.minor_string,
                              value=version, accepted=["%s.x (tested: %s)" % (minor, row["tested"])
                                                       for minor, row in MINORS.items()])
    return Release(parsed.minor_string, str(parsed), MINORS[parsed.minor_string]["tested"])


def native_routing(version):
    """The values that give native routing (no overlay) on ``version``."""
    return {"routingMode": "native"} if has("routing_mode", version) else {"tunnel": "disabled"}


def kube_proxy_replacement(version, enabled):
    """The kubeProxyReplacement value for ``enabled`` on ``version`` ("true"/"false", or "strict"/"disabled")."""
    if has("kpr_boolean", version):
        return "true" if enabled else "false"
    return "strict" if enabled else "disabled"


def agent_cli(version):
    """The CLI in the agent container: ``cilium-dbg`` or ``cilium``; None when ``version`` is unknown."""
    if parse_version(version) is None:
        return None
    return "cilium-dbg" if has("agent_cli_cilium_dbg", version) else "cilium"


# Chart keys that exist only while a gate is open: key -> (gate, what to use where it is closed).
GATED_KEYS = {
    "tunnel": ("tunnel_key", "routingMode (native|tunnel) and tunnelProtocol (vxlan|geneve)"),
    "bandwidthManager.bbrHostNamespaceOnly": ("bbr_host_namespace_only", "a newer Cilium, or leave it unset"),
}


def gated_key_problems(paths, version):
    """``(key, problem)`` for every key of ``paths`` (dotted, or above/inside a gated key) the chart of ``version``
    does not have."""
    found = []
    for key, (feature, instead) in GATED_KEYS.items():
        if not any(p == key or p.startswith(key + ".") or key.startswith(p + ".") for p in paths):
            continue
        if not has(feature, version):
            gate = GATES[feature]
            when = "removed from the chart in Cilium %s" % gate.until if gate.until and at_least(version, gate.until) \
                else "in the chart from Cilium %s only" % gate.since
            found.append((key, "%s; use %s" % (when, instead)))
    return found


# -------------------------------------------------------------------------------------------- modes

MODES = collections.OrderedDict([
    ("eni", {
        "title": "ENI",
        "summary": "Cilium owns IPAM through AWS ENIs; the AWS VPC CNI (aws-node) is evicted",
        "values": {"eni": {"enabled": True}, "ipam": {"mode": "eni"}},
        "native_routing": True,
        # Keys extra values may not change (switch mode or use the dedicated option).
        "owned_keys": ("eni.enabled", "ipam.mode", "routingMode", "tunnel", "cni.chainingMode"),
        # What every agent reports in this mode (cilium_status ``expect`` keys).
        "expect": {"ipam_mode": "eni", "routing_mode": "native"},
        # Options the mode needs: option -> why.
        "requires": {"cluster_name": "the operator tags and finds the ENIs it creates with it"},
        # How an installed release in this mode is recognised (any one key=value); lower precedence first.
        "signature": (("eni.enabled", True), ("ipam.mode", "eni")),
        "precedence": 1,
        "evicts_aws_node": True,
        "source": "docs.cilium.io/en/stable/network/concepts/ipam/eni/; cilium-cli install (aws-node nodeSelector "
                  "io.cilium/aws-node-enabled=true)",
    }),
    ("chaining", {
        "title": "chaining",
        "summary": "the AWS VPC CNI keeps IPAM and pod plumbing; Cilium is chained behind it",
        "values": {"cni": {"chainingMode": "aws-cni", "exclusive": False}, "enableIPv4Masquerade": False,
                   "endpointRoutes": {"enabled": True}},
        "native_routing": True,
        "owned_keys": ("cni.chainingMode", "cni.exclusive", "enableIPv4Masquerade", "routingMode", "tunnel",
                       "endpointRoutes.enabled", "eni.enabled", "ipam.mode"),
        "expect": {"chaining_mode": "aws-cni", "routing_mode": "native"},
        "requires": {},
        "signature": (("cni.chainingMode", "aws-cni"),),
        "precedence": 0,
        "evicts_aws_node": False,
        # endpointRoutes is listed there up to 1.17.0; the collection keeps it on every minor.
        "source": "docs.cilium.io/en/stable/installation/cni-chaining-aws-cni/ (cni.chainingMode=aws-cni, "
                  "cni.exclusive=false, enableIPv4Masquerade=false, routingMode=native, endpointRoutes.enabled)",
    }),
])


def profile(mode, name="mode"):
    """The ``MODES`` profile of ``mode``; ``ValidationError`` naming ``name`` for an unknown mode."""
    if mode not in MODES:
        raise ValidationError(name, "unknown mode", value=mode, accepted=list(MODES))
    return MODES[mode]


def expect(mode, kube_proxy_replacement_enabled=None):
    """What the agents report in ``mode`` (``cilium_status`` ``expect``), plus kube-proxy replacement when given."""
    facts = dict(profile(mode)["expect"])
    if kube_proxy_replacement_enabled is not None:
        facts["kube_proxy_replacement"] = bool(kube_proxy_replacement_enabled)
    return facts


def get_path(values, path, default=None):
    """``get_path({"a": {"b": 1}}, "a.b")`` -> 1 (``default`` when a part is missing)."""
    node = values
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def _same(found, wanted):
    return found is wanted if isinstance(wanted, bool) else found == wanted


def detect_mode(values):
    """Mode of an installed release from its user-supplied values: a ``MODES`` key, ``other``, or None (none)."""
    if not values:
        return None
    for mode, row in sorted(MODES.items(), key=lambda item: item[1]["precedence"]):
        if any(_same(get_path(values, key), value) for key, value in row["signature"]):
            return mode
    return "other"


# -------------------------------------------------------------------------------------------- rules

Rule = collections.namedtuple("Rule", "id key modes since until when problem source")


def _is_set(value, _values):
    return value not in (None, False, "")


def _drops_policy_traffic(cluster_id, _values):
    return isinstance(cluster_id, int) and (128 <= cluster_id <= 255 or 384 <= cluster_id <= 511)


RULES = (
    Rule("prefix-delegation-in-chaining", "eni.awsEnablePrefixDelegation", ("chaining",), None, None, _is_set,
         "prefix delegation has no effect in chaining mode, where the AWS VPC CNI does IPAM (enable it on aws-node "
         "with ENABLE_PREFIX_DELEGATION=true instead)",
         "docs.cilium.io/en/stable/installation/cni-chaining-aws-cni/ (IPAM stays with the AWS VPC CNI)"),
    Rule("masquerade-interfaces-in-chaining", "egressMasqueradeInterfaces", ("chaining",), None, None, _is_set,
         "masquerading is off in chaining mode (the AWS VPC CNI SNATs)",
         "docs.cilium.io/en/stable/installation/cni-chaining-aws-cni/ (enableIPv4Masquerade=false)"),
    Rule("cluster-id-drops-policy-traffic", "cluster.id", ("eni", "chaining"), None, None, _drops_policy_traffic,
         "cluster IDs 128-255 (and 384-511) drop policy-matched traffic in ENI and aws-cni chaining modes "
         "(cilium/cilium#21330): use 0-127 (or 256-383 with clustermesh.maxConnectedClusters=511)",
         "github.com/cilium/cilium/issues/21330"),
    Rule("bbr-in-chaining", "bandwidthManager.bbr", ("chaining",), None, None, _is_set,
         "the Cilium agent refuses to start with BBR in CNI chaining mode; keep BBR off (the Bandwidth Manager "
         "itself works in chaining mode, with CUBIC) or use ENI mode",
         "pkg/datapath/linux/bandwidth/bandwidth.go at v1.20.2 l.229 (BBR needs BPF host routing; CNI chaining "
         "runs legacy host routing)"),
)


def _applies(rule, mode, version):
    if rule.modes is not None and mode not in rule.modes:
        return False
    if version is not None and rule.since is not None and not at_least(version, rule.since):
        return False
    return not (version is not None and rule.until is not None and at_least(version, rule.until))


def conflicts(values, mode, version=None):
    """The ``RULES`` that Helm ``values`` break in ``mode`` on ``version`` (None: any version), in table order."""
    return [rule for rule in RULES if _applies(rule, mode, version)
            and rule.when(get_path(values or {}, rule.key), values or {})]


# ----------------------------------------------------------------------------------------- kernels

KernelRequirement = collections.namedtuple("KernelRequirement", "minimum why source")

KERNEL_REQUIREMENTS = {
    "bandwidthManager.bbr": KernelRequirement(
        "5.18", "older kernels lose the packet timestamps BBR pacing needs when packets leave the pod namespace",
        "pkg/datapath/linux/bandwidth/bandwidth.go at v1.20.2 l.211-219 ('needs kernel 5.18 or newer'); "
        "docs.cilium.io bandwidth-manager 'BBR for Pods requires a v5.18.x or more recent Linux kernel'"),
}
_KERNEL_RE = re.compile(r"^(\d+\.\d+(?:\.\d+)?)")


def old_kernels(nodes, key):
    """``"<node> (kernel <version>)"`` for every Node dict whose kernel is below ``KERNEL_REQUIREMENTS[key]``
    (or cannot be read)."""
    minimum = KERNEL_REQUIREMENTS[key].minimum
    found = []
    for node in nodes or []:
        kernel = (((node.get("status") or {}).get("nodeInfo") or {}).get("kernelVersion")) or "unknown"
        match = _KERNEL_RE.match(kernel)
        if not match or not at_least(match.group(1), minimum):
            found.append("%s (kernel %s)" % ((node.get("metadata") or {}).get("name"), kernel))
    return found
