# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The bandwidth test of the fourth blog post, as a service for ``cilium_bandwidth_test``.

In a namespace it creates and labels, a server pod annotated ``kubernetes.io/egress-bandwidth``
(and ``kubernetes.io/ingress-bandwidth`` from Cilium 1.18) and a client pod kept off the server's
node by a required pod anti-affinity; once both run, the client measures what the server sends
(netperf ``TCP_MAERTS``, or ``iperf3 -R``), the agent on the server's node is asked whether the
Bandwidth Manager is on and which limit its ``cilium_throttle`` map holds for the server's endpoint
(CiliumEndpoint ``status.id``), and the measured rate is compared with the limit. Pods and namespace
are deleted whatever happens, unless ``keep``.
"""

from __future__ import annotations

import json
import os

from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.bandwidth_parsers import (
    OutputParseError,
    bandwidth_manager_off_in_output,
    find_limit,
    parse_bandwidth_manager_status,
    parse_bpf_bandwidth_list,
    parse_iperf3_json,
    parse_netperf,
)
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils import cilium_table as table
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils import inputs
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.errors import CiliumEksError, ValidationError, tail
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.k8s_predicates import (
    container_image,
    node_schedulable,
    pull_failure,
    terminating,
    unschedulable_reason,
)
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.progress import note as note_progress
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.quantity import (
    enforced_bps,
    format_decimal_si,
    parse_bandwidth,
)
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.versions import image_version, parse_version
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.waiter import Waiter

EGRESS_ANNOTATION = "kubernetes.io/egress-bandwidth"
INGRESS_ANNOTATION = "kubernetes.io/ingress-bandwidth"
MANAGED_BY = ("app.kubernetes.io/managed-by", "cloudnet.cilium_eks")
PURPOSE = ("cloudnet.cilium-eks/purpose", "bandwidth-test")
NAME_LABEL = "app.kubernetes.io/name"
CONTAINER = "netperf"
TOOLS = ("netperf", "iperf3")
# The test measures ONE TCP flow (netperf TCP_MAERTS, iperf3 without -P). "Single-flow traffic is limited to
# 5 Gbps when instances are not in the same cluster placement group" (docs.aws.amazon.com/AWSEC2/latest/UserGuide/
# ec2-instance-network-bandwidth.html): a higher limit cannot be told from the path's own ceiling.
MAX_MEASURABLE_BPS = 5 * 10 ** 9
# The module's option defaults (its argument_spec reads them), so render.yml renders what a run creates.
DEFAULTS = dict(limit="10M", tool="netperf", image="cilium/netperf", duration=10, tolerance=0.05, min_ratio=0.5,
                namespace="cilium-bandwidth-test", server_name="netperf-server", client_name="netperf-client",
                cilium_namespace="kube-system", timeout=300, keep=False)


class BandwidthTestError(CiliumEksError):
    """The test could not run, or the cluster is not in a state where it means something."""


def validate_params(params):
    """Checked, normalised options (raises ValidationError naming the option at fault)."""
    out = dict(params)
    out["limit_bps"] = parse_bandwidth(params["limit"], "limit")
    out["ingress_limit_bps"] = (parse_bandwidth(params["ingress_limit"], "ingress_limit")
                                if params.get("ingress_limit") else None)
    if params["tool"] not in TOOLS:
        raise ValidationError("tool", "unknown measurement tool", accepted=TOOLS, value=params["tool"])
    if not 1 <= int(params["duration"]) <= 600:
        raise ValidationError("duration", "must be between 1 and 600 seconds", value=params["duration"])
    if not 0 < float(params["min_ratio"]) < 1:
        raise ValidationError("min_ratio", "must be a fraction of the limit between 0 and 1 (exclusive)",
                              value=params["min_ratio"])
    if not 0 <= float(params["tolerance"]) < 1:
        raise ValidationError("tolerance", "must be a fraction >= 0 and < 1 (0.05 = 5%% above the limit)",
                              value=params["tolerance"])
    inputs.dns_label(params["namespace"], "namespace")
    if out["limit_bps"] > MAX_MEASURABLE_BPS:
        raise ValidationError("limit", "%.0f Gbit/s is more than one TCP flow between two EC2 instances can carry "
                              "(5 Gbit/s outside a cluster placement group), so the test could not tell an enforced "
                              "limit from a slow path" % (out["limit_bps"] / 1e9), value=params["limit"],
                              accepted="a limit of at most 5G that the path can exceed, e.g. 10M, 100M, 1G")
    return out


def verdict(measured_bps, limit_bps, tolerance, min_ratio):
    """(ratio, passed, reason) for a measured rate against the enforced limit."""
    ratio = measured_bps / float(limit_bps)
    if ratio > 1 + tolerance:
        return ratio, False, ("measured %.2f Mbit/s is %.0f%% above the %.2f Mbit/s limit (tolerance %.0f%%): "
                              "the limit is not enforced" % (measured_bps / 1e6, (ratio - 1) * 100,
                                                             limit_bps / 1e6, tolerance * 100))
    if ratio < min_ratio:
        return ratio, False, ("measured %.2f Mbit/s is only %.0f%% of the %.2f Mbit/s limit (floor %.0f%%): "
                              "the path is broken or congested, which says nothing about the limit"
                              % (measured_bps / 1e6, ratio * 100, limit_bps / 1e6, min_ratio * 100))
    return ratio, True, "measured %.2f Mbit/s for a %.2f Mbit/s limit (ratio %.3f)" % (
        measured_bps / 1e6, limit_bps / 1e6, ratio)


def schedulable_nodes(nodes):
    """Names of Ready, schedulable nodes without NoSchedule/NoExecute taints (our pods tolerate none)."""
    return sorted(node["metadata"]["name"] for node in nodes if node_schedulable(node))


def namespace_manifest(namespace):
    """The test's own namespace, labelled so that a later run knows it may delete it."""
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": namespace, "labels": {PURPOSE[0]: PURPOSE[1], MANAGED_BY[0]: MANAGED_BY[1]}}}


def bandwidth_test_manifests(options, cilium_version=None):
    """[namespace, server pod, client pod] a run with ``options`` (module defaults for the rest) creates.

    ``cilium_version`` is a version (text or ``Version``) or None (then ingress_limit is not checked against it).
    """
    params = validate_params(dict(DEFAULTS, **{k: v for k, v in options.items() if v is not None}))
    server, client = pod_manifests(params, cilium_version)
    for pod in (server, client):
        pod["metadata"]["namespace"] = params["namespace"]
    return [namespace_manifest(params["namespace"]), server, client]


def pod_manifests(params, cilium_version):
    """(server, client) pod bodies, as the blog's bandwidth-test.yaml with the module's names."""
    server_name, client_name = params["server_name"], params["client_name"]
    labels = {NAME_LABEL: server_name, MANAGED_BY[0]: MANAGED_BY[1]}
    annotations = {EGRESS_ANNOTATION: params["limit"]}
    if params.get("ingress_limit"):
        annotations[INGRESS_ANNOTATION] = params["ingress_limit"]
    if params["tool"] == "iperf3":
        server_container = {"name": CONTAINER, "image": params["image"], "args": ["iperf3", "-s"],
                            "ports": [{"containerPort": 5201}]}
    else:  # the image's default command runs netserver
        server_container = {"name": CONTAINER, "image": params["image"], "ports": [{"containerPort": 12865}]}
    server = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": server_name, "labels": labels, "annotations": annotations},
        "spec": {"containers": [server_container], "terminationGracePeriodSeconds": 1},
    }
    client = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": client_name, "labels": {NAME_LABEL: client_name, MANAGED_BY[0]: MANAGED_BY[1]}},
        "spec": {
            "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{
                "labelSelector": {"matchExpressions": [
                    {"key": NAME_LABEL, "operator": "In", "values": [server_name]}]},
                "topologyKey": "kubernetes.io/hostname"}]}},
            "containers": [{"name": CONTAINER, "image": params["image"], "args": ["sleep", "infinity"]}],
            "terminationGracePeriodSeconds": 1,
        },
    }
    if params.get("ingress_limit") and cilium_version and not table.has("ingress_bandwidth", cilium_version):
        raise ValidationError("ingress_limit", "Cilium %s does not enforce kubernetes.io/ingress-bandwidth "
                              "(%s and later do)" % (cilium_version, table.GATES["ingress_bandwidth"].since),
                              value=params["ingress_limit"])
    return server, client


def measure_argv(tool, server_ip, duration):
    """The measurement command run in the client pod (argv list)."""
    if tool == "iperf3":
        return ["iperf3", "-c", server_ip, "-R", "-J", "-t", str(duration)]
    return ["netperf", "-H", server_ip, "-t", "TCP_MAERTS", "-l", str(duration)]


def markdown_report(result):
    lines = [
        "# Cilium Bandwidth Manager test",
        "",
        "| | |",
        "| --- | --- |",
        "| Verdict | %s |" % ("PASSED" if result["passed"] else "FAILED"),
        "| Limit (annotation) | `%s` = %d bit/s |" % (result["limit"], result["limit_bps"]),
        "| Measured (%s) | %d bit/s |" % (result["tool"], round(result["measured_bps"])),
        "| Ratio measured/limit | %.3f |" % result["ratio"],
        "| Accepted ratio | %.2f .. %.2f |" % (result["min_ratio"], 1 + result["tolerance"]),
        "| Server | `%s` on `%s` (endpoint %s) |" % (
            result["server_pod"], result["server_node"], result.get("endpoint_id")),
        "| Client | `%s` on `%s` |" % (result["client_pod"], result["client_node"]),
        "| Agent map entry | %s |" % (result.get("map_limit") or "none"),
        "| Cilium | %s |" % (result.get("cilium_version") or "unknown"),
        "",
        result["reason"],
        "",
    ]
    return "\n".join(lines)


def write_reports(report_dir, result):
    """``bandwidth-test.json`` and ``bandwidth-test.md`` in ``report_dir`` (created), mode 0644."""
    os.makedirs(report_dir, exist_ok=True)
    paths = {}
    for name, content in (("bandwidth-test.json", json.dumps(result, indent=2, sort_keys=True) + "\n"),
                          ("bandwidth-test.md", markdown_report(result))):
        path = os.path.join(report_dir, name)
        with open(path, "w") as handle:
            handle.write(content)
        os.chmod(path, 0o644)
        paths[name.rsplit(".", 1)[1]] = path
    return paths


class BandwidthTest:
    """One run of the test on ``k8s`` (a ``K8sService``). ``run()`` returns the module result; cleanup happens in
    ``run`` itself. ``waiter`` makes the ``Waiter`` of each wait (injectable: tests run without real time)."""

    def __init__(self, k8s, params, progress=None, waiter=Waiter):
        self.params = validate_params(params)
        self.k8s = k8s
        self.progress = progress or (lambda msg: None)
        self.waiter = waiter
        self.namespace = self.params["namespace"]
        self.created_namespace = False

    # ------------------------------------------------------------------------ cluster facts
    def cilium_version(self):
        """``(Version or None, agent image)`` of the agent DaemonSet."""
        ds = self.k8s.get("DaemonSet", "cilium", self.params["cilium_namespace"])
        if ds is None:
            raise BandwidthTestError("No Cilium DaemonSet `cilium` in namespace %s: install Cilium first, or set "
                                     "cilium_namespace." % self.params["cilium_namespace"])
        image = container_image(ds["spec"]["template"]["spec"], table.AGENT_CONTAINER)
        return parse_version(image_version(image)), image

    def config_says_enabled(self):
        cm = self.k8s.get("ConfigMap", table.CONFIG_MAP, self.params["cilium_namespace"])
        return None if cm is None else (cm.get("data") or {}).get("enable-bandwidth-manager", "false")

    # ----------------------------------------------------------------------------- namespace
    def ensure_namespace(self):
        existing = self.k8s.get("Namespace", self.namespace)
        if existing is not None:
            labels = existing["metadata"].get("labels") or {}
            if labels.get(PURPOSE[0]) != PURPOSE[1]:
                raise ValidationError("namespace", "namespace exists and was not created by this module (no label "
                                      "%s=%s); the test deletes its namespace, so pick a new name" % PURPOSE,
                                      value=self.namespace)
            self.progress("namespace %s left by an earlier run: deleting it first" % self.namespace)
            self.delete_namespace(wait=True)
        self.k8s.create("Namespace", namespace_manifest(self.namespace))
        self.created_namespace = True

    def delete_namespace(self, wait=True):
        """True once the namespace is gone (False: still terminating, or not waited for)."""
        if not self.k8s.delete("Namespace", self.namespace, grace_period_seconds=0):
            return True
        if not wait:
            return False
        waiter = self.waiter(self.params["timeout"])
        return bool(waiter.until(lambda: self.k8s.get("Namespace", self.namespace) is None))

    # ---------------------------------------------------------------------------------- pods
    def wait_for_pods(self, names, schedulable):
        """Until every pod runs (re-listed when the namespace's pods change); fail early on pull or scheduling
        failures."""
        state, reported, version = {}, set(), [None]

        def probe():
            listed = self.k8s.list_object("Pod", self.namespace)
            version[0] = (listed.get("metadata") or {}).get("resourceVersion")
            state.update((pod["metadata"]["name"], pod) for pod in listed.get("items") or [])
            if all(n in state and self._running(state[n], schedulable) for n in names):
                return {n: state[n] for n in names}
            for name in (n for n in names if n in state):
                phase, node = state[name]["status"].get("phase"), state[name]["spec"].get("nodeName")
                if (name, phase) not in reported:
                    reported.add((name, phase))
                    self.progress("pod %s: %s%s" % (name, phase, (" on %s" % node) if node else ""))
            return None

        def pause(seconds):  # a watch from the newest resourceVersion the probe saw
            return self.k8s.wake_on_change("Pod", self.namespace, resource_version=version[0])(seconds)

        pods = self.waiter(self.params["timeout"], interval=1).until(probe, pause=pause)
        if pods:
            return pods
        waiting = ", ".join("%s (%s)" % (n, state[n]["status"].get("phase") if n in state else "absent") for n in names)
        raise BandwidthTestError("Test pods not running after %ss: %s" % (self.params["timeout"], waiting))

    def _running(self, pod, schedulable):
        """True when Running with an IP; raises on a pull failure or an unschedulable pod."""
        name = pod["metadata"]["name"]
        failed = pull_failure(pod)
        if failed:
            status, waiting = failed
            raise BandwidthTestError(
                "Image %s cannot be pulled for pod %s/%s (%s: %s). Set `image` to an image the nodes can pull "
                "(it needs %s)." % (status.get("image"), self.namespace, name, waiting.get("reason"),
                                    waiting.get("message") or "", self.params["tool"]),
                pod=name, image=status.get("image"), reason=waiting.get("reason"))
        message = unschedulable_reason(pod)
        if message:
            raise BandwidthTestError(
                "Pod %s/%s cannot be scheduled: %s. The test needs two schedulable nodes (server and client on "
                "different nodes); found %d: %s." % (self.namespace, name, message, len(schedulable),
                                                     ", ".join(schedulable) or "none"),
                pod=name, schedulable_nodes=schedulable)
        status = pod.get("status") or {}
        return status.get("phase") == "Running" and bool(status.get("podIP"))

    # ------------------------------------------------------------------------------- agent
    def agent_pod(self, node):
        pods = self.k8s.list("Pod", self.params["cilium_namespace"], label_selector=table.AGENT_LABEL,
                             field_selector="spec.nodeName=%s" % node)
        running = [p for p in pods if (p.get("status") or {}).get("phase") == "Running" and not terminating(p)]
        if not running:
            raise BandwidthTestError("No running Cilium agent pod on node %s (namespace %s, label %s)"
                                     % (node, self.params["cilium_namespace"], table.AGENT_LABEL), node=node)
        return running[0]["metadata"]["name"]

    def endpoint_id(self, pod):
        """The CiliumEndpoint ``status.id`` of ``pod`` (the agent writes it a moment after the pod starts)."""
        def probe():
            cep = self.k8s.get("CiliumEndpoint", pod, self.namespace)
            return int(((cep or {}).get("status") or {}).get("id") or 0) or None

        return self.waiter(min(60, self.params["timeout"]), interval=1).until(probe)

    # --------------------------------------------------------------------------------- run
    def preflight(self):
        """``(version, image, schedulable nodes)``; refuses a cluster where the test would mean nothing."""
        version, image = self.cilium_version()
        self.progress("Cilium %s (%s)" % (version or "unknown", image))
        configured = self.config_says_enabled()
        if configured is not None and configured != "true":
            raise BandwidthTestError(
                "The Bandwidth Manager is off: cilium-config has enable-bandwidth-manager=%r. Enable it first "
                "(role cloudnet.cilium_eks.bandwidth_manager, or bandwidthManager.enabled=true)." % configured,
                enable_bandwidth_manager=configured)
        nodes = self.k8s.list("Node")
        schedulable = schedulable_nodes(nodes)
        if len(schedulable) < 2:
            raise BandwidthTestError(
                "The test needs two schedulable nodes (the client is kept off the server's node by pod "
                "anti-affinity, as in the blog); found %d schedulable node%s out of %d: %s."
                % (len(schedulable), "" if len(schedulable) == 1 else "s", len(nodes), ", ".join(schedulable) or
                   "none"), schedulable_nodes=schedulable)
        return version, schedulable

    def run(self):
        params = self.params
        version, schedulable = self.preflight()
        server_body, client_body = pod_manifests(params, version)
        result = {"changed": True, "namespace": self.namespace, "cleaned_up": False}
        try:
            self.ensure_namespace()
            self.k8s.create("Pod", server_body, self.namespace)
            self.k8s.create("Pod", client_body, self.namespace)
            self.progress("waiting for pods %s and %s" % (params["server_name"], params["client_name"]))
            pods = self.wait_for_pods([params["server_name"], params["client_name"]], schedulable)
            result.update(self.measure_placed(version, pods[params["server_name"]], pods[params["client_name"]]))
        finally:
            if params["keep"]:
                self.progress("keep=true: leaving namespace %s" % self.namespace)
            elif self.created_namespace:
                result["cleaned_up"] = self.delete_namespace(wait=True)
        if params.get("report_dir"):
            result["report_files"] = write_reports(params["report_dir"], {
                k: v for k, v in result.items() if k not in ("changed", "report_files")})
        if not result["passed"]:
            raise BandwidthTestError("Bandwidth test failed: " + result["reason"], **{
                k: v for k, v in result.items() if k not in ("changed",)})
        return result

    def measure_placed(self, version, server, client):
        """``measure`` on two placed pods; a node or pod that went away meanwhile is said to be the cause."""
        if server["spec"]["nodeName"] == client["spec"]["nodeName"]:
            raise BandwidthTestError("Server and client pods landed on the same node %s despite the anti-affinity"
                                     % server["spec"]["nodeName"])
        try:
            measured = self.measure(version, server, client)
        except Exception as exc:  # pylint: disable=broad-except  # say so if a node or pod went away meanwhile
            self.fail_if_lost([server, client], exc)
            raise
        self.fail_if_lost([server, client])  # a measurement across a vanished node means nothing
        return measured

    def lost_during_test(self, pods):
        """What went away of the test's pods and their nodes (node removed, pod deleted), as sentences."""
        lost = []
        for pod in pods:
            name, node = pod["metadata"]["name"], pod["spec"]["nodeName"]
            found = self.k8s.get("Node", node)
            if found is None or terminating(found):
                lost.append("node %s (running pod %s) was removed" % (node, name))
                continue
            found = self.k8s.get("Pod", name, self.namespace)
            if found is None or terminating(found):
                lost.append("pod %s/%s on node %s was deleted" % (self.namespace, name, node))
        return lost

    def fail_if_lost(self, pods, cause=None):
        lost = self.lost_during_test(pods)
        if lost:
            raise BandwidthTestError(
                "The bandwidth test was cut short: %s. Its pods were deleted; run it again (on the remaining nodes, "
                "or once the node is back)." % "; ".join(lost), lost=lost, cause=str(cause) if cause else None)

    # ----------------------------------------------------------------------------- measure
    def throughput(self, server, client):
        """``(parsed measurement, argv, raw outputs)`` of the tool run in the client pod against the server."""
        params = self.params
        argv = measure_argv(params["tool"], server["status"]["podIP"], params["duration"])
        self.progress("measuring for %ss: %s" % (params["duration"], " ".join(argv)))
        answer = self.k8s.exec(self.namespace, client["metadata"]["name"], CONTAINER, argv,
                               timeout=params["duration"] + 60)
        stderr = answer.stderr + ("\n" + answer.message if answer.rc != 0 and answer.message else "")
        raw = {"measurement": answer.stdout, "measurement_stderr": stderr}
        if params["tool"] == "iperf3":
            return parse_iperf3_json(answer.stdout, reverse=True), argv, raw  # iperf3 -J reports errors in its JSON
        if answer.rc != 0:
            raise BandwidthTestError("netperf failed in %s/%s (exit %s): %s" % (
                self.namespace, client["metadata"]["name"], "?" if answer.rc is None else answer.rc,
                tail(stderr.strip() or answer.stdout, 10)), stderr=stderr, output=tail(answer.stdout))
        return parse_netperf(answer.stdout), argv, raw

    def agent_view(self, version, node):
        """What the agent on ``node`` says: ``(agent pod, cli, Bandwidth Manager status, map entries, raw)``."""
        agent, cli = self.agent_pod(node), table.agent_cli(version) or "cilium-dbg"
        status = self.k8s.exec(self.params["cilium_namespace"], agent, table.AGENT_CONTAINER, [cli, "status"],
                               timeout=60)
        raw = {"agent_status": status.stdout}
        try:
            bwm = parse_bandwidth_manager_status(status.stdout)
        except OutputParseError:
            bwm = None
        if bwm is not None and not bwm["enabled"]:
            raise BandwidthTestError("The Bandwidth Manager is off on the agent %s (node %s): `%s status` says "
                                     "BandwidthManager: %s. Restart the agents after enabling it."
                                     % (agent, node, cli, bwm["line"]), agent=agent)
        listed = self.k8s.exec(self.params["cilium_namespace"], agent, table.AGENT_CONTAINER,
                               [cli, "bpf", "bandwidth", "list"], timeout=60)
        text = listed.stdout + listed.stderr
        raw["bpf_bandwidth_list"] = text
        if bandwidth_manager_off_in_output(text):
            raise BandwidthTestError("The Bandwidth Manager is off on the agent %s (node %s): `%s bpf bandwidth "
                                     "list` says: %s" % (agent, node, cli, text.strip()), agent=agent)
        return agent, cli, bwm, parse_bpf_bandwidth_list(listed.stdout if listed.stdout.strip() else listed.stderr), raw

    def map_problem(self, ep_id, entry, cli, agent, limit):
        """Why the agent's map does not hold ``limit`` for the server's endpoint, or None when it does."""
        if ep_id is None:
            return "no CiliumEndpoint %s/%s with a status.id" % (self.namespace, self.params["server_name"])
        if entry is None:
            return "endpoint %s has no egress entry in `%s bpf bandwidth list` on %s" % (ep_id, cli, agent)
        if entry["bps"] != limit:
            return "endpoint %s is limited to %s in the agent's map, not %s" % (
                ep_id, entry["bandwidth"], format_decimal_si(limit))
        return None

    def measure(self, version, server, client):
        params = self.params
        parsed, argv, raw = self.throughput(server, client)
        limit = enforced_bps(params["limit_bps"])
        ratio, passed, reason = verdict(parsed["bps"], limit, params["tolerance"], params["min_ratio"])
        agent, cli, bwm, entries, agent_raw = self.agent_view(version, server["spec"]["nodeName"])
        raw.update(agent_raw)
        ep_id = self.endpoint_id(server["metadata"]["name"])
        entry = find_limit(entries, ep_id, "Egress") if ep_id is not None else None
        problem = self.map_problem(ep_id, entry, cli, agent, limit)
        if problem:
            passed, reason = False, "%s; and %s" % (reason, problem)
        return {
            "passed": passed, "reason": reason, "tool": params["tool"], "limit": params["limit"],
            "limit_bps": params["limit_bps"], "enforced_bps": limit, "measured_bps": parsed["bps"],
            "ratio": round(ratio, 4), "tolerance": params["tolerance"], "min_ratio": params["min_ratio"],
            "endpoint_id": ep_id, "map_limit": entry["bandwidth"] if entry else None,
            "map_entries": entries, "bandwidth_manager": bwm,
            "server_pod": server["metadata"]["name"], "server_node": server["spec"]["nodeName"],
            "server_ip": server["status"]["podIP"], "client_pod": client["metadata"]["name"],
            "client_node": client["spec"]["nodeName"], "agent_pod": agent,
            "cilium_version": str(version) if version else None, "measurement": parsed, "command": argv, "raw": raw,
        }


def run_module(module):
    """Entry point of the ``cilium_bandwidth_test`` module."""
    if module.check_mode:
        params = validate_params(module.params)
        return dict(changed=True, passed=None, limit_bps=params["limit_bps"], namespace=params["namespace"],
                    msg="check mode: would create namespace %s and measure with %s" % (
                        params["namespace"], params["tool"]))
    from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.k8s_service import K8sService

    def log_and_note(line):
        module.log(line)
        note_progress(line)

    return BandwidthTest(K8sService(module.k8s_client()), module.params, progress=log_and_note).run()
