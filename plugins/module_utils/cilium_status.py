# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Is Cilium healthy? The service behind the ``cilium_status`` module (also usable from other module_utils).

``CiliumStatusChecker(k8s, ...).wait(timeout)`` reads the agent DaemonSet, the operator Deployment, the agent pods,
the ``cilium-config`` ConfigMap, the nodes and the CiliumEndpoints through ``K8sService``, asks each running agent
for its own status with an exec (``cilium-dbg status -o json``, text form as a fallback), and re-checks until
everything is healthy or the timeout passes: at most every half second, and at once when the agent DaemonSet
changes (a watch), so an agent becoming Ready is noticed without polling delay.
Agents are asked as soon as their container runs, before the pod is Ready: a healthy answer is kept for that
container (same pod, container ID and restart count), so the last agent turning Ready costs no exec. A pod
still counts only once Ready.
On large clusters ``sample_agents=N`` asks at most N running agents, picked at random; the others count
through their pod's Ready condition (the agent's own ``/healthz`` readiness probe) and the DaemonSet rollout.

``evaluate(snapshot, ...)`` is the pure part: the snapshot (plain dicts, what ``read_cluster`` read plus the
agents' answers) in, the status dict out (see the module's RETURN), in small steps: ``rollout_problems``,
``node_reports``, ``summary_facts``, ``disagreements``, ``compare``.
"""

from __future__ import annotations

import collections
import concurrent.futures
import random
import time

from ansible_collections.cloudnet.cilium_eks.plugins.module_utils import cilium_parsers as parsers
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils import cilium_table as table
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils import inputs
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.cilium_unmanaged import find_unmanaged
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.errors import CiliumEksError, ValidationError
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.k8s_client import cli_kubeconfig
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.progress import note as note_progress
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.k8s_predicates import (
    container_image,
    container_running,
    crash_loop,
    current_daemonset_pod,
    daemonset_rollout,
    deployment_rollout,
    pod_not_ready_reason,
)
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.k8s_service import (  # noqa: F401  (API)
    ApiUnavailableError,
    K8sService,
)
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.versions import (
    image_version,
    parse_version,
    version_matches,
)
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.waiter import POLL_INTERVAL, Waiter

EXEC_TIMEOUT = 30  # seconds for one agent exec
RECHECK_UNHEALTHY_AGENT = 1.0  # seconds before asking an agent that answered "not OK" again
MAX_PARALLEL_EXECS = 8
CRASH_LOOP_RESTARTS = 3  # an agent of the current template that crashed this often is not coming up by itself
CRASH_LOG_LINES = 300  # lines of ``logs --previous`` read when the termination message does not say why

EXPECT_KEYS = {
    "ipam_mode": str, "routing_mode": str, "chaining_mode": str, "kube_proxy_replacement": bool,
    "bandwidth_manager": bool, "congestion_control": str, "host_routing": str, "masquerading": str, "version": str,
}
_BOOL_WORDS = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False, "0": False}

# Where Cilium is: the objects the checks read, named in every message.
Target = collections.namedtuple("Target", "namespace daemonset operator")
DEFAULT_TARGET = Target("kube-system", "cilium", "cilium-operator")


class CiliumNotHealthyError(CiliumEksError):
    """Cilium did not become healthy (or does not match what was expected); ``status`` holds everything found."""


# ------------------------------------------------------------------------------------------ inputs


def validate_expect(expect, expected_version=None):
    """Normalized copy of the ``expect`` option (``ValidationError`` naming the bad key or value)."""
    normalized = {}
    for key, value in (expect or {}).items():
        if key not in EXPECT_KEYS:
            raise ValidationError("expect", "unknown key %r" % key, accepted=sorted(EXPECT_KEYS))
        if EXPECT_KEYS[key] is bool:
            if isinstance(value, str) and value.strip().lower() in _BOOL_WORDS:
                value = _BOOL_WORDS[value.strip().lower()]
            if not isinstance(value, bool):
                raise ValidationError("expect.%s" % key, "must be a boolean", accepted=[True, False], value=value)
        else:
            if value is None or isinstance(value, (dict, list, bool)):
                raise ValidationError("expect.%s" % key, "must be a string", value=value)
            value = str(value).strip()
        normalized[key] = value
    if "version" in normalized and not parse_version(normalized["version"]):
        raise ValidationError("expect.version", "is not a version", accepted="X.Y or X.Y.Z, e.g. 1.18.11",
                              value=normalized["version"])
    if expected_version is not None:
        if not parse_version(expected_version):
            raise ValidationError("expected_version", "is not a version", accepted="X.Y or X.Y.Z, e.g. 1.18.11",
                                  value=expected_version)
        if "version" in normalized and normalized["version"] != expected_version:
            raise ValidationError("expect.version", "differs from expected_version %r" % expected_version,
                                  value=normalized["version"])
        normalized["version"] = expected_version
    return normalized


# -------------------------------------------------------------------------------------- pure parts


def rollout_problems(target, agent, operator):
    """The agent DaemonSet and the operator Deployment: absent or not rolled out."""
    problems = []
    where = "agent DaemonSet %s/%s" % (target.namespace, target.daemonset)
    if agent is None:
        problems.append("%s not found (is Cilium installed in %s?)" % (where, target.namespace))
    elif not agent["rolled_out"]:
        problems.append("%s not rolled out: %d/%d ready, %d/%d updated, %d/%d available" % (
            where, agent["ready"], agent["desired"], agent["updated"], agent["desired"], agent["available"],
            agent["desired"]))
    where = "operator Deployment %s/%s" % (target.namespace, target.operator)
    if operator is None:
        problems.append("%s not found" % where)
    elif not operator["rolled_out"]:
        problems.append("%s not rolled out: %d/%d ready, %d/%d updated, %d/%d available" % (
            where, operator["ready"], operator["replicas"], operator["updated"], operator["replicas"],
            operator["available"], operator["replicas"]))
    return problems


def image_mismatches(target, agent, operator, version):
    """The DaemonSet's and the Deployment's images that are not ``version`` (nothing when no version is expected)."""
    found = []
    for what, info in (("agent DaemonSet %s/%s" % (target.namespace, target.daemonset), agent),
                       ("operator Deployment %s/%s" % (target.namespace, target.operator), operator)):
        if version and info and not version_matches(version, image_version(info["image"]) or ""):
            found.append("%s image %s is not version %s" % (what, info["image"], version))
    return found


def crash_report(pod, crash_log=None):
    """``{restarts, exit_code, reason, log_line}`` of a crash-looping agent container (None when it is not): the
    line of its last termination that says why (``cilium_parsers.crash_reason``), from the termination message or,
    when that is only the tail of a stack dump, from ``crash_log`` (its ``logs --previous``)."""
    crash = crash_loop(pod, table.AGENT_CONTAINER)
    if not crash:
        return None
    text = crash["message"] if parsers.crash_reason_found(crash["message"]) or not crash_log else crash_log
    return {"restarts": crash["restarts"], "exit_code": crash["exit_code"], "reason": crash["reason"],
            "log_line": short(parsers.crash_reason(text), 500) or None}


def node_report(target, pod, result, version, sampled_out, crash_log=None):
    """``(entry, source, agent status)`` for the agent ``pod`` of one node and its answer ``result``."""
    name = pod["metadata"]["name"]
    entry = {"pod": name, "healthy": False, "state": None, "version": None, "ipam": None, "endpoints": None,
             "crash": None, "problems": [], "warnings": []}
    where = "agent pod %s/%s" % (target.namespace, name)
    image = container_image(pod.get("spec"), table.AGENT_CONTAINER)
    if version and not version_matches(version, image_version(image) or ""):
        entry["problems"].append("%s runs %s, not version %s" % (where, image, version))
    reason = pod_not_ready_reason(pod)
    crash = crash_report(pod, crash_log)
    if crash:
        entry["crash"] = crash
        entry["problems"].append("%s crash-loops (CrashLoopBackOff after %d restarts; last exit code %s%s): %s" % (
            where, crash["restarts"], crash["exit_code"], ", %s" % crash["reason"] if crash["reason"] else "",
            crash["log_line"] or "its log says nothing"))
    elif reason:
        entry["problems"].append("%s %s" % (where, reason))
    if result is None:
        if not reason and name in sampled_out:
            return entry, "ready", None  # its /healthz readiness probe passes; not in this run's sample
        if not reason:
            entry["problems"].append("%s was not asked for its status" % where)
        return entry, None, None
    if result.get("error"):
        entry["problems"].append("%s: %s" % (where, result["error"]))
        return entry, None, None
    status = result["status"]
    entry.update(state=status.get("state"), version=status.get("version"), ipam=status.get("ipam"))
    found, warned = parsers.status_problems(status)
    entry["problems"].extend(found)
    entry["warnings"].extend(warned)
    if version and status.get("version") and not version_matches(version, status["version"]):
        entry["problems"].append("agent reports version %s, not %s" % (status["version"], version))
    return entry, result["source"], status


def node_reports(snapshot, target, version, node_filter=None, sampled_out=()):
    """``(nodes, sources, agent statuses)``: one report per node (``node_filter``, or every node with an agent)."""
    by_node = {}
    for pod in snapshot["pods"] or []:
        node = (pod.get("spec") or {}).get("nodeName")
        if node:
            by_node.setdefault(node, []).append(pod)
    known = {n["metadata"]["name"] for n in snapshot["nodes"] or []}
    counts = count_endpoints(snapshot["ceps"], snapshot["nodes"]) if snapshot["ceps"] is not None else None
    reports, sources, statuses = {}, {}, {}
    for node in sorted(node_filter) if node_filter else sorted(by_node):
        candidates = sorted(by_node.get(node) or [], key=lambda p: (
            p["metadata"].get("deletionTimestamp") is not None, p["metadata"]["name"]))
        if candidates:
            pod = candidates[0]
            entry, source, status = node_report(target, pod, (snapshot["agent_results"] or {}).get(
                pod["metadata"]["name"]), version, sampled_out, (snapshot.get("crash_logs") or {}).get(
                    pod["metadata"]["name"]))
        else:
            entry, source, status = {"pod": None, "healthy": False, "state": None, "version": None, "ipam": None,
                                     "endpoints": None, "crash": None, "warnings": [], "problems": [
                                         "no Cilium agent pod on this node" if node in known or not known
                                         else "no such node in the cluster"]}, None, None
        entry["endpoints"] = counts.get(node, 0) if counts is not None else None
        entry["healthy"] = not entry["problems"]
        reports[node] = entry
        if source:
            sources[node] = source
        if status:
            statuses[node] = status
    return reports, sources, statuses


def summary_facts(config_data, statuses):
    """How Cilium is configured: what the first agent reports, the ConfigMap where no agent answered."""
    facts = config_facts(config_data)
    first = statuses[sorted(statuses)[0]] if statuses else None
    if not first:
        summary = {key: facts[key] for key in ("ipam_mode", "routing_mode", "tunnel_protocol", "chaining_mode",
                                               "kube_proxy_replacement", "kube_proxy_replacement_mode",
                                               "bandwidth_manager", "masquerading")}
        summary["host_routing"] = None
        return summary
    return {
        "ipam_mode": facts["ipam_mode"],
        "routing_mode": first.get("routing_mode") or facts["routing_mode"],
        "tunnel_protocol": first.get("tunnel_protocol") if first.get("routing_mode") else facts["tunnel_protocol"],
        "host_routing": first.get("host_routing"),
        "masquerading": first.get("masquerading") or facts["masquerading"],
        "chaining_mode": first.get("chaining_mode") or facts["chaining_mode"],
        "kube_proxy_replacement": first["kube_proxy_replacement"] if first.get("kube_proxy_replacement") is not None
        else facts["kube_proxy_replacement"],
        "kube_proxy_replacement_mode": first.get("kube_proxy_replacement_mode") or facts["kube_proxy_replacement_mode"],
        "bandwidth_manager": first.get("bandwidth_manager"),
    }


def disagreements(statuses):
    """Facts the agents do not agree on (a rollout in progress?)."""
    problems = []
    for key in ("chaining_mode", "routing_mode", "kube_proxy_replacement_mode", "host_routing", "masquerading"):
        seen = sorted({str(s.get(key)) for s in statuses.values() if s.get(key) is not None})
        if len(seen) > 1:
            problems.append("agents disagree on %s: %s (a rollout in progress?)" % (key, ", ".join(seen)))
    return problems


def reported_version(statuses, agent):
    versions = sorted({s["version"] for s in statuses.values() if s.get("version")})
    if versions:
        return versions[0] if len(versions) == 1 else ", ".join(versions)
    return image_version(agent["image"]) if agent else None


def endpoint_total(snapshot, node_filter):
    if snapshot["ceps"] is None:
        return None
    if node_filter:
        counts = count_endpoints(snapshot["ceps"], snapshot["nodes"])
        return sum(counts.get(n, 0) for n in node_filter)
    return len(snapshot["ceps"])


def crash_looping(nodes, snapshot, restarts):
    """Nodes whose agent, of the DaemonSet's current template, crash-looped at least ``restarts`` times: waiting
    will not help (0: never say so)."""
    if not restarts:
        return []
    pods = {p["metadata"]["name"]: p for p in snapshot["pods"] or []}
    return sorted(node for node, entry in nodes.items() if (entry.get("crash") or {}).get("restarts", 0) >= restarts
                  and current_daemonset_pod(pods.get(entry["pod"]) or {}, snapshot["ds"]))


def evaluate(snapshot, target=DEFAULT_TARGET, expect=None, node_filter=None, sampled_out=(),
             crash_loop_restarts=CRASH_LOOP_RESTARTS):
    """The status dict from a snapshot: ``{ds, dep, pods, config_data, nodes, ceps, agent_results}``.

    ``pods``: agent pod dicts; ``agent_results``: pod name -> ``{"source": "json"|"text", "status": normalized}``
    or ``{"error": "..."}``; ``nodes``/``ceps``: Node and CiliumEndpoint dicts (``ceps`` None: CRD absent);
    ``sampled_out``: names of agent pods deliberately not asked (``sample_agents``): a Ready one counts through
    its Ready condition (source ``ready``); ``crash_logs`` (optional): pod name -> ``logs --previous`` of a
    crash-looping agent; ``crash_loop_restarts``: see ``crash_looping``.
    """
    expect = dict(expect or {})
    version = expect.get("version")
    agent, operator = daemonset_rollout(snapshot["ds"], table.AGENT_CONTAINER), deployment_rollout(snapshot["dep"])
    problems = rollout_problems(target, agent, operator)
    mismatches = image_mismatches(target, agent, operator, version)
    nodes, sources, statuses = node_reports(snapshot, target, version, node_filter, sampled_out)
    problems += ["node %s: %s" % (node, p) for node, entry in nodes.items() for p in entry["problems"]]
    if snapshot["config_data"] is None:
        problems.append("ConfigMap %s/%s not found" % (target.namespace, table.CONFIG_MAP))
    facts = summary_facts(snapshot["config_data"], statuses)
    problems += disagreements(statuses)
    mismatches += compare(expect, facts)
    return dict(facts, healthy=not problems and not mismatches, version=reported_version(statuses, agent),
                agent=agent, operator=operator, nodes=nodes, endpoints=endpoint_total(snapshot, node_filter),
                source=sources, problems=problems, mismatches=mismatches,
                crash_looping=crash_looping(nodes, snapshot, crash_loop_restarts))


def config_facts(data):
    """Facts the ``cilium-config`` ConfigMap fixes (used when no agent answered, and for the IPAM mode)."""
    data = data or {}

    def flag(key):
        return str(data.get(key, "")).strip().lower() == "true"

    ipam = data.get("ipam") or "cluster-pool"
    tunnel = (data.get("tunnel") or "").strip()
    if data.get("routing-mode"):
        routing = data["routing-mode"]
    elif tunnel:
        routing = "native" if tunnel == "disabled" else "tunnel"
    else:
        routing = "native" if ipam in ("eni", "azure", "alibabacloud") else "tunnel"
    kpr_raw = data.get("kube-proxy-replacement")
    bwm = flag("enable-bandwidth-manager")
    masquerading = None  # the charts always write enable-ipv4-masquerade; None when a hand-made config lacks it
    if "enable-ipv4-masquerade" in data:
        masquerading = "disabled" if not flag("enable-ipv4-masquerade") \
            else "bpf" if flag("enable-bpf-masquerade") else "iptables"
    return {
        "ipam_mode": ipam,
        "routing_mode": routing,
        "tunnel_protocol": (data.get("tunnel-protocol") or (tunnel if tunnel in ("vxlan", "geneve") else "vxlan"))
        if routing == "tunnel" else None,
        "chaining_mode": data.get("cni-chaining-mode") or "none",
        "kube_proxy_replacement": parsers.kpr_enabled(kpr_raw) if kpr_raw is not None else False,
        "kube_proxy_replacement_mode": kpr_raw,
        "bandwidth_manager": {"enabled": bwm, "congestion_control": ("bbr" if flag("enable-bbr") else "cubic")
                              if bwm else None, "devices": []},
        "masquerading": masquerading,
    }


def _node_ips(nodes):
    ips = {}
    for node in nodes or []:
        for addr in (node.get("status") or {}).get("addresses") or []:
            if addr.get("type") == "InternalIP":
                ips[addr.get("address")] = node["metadata"]["name"]
    return ips


def count_endpoints(ceps, nodes):
    """CiliumEndpoints per node name (their ``status.networking.node`` is the node's InternalIP)."""
    by_ip = _node_ips(nodes)
    counts = {}
    for cep in ceps or []:
        node_ip = (((cep.get("status") or {}).get("networking") or {}).get("node"))
        name = by_ip.get(node_ip, node_ip or "?")
        counts[name] = counts.get(name, 0) + 1
    return counts


def compare(expect, status):
    mismatches = []
    for key, want in sorted(expect.items()):
        if key == "version":
            continue
        if key == "bandwidth_manager":
            have = (status.get("bandwidth_manager") or {}).get("enabled")
        elif key == "congestion_control":
            have = (status.get("bandwidth_manager") or {}).get("congestion_control")
        else:
            have = status.get(key)
        if isinstance(want, bool):
            same = have is want
        else:
            same = have is not None and str(have).lower() == want.lower()
        if not same:
            mismatches.append("%s: expected %s, found %s" % (key, _show(want), _show(have)))
    return mismatches


def _show(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    return "nothing" if value is None else str(value)


def summarize(status):
    """One line saying where things stand (the progress log and the first line of a failure)."""
    if status["healthy"]:
        return "healthy"
    items = status["problems"] + status["mismatches"]
    head = items[0] if items else "not healthy"
    return head + (" (+%d more)" % (len(items) - 1) if len(items) > 1 else "")


def failure_message(status, waited, timeout, wait):
    lines = status["problems"] + status["mismatches"]
    if status.get("crash_looping") and wait and waited < timeout:
        head = ("Cilium agents crash-loop on %s (stopped waiting after %ss of %ss: a crash loop does not end by "
                "itself; fix the cause named below, e.g. the Helm values, and run again)" % (
                    ", ".join(status["crash_looping"]), round(waited, 1), timeout))
    elif status["problems"]:
        if wait:
            head = "Cilium is not healthy after waiting %ss (timeout %ss)" % (round(waited, 1), timeout)
        else:
            head = "Cilium is not healthy (wait=false)"
    else:
        head = "Cilium is healthy but does not match what was expected"
    return head + ":\n" + "\n".join("- " + line for line in lines)


# ------------------------------------------------------------------------------------------ I/O


class CiliumStatusChecker:
    """Reads the cluster and the agents through ``k8s`` (a ``K8sService``); ``snapshot()`` once, ``wait()`` until
    healthy or timeout. ``clock``/``sleep`` are injectable; without ``sleep`` a pause ends early when the agent
    DaemonSet changes."""

    def __init__(self, k8s, target=DEFAULT_TARGET, nodes=None, expected_version=None, expect=None,
                 exec_timeout=EXEC_TIMEOUT, clock=time.monotonic, sleep=None, sample_agents=0, rng=None,
                 crash_loop_restarts=CRASH_LOOP_RESTARTS):
        self.k8s = k8s
        self.target = target
        self.node_filter = list(nodes) if nodes else None
        self.expect = validate_expect(expect, expected_version)
        self.exec_timeout = exec_timeout
        self.clock = clock
        self.sleep = sleep
        self._agent_cache = {}  # pod uid -> (cache key, time asked, result)
        self._daemonset_version = None  # resourceVersion of the agent DaemonSet last read (for the watch)
        self.sample_agents = sample_agents or 0  # 0: every agent (run_module checks the option)
        self._rng = rng or random.Random()
        self._sample = set()  # uids of the agent pods asked in this check (kept while they run)
        self.crash_loop_restarts = crash_loop_restarts
        self._crash_logs = {}  # (pod uid, restart count) -> ``logs --previous`` of a crash-looping agent

    # -- reading

    def read_cluster(self):
        k8s, ns = self.k8s, self.target.namespace
        ds = k8s.get("DaemonSet", self.target.daemonset, ns)
        cm = k8s.get("ConfigMap", table.CONFIG_MAP, ns)
        ceps = k8s.list_object("CiliumEndpoint")
        self._daemonset_version = ((ds or {}).get("metadata") or {}).get("resourceVersion")
        return {"ds": ds, "dep": k8s.get("Deployment", self.target.operator, ns),
                "pods": k8s.list("Pod", ns, label_selector=table.AGENT_LABEL),
                "config_data": (cm or {}).get("data") if cm else None, "nodes": k8s.list("Node"),
                "ceps": None if ceps.get("absent") else ceps.get("items") or []}

    # -- asking the agents

    def ask_agent(self, pod):
        """``{"source", "status"}`` or ``{"error"}`` for one agent pod."""
        cli = table.agent_cli(image_version(container_image(pod.get("spec"), table.AGENT_CONTAINER)))
        name = pod["metadata"]["name"]
        errors = []
        for binary in [cli] if cli else ["cilium-dbg", "cilium"]:
            for args, prefer_json in ((["status", "-o", "json"], True), (["status"], False)):
                try:
                    answer = self.k8s.exec(self.target.namespace, name, table.AGENT_CONTAINER, [binary] + args,
                                           self.exec_timeout)
                except ValidationError:  # an exec that cannot be made as asked (impersonation): waiting won't help
                    raise
                except Exception as exc:  # pylint: disable=broad-except  # websocket/API errors: report, retry later
                    errors.append("exec `%s %s` failed: %s" % (binary, " ".join(args), exc))
                    continue
                if answer.stdout.strip():
                    try:
                        status, source = parsers.parse_agent_status(answer.stdout, prefer_json=prefer_json)
                        return {"source": source, "status": status}
                    except ValueError:
                        pass
                errors.append("`%s %s` exited %s: %s" % (binary, " ".join(args), "?" if answer.rc is None else
                                                         answer.rc, short(answer.stderr or answer.message
                                                                          or answer.stdout)))
        return {"error": "could not read the agent status (" + "; ".join(errors) + ")"}

    def _cached(self, pod, now):
        """The kept answer of a running agent (healthy, or asked less than a second ago), and its cache key."""
        meta = pod["metadata"]
        statuses = (pod.get("status") or {}).get("containerStatuses") or []
        key = (meta.get("uid"), tuple(sorted((c.get("name"), c.get("restartCount"), c.get("containerID"))
                                             for c in statuses)))
        cached = self._agent_cache.get(meta.get("uid"))
        if cached and cached[0] == key:
            healthy = "status" in cached[2] and not parsers.status_problems(cached[2]["status"])[0]
            if healthy or now - cached[1] < RECHECK_UNHEALTHY_AGENT:
                return cached[2], key
        return None, key

    def ask_agents(self, pods):
        now = self.clock()
        results, todo = {}, []
        for pod in pods:
            if not container_running(pod, table.AGENT_CONTAINER):
                continue
            answer, key = self._cached(pod, now)
            if answer is not None:
                results[pod["metadata"]["name"]] = answer
            else:
                todo.append((pod, key))
        if todo:
            with concurrent.futures.ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_EXECS, len(todo))) as pool:
                answers = list(pool.map(lambda item: self.ask_agent(item[0]), todo))
            for (pod, key), answer in zip(todo, answers):
                self._agent_cache[pod["metadata"]["uid"]] = (key, self.clock(), answer)
                results[pod["metadata"]["name"]] = answer
        return results

    def choose_agents(self, pods):
        """The agent pods to ask: all of them, or at most ``sample_agents`` running ones picked at random.

        The pick holds for the whole check (answers stay cached while waiting); a picked pod that is gone
        (replaced by a rollout) is replaced by another one picked at random."""
        if not self.sample_agents or len(pods) <= self.sample_agents:
            return pods
        running = {p["metadata"].get("uid"): p for p in pods if container_running(p, table.AGENT_CONTAINER)}
        self._sample &= set(running)
        spare = sorted(uid for uid in running if uid not in self._sample)
        self._rng.shuffle(spare)
        self._sample.update(spare[:max(0, self.sample_agents - len(self._sample))])
        return [p for p in pods if p["metadata"].get("uid") in self._sample]

    def crash_logs(self, pods):
        """``logs --previous`` of the crash-looping agents whose termination message does not say why (the tail of
        a Go panic's goroutine dump): read once per crash (pod uid and restart count)."""
        logs = {}
        for pod in pods:
            crash = crash_loop(pod, table.AGENT_CONTAINER)
            if not crash or parsers.crash_reason_found(crash["message"]):
                continue
            key = (pod["metadata"].get("uid"), crash["restarts"])
            if key not in self._crash_logs:
                try:
                    self._crash_logs[key] = self.k8s.logs(self.target.namespace, pod["metadata"]["name"],
                                                          table.AGENT_CONTAINER, previous=True,
                                                          tail_lines=CRASH_LOG_LINES)
                except CiliumEksError:  # no right to read logs, API hiccup: the termination message stays
                    self._crash_logs[key] = None
            logs[pod["metadata"]["name"]] = self._crash_logs[key]
        return logs

    # -- evaluating

    def snapshot(self):
        snapshot = self.read_cluster()
        pods = snapshot["pods"]
        if self.node_filter:
            pods = snapshot["pods"] = [p for p in pods if (p.get("spec") or {}).get("nodeName") in self.node_filter]
        asked = self.choose_agents(pods)
        snapshot["agent_results"] = self.ask_agents(asked)
        snapshot["crash_logs"] = self.crash_logs(pods)
        sampled_out = {p["metadata"]["name"] for p in pods} - {p["metadata"]["name"] for p in asked}
        return evaluate(snapshot, self.target, expect=self.expect, node_filter=self.node_filter,
                        sampled_out=sampled_out, crash_loop_restarts=self.crash_loop_restarts)

    def _pause(self):
        """What the waiter waits on between rounds: the injected sleep, or a watch on the agent DaemonSet."""
        if self.sleep is not None:
            return None
        return self.k8s.wake_on_change("DaemonSet", self.target.namespace, self.target.daemonset,
                                       self._daemonset_version)

    def wait(self, timeout, wait=True, interval=POLL_INTERVAL):
        """The final status dict (with ``elapsed`` and ``progress``); ``CiliumNotHealthyError`` if not healthy."""
        waiter = Waiter(timeout, interval, clock=self.clock, sleep=self.sleep or time.sleep)
        progress = []
        while True:
            try:
                status = self.snapshot()
            except ApiUnavailableError as exc:  # e.g. the API server restarting: ask again until the timeout
                status = {"unavailable": str(exc)}
            line = status.get("unavailable") or summarize(status)
            if not progress or progress[-1]["summary"] != line:
                progress.append({"at": round(waiter.elapsed, 2), "summary": line})
                note_progress(line)
            if "unavailable" in status and (not wait or waiter.expired):
                raise ApiUnavailableError(
                    "%s, still after waiting %.1fs (timeout %ss). Check that the API server is up "
                    "(`kubectl get --raw /readyz`) and run again" % (line, waiter.elapsed, timeout), progress=progress)
            settled = "unavailable" not in status and (status["healthy"] or not status["problems"]
                                                       or bool(status["crash_looping"]))
            # a mismatch on a rolled-out, healthy Cilium will not fix itself, nor will an agent's crash loop
            if settled or not wait or waiter.expired:
                break
            waiter.pause(self._pause())
        status.update(elapsed=round(waiter.elapsed, 2), progress=progress)
        if not status["healthy"]:
            raise CiliumNotHealthyError(failure_message(status, status["elapsed"], timeout, wait), status=status)
        return status


def short(text, limit=300):
    """The end of ``text``, at most ``limit`` characters."""
    text = (text or "").strip()
    return text if len(text) <= limit else "..." + text[-limit:]


def run_module(module):
    """Entry point of the ``cilium_status`` module."""
    params = module.params
    inputs.dns_label(params["namespace"], "namespace")
    for option in ("agent_daemonset", "operator_deployment"):
        inputs.text(params[option], option, inputs.DNS1123_SUBDOMAIN, "a Kubernetes object name (lower-case "
                    "letters, digits, '-' and '.', at most 253 characters)", 253)
    if params["timeout"] is not None and params["timeout"] < 0:
        raise ValidationError("timeout", "must be 0 or more seconds", value=params["timeout"])
    if params["crash_loop_restarts"] < 0:
        raise ValidationError("crash_loop_restarts", "must be 0 (wait out crash loops) or a number of restarts",
                              value=params["crash_loop_restarts"])
    if (params.get("sample_agents") or 0) < 0:
        raise ValidationError("sample_agents", "must be 0 (ask every agent) or a positive number of agents",
                              value=params["sample_agents"])
    expect = validate_expect(params.get("expect"), params.get("expected_version"))
    checker = CiliumStatusChecker(
        K8sService(module.k8s_client()),
        target=Target(params["namespace"], params["agent_daemonset"], params["operator_deployment"]),
        nodes=params.get("nodes"), expect=expect, sample_agents=params.get("sample_agents") or 0,
        crash_loop_restarts=params["crash_loop_restarts"],
    )
    runner = None
    if params.get("cli_cross_check"):
        runner = module.runner("cilium", path_option="cilium_path")
        # the CLI reaches the cluster the API client reaches: host and token options too, not only `kubeconfig`
        params = dict(params, kubeconfig=cli_kubeconfig(params, module.tmpdir))
    return status_result(checker, params, runner)


def cli_disagreements(status, cli, target=DEFAULT_TARGET):
    """What the Cilium CLI's report (``parse_cli_status_json``) says about the agents and the operator that the
    status read by this module does not: errors in their pods, other pod counts. Only the CLI's errors count
    against a healthy status (its warnings, such as endpoints not ready yet, are kept in ``status.cli``)."""
    found = []
    for name, mine in ((target.daemonset, status.get("agent")), (target.operator, status.get("operator"))):
        theirs = (cli.get("components") or {}).get(name)
        if theirs is None:
            found.append("the Cilium CLI does not report %s" % name)
            continue
        if theirs["errors"] and status.get("healthy"):
            found.append("the Cilium CLI reports errors in %s: %s" % (name, "; ".join(theirs["errors"])))
        want = (mine or {}).get("desired", (mine or {}).get("replicas"))
        if mine and (theirs["desired"], theirs["ready"]) != (want, mine["ready"]):
            found.append("the Cilium CLI counts %s %d/%d ready, the API %d/%d" % (
                name, theirs["ready"], theirs["desired"], mine["ready"], want))
    return found


def cli_report(runner, params):
    """The Cilium CLI's ``cilium status -o json`` (its own checks of every agent pod), parsed; ``{"error": ...}``
    when the CLI is missing, fails or prints something else."""
    args = ["status", "-o", "json", "--namespace", params["namespace"]]
    args += ["--context", params["context"]] if params.get("context") else []
    env = {"KUBECONFIG": params["kubeconfig"]} if params.get("kubeconfig") else None
    try:
        result = runner.run(args, check=False, env=env)
        report = parsers.parse_cli_status_json(result.stdout)
    except (CiliumEksError, ValueError) as exc:
        return {"error": "`cilium %s` could not be read: %s" % (" ".join(args), exc)}
    return dict(report, exit_code=result.rc)


def with_cli_check(status, runner, params, target):
    """``status`` with ``cli`` (the CLI's report and its ``disagreements``); these also count as problems."""
    cli = cli_report(runner, params)
    cli["disagreements"] = [cli["error"]] if "error" in cli else cli_disagreements(status, cli, target)
    status["cli"] = cli
    if cli["disagreements"]:
        status["problems"] = status["problems"] + cli["disagreements"]
        status["healthy"] = False
    return status


def status_result(checker, params, runner=None):
    """The module's result: the status once healthy (``checker.wait``), cross-checked with the Cilium CLI's own
    report when ``runner`` (the CLI) is given, and with ``unmanaged_pods`` the pods Cilium does not manage yet
    (``cilium_unmanaged.find_unmanaged``, in the same process)."""
    try:
        status = checker.wait(params["timeout"], wait=params["wait"])
    except CiliumNotHealthyError as exc:
        if runner is not None:
            with_cli_check(exc.details["status"], runner, params, checker.target)
        raise
    if runner is not None and not with_cli_check(status, runner, params, checker.target)["healthy"]:
        raise CiliumNotHealthyError("Cilium is healthy by the agents' own status, but the Cilium CLI's `cilium status` "
                                    "disagrees:\n" + "\n".join("- " + line for line in status["cli"]["disagreements"]),
                                    status=status)
    status["kubernetes_version"] = checker.k8s.server_version()
    result = {"changed": False, "status": status}
    if params.get("unmanaged_pods"):
        result["unmanaged"] = find_unmanaged(checker.k8s, checker.target.namespace)
    return result
