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
# ``k8s``: the Kubernetes minors Cilium tested that release with, first and last (its
# Documentation/network/kubernetes/compatibility.rst at the tested tag, l.24 "Kubernetes Versions" table).
MINORS = collections.OrderedDict([
    ("1.13", {"tested": "1.13.4", "k8s": ("1.16", "1.26")}),
    ("1.14", {"tested": "1.14.19", "k8s": ("1.19", "1.27")}),
    ("1.15", {"tested": "1.15.19", "k8s": ("1.26", "1.29")}),
    ("1.16", {"tested": "1.16.19", "k8s": ("1.27", "1.30")}),
    ("1.17", {"tested": "1.17.17", "k8s": ("1.29", "1.32")}),
    ("1.18", {"tested": "1.18.11", "k8s": ("1.30", "1.33")}),
    ("1.19", {"tested": "1.19.7", "k8s": ("1.32", "1.35")}),
    ("1.20", {"tested": "1.20.2", "k8s": ("1.33", "1.36")}),
])
K8S_SOURCE = "Documentation/network/kubernetes/compatibility.rst at v%s (Kubernetes versions Cilium is tested with)"
# The chart's agent DaemonSet: its pods are labelled k8s-app=cilium and the agent runs in the container
# cilium-agent (install/kubernetes/cilium/templates/cilium-agent/daemonset.yaml at v1.20.2 l.82 and l.110); its
# configuration is the ConfigMap cilium-config (templates/cilium-configmap.yaml l.97). The same in every minor of
# MINORS.
AGENT_LABEL = "k8s-app=cilium"
AGENT_CONTAINER = "cilium-agent"
CONFIG_MAP = "cilium-config"
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
    "aws_cni_endpoint_routes": Gate(
        None, "1.15", "aws-cni chaining sets endpointRoutes.enabled=true (the docs of 1.13/1.14 list it; 1.15+ do not, "
        "and Cilium's aws-cni CI never sets it)",
        "Documentation/installation/cni-chaining-aws-cni.rst at v1.13.4 l.68-72, at v1.14.19 l.70-74, without it at "
        "v1.15.19 l.70-73; github.com/cilium/cilium/pull/38381 ('docs: remove endpointRoutes for aws-cni chaining')"),
    "aws_cni_identity_mark_off": Gate(
        "1.15", None, "aws-cni chaining sets enableIdentityMark=false (the AWS VPC CNI may use skb->mark)",
        ".github/workflows/conformance-aws-cni.yaml at v1.15.19 l.197 and at v1.20.2 l.275 (--enable-identity-mark=false); "
        "github.com/cilium/cilium/pull/38738"),
    "masquerade_interface_list": Gate(
        "1.15", None, "egressMasqueradeInterfaces takes a space-separated list of patterns (one pattern before)",
        "pkg/option/config.go at v1.15.19 l.3093 (GetStringSlice) and at v1.14.19 l.3094 (GetString)"),
    "eni_egress_rule_migration": Gate(
        "1.20", None, "the agent rewrites the ENI endpoints' egress ip rules when masquerading is switched",
        "pkg/datapath/linux/routing/routing.go at v1.20.2 l.141-213 ('Cleaning up stale CIDR specific egress rules'; "
        "absent at v1.19.7)"),
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


def kubernetes_warning(version, kubernetes_version):
    """A warning when Kubernetes ``kubernetes_version`` (``"1.31"``) is outside what Cilium ``version`` was tested
    with (``MINORS`` ``k8s``); None inside it, or when either is unknown."""
    cilium, kubernetes = parse_version(version), parse_version(kubernetes_version)
    row = MINORS.get(cilium.minor_string) if cilium else None
    if not kubernetes or not row or not row.get("k8s"):
        return None
    low, high = row["k8s"]
    if at_least(kubernetes, low) and at_least(high, kubernetes.minor_string):
        return None
    return ("Kubernetes %s is outside the versions Cilium %s is tested with (%s-%s, %s): it may work, but neither "
            "Cilium nor this collection has tested it"
            % (kubernetes.minor_string, cilium.minor_string, low, high, K8S_SOURCE % row["tested"]))


# The cilium CLI releases and the Cilium minors each line supports: a connectivity test needs a CLI of a line that
# supports the installed minor. ``until``: the first CLI release outside the line. CLIs built from
# github.com/cilium/cilium's cilium-cli/ (versioned 1.x) descend from the last line.
CliLine = collections.namedtuple("CliLine", "since until cilium_since cilium_until newest source")
CLI_LINES = (
    CliLine("0.14.0", "0.15.0", "1.11", "1.14", "v0.14.8",
            "github.com/cilium/cilium-cli README.md at v0.15.0 ('v0.14.8 ... Cilium 1.11, 1.12, and 1.13')"),
    CliLine("0.15.0", "0.16.0", "1.14", None, "v0.15.23",
            "github.com/cilium/cilium-cli README.md at v0.15.22 ('Cilium 1.14 and newer') and at v0.16.0 "
            "('v0.15.22 ... Cilium 1.14')"),
    CliLine("0.16.0", "0.18.7", "1.15", None, "v0.18.6",
            "github.com/cilium/cilium-cli README.md at v0.16.0 and v0.18.6 ('Cilium 1.15 and newer')"),
    CliLine("0.18.7", None, "1.16", None, "v0.19.7",
            "github.com/cilium/cilium-cli README.md at v0.18.7 and v0.19.7 ('Cilium 1.16 and newer')"),
)


def cli_line(cli_version):
    """The ``CLI_LINES`` row of a cilium CLI version (``"v0.19.7"``, ``"v1.20.0-pre.1..."``); None when unknown."""
    version = parse_version(cli_version)
    if version is None:
        return None
    return next((line for line in reversed(CLI_LINES) if at_least(version, line.since)
                 and (line.until is None or not at_least(version, line.until))), None)


def _line_supports(line, version):
    return at_least(version, line.cilium_since) and (line.cilium_until is None
                                                     or not at_least(version, line.cilium_until))


def cli_for(version):
    """The newest ``CLI_LINES`` row that supports Cilium ``version``."""
    return next((line for line in reversed(CLI_LINES) if _line_supports(line, version)), None)


def cli_problem(cli_version, version):
    """Why cilium CLI ``cli_version`` should not test Cilium ``version``; None when its line supports it."""
    line, cilium = cli_line(cli_version), parse_version(version)
    if cilium is None or (line is not None and _line_supports(line, cilium)):
        return None
    wanted = cli_for(cilium)
    if line is None:
        supports = "no Cilium release this collection knows"
    else:
        supports = "Cilium %s %s" % (line.cilium_since, "and newer" if line.cilium_until is None
                                     else "up to the minor before %s" % line.cilium_until)
    return ("cilium CLI %s supports %s, not Cilium %s (%s): use cilium CLI %s" % (
        cli_version, supports, cilium.minor_string, (wanted or line).source,
        wanted.newest if wanted else "of a line that supports it"))


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


# ----------------------------------------------------------------------------------------- upgrades

UPGRADE_SOURCE = ("Documentation/operations/upgrade-warning.rst at v1.20.2 l.16-22 ('The only tested rollback and "
                  "upgrade path is between consecutive minor releases ... Always update to the latest patch release "
                  "of your current version before attempting an upgrade')")
ROLLBACK_SOURCE = "Documentation/operations/upgrade.rst at v1.20.2 l.223-253 ('Rolling Back')"


def upgrade_steps(installed, target):
    """``(steps, problem)``: the versions to install one after the other to go from the ``installed`` Cilium to
    ``target``: the tested patch of the installed minor first when it is older ("Always update to the latest patch
    release of your current version"), then ``target``; ``problem`` says why there is no such path.

    No step when nothing is installed (a first install is not an upgrade) or the version stays. A downgrade is
    refused, and so is a jump over minors (the guide upgrades one minor at a time; the collection does not step
    through the skipped minors itself: remaining work, see docs/running-on-real-eks.md).
    """
    have, want = parse_version(installed), parse_version(target)
    if have is None or have == want:
        return [], None
    if not at_least(want, str(have)):
        return [], ("Cilium %s is installed and %s is a downgrade, which this collection does not do: Cilium's "
                    "upgrade guide rolls back with `helm history` and `helm rollback <release> <revision>`, between "
                    "consecutive minors only (%s). Set the version to %s, or roll back with helm yourself"
                    % (have, want, ROLLBACK_SOURCE, have))
    if have.minor_string not in MINORS:
        return [], ("the installed Cilium %s is of a minor this collection does not know, so it cannot plan the "
                    "upgrade one minor at a time (%s): upgrade it to a supported minor with helm first"
                    % (have, UPGRADE_SOURCE))
    minors = list(MINORS)
    skipped = minors[minors.index(have.minor_string) + 1:minors.index(want.minor_string)]
    if skipped:
        return [], ("Cilium %s -> %s skips %s: Cilium only tests upgrades between consecutive minors (%s). Upgrade "
                    "one minor at a time, one run each: %s"
                    % (have, want, ", ".join(skipped), UPGRADE_SOURCE,
                       ", then ".join(MINORS[minor]["tested"] for minor in skipped + [want.minor_string])))
    patch_first = MINORS[have.minor_string]["tested"]
    if have.minor_string != want.minor_string and not at_least(str(have), patch_first):
        return [patch_first, str(want)], None
    return [str(want)], None


def upgrade_problem(installed, target):
    """Why a run should not upgrade the ``installed`` Cilium to ``target`` (one helm upgrade per run, to the next
    patch or the next minor from the installed minor's tested patch); None when it may."""
    steps, problem = upgrade_steps(installed, target)
    if problem or len(steps) < 2:
        return problem
    return ("Cilium %s -> %s: upgrade to %s first, the newest patch of %s this collection is tested with, then to "
            "%s (%s)" % (installed, target, steps[0], parse_version(installed).minor_string, target, UPGRADE_SOURCE))


# ------------------------------------------------------------------------------------------- egress

# How pods in ENI mode reach addresses outside the VPC. The chart keys of EGRESS_KEYS belong to this choice (the
# ``egress`` option); what each sets, what the agents then report (``masquerading``), and whether it needs the
# interfaces the masquerade rule matches.
Egress = collections.namedtuple("Egress", "values masquerading needs_interfaces summary source")
EGRESS = collections.OrderedDict([
    ("vpc", Egress(
        {"enableIPv4Masquerade": False}, "disabled", False,
        "no masquerading: pods leave through their own ENI with their VPC address, so the node subnets' route to "
        "the Internet must be a NAT gateway (private subnets)",
        "Cilium's EKS CI at v1.20.2: .github/actions/setup-eks-nodegroup/action.yml l.75,87 (privateNetworking: "
        "true), no masquerade values by default (.github/workflows/conformance-eks.yaml); without masquerading every "
        "destination uses the ENI's table: pkg/datapath/linux/routing/routing.go at v1.20.2 l.198-206")),
    ("iptables-masquerade", Egress(
        {"enableIPv4Masquerade": True, "bpf": {"masquerade": False}}, "iptables", True,
        "iptables masquerades traffic to destinations outside the VPC that leaves through the interfaces of "
        "egressMasqueradeInterfaces, to the node's address (public subnets)",
        "Documentation/installation/k8s-install-helm.rst at v1.17.17 l.120-172 (EKS tab: "
        "egressMasqueradeInterfaces, 'Amazon Linux 2 uses eth+, whereas Amazon Linux 2023 uses ens+'; traffic to "
        "the VPC is never masqueraded); pkg/datapath/iptables/iptables.go at v1.20.2 l.449-452")),
    ("bpf-masquerade", Egress(
        {"enableIPv4Masquerade": True, "bpf": {"masquerade": True}}, "bpf", False,
        "BPF masquerading on the devices BPF NodePort uses (needs kube-proxy replacement); keeps BPF host routing",
        ".github/workflows/conformance-eks.yaml at v1.20.2 l.375-379 (bpf-masq-v4: bpf.masquerade=true "
        "enableIPv4Masquerade=true); Documentation/network/concepts/masquerading.rst at v1.20.2 l.81-92")),
])
EGRESS_KEYS = ("enableIPv4Masquerade", "bpf.masquerade", "egressMasqueradeInterfaces")
DEFAULT_EGRESS = "vpc"

_TRUE_WORDS = ("true", "yes", "on", "1")


def _truthy(value):
    return value is True or str(value).strip().lower() in _TRUE_WORDS


def kube_proxy_replacement_on(values):
    """Do these values turn kube-proxy replacement on (``true``, or ``strict`` before 1.14)?"""
    return str(get_path(values or {}, "kubeProxyReplacement", "")).strip().lower() in ("true", "strict")


def default_ipv4_masquerade(mode, version=None, upgrade_compatibility=None):
    """The chart's ``enableIPv4Masquerade`` default: true, but false in ENI mode from 1.18 unless
    ``upgradeCompatibility`` pins an earlier minor (install/kubernetes/cilium/templates/cilium-configmap.yaml at
    v1.20.2 l.55-60; Documentation/operations/upgrade.rst at v1.18.11 l.315-318)."""
    pinned = upgrade_compatibility or version or DEFAULT_VERSION
    return not (mode == "eni" and at_least(pinned, "1.18"))


def masquerading(values, mode, version=None):
    """What the agents run with these Helm values: ``disabled``, ``iptables`` or ``bpf`` (IPv4 masquerading)."""
    values = values or {}
    enabled = get_path(values, "enableIPv4Masquerade")
    if enabled is None:
        enabled = default_ipv4_masquerade(mode, version, get_path(values, "upgradeCompatibility"))
    if not _truthy(enabled):
        return "disabled"
    return "bpf" if _truthy(get_path(values, "bpf.masquerade", False)) else "iptables"


def egress_of(values, mode, version=None):
    """The ``EGRESS`` choice these values make, or None when they make none of them (masquerading that matches
    nothing: iptables without interfaces)."""
    found = masquerading(values, mode, version)
    interfaces = get_path(values or {}, "egressMasqueradeInterfaces")
    if found == "iptables" and not interfaces:
        return None
    return next(name for name, row in EGRESS.items() if row.masquerading == found)


# Node OS -> the interface pattern its primary NICs match: what cilium-cli detects (status.nodeInfo.osImage,
# vendor/github.com/cilium/cilium/cilium-cli/install/aws.go at cilium-cli v0.16.21 l.80-110, 'AMAZON LINUX 2023'
# checked before 'AMAZON LINUX 2') and uses (install/helm.go l.67-72 there: ens+ on AL2023, eth+ otherwise).
NODE_OS_INTERFACES = (("AMAZON LINUX 2023", "ens+"), ("AMAZON LINUX 2", "eth+"))


def masquerade_interfaces_for(nodes, version):
    """``(pattern, problem)``: the egressMasqueradeInterfaces value that matches the primary NIC of every node (by
    its OS image), or None and why it cannot be told."""
    if not nodes:
        return None, "the cluster has no nodes yet to read their OS from"
    found, unknown = set(), []
    for node in nodes:
        image = str(((node.get("status") or {}).get("nodeInfo") or {}).get("osImage") or "")
        pattern = next((p for prefix, p in NODE_OS_INTERFACES if prefix in image.upper()), None)
        if pattern is None:
            unknown.append("%s (%s)" % ((node.get("metadata") or {}).get("name"), image or "no OS image"))
        found.add(pattern)
    if unknown:
        return None, "the interface names of nodes %s are not known to this collection" % ", ".join(unknown)
    if len(found) > 1 and not has("masquerade_interface_list", version):
        return None, ("the nodes mix Amazon Linux 2 (eth+) and 2023 (ens+), and Cilium %s takes one pattern only"
                      % parse_version(version).minor_string)
    return " ".join(sorted(found, reverse=True)), None


def public_nodes(nodes):
    """Names of the nodes with an ExternalIP address (their subnet routes to an internet gateway)."""
    return sorted((node.get("metadata") or {}).get("name") for node in nodes or []
                  if any(a.get("type") == "ExternalIP" for a in (node.get("status") or {}).get("addresses") or []))


def egress_node_problem(values, mode, version, nodes):
    """Why ENI-mode pods of these values could not reach the Internet from these nodes, or None: no masquerading
    while nodes have public IPs. An EKS node in a public subnet reports its public IP as ExternalIP (the blog's
    connectivity test pings them: 54.x addresses), and such a subnet routes to an internet gateway, which does not
    translate the pods' private VPC addresses (Cilium's EKS CI puts its nodes in private subnets instead:
    .github/actions/setup-eks-nodegroup/action.yml at v1.20.2 l.75,87)."""
    if mode != "eni" or masquerading(values, mode, version) != "disabled":
        return None
    public = public_nodes(nodes)
    if not public:
        return None
    return ("leaves pods with their own VPC addresses (no masquerading), but node(s) %s have public IPs, so they sit "
            "in public subnets whose default route is an internet gateway: pods there cannot reach the Internet. Put "
            "the node groups in private subnets behind a NAT gateway (eks_cluster_node_subnets: private), or "
            "masquerade (egress iptables-masquerade with the interfaces, or bpf-masquerade with kube-proxy "
            "replacement)" % ", ".join(public))


# -------------------------------------------------------------------------------------------- modes

MODES = collections.OrderedDict([
    ("eni", {
        "title": "ENI",
        "summary": "Cilium owns IPAM through AWS ENIs; the AWS VPC CNI (aws-node) is evicted",
        "values": {"eni": {"enabled": True}, "ipam": {"mode": "eni"}},
        "native_routing": True,
        # Values that depend on the minor: gate -> values, merged while the gate is open.
        "gated_values": {},
        # Keys extra values may not change (switch mode or use the dedicated option).
        "owned_keys": ("eni.enabled", "ipam.mode", "routingMode", "tunnel", "cni.chainingMode"),
        # The egress choices the mode offers (EGRESS keys) and its default; empty: the mode decides egress itself.
        "egress": tuple(EGRESS),
        "default_egress": DEFAULT_EGRESS,
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
        # ipam.mode written out, as Cilium's aws-cni CI does ("Set ipam.mode=cluster-pool to overwrite the ipam value
        # set by the cilium-cli": .github/workflows/conformance-aws-cni.yaml at v1.20.2 l.263-271).
        "values": {"cni": {"chainingMode": "aws-cni", "exclusive": False}, "enableIPv4Masquerade": False,
                   "ipam": {"mode": "cluster-pool"}},
        "native_routing": True,
        "gated_values": {"aws_cni_endpoint_routes": {"endpointRoutes": {"enabled": True}},
                         "aws_cni_identity_mark_off": {"enableIdentityMark": False}},
        "owned_keys": ("cni.chainingMode", "cni.exclusive", "enableIPv4Masquerade", "bpf.masquerade", "routingMode",
                       "tunnel", "endpointRoutes.enabled", "enableIdentityMark", "eni.enabled", "ipam.mode"),
        # The AWS VPC CNI SNATs pod traffic leaving the VPC: no egress choice here.
        "egress": (),
        "default_egress": None,
        "expect": {"chaining_mode": "aws-cni", "routing_mode": "native"},
        "requires": {},
        "signature": (("cni.chainingMode", "aws-cni"),),
        "precedence": 0,
        "evicts_aws_node": False,
        "source": "Documentation/installation/cni-chaining-aws-cni.rst at v1.20.2 l.66-71 (cni.chainingMode=aws-cni, "
                  "cni.exclusive=false, enableIPv4Masquerade=false, routingMode=native); endpointRoutes and "
                  "enableIdentityMark per minor: the gates aws_cni_endpoint_routes and aws_cni_identity_mark_off",
    }),
])


def profile(mode, name="mode"):
    """The ``MODES`` profile of ``mode``; ``ValidationError`` naming ``name`` for an unknown mode."""
    if mode not in MODES:
        raise ValidationError(name, "unknown mode", value=mode, accepted=list(MODES))
    return MODES[mode]


def expect(mode, kube_proxy_replacement_enabled=None, egress=None):
    """What the agents report in ``mode`` (``cilium_status`` ``expect``), plus kube-proxy replacement and the
    masquerading of an ``EGRESS`` choice when given."""
    facts = dict(profile(mode)["expect"])
    if kube_proxy_replacement_enabled is not None:
        facts["kube_proxy_replacement"] = bool(kube_proxy_replacement_enabled)
    if egress:
        facts["masquerading"] = EGRESS[egress].masquerading
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

# A rule's ``when(value, values, mode, version)`` sees the value at its key, the whole values, the mode and the
# version (None: not known; defaults that depend on it are the newest minor's).


def _is_set(value, *_context):
    return value not in (None, False, "")


def _drops_policy_traffic(cluster_id, *_context):
    return isinstance(cluster_id, int) and (128 <= cluster_id <= 255 or 384 <= cluster_id <= 511)


def _bbr_for_pods(values):
    return _truthy(get_path(values, "bandwidthManager.bbr", False)) and not _truthy(
        get_path(values, "bandwidthManager.bbrHostNamespaceOnly", False))


def _masquerades_nothing(enabled, values, mode, version):
    # Only when set: an installed release of an older collection left it to the chart (checked by the egress
    # option, cilium_values.egress_values), and another role's check (bandwidth_manager) must not refuse it.
    return enabled is not None and masquerading(values, mode, version) == "iptables" \
        and not get_path(values, "egressMasqueradeInterfaces")


def _interfaces_unused(interfaces, values, mode, version):
    return bool(interfaces) and masquerading(values, mode, version) == "disabled"


def _interfaces_with_bpf_masquerade(interfaces, values, mode, version):
    return bool(interfaces) and masquerading(values, mode, version) == "bpf"


def _bpf_masquerade_without_kpr(_value, values, mode, version):
    return masquerading(values, mode, version) == "bpf" and not kube_proxy_replacement_on(values)


def _interface_list(interfaces, *_context):
    return len(str(interfaces or "").split()) > 1


def _bbr_without_bpf_host_routing(_value, values, mode, version):
    return _bbr_for_pods(values) and (not kube_proxy_replacement_on(values)
                                      or masquerading(values, mode, version) == "iptables")


def _bbr_for_pods_rule(_value, values, *_context):
    return _bbr_for_pods(values)


def _bbr_for_pods_on_1_13(_value, values, _mode, version):
    # Only on a known 1.13: an unknown version is the newest (cilium_values' default), not any version.
    return version is not None and not at_least(version, "1.14") and _bbr_for_pods(values)


_BBR_HOST_ONLY = ("or BBR for host-network pods only (bandwidthManager.bbrHostNamespaceOnly, Cilium 1.18+; "
                  "bandwidth_manager_bbr_host_namespace_only)")

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
    # --- egress in ENI mode (docs/running-on-real-eks.md, "Pod egress")
    Rule("masquerading-needs-interfaces", "enableIPv4Masquerade", ("eni",), None, None, _masquerades_nothing,
         "iptables masquerading in ENI mode needs egressMasqueradeInterfaces (ens+ on Amazon Linux 2023, eth+ on "
         "Amazon Linux 2): without it Cilium 1.19+ agents panic ('Egress masquerading interfaces cannot be empty "
         "when IP masquerading is enabled with IPAM mode other than ClusterPool or Kubernetes') and 1.13-1.18 "
         "agents masquerade nothing (their rule matches an autogenerated range no ENI pod uses). Choose an egress: "
         "vpc (private node subnets), iptables-masquerade with the interfaces, or bpf-masquerade",
         "pkg/datapath/iptables/iptables.go at v1.19.7 l.384-387 and at v1.20.2 l.449-452 (the panic); at v1.13.4 "
         "l.1137-1146 (-s <allocRange> without interfaces); github.com/cilium/cilium/issues/22273"),
    Rule("masquerade-interfaces-without-masquerading", "egressMasqueradeInterfaces", ("eni",), None, None,
         _interfaces_unused,
         "has no effect: masquerading is off (enableIPv4Masquerade=false, the chart's default in ENI mode from "
         "1.18), so the interfaces are never read. Use egress iptables-masquerade to masquerade, or leave them unset",
         "pkg/datapath/iptables/iptables.go at v1.20.2 l.1506-1547 (read only when masquerading); "
         "Documentation/operations/upgrade.rst at v1.18.11 l.315-318"),
    Rule("bpf-masquerade-with-interfaces", "egressMasqueradeInterfaces", None, None, None,
         _interfaces_with_bpf_masquerade,
         "cannot be used with BPF masquerading: Cilium 1.15+ agents refuse to start ('BPF masquerade does not allow "
         "to specify devices via --egress-masquerade-interfaces'), 1.13/1.14 silently fall back to iptables "
         "masquerading and legacy host routing",
         "daemon/cmd/daemon.go at v1.17.17 l.660-662 and at v1.20.2 l.104-106; at v1.13.4 l.991-1009"),
    Rule("bpf-masquerade-needs-kube-proxy-replacement", "bpf.masquerade", None, None, None,
         _bpf_masquerade_without_kpr,
         "BPF masquerading depends on BPF NodePort, i.e. kube-proxy replacement: turn kube-proxy replacement on, or "
         "masquerade with iptables",
         "Documentation/network/concepts/masquerading.rst at v1.20.2 l.88-89; daemon/cmd/daemon.go at v1.17.17 "
         "l.658 ('BPF masquerade requires NodePort')"),
    Rule("masquerade-interface-list-before-1-15", "egressMasqueradeInterfaces", None, None, "1.15", _interface_list,
         "Cilium 1.13 and 1.14 read one interface pattern (a list such as 'eth+ ens+' goes to iptables as one "
         "name and matches nothing): give one pattern, and nodes of one OS family",
         "pkg/option/config.go at v1.14.19 l.3094 (GetString) and at v1.15.19 l.3093 (GetStringSlice)"),
    # --- BBR (docs/running-on-real-eks.md, "BBR")
    Rule("bbr-needs-bpf-host-routing", "bandwidthManager.bbr", ("eni",), "1.14", None, _bbr_without_bpf_host_routing,
         "BBR for pods needs BPF host routing, which the agent runs only with kube-proxy replacement on and without "
         "iptables masquerading. Otherwise it falls back to legacy host routing, where BBR does not reach pods, and "
         "nothing warns: the 1.20.2 agent starts and reports 'EDT with BPF [BBR]' all the same (its bandwidth manager "
         "is set up before the fall-back). Turn kube-proxy replacement on with egress vpc or bpf-masquerade, "
         + _BBR_HOST_ONLY,
         "test_real_cilium.py test_bbr_and_host_routing_as_the_real_agent_treats_them (real 1.20.2 agent); "
         "pkg/datapath/linux/bandwidth/bandwidth.go at v1.20.2 l.227-231 (at v1.17.17 l.151-155); "
         "pkg/kpr/initializer/kube_proxy_replacement.go at v1.20.2 l.45-59 (daemon/cmd/kube_proxy_replacement.go "
         "at v1.17.17 l.351-372); Documentation/network/kubernetes/bandwidth-manager.rst at v1.20.2 l.248-252"),
    Rule("bbr-eni-1-13-legacy-routing", "bandwidthManager.bbr", ("eni",), None, None, _bbr_for_pods_on_1_13,
         "Cilium 1.13 in ENI mode always runs legacy host routing (the chart sets enable-endpoint-routes), so its "
         "agents refuse BBR: upgrade Cilium (1.14+ with kube-proxy replacement) or keep BBR off",
         "daemon/cmd/kube_proxy_replacement.go at v1.13.4 l.453-454; install/kubernetes/cilium/templates/"
         "cilium-configmap.yaml at v1.13.4 l.415-416; pkg/bandwidth/bandwidth.go at v1.13.4 l.167-168"),
    Rule("bbr-in-chaining", "bandwidthManager.bbr", ("chaining",), None, None, _bbr_for_pods_rule,
         "the Cilium agent refuses to start with BBR in CNI chaining mode, which always runs legacy host routing: "
         "keep BBR off (the Bandwidth Manager itself works in chaining mode, with CUBIC) " + _BBR_HOST_ONLY,
         "pkg/datapath/linux/bandwidth/bandwidth.go at v1.20.2 l.227-231 (BBR needs BPF host routing unless "
         "bbrHostNamespaceOnly); install/kubernetes/cilium/templates/cilium-configmap.yaml at v1.20.2 l.417-423 "
         "(enable-host-legacy-routing with any chaining mode); Documentation/network/kubernetes/bandwidth-manager.rst "
         "at v1.20.2 l.275-278"),
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
            and rule.when(get_path(values or {}, rule.key), values or {}, mode, version)]


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
