# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Pure parsers of what Cilium prints: agent ``status`` (JSON and text) and ``cilium connectivity test`` reports.

No I/O and no Ansible import: every function takes text or plain data and returns plain data, so they
are tested on recorded real outputs (``tests/recordings/cilium``).

Normalized agent status (``parse_status_json`` and ``parse_status_text`` return the same keys)::

    {"state": "Ok", "message": "1.18.4 (v1.18.4-afda2aa9)", "version": "1.18.4",
     "components": {"kubernetes": "Ok", "kvstore": "Disabled", ...},
     "chaining_mode": "none", "kube_proxy_replacement_mode": "True", "kube_proxy_replacement": True,
     "routing_mode": "native" | "tunnel" | None, "tunnel_protocol": "vxlan" | None, "host_routing": "BPF",
     "masquerading": "disabled" | "iptables" | "bpf" | None (IPv4; None: the agent did not say),
     "bandwidth_manager": {"enabled": True, "congestion_control": "bbr", "devices": ["eth0"]},
     "ipam": "IPv4: 2/254 allocated from 10.100.1.0/24,",
     "controllers": {"healthy": 16, "total": 16, "failing": []} | None,
     "modules": {"stopped": 11, "degraded": 0, "ok": 77} | None,
     "cluster_health": {"reachable": 3, "total": 3} | None}
"""

from __future__ import annotations

import fnmatch
import json
import re

_BAD_STATES = ("Failure", "Warning")
# Components of the agent's status whose Warning/Failure makes the agent unhealthy (the others only warn).
CRITICAL_COMPONENTS = ("kubernetes", "kvstore", "container-runtime", "cni-file", "cilium-health")

# The blog's failing pod-to-host pings target the nodes' PUBLIC addresses (54.x): the CLI pings every address of
# node.Status.Addresses (connectivity/tests/host.go at cilium-cli v0.14.6 l.37-47; from v0.15 it names the action
# ping-ipv4-external-ip: host.go l.38-62 of the CLI vendored in cilium v1.20.0-pre.1.0.20260419120955-62bccdec3fb9) and
# curls NodePorts on every one of them (service.go curlNodePort, l.223-263 there). Such a packet leaves through the
# internet gateway and comes back from the other node's public IP, which rules referencing the node security group
# (they match private addresses only: Amazon VPC User Guide, "Security group rules") or the VPC CIDR do not match.
# The collection's answer is eks_cluster_open_nodeport_icmp with the source node_public_ips (module
# eks_nodeport_access). In ENI mode without masquerading (cilium_eni_egress: vpc, and the 1.18+ chart default) pods
# leave with their own private VPC address, which an internet gateway does not translate, so they cannot reach a
# public IP at all in public subnets: docs/running-on-real-eks.md, "Pod egress in ENI mode" and "Security group".
SECURITY_GROUP_HINT = (
    "pods reach the nodes' public IPs (%s) through the internet gateway, so these packets arrive from the other "
    "node's public IP, which the node security group does not allow (its rules and the VPC CIDR cover private "
    "addresses only): allow ICMP and NodePorts 30000-32767 from the nodes' public IPs (eks_cluster_open_nodeport_icmp: "
    "true, eks_cluster_nodeport_icmp_source: node_public_ips, or the module eks_nodeport_access), or put the nodes in "
    "private subnets (eks_cluster_node_subnets: private), where the test has no public address to reach. In ENI mode "
    "without masquerading (cilium_eni_egress: vpc; the default of Cilium 1.18+ in ENI mode) pods cannot reach public "
    "IPs from public subnets at all: there, masquerade (cilium_eni_egress: iptables-masquerade or bpf-masquerade)"
)


# -------------------------------------------------------------------------------------- agent status


def _empty_status():
    return {
        "state": None, "message": None, "version": None, "components": {},
        "chaining_mode": None, "kube_proxy_replacement_mode": None, "kube_proxy_replacement": None,
        "routing_mode": None, "tunnel_protocol": None, "host_routing": None, "masquerading": None,
        "bandwidth_manager": {"enabled": None, "congestion_control": None, "devices": []},
        "ipam": None, "controllers": None, "modules": None, "cluster_health": None,
    }


def kpr_enabled(mode):
    """``True``/``Strict``/``Partial``/``Probe`` -> True; ``False``/``Disabled`` -> False; None stays None."""
    if mode is None:
        return None
    return str(mode).strip().lower() not in ("false", "disabled", "")


def _version_of_message(message):
    # "1.18.4 (v1.18.4-afda2aa9)"
    match = re.match(r"^\s*v?(\d+\.\d+\.\d+\S*)", message or "")
    return match.group(1) if match else None


def parse_status_json(text):
    """Normalize ``cilium-dbg status -o json`` (the StatusResponse model). Raises ``ValueError`` if not JSON."""
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("agent status JSON is not an object")
    out = _empty_status()
    cilium = data.get("cilium") or {}
    out["state"] = cilium.get("state")
    out["message"] = cilium.get("msg")
    out["version"] = _version_of_message(cilium.get("msg"))
    for key in ("kubernetes", "kvstore", "container-runtime", "cni-file", "hubble", "proxy"):
        value = data.get(key)
        if isinstance(value, dict) and value.get("state"):
            out["components"][key] = value["state"]
    health = (data.get("cluster") or {}).get("ciliumHealth") or {}
    if health.get("state"):
        out["components"]["cilium-health"] = health["state"]
    out["chaining_mode"] = (data.get("cni-chaining") or {}).get("mode")
    kpr = data.get("kube-proxy-replacement") or {}
    out["kube_proxy_replacement_mode"] = kpr.get("mode")
    out["kube_proxy_replacement"] = kpr_enabled(kpr.get("mode"))
    routing = data.get("routing")
    if isinstance(routing, dict) and routing:
        inter = routing.get("inter-host-routing-mode")
        out["routing_mode"] = inter.lower() if inter else None
        out["tunnel_protocol"] = routing.get("tunnel-protocol") if out["routing_mode"] == "tunnel" else None
        out["host_routing"] = routing.get("intra-host-routing-mode")
    else:
        out["host_routing"] = (data.get("host-routing") or {}).get("mode")
    out["masquerading"] = _masquerading_json(data.get("masquerading"))
    bwm = data.get("bandwidth-manager") or {}
    out["bandwidth_manager"] = {
        "enabled": bool(bwm.get("enabled")),
        "congestion_control": (bwm.get("congestionControl") or "").lower() or None if bwm.get("enabled") else None,
        "devices": list(bwm.get("devices") or []) if bwm.get("enabled") else [],
    }
    out["ipam"] = ((data.get("ipam") or {}).get("status") or "").strip() or None
    controllers = data.get("controllers")
    if isinstance(controllers, list):
        failing = sorted(c.get("name", "?") for c in controllers
                         if ((c.get("status") or {}).get("consecutive-failure-count") or 0) > 0)
        out["controllers"] = {"healthy": len(controllers) - len(failing), "total": len(controllers),
                              "failing": failing}
    nodes = (data.get("cluster") or {}).get("nodes")
    if isinstance(nodes, list) and nodes:
        reachable = sum(1 for n in nodes if _node_reachable(n))
        out["cluster_health"] = {"reachable": reachable, "total": len(nodes)}
    return out


def _masquerading_json(masq):
    """IPv4 masquerading of the status JSON (api/v1/models/masquerading.go at v1.20.2: ``enabled``, ``mode`` BPF or
    iptables, ``enabledProtocols.ipv4``); pkg/client/client.go at v1.20.2 l.535-579 prints it the same way."""
    if not isinstance(masq, dict):
        return None
    protocols = masq.get("enabledProtocols")
    ipv4 = masq.get("enabled") if protocols is None else (protocols or {}).get("ipv4")
    if not ipv4:
        return "disabled"
    return "bpf" if str(masq.get("mode") or "").upper() == "BPF" else "iptables"


def _node_reachable(node):
    health = node.get("primary-address") or {}
    icmp = (health.get("icmp") or {}).get("status", "")
    http = (health.get("http") or {}).get("status", "")
    return not icmp and not http


_KEY_RE = re.compile(r"^([A-Za-z][A-Za-z0-9 /._-]*?):\s+(.*?)\s*$")


def _text_fields(text):
    """Top-level ``Key:   value`` lines of the text status (indented detail lines are skipped)."""
    fields = {}
    for line in (text or "").splitlines():
        if not line or line[0].isspace():
            continue
        match = _KEY_RE.match(line)
        if match and match.group(1) not in fields:
            fields[match.group(1)] = match.group(2)
    return fields


def _first_word(value):
    return (value or "").split()[0] if (value or "").split() else None


def _bracketed(value):
    return re.findall(r"\[([^\]]*)\]", value or "")


def parse_status_text(text):
    """Normalize the text ``cilium status`` / ``cilium-dbg status`` (any version from 1.13). Raises ``ValueError``
    when the text has no ``Cilium:`` line (not a status output)."""
    fields = _text_fields(text)
    if "Cilium" not in fields:
        raise ValueError("no `Cilium:` line in the agent status text")
    out = _empty_status()
    cilium = fields["Cilium"]
    out["state"] = _first_word(cilium)
    out["message"] = cilium[len(out["state"]):].strip() if out["state"] else cilium
    out["version"] = _version_of_message(out["message"])
    for key, component in (("Kubernetes", "kubernetes"), ("KVStore", "kvstore"),
                           ("ContainerRuntime", "container-runtime"), ("Cilium health daemon", "cilium-health"),
                           ("Hubble", "hubble")):
        if key in fields:
            out["components"][component] = _first_word(fields[key])
    out["chaining_mode"] = fields.get("CNI Chaining")
    kpr = fields.get("KubeProxyReplacement")
    out["kube_proxy_replacement_mode"] = _first_word(kpr)
    out["kube_proxy_replacement"] = kpr_enabled(out["kube_proxy_replacement_mode"])
    routing = fields.get("Routing")
    if routing and routing.startswith("Network:"):  # 1.16+: "Network: Tunnel [vxlan]   Host: Legacy"
        match = re.match(r"^Network:\s+(\w+)(?:\s+\[(\w+)\])?\s+Host:\s+(\w+)", routing)
        if match:
            out["routing_mode"] = match.group(1).lower()
            out["tunnel_protocol"] = match.group(2) if out["routing_mode"] == "tunnel" else None
            out["host_routing"] = match.group(3)
    else:
        out["host_routing"] = _first_word(fields.get("Host Routing") or routing)
    out["masquerading"] = _masquerading_text(fields.get("Masquerading"))
    bwm = fields.get("BandwidthManager")
    if bwm is not None:
        if bwm.startswith("EDT"):  # "EDT with BPF [BBR] [eth0, eth1]"
            groups = _bracketed(bwm)
            out["bandwidth_manager"] = {
                "enabled": True,
                "congestion_control": groups[0].strip().lower() if groups else None,
                "devices": [d.strip() for d in groups[1].split(",") if d.strip()] if len(groups) > 1 else [],
            }
        else:
            out["bandwidth_manager"] = {"enabled": False, "congestion_control": None, "devices": []}
    out["ipam"] = fields.get("IPAM")
    match = re.match(r"^(\d+)/(\d+) healthy", fields.get("Controller Status", ""))
    if match:
        healthy, total = int(match.group(1)), int(match.group(2))
        out["controllers"] = {"healthy": healthy, "total": total, "failing": _failing_controllers(text)}
    match = re.search(r"Stopped\((\d+)\)\s+Degraded\((\d+)\)\s+OK\((\d+)\)", fields.get("Modules Health", ""))
    if match:
        out["modules"] = {"stopped": int(match.group(1)), "degraded": int(match.group(2)), "ok": int(match.group(3))}
    match = re.match(r"^(\d+)/(\d+) reachable", fields.get("Cluster health", ""))
    if match:
        out["cluster_health"] = {"reachable": int(match.group(1)), "total": int(match.group(2))}
    return out


def _masquerading_text(value):
    """``IPTables [IPv4: Enabled, IPv6: Disabled]``, ``BPF   [eth0]   10.0.0.0/16 [IPv4: Enabled, ...]``,
    ``Disabled`` (pkg/client/client.go at v1.20.2 l.535-579) -> ``iptables``, ``bpf``, ``disabled``."""
    if not value:
        return None
    word = (_first_word(value) or "").lower()
    if word == "disabled" or ("[IPv4" in value and "IPv4: Enabled" not in value):
        return "disabled"
    return word if word in ("bpf", "iptables") else None


def _failing_controllers(text):
    """Names of controllers whose ``Count`` (consecutive failures) is not 0 in a ``--verbose`` table."""
    failing, in_table = [], False
    for line in (text or "").splitlines():
        if line.startswith("Controller Status:"):
            in_table = True
            continue
        if in_table:
            if not line.startswith("  "):
                break
            cols = re.split(r"\s{2,}", line.strip())
            if cols[0] == "Name" or len(cols) < 5:
                continue
            if cols[3].isdigit() and int(cols[3]) > 0:
                failing.append(cols[0])
    return sorted(failing)


def parse_agent_status(stdout, prefer_json=True):
    """(normalized status, ``"json"`` | ``"text"``): JSON first, then the text form; ``ValueError`` if neither."""
    errors = []
    if prefer_json:
        try:
            return parse_status_json(stdout), "json"
        except ValueError as exc:
            errors.append("not JSON (%s)" % exc)
    try:
        return parse_status_text(stdout), "text"
    except ValueError as exc:
        errors.append(str(exc))
    raise ValueError("; ".join(errors))


def status_problems(status):
    """(problems, warnings) of one agent's normalized status: problems make the agent unhealthy."""
    problems, warnings = [], []
    if status.get("state") != "Ok":
        detail = (" (%s)" % status["message"]) if status.get("message") and status.get("state") != "Ok" else ""
        problems.append("agent state is %s%s" % (status.get("state") or "unknown", detail))
    for component, state in sorted((status.get("components") or {}).items()):
        if state in _BAD_STATES:
            (problems if component in CRITICAL_COMPONENTS else warnings).append("%s is %s" % (component, state))
    controllers = status.get("controllers")
    if controllers and controllers["healthy"] < controllers["total"]:
        names = ": %s" % ", ".join(controllers["failing"]) if controllers.get("failing") else ""
        problems.append("%d/%d controllers failing%s" % (controllers["total"] - controllers["healthy"],
                                                         controllers["total"], names))
    modules = status.get("modules")
    if modules and modules["degraded"]:
        warnings.append("%d modules degraded" % modules["degraded"])
    health = status.get("cluster_health")
    if health and health["reachable"] < health["total"]:
        warnings.append("cluster health: %d/%d nodes reachable" % (health["reachable"], health["total"]))
    return problems, warnings


# ------------------------------------------------------------------------------- the CLI's cilium status

# The Cilium CLI's own report (cilium-cli/status/status.go l.70-143 of the CLI pinned as versions.CILIUM_CLI, cilium
# v1.20.0-pre.1.0.20260419120955-62bccdec3fb9; recorded: tests/recordings/cilium/1.20.2/cli-status.json): per component
# (the agent DaemonSet ``cilium``, ``cilium-operator``, ``cilium-envoy``, ``hubble-relay``, ``clustermesh-apiserver``)
# the pod counts (``pod_state``: Desired/Ready/Available/Unavailable) and the errors and warnings it found in their
# pods (``errors``: component -> pod -> ``{"Errors": [...], "Warnings": [...], "Disabled": bool}``), the pods it
# counts as managed by Cilium (``pods_count``) and the chart version.


def _cli_component(state=None):
    state = state or {}
    return {"type": state.get("Type"), "desired": state.get("Desired", 0), "ready": state.get("Ready", 0),
            "available": state.get("Available", 0), "unavailable": state.get("Unavailable", 0), "summary": "OK",
            "errors": [], "warnings": []}


def _cli_summary(component, disabled=False):
    parts = ["%d errors" % len(component["errors"])] if component["errors"] else []
    parts += ["%d warnings" % len(component["warnings"])] if component["warnings"] else []
    parts += ["disabled"] if disabled else []
    return ", ".join(parts) or "OK"


def parse_cli_status_json(text):
    """``cilium status -o json`` of the CLI -> ``{"components": {name: {type, desired, ready, available,
    unavailable, summary, errors, warnings}}, "pods": {"all", "by_cilium"}, "helm_chart_version",
    "config_errors"}``; each error and warning is ``"<pod>: <message>"``. ``ValueError`` when it is not that JSON."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ValueError("not the JSON of `cilium status -o json`: %s" % exc) from exc
    if not isinstance(data, dict):
        raise ValueError("not the JSON of `cilium status -o json`: %s" % type(data).__name__)
    components = {name: _cli_component(state) for name, state in (data.get("pod_state") or {}).items()}
    for name, pods in (data.get("errors") or {}).items():
        component = components.setdefault(name, _cli_component())
        disabled = False
        for pod, found in sorted((pods or {}).items()):
            found = found or {}
            component["errors"] += ["%s: %s" % (pod, e) for e in found.get("Errors") or []]
            component["warnings"] += ["%s: %s" % (pod, w) for w in found.get("Warnings") or []]
            disabled = disabled or bool(found.get("Disabled"))
        component["summary"] = _cli_summary(component, disabled)
    pods = data.get("pods_count") or {}
    return {"components": components, "pods": {"all": pods.get("all", 0), "by_cilium": pods.get("by_cilium", 0)},
            "helm_chart_version": data.get("helm_chart_version"), "config_errors": data.get("config_errors") or []}


# ------------------------------------------------------------------------------------ agent crash logs

# What a crashing agent's last lines say about why, most telling first:
# - the Go runtime's ``panic: <value>`` (runtime/panic.go ``printpanics``; ``[recovered]`` when re-panicked) and
#   ``fatal error: <what>`` (runtime.throw), printed before the goroutine dump that fills the log's tail;
# - Cilium's own fatal and panic log lines: ``logging.Fatal``/``logging.Panic`` log at the levels it prints as
#   ``level=fatal``/``level=panic`` (pkg/logging/slog.go at v1.20.2, ``replaceAttrFn``; logrus before 1.17 wrote
#   the same words), then exit;
# - the last ``level=error`` line (e.g. a failed start hook: ``msg="Start hook failed"``).
_CRASH_PATTERNS = (
    re.compile(r"^panic: "),
    re.compile(r"^fatal error: "),
    re.compile(r"\blevel=(?:fatal|panic)\b", re.IGNORECASE),
    re.compile(r"\blevel=error\b", re.IGNORECASE),
)


def crash_reason(log_text):
    """The line of a crashed agent's log (its termination message or ``logs --previous``) that says why it
    stopped (see ``_CRASH_PATTERNS``), else its last non-empty line; None for an empty log."""
    lines = [line.strip() for line in (log_text or "").splitlines() if line.strip()]
    for pattern in _CRASH_PATTERNS:
        found = [line for line in lines if pattern.search(line)]
        if found:
            return found[-1] if pattern.pattern != "^panic: " else found[0]
    return lines[-1] if lines else None


def crash_reason_found(log_text):
    """Does the text hold a line that says why (not only the last line of a stack dump)?"""
    lines = (log_text or "").splitlines()
    return any(pattern.search(line.strip()) for pattern in _CRASH_PATTERNS for line in lines)


# ---------------------------------------------------------------------------- connectivity test report

_SUCCESS_RE = re.compile(
    r"^✅ (?:\[(?P<ns>[^\]]+)\] )?All (?P<tests>\d+) tests \((?P<actions>\d+) actions\) successful, "
    r"(?P<skipped>\d+) tests skipped, (?P<scenarios>\d+) scenarios skipped\.?\s*$")
_FAILURE_RE = re.compile(
    r"^❌ (?P<failed>\d+)/(?P<tests>\d+) tests failed \((?P<failed_actions>\d+)/(?P<actions>\d+) actions\), "
    r"(?P<skipped>\d+) tests skipped, (?P<scenarios>\d+) scenarios skipped:?\s*$")
_REPORT_RE = re.compile(r"^📋 Test Report(?: \[(?P<ns>[^\]]+)\])?\s*$")
_TEST_RE = re.compile(r"^Test \[(?P<test>[^\]]+)\]:\s*$")
_ACTION_RE = re.compile(r"^\s+(?:🟥|❌)\s+(?P<body>.*)$")
_ACTION_BODY_RE = re.compile(r"^(?P<name>\S+?): (?P<source>.+?) -> (?P<destination>\S+ \([^)]*\))(?:: (?P<message>.*))?$")
_TRAILER_RE = re.compile(r"(?:^|: )\[(?P<ns>[^\]]+)\] (?P<failed>\d+) tests failed\s*$")
# The report's lines that are not an action's detail: the test owners the CLI lists after each failed action
# (cilium-cli/connectivity/check/logging.go l.106-115 ``LogOwners`` of that CLI: "    ⛑️ The following owners ..."
# then "        - @owner").
_OWNERS_RE = re.compile(r"^\s+(?:⛑️|⛑|- @)")


def _parse_action(body):
    match = _ACTION_BODY_RE.match(body)
    if match:
        action = {key: match.group(key) for key in ("name", "source", "destination", "message")}
    else:
        name, _sep, rest = body.partition(": ")
        action = {"name": name.strip(), "source": None, "destination": None, "message": rest.strip() or None}
    parts = action["name"].split("/")
    action["test"] = parts[0]
    action["scenario"] = parts[1].split(":", 1)[0] if len(parts) > 1 else None
    return action


def parse_connectivity_report(text):
    """Summary of a ``cilium connectivity test`` output (old ``✅ All 42 tests ...`` / ``❌ 4/42 tests failed`` forms
    and the current ``[cilium-test-1]`` / ``🟥`` ones).

    Returns ``{"result": "success" | "failure" | None, "test_namespace", "tests" (run, not skipped),
    "actions", "tests_failed", "actions_failed", "tests_skipped", "scenarios_skipped",
    "failed_tests": [{"name", "actions": [{"name", "test", "scenario", "source", "destination", "message"}]}]}``.
    ``result`` is None when no summary line was found (the run did not get to its report).
    An action's ``message`` is its whole failure message: the CLI prints it with ``%s`` after the action
    (cilium-cli/connectivity/check/context.go l.555 ``report`` of the CLI pinned as versions.CILIUM_CLI:
    ``"  🟥 %s: %s"``), so a multi-line one (the JSON objects of ``Found unexpected packet drops:``,
    cilium-cli/connectivity/tests/errors.go) goes on over the next, unindented lines, up to the next test, action
    or owners line.
    """
    report = {"result": None, "test_namespace": None, "tests": None, "actions": None, "tests_failed": 0,
              "actions_failed": 0, "tests_skipped": None, "scenarios_skipped": None, "failed_tests": []}
    current = detailed = None  # the failed test being read; the action whose message may go on
    in_report = False
    for raw in (text or "").splitlines():
        line = raw.rstrip("\r")
        match = _REPORT_RE.match(line)
        if match:
            in_report = True
            report["test_namespace"] = match.group("ns") or report["test_namespace"]
            continue
        match = _SUCCESS_RE.match(line)
        if match:
            report.update(result="success", tests=int(match.group("tests")), actions=int(match.group("actions")),
                          tests_skipped=int(match.group("skipped")), scenarios_skipped=int(match.group("scenarios")),
                          tests_failed=0, actions_failed=0)
            report["test_namespace"] = match.group("ns") or report["test_namespace"]
            continue
        match = _FAILURE_RE.match(line)
        if match:
            in_report = True
            report.update(result="failure", tests=int(match.group("tests")), actions=int(match.group("actions")),
                          tests_failed=int(match.group("failed")), actions_failed=int(match.group("failed_actions")),
                          tests_skipped=int(match.group("skipped")), scenarios_skipped=int(match.group("scenarios")))
            continue
        match = _TRAILER_RE.search(line)
        if match:
            report["test_namespace"] = report["test_namespace"] or match.group("ns")
            if report["result"] is None:
                report.update(result="failure", tests_failed=int(match.group("failed")))
            continue
        if not in_report:
            continue
        match = _TEST_RE.match(line)
        if match:
            current, detailed = {"name": match.group("test"), "actions": []}, None
            report["failed_tests"].append(current)
            continue
        match = _ACTION_RE.match(line)
        if match and current is not None:
            detailed = _parse_action(match.group("body"))
            current["actions"].append(detailed)
            continue
        detailed = _continue_message(detailed, line)
    return report


def _continue_message(action, line):
    """Add a line of a multi-line failure message to ``action``; the action whose message may still go on (None
    once an owners line ends it)."""
    if action is None or _OWNERS_RE.match(line):
        return None
    if line.strip():
        action["message"] = (action["message"] + "\n" if action["message"] else "") + line
    return action


def _matches(patterns, *names):
    return next((p for p in patterns for n in names if n and fnmatch.fnmatchcase(n, p)), None)


def classify_failures(report, expected_failures=()):
    """Split the failed tests into expected and unexpected ones.

    A pattern (``fnmatch``) matches a test name (``no-policies``), a test/scenario (``*/pod-to-host``) or an
    action name (``no-policies/pod-to-host/ping-ipv4-1``). A failed test is expected when every one of its
    failed actions is matched (a failed test without listed actions needs its name matched).
    Returns ``{"expected": [names], "unexpected": [names], "unlisted": int}``: ``unlisted`` counts failed
    tests the summary counted but the report did not list (a truncated output): they count as unexpected.
    """
    patterns = list(expected_failures or ())
    expected, unexpected = [], []
    for test in report.get("failed_tests") or []:
        if test["actions"]:
            ok = all(_matches(patterns, a["name"], "%s/%s" % (a["test"], a["scenario"]), a["test"])
                     for a in test["actions"])
        else:
            ok = bool(_matches(patterns, test["name"]))
        (expected if ok else unexpected).append(test["name"])
    unlisted = max(0, (report.get("tests_failed") or 0) - len(report.get("failed_tests") or []))
    return {"expected": expected, "unexpected": unexpected, "unlisted": unlisted}


def is_security_group_failure(action):
    """The failures a closed EKS node security group causes: ICMP to the nodes (``pod-to-host`` pings) and
    NodePort traffic (``pod-to-*-nodeport``, ``*nodeport*``)."""
    scenario = (action.get("scenario") or "").lower()
    name = (action.get("name") or "").lower()
    if scenario == "pod-to-host" and "ping" in name:
        return True
    return "nodeport" in scenario


_DESTINATION_IP_RE = re.compile(r"\((\d{1,3}(?:\.\d{1,3}){3})(?::\d+)?\)$")


def _public_destination(action):
    """The public IPv4 address an action targets (``54.243.4.228 (54.243.4.228:0)``), or None."""
    import ipaddress

    found = _DESTINATION_IP_RE.search(action.get("destination") or "")
    if not found:
        return None
    try:
        address = ipaddress.ip_address(found.group(1))
    except ValueError:
        return None
    return str(address) if address.is_global else None


def security_group_hint(report, tests=None):
    """The hint to print when the failed actions (of ``tests``, default all) are security-group failures towards the
    nodes' public addresses (by address, or by the ``external-ip`` action names of CLI v0.15+, anywhere in the
    report: NodePort actions name only the service); None when every such failure targets private addresses, which
    the node security group already allows."""
    every = [a for t in report.get("failed_tests") or [] for a in t["actions"] if is_security_group_failure(a)]
    public = sorted({a for a in (_public_destination(action) for action in every) if a})
    if not public and not any("external-ip" in (a.get("name") or "") for a in every):
        return None
    chosen = [t for t in report.get("failed_tests") or [] if tests is None or t["name"] in tests]
    if not any(is_security_group_failure(a) for t in chosen for a in t["actions"]):
        return None
    return SECURITY_GROUP_HINT % (", ".join(public) or "ExternalIP")
