# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Is Cilium healthy? The service behind the ``cilium_status`` module (also usable from other module_utils).

``CiliumStatusChecker(api_client, ...).wait(timeout)`` reads the agent DaemonSet, the operator Deployment,
the agent pods, the ``cilium-config`` ConfigMap, the nodes and the CiliumEndpoints through the Kubernetes
API, asks each running agent for its own status with an exec (``cilium-dbg status -o json``, text form as a
fallback), and re-checks until everything is healthy or the timeout passes: at most every half second, and at
once when the agent DaemonSet changes (a watch), so an agent becoming Ready is noticed without polling delay.
Agents are asked as soon as their container runs, before the pod is Ready: a healthy answer is kept for that
container (same pod, container ID and restart count), so the last agent turning Ready costs no exec. A pod
still counts only once Ready.
On large clusters ``sample_agents=N`` asks at most N running agents, picked at random; the others count
through their pod's Ready condition (the agent's own ``/healthz`` readiness probe) and the DaemonSet rollout.
``evaluate()`` is the pure part: plain dicts in, the status dict out (see the module's RETURN).
"""

from __future__ import annotations

import concurrent.futures
import json
import math
import random
import time

from ansible_collections.cloudnet.cilium_eks.plugins.module_utils import cilium_parsers as parsers
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.errors import CiliumEksError, ValidationError
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.k8s_client import classify_failure, import_kubernetes

AGENT_LABEL = "k8s-app=cilium"
AGENT_CONTAINER = "cilium-agent"
CONFIG_MAP = "cilium-config"
POLL_INTERVAL = 0.5  # seconds between two checks while waiting
EXEC_TIMEOUT = 30  # seconds for one agent exec
RECHECK_UNHEALTHY_AGENT = 1.0  # seconds before asking an agent that answered "not OK" again
MAX_PARALLEL_EXECS = 8

EXPECT_KEYS = {
    "ipam_mode": str, "routing_mode": str, "chaining_mode": str, "kube_proxy_replacement": bool,
    "bandwidth_manager": bool, "congestion_control": str, "host_routing": str, "version": str,
}
_BOOL_WORDS = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False, "0": False}


class CiliumNotHealthyError(CiliumEksError):
    """Cilium did not become healthy (or does not match what was expected); ``status`` holds everything found."""


class ApiUnavailableError(CiliumEksError):
    """The API server did not answer (restarting, overloaded, network blip): worth asking again while waiting."""


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
    if "version" in normalized and not parsers.parse_version(normalized["version"]):
        raise ValidationError("expect.version", "is not a version", accepted="X.Y or X.Y.Z, e.g. 1.18.11",
                              value=normalized["version"])
    if expected_version is not None:
        if not parsers.parse_version(expected_version):
            raise ValidationError("expected_version", "is not a version", accepted="X.Y or X.Y.Z, e.g. 1.18.11",
                                  value=expected_version)
        if "version" in normalized and normalized["version"] != expected_version:
            raise ValidationError("expect.version", "differs from expected_version %r" % expected_version,
                                  value=normalized["version"])
        normalized["version"] = expected_version
    return normalized


# -------------------------------------------------------------------------------------- pure parts


def _condition(obj, kind):
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            return cond
    return None


def _container_image(pod_spec, name):
    containers = (pod_spec or {}).get("containers") or []
    for container in containers:
        if container.get("name") == name:
            return container.get("image")
    return containers[0].get("image") if containers else None


def daemonset_rollout(ds):
    """``{desired, ready, updated, available, image, rolled_out}`` of a DaemonSet dict (None: absent)."""
    if ds is None:
        return None
    status = ds.get("status") or {}
    desired = status.get("desiredNumberScheduled") or 0
    info = {
        "desired": desired,
        "ready": status.get("numberReady") or 0,
        "updated": status.get("updatedNumberScheduled") or 0,
        "available": status.get("numberAvailable") or 0,
        "image": _container_image(((ds.get("spec") or {}).get("template") or {}).get("spec"), AGENT_CONTAINER),
    }
    observed = (status.get("observedGeneration") or 0) >= ((ds.get("metadata") or {}).get("generation") or 0)
    info["rolled_out"] = bool(observed and desired > 0 and info["ready"] == desired
                              and info["updated"] == desired and info["available"] == desired)
    return info


def deployment_rollout(dep):
    """``{replicas, ready, updated, available, image, rolled_out}`` of a Deployment dict (None: absent)."""
    if dep is None:
        return None
    status = dep.get("status") or {}
    spec = dep.get("spec") or {}
    replicas = spec.get("replicas", 1)
    info = {
        "replicas": replicas,
        "ready": status.get("readyReplicas") or 0,
        "updated": status.get("updatedReplicas") or 0,
        "available": status.get("availableReplicas") or 0,
        "image": _container_image((spec.get("template") or {}).get("spec"), "cilium-operator"),
    }
    observed = (status.get("observedGeneration") or 0) >= ((dep.get("metadata") or {}).get("generation") or 0)
    info["rolled_out"] = bool(observed and info["updated"] == replicas and info["available"] == replicas
                              and info["ready"] == replicas and (status.get("replicas") or 0) == replicas)
    return info


def pod_not_ready_reason(pod):
    """None if the pod is Running and Ready, else why not (phase, condition reason, waiting containers)."""
    meta = pod.get("metadata") or {}
    status = pod.get("status") or {}
    if meta.get("deletionTimestamp"):
        return "is terminating"
    phase = status.get("phase")
    ready = _condition(pod, "Ready")
    if phase == "Running" and ready and ready.get("status") == "True":
        return None
    details = []
    for cs in status.get("containerStatuses") or []:
        waiting = (cs.get("state") or {}).get("waiting")
        if waiting:
            details.append("%s: %s" % (cs.get("name"), waiting.get("reason") or "waiting"))
    if ready and ready.get("reason"):
        details.insert(0, ready["reason"] + (": %s" % ready["message"] if ready.get("message") else ""))
    return "is not Ready (phase %s%s)" % (phase or "unknown", "; " + "; ".join(details) if details else "")


def agent_running(pod):
    """Can the agent be asked (exec) already? Its pod is Running, not terminating, and the agent container
    runs; without container statuses, only a Ready pod counts."""
    meta = pod.get("metadata") or {}
    status = pod.get("status") or {}
    if meta.get("deletionTimestamp") or status.get("phase") != "Running":
        return False
    for container in status.get("containerStatuses") or []:
        if container.get("name") == AGENT_CONTAINER:
            return bool((container.get("state") or {}).get("running"))
    return pod_not_ready_reason(pod) is None


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


def _compare(expect, status):
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


def evaluate(namespace, ds_name, op_name, ds, dep, pods, config_data, nodes, ceps, agent_results,
             expect=None, node_filter=None, sampled_out=()):
    """The status dict from plain Kubernetes objects and the agents' answers.

    ``pods``: agent pod dicts; ``agent_results``: pod name -> ``{"source": "json"|"text", "status": normalized}``
    or ``{"error": "..."}``; ``nodes``/``ceps``: Node and CiliumEndpoint dicts (``ceps`` None: CRD absent);
    ``sampled_out``: names of agent pods deliberately not asked (``sample_agents``): a Ready one counts through
    its Ready condition (source ``ready``).
    """
    expect = dict(expect or {})
    expected_version = expect.get("version")
    problems, mismatches = [], []
    agent = daemonset_rollout(ds)
    operator = deployment_rollout(dep)
    if agent is None:
        problems.append("agent DaemonSet %s/%s not found (is Cilium installed in %s?)" % (namespace, ds_name, namespace))
    elif not agent["rolled_out"]:
        problems.append("agent DaemonSet %s/%s not rolled out: %d/%d ready, %d/%d updated, %d/%d available"
                        % (namespace, ds_name, agent["ready"], agent["desired"], agent["updated"], agent["desired"],
                           agent["available"], agent["desired"]))
    if operator is None:
        problems.append("operator Deployment %s/%s not found" % (namespace, op_name))
    elif not operator["rolled_out"]:
        problems.append("operator Deployment %s/%s not rolled out: %d/%d ready, %d/%d updated, %d/%d available"
                        % (namespace, op_name, operator["ready"], operator["replicas"], operator["updated"],
                           operator["replicas"], operator["available"], operator["replicas"]))
    if expected_version:
        for what, info in (("agent DaemonSet %s/%s" % (namespace, ds_name), agent),
                           ("operator Deployment %s/%s" % (namespace, op_name), operator)):
            if info and not parsers.version_matches(expected_version, parsers.image_version(info["image"]) or ""):
                mismatches.append("%s image %s is not version %s" % (what, info["image"], expected_version))

    node_names = sorted(n["metadata"]["name"] for n in nodes or [])
    wanted = sorted(node_filter) if node_filter else None
    by_node = {}
    for pod in pods or []:
        node = (pod.get("spec") or {}).get("nodeName")
        if node:
            by_node.setdefault(node, []).append(pod)
    endpoint_counts = count_endpoints(ceps, nodes) if ceps is not None else {}
    report_nodes, sources, agent_statuses = {}, {}, {}
    for node in wanted or sorted(n for n in by_node if n):
        entry = {"pod": None, "healthy": False, "state": None, "version": None, "ipam": None,
                 "endpoints": endpoint_counts.get(node, 0) if ceps is not None else None,
                 "problems": [], "warnings": []}
        report_nodes[node] = entry
        candidates = by_node.get(node) or []
        if not candidates:
            entry["problems"].append("no Cilium agent pod on this node" if node in node_names or not node_names
                                     else "no such node in the cluster")
            continue
        pod = sorted(candidates, key=lambda p: (p["metadata"].get("deletionTimestamp") is not None,
                                                p["metadata"]["name"]))[0]
        name = pod["metadata"]["name"]
        entry["pod"] = name
        image = _container_image(pod.get("spec"), AGENT_CONTAINER)
        if expected_version and not parsers.version_matches(expected_version, parsers.image_version(image) or ""):
            entry["problems"].append("agent pod %s/%s runs %s, not version %s" % (namespace, name, image, expected_version))
        reason = pod_not_ready_reason(pod)
        if reason:
            entry["problems"].append("agent pod %s/%s %s" % (namespace, name, reason))
        result = (agent_results or {}).get(name)
        if result is None:
            if not reason and name in sampled_out:
                sources[node] = "ready"  # its /healthz readiness probe passes; not in this run's sample
            elif not reason:
                entry["problems"].append("agent pod %s/%s was not asked for its status" % (namespace, name))
        elif result.get("error"):
            entry["problems"].append("agent pod %s/%s: %s" % (namespace, name, result["error"]))
        else:
            agent_status = result["status"]
            agent_statuses[node] = agent_status
            sources[node] = result["source"]
            entry.update(state=agent_status.get("state"), version=agent_status.get("version"), ipam=agent_status.get("ipam"))
            found, warned = parsers.status_problems(agent_status)
            entry["problems"].extend(found)
            entry["warnings"].extend(warned)
            if expected_version and agent_status.get("version") and \
                    not parsers.version_matches(expected_version, agent_status["version"]):
                entry["problems"].append("agent reports version %s, not %s" % (agent_status["version"], expected_version))
    for node, entry in report_nodes.items():
        entry["healthy"] = not entry["problems"]
        problems.extend("node %s: %s" % (node, p) for p in entry["problems"])

    facts = config_facts(config_data)
    if config_data is None:
        problems.append("ConfigMap %s/%s not found" % (namespace, CONFIG_MAP))
    reported = [agent_statuses[n] for n in sorted(agent_statuses)]
    first = reported[0] if reported else None
    summary = {
        "ipam_mode": facts["ipam_mode"],
        "routing_mode": (first or {}).get("routing_mode") or facts["routing_mode"],
        "tunnel_protocol": (first or {}).get("tunnel_protocol") if first and first.get("routing_mode")
        else facts["tunnel_protocol"],
        "host_routing": (first or {}).get("host_routing"),
        "chaining_mode": (first or {}).get("chaining_mode") or facts["chaining_mode"],
        "kube_proxy_replacement": first["kube_proxy_replacement"] if first and first.get("kube_proxy_replacement")
        is not None else facts["kube_proxy_replacement"],
        "kube_proxy_replacement_mode": (first or {}).get("kube_proxy_replacement_mode")
        or facts["kube_proxy_replacement_mode"],
        "bandwidth_manager": (first or {}).get("bandwidth_manager") if first else facts["bandwidth_manager"],
    }
    for key in ("chaining_mode", "routing_mode", "kube_proxy_replacement_mode", "host_routing"):
        seen = sorted({str(s.get(key)) for s in reported if s.get(key) is not None})
        if len(seen) > 1:
            problems.append("agents disagree on %s: %s (a rollout in progress?)" % (key, ", ".join(seen)))
    versions = sorted({s["version"] for s in reported if s.get("version")})
    version = versions[0] if len(versions) == 1 else (", ".join(versions) if versions else None)
    if version is None and agent:
        version = parsers.image_version(agent["image"])

    if ceps is None:
        endpoints = None
    elif wanted:
        endpoints = sum(endpoint_counts.get(n, 0) for n in wanted)
    else:
        endpoints = len(ceps)
    mismatches.extend(_compare(expect, dict(summary)))
    status = dict(summary)
    status.update(
        healthy=not problems and not mismatches,
        version=version,
        agent=agent,
        operator=operator,
        nodes=report_nodes,
        endpoints=endpoints,
        source=sources,
        problems=problems,
        mismatches=mismatches,
    )
    return status


def summarize(status):
    """One line saying where things stand (the progress log and the first line of a failure)."""
    if status["healthy"]:
        return "healthy"
    items = status["problems"] + status["mismatches"]
    head = items[0] if items else "not healthy"
    return head + (" (+%d more)" % (len(items) - 1) if len(items) > 1 else "")


def failure_message(status, waited, timeout, wait):
    lines = status["problems"] + status["mismatches"]
    if status["problems"]:
        if wait:
            head = "Cilium is not healthy after waiting %ss (timeout %ss)" % (round(waited, 1), timeout)
        else:
            head = "Cilium is not healthy (wait=false)"
    else:
        head = "Cilium is healthy but does not match what was expected"
    return head + ":\n" + "\n".join("- " + line for line in lines)


# ------------------------------------------------------------------------------------------ I/O


def parse_exec_error(error_channel):
    """(rc, message) from the exec's error channel (``v1.Status`` JSON); rc 0 on success, None if unknown."""
    if not error_channel:
        return 0, None
    try:
        data = json.loads(error_channel)
    except ValueError:
        return None, error_channel.strip()
    if data.get("status") == "Success":
        return 0, None
    for cause in (data.get("details") or {}).get("causes") or []:
        if cause.get("reason") == "ExitCode":
            try:
                return int(cause.get("message")), data.get("message")
            except (TypeError, ValueError):
                pass
    return None, data.get("message") or error_channel.strip()


class CiliumStatusChecker:
    """Reads the cluster and the agents; ``snapshot()`` once, ``wait()`` until healthy or timeout."""

    def __init__(self, api_client, namespace="kube-system", agent_daemonset="cilium",
                 operator_deployment="cilium-operator", nodes=None, expected_version=None, expect=None,
                 exec_timeout=EXEC_TIMEOUT, clock=time.monotonic, sleep=None, sample_agents=0, rng=None):
        self.api_client = api_client
        self.namespace = namespace
        self.agent_daemonset = agent_daemonset
        self.operator_deployment = operator_deployment
        self.node_filter = list(nodes) if nodes else None
        self.expect = validate_expect(expect, expected_version)
        self.exec_timeout = exec_timeout
        self.clock = clock
        self.sleep = sleep or self._until_daemonset_changes
        self._kubernetes = import_kubernetes()
        self._agent_cache = {}  # pod uid -> (cache key, time asked, result)
        self._daemonset_version = None  # resourceVersion of the agent DaemonSet last read (for the watch)
        self.sample_agents = sample_agents or 0  # 0: every agent (run_module checks the option)
        self._rng = rng or random.Random()
        self._sample = set()  # uids of the agent pods asked in this check (kept while they run)

    # -- reading

    def _read(self, fn, *args, **kwargs):
        """The object or list as plain JSON (None: 404). Read raw: building the client's models of a few
        thousand pods and nodes, then turning them back into dicts, costs more than the request."""
        from kubernetes.client.rest import ApiException
        from urllib3.exceptions import HTTPError

        try:
            return json.loads(fn(*args, _preload_content=False, **kwargs).data or b"null")
        except (HTTPError, OSError) as exc:  # no answer at all: connection refused/reset, timeout
            reason = classify_failure(exc, self.exec_timeout)[0]
            raise ApiUnavailableError("Kubernetes API server %s did not answer (%s)" % (
                self.api_client.configuration.host, reason)) from exc
        except ApiException as exc:
            if exc.status == 404:
                return None
            if exc.status == 429 or exc.status >= 500:
                raise ApiUnavailableError("Kubernetes API server %s answered %s %s to %s" % (
                    self.api_client.configuration.host, exc.status, exc.reason, getattr(fn, "__name__", "?"))) from exc
            raise CiliumEksError("Kubernetes API error reading %s: %s %s" % (
                getattr(fn, "__name__", "?"), exc.status, exc.reason), status_code=exc.status) from exc

    def read_cluster(self):
        k8s = self._kubernetes.client
        core = k8s.CoreV1Api(self.api_client)
        apps = k8s.AppsV1Api(self.api_client)
        custom = k8s.CustomObjectsApi(self.api_client)
        ns = self.namespace
        ds = self._read(apps.read_namespaced_daemon_set, self.agent_daemonset, ns)
        dep = self._read(apps.read_namespaced_deployment, self.operator_deployment, ns)
        pods = (self._read(core.list_namespaced_pod, ns, label_selector=AGENT_LABEL) or {}).get("items") or []
        cm = self._read(core.read_namespaced_config_map, CONFIG_MAP, ns)
        nodes = (self._read(core.list_node) or {}).get("items") or []
        ceps = self._read(custom.list_cluster_custom_object, "cilium.io", "v2", "ciliumendpoints")
        self._daemonset_version = ((ds or {}).get("metadata") or {}).get("resourceVersion")
        return {"ds": ds, "dep": dep, "pods": pods, "config_data": (cm or {}).get("data") if cm else None,
                "nodes": nodes, "ceps": ceps.get("items") if isinstance(ceps, dict) else None}

    # -- asking the agents

    def exec_agent(self, pod_name, command):
        """(rc, stdout, stderr, message) of ``command`` in the pod's ``cilium-agent`` container."""
        from kubernetes.stream import stream

        # stream() swaps the request method of the client it is given: use a private client per call.
        k8s = self._kubernetes.client
        core = k8s.CoreV1Api(k8s.ApiClient(configuration=self.api_client.configuration))
        resp = stream(core.connect_get_namespaced_pod_exec, pod_name, self.namespace, container=AGENT_CONTAINER,
                      command=command, stderr=True, stdin=False, stdout=True, tty=False, _preload_content=False,
                      _request_timeout=self.exec_timeout)
        try:
            resp.run_forever(timeout=self.exec_timeout)
            stdout, stderr = resp.read_stdout(), resp.read_stderr()
            rc, message = parse_exec_error(resp.read_channel(3))
        finally:
            resp.close()
        return rc, stdout, stderr, message

    def ask_agent(self, pod):
        """``{"source", "status"}`` or ``{"error"}`` for one agent pod."""
        image = _container_image(pod.get("spec"), AGENT_CONTAINER)
        cli = parsers.agent_cli(parsers.image_version(image) or "")
        clis = [cli] if cli else ["cilium-dbg", "cilium"]
        name = pod["metadata"]["name"]
        errors = []
        for binary in clis:
            for args, prefer_json in ((["status", "-o", "json"], True), (["status"], False)):
                try:
                    rc, stdout, stderr, message = self.exec_agent(name, [binary] + args)
                except Exception as exc:  # pylint: disable=broad-except  # websocket/API errors: report, retry later
                    errors.append("exec `%s %s` failed: %s" % (binary, " ".join(args), exc))
                    continue
                if stdout.strip():
                    try:
                        status, source = parsers.parse_agent_status(stdout, prefer_json=prefer_json)
                        return {"source": source, "status": status}
                    except ValueError:
                        pass
                errors.append("`%s %s` exited %s: %s" % (binary, " ".join(args), "?" if rc is None else rc,
                                                         parsers_tail(stderr or message or stdout)))
        return {"error": "could not read the agent status (" + "; ".join(errors) + ")"}

    def ask_agents(self, pods):
        now = self.clock()
        results, todo = {}, []
        for pod in pods:
            if not agent_running(pod):
                continue
            meta = pod["metadata"]
            statuses = (pod.get("status") or {}).get("containerStatuses") or []
            key = (meta.get("uid"), tuple(sorted((c.get("name"), c.get("restartCount"), c.get("containerID"))
                                                 for c in statuses)))
            cached = self._agent_cache.get(meta.get("uid"))
            if cached and cached[0] == key:
                healthy = "status" in cached[2] and not parsers.status_problems(cached[2]["status"])[0]
                if healthy or now - cached[1] < RECHECK_UNHEALTHY_AGENT:
                    results[meta["name"]] = cached[2]
                    continue
            todo.append((pod, key))
        if todo:
            workers = min(MAX_PARALLEL_EXECS, len(todo))
            with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
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
        running = {p["metadata"].get("uid"): p for p in pods if agent_running(p)}
        self._sample &= set(running)
        spare = sorted(uid for uid in running if uid not in self._sample)
        self._rng.shuffle(spare)
        self._sample.update(spare[:max(0, self.sample_agents - len(self._sample))])
        return [p for p in pods if p["metadata"].get("uid") in self._sample]

    # -- evaluating

    def snapshot(self):
        cluster = self.read_cluster()
        pods = cluster["pods"]
        if self.node_filter:
            pods = [p for p in pods if (p.get("spec") or {}).get("nodeName") in self.node_filter]
        asked = self.choose_agents(pods)
        results = self.ask_agents(asked)
        sampled_out = {p["metadata"]["name"] for p in pods} - {p["metadata"]["name"] for p in asked}
        return evaluate(self.namespace, self.agent_daemonset, self.operator_deployment, cluster["ds"], cluster["dep"],
                        pods, cluster["config_data"], cluster["nodes"], cluster["ceps"], results,
                        expect=self.expect, node_filter=self.node_filter, sampled_out=sampled_out)

    def _until_daemonset_changes(self, seconds):
        """Sleep ``seconds``, waking up early when the agent DaemonSet changes (its status counts the Ready
        agents). Falls back to a plain sleep when the watch is not possible (no DaemonSet, RBAC, errors)."""
        started = self.clock()
        if self._daemonset_version and seconds > 0.05:
            apps = self._kubernetes.client.AppsV1Api(self.api_client)
            try:
                resp = apps.list_namespaced_daemon_set(
                    self.namespace, field_selector="metadata.name=%s" % self.agent_daemonset, watch=True,
                    resource_version=self._daemonset_version, timeout_seconds=max(1, int(math.ceil(seconds))),
                    _preload_content=False, _request_timeout=(5, seconds))
                try:
                    changed = resp.read(1)  # the first byte of the first event, or the read timeout
                finally:
                    resp.release_conn()
                    resp.close()
                if changed:
                    return
            except Exception:  # pylint: disable=broad-except  # read timeout (no change) or no watch: sleep
                pass
        self._plain_sleep(max(0.0, seconds - (self.clock() - started)))

    _plain_sleep = staticmethod(time.sleep)

    def wait(self, timeout, wait=True, interval=POLL_INTERVAL):
        """The final status dict (with ``elapsed`` and ``progress``); ``CiliumNotHealthyError`` if not healthy."""
        start = self.clock()
        progress, last = [], None
        while True:
            try:
                status = self.snapshot()
            except ApiUnavailableError as exc:  # e.g. the API server restarting: ask again until the timeout
                status = {"unavailable": str(exc)}
            elapsed = self.clock() - start
            line = status.get("unavailable") or summarize(status)
            if line != last:
                progress.append({"at": round(elapsed, 2), "summary": line})
                last = line
            if "unavailable" in status:
                if not wait or elapsed >= timeout:
                    raise ApiUnavailableError(
                        "%s, still after waiting %.1fs (timeout %ss). Check that the API server is up "
                        "(`kubectl get --raw /readyz`) and run again" % (line, elapsed, timeout), progress=progress)
                self.sleep(max(0.0, min(interval, timeout - elapsed)))
                continue
            settled = not status["problems"]  # rolled out and healthy: a mismatch will not fix itself
            if status["healthy"] or settled or not wait or elapsed >= timeout:
                break
            self.sleep(max(0.0, min(interval, timeout - elapsed)))
        status["elapsed"] = round(self.clock() - start, 2)
        status["progress"] = progress
        if not status["healthy"]:
            raise CiliumNotHealthyError(failure_message(status, status["elapsed"], timeout, wait), status=status)
        return status


def parsers_tail(text, limit=300):
    text = (text or "").strip()
    return text if len(text) <= limit else "..." + text[-limit:]


def run_module(module):
    """Entry point of the ``cilium_status`` module."""
    params = module.params
    if params["timeout"] is not None and params["timeout"] < 0:
        raise ValidationError("timeout", "must be 0 or more seconds", value=params["timeout"])
    if (params.get("sample_agents") or 0) < 0:
        raise ValidationError("sample_agents", "must be 0 (ask every agent) or a positive number of agents",
                              value=params["sample_agents"])
    expect = validate_expect(params.get("expect"), params.get("expected_version"))
    checker = CiliumStatusChecker(
        module.k8s_client(), namespace=params["namespace"], agent_daemonset=params["agent_daemonset"],
        operator_deployment=params["operator_deployment"], nodes=params.get("nodes"), expect=expect,
        sample_agents=params.get("sample_agents") or 0,
    )
    status = checker.wait(params["timeout"], wait=params["wait"])
    return {"changed": False, "status": status}
