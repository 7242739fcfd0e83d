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
import re
import time

from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.bandwidth_parsers import (
    OutputParseError,
    bandwidth_manager_off_in_output,
    find_limit,
    parse_bandwidth_manager_status,
    parse_bpf_bandwidth_list,
    parse_iperf3_json,
    parse_netperf,
)
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.errors import CiliumEksError, ValidationError
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.quantity import (
    enforced_bps,
    format_decimal_si,
    parse_bandwidth,
)

EGRESS_ANNOTATION = "kubernetes.io/egress-bandwidth"
INGRESS_ANNOTATION = "kubernetes.io/ingress-bandwidth"
MANAGED_BY = ("app.kubernetes.io/managed-by", "cloudnet.cilium_eks")
PURPOSE = ("cloudnet.cilium-eks/purpose", "bandwidth-test")
NAME_LABEL = "app.kubernetes.io/name"
CONTAINER = "netperf"
AGENT_CONTAINER = "cilium-agent"
INGRESS_SINCE = (1, 18, 0)  # ingress-bandwidth enforced by the agent from 1.18 (docs, bwmap direction key)
CILIUM_DBG_SINCE = (1, 15, 0)  # the agent CLI is cilium-dbg from 1.15 (cilium is a symlink to it)
PULL_FAILURES = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull")
TOOLS = ("netperf", "iperf3")
_VERSION = re.compile(r"v?(\d+)\.(\d+)\.(\d+)")
# The module's option defaults (its argument_spec reads them), so render.yml renders what a run creates.
DEFAULTS = dict(limit="10M", tool="netperf", image="cilium/netperf", duration=10, tolerance=0.05, min_ratio=0.5,
                namespace="cilium-bandwidth-test", server_name="netperf-server", client_name="netperf-client",
                cilium_namespace="kube-system", timeout=300, keep=False)


class BandwidthTestError(CiliumEksError):
    """The test could not run, or the cluster is not in a state where it means something."""


def parse_version(text):
    match = _VERSION.search(text or "")
    return tuple(int(g) for g in match.groups()) if match else None


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
    if not re.match(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", params["namespace"] or ""):
        raise ValidationError("namespace", "must be a DNS-1123 label (lower case, digits, '-', at most 63)",
                              value=params["namespace"])
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
    names = []
    for node in nodes:
        spec, status = node.spec, node.status
        if spec.unschedulable:
            continue
        if any(t.effect in ("NoSchedule", "NoExecute") for t in (spec.taints or [])):
            continue
        if not any(c.type == "Ready" and c.status == "True" for c in (status.conditions or [])):
            continue
        names.append(node.metadata.name)
    return sorted(names)


def namespace_manifest(namespace):
    """The test's own namespace, labelled so that a later run knows it may delete it."""
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": namespace, "labels": {PURPOSE[0]: PURPOSE[1], MANAGED_BY[0]: MANAGED_BY[1]}}}


def bandwidth_test_manifests(options, cilium_version=None):
    """[namespace, server pod, client pod] a run with ``options`` (module defaults for the rest) creates.

    ``cilium_version`` is a (major, minor, patch) tuple or None (then ingress_limit is not checked against it).
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
    if params.get("ingress_limit") and cilium_version and cilium_version < INGRESS_SINCE:
        raise ValidationError("ingress_limit", "Cilium %s does not enforce kubernetes.io/ingress-bandwidth "
                              "(1.18 and later do)" % ".".join(map(str, cilium_version)),
                              value=params["ingress_limit"])
    return server, client


def measure_argv(tool, server_ip, duration):
    """The measurement command run in the client pod (argv list)."""
    if tool == "iperf3":
        return ["iperf3", "-c", server_ip, "-R", "-J", "-t", str(duration)]
    return ["netperf", "-H", server_ip, "-t", "TCP_MAERTS", "-l", str(duration)]


def agent_cli(cilium_version):
    return "cilium-dbg" if cilium_version is None or cilium_version >= CILIUM_DBG_SINCE else "cilium"


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


class Cluster:
    """The few Kubernetes calls the test needs, on one ``ApiClient``."""

    def __init__(self, api_client, progress=None):
        from kubernetes import client

        self.api_client = api_client
        self.core = client.CoreV1Api(api_client)
        self.apps = client.AppsV1Api(api_client)
        self.custom = client.CustomObjectsApi(api_client)
        self.progress = progress or (lambda msg: None)

    @staticmethod
    def _status(exc):
        return getattr(exc, "status", None)

    def exec(self, namespace, pod, container, argv, timeout):
        """Run argv in a container -> (rc, stdout, stderr). rc is None when the runtime gave no code."""
        from kubernetes.stream import stream
        from kubernetes.stream.ws_client import ERROR_CHANNEL

        resp = stream(self.core.connect_get_namespaced_pod_exec, pod, namespace, container=container,
                      command=list(argv), stdout=True, stderr=True, stdin=False, tty=False,
                      _preload_content=False)
        out, err = [], []
        deadline = time.monotonic() + timeout
        try:
            while resp.is_open():
                if time.monotonic() > deadline:
                    raise BandwidthTestError("`%s` in %s/%s did not finish within %ss"
                                             % (" ".join(argv), namespace, pod, timeout))
                resp.update(timeout=1)
                if resp.peek_stdout():
                    out.append(resp.read_stdout())
                if resp.peek_stderr():
                    err.append(resp.read_stderr())
            status_text = resp.read_channel(ERROR_CHANNEL)
        finally:
            resp.close()
        rc = 0
        if status_text:
            try:
                status = json.loads(status_text)
            except ValueError:
                status = {"status": "Failure", "message": status_text}
            if status.get("status") != "Success":
                rc = None
                for cause in (status.get("details") or {}).get("causes") or []:
                    if cause.get("reason") == "ExitCode":
                        rc = int(cause.get("message", 1))
                if rc is None:
                    rc = 1
                    message = status.get("message") or ""
                    match = re.search(r"exit status (\d+)", message)
                    rc = int(match.group(1)) if match else 1
                    if message:
                        err.append("\n" + message)
        return rc, "".join(out), "".join(err)


class BandwidthTest:
    """One run of the test. ``run()`` returns the module result; cleanup happens in ``run`` itself."""

    def __init__(self, api_client, params, progress=None):
        self.params = validate_params(params)
        self.k8s = Cluster(api_client, progress)
        self.progress = self.k8s.progress
        self.namespace = self.params["namespace"]
        self.created_namespace = False
        self.raw = {}

    # ------------------------------------------------------------------------ cluster facts
    def cilium_version(self):
        from kubernetes.client.rest import ApiException

        try:
            ds = self.k8s.apps.read_namespaced_daemon_set("cilium", self.params["cilium_namespace"])
        except ApiException as exc:
            if Cluster._status(exc) == 404:
                raise BandwidthTestError("No Cilium DaemonSet `cilium` in namespace %s: install Cilium first, or "
                                         "set cilium_namespace." % self.params["cilium_namespace"])
            raise
        image = next((c.image for c in ds.spec.template.spec.containers if c.name == AGENT_CONTAINER),
                     ds.spec.template.spec.containers[0].image)
        return parse_version(image.rsplit("/", 1)[-1].split("@")[0].partition(":")[2]), image

    def config_says_enabled(self):
        from kubernetes.client.rest import ApiException

        try:
            cm = self.k8s.core.read_namespaced_config_map("cilium-config", self.params["cilium_namespace"])
        except ApiException as exc:
            if Cluster._status(exc) == 404:
                return None
            raise
        return (cm.data or {}).get("enable-bandwidth-manager", "false")

    # ----------------------------------------------------------------------------- namespace
    def ensure_namespace(self):
        from kubernetes.client.rest import ApiException

        try:
            existing = self.k8s.core.read_namespace(self.namespace)
        except ApiException as exc:
            if Cluster._status(exc) != 404:
                raise
            existing = None
        if existing is not None:
            labels = existing.metadata.labels or {}
            if labels.get(PURPOSE[0]) != PURPOSE[1]:
                raise ValidationError("namespace", "namespace exists and was not created by this module (no label "
                                      "%s=%s); the test deletes its namespace, so pick a new name" % PURPOSE,
                                      value=self.namespace)
            self.progress("namespace %s left by an earlier run: deleting it first" % self.namespace)
            self.delete_namespace(wait=True)
        self.k8s.core.create_namespace(namespace_manifest(self.namespace))
        self.created_namespace = True

    def delete_namespace(self, wait=True):
        from kubernetes.client.rest import ApiException

        try:
            self.k8s.core.delete_namespace(self.namespace, grace_period_seconds=0)
        except ApiException as exc:
            if Cluster._status(exc) != 404:
                raise
            return True
        if not wait:
            return False
        deadline = time.monotonic() + self.params["timeout"]
        while time.monotonic() < deadline:
            try:
                self.k8s.core.read_namespace(self.namespace)
            except ApiException as exc:
                if Cluster._status(exc) == 404:
                    return True
                raise
            time.sleep(0.5)
        return False

    # ---------------------------------------------------------------------------------- pods
    def wait_for_pods(self, names, schedulable):
        """Watch the namespace until every pod runs; fail early on pull or scheduling failures."""
        from kubernetes import watch

        deadline = time.monotonic() + self.params["timeout"]
        state = {}
        reported = set()
        while time.monotonic() < deadline:
            pods = self.k8s.core.list_namespaced_pod(self.namespace)
            for pod in pods.items:
                state[pod.metadata.name] = pod
            if all(n in state and self._running(state[n], schedulable) for n in names):
                return {n: state[n] for n in names}
            for name in names:
                if name in state:
                    phase = state[name].status.phase
                    if (name, phase) not in reported:
                        reported.add((name, phase))
                        self.progress("pod %s: %s%s" % (name, phase, (" on %s" % state[name].spec.node_name)
                                                        if state[name].spec.node_name else ""))
            remaining = max(1, int(deadline - time.monotonic()))
            stream = watch.Watch()
            try:
                for event in stream.stream(self.k8s.core.list_namespaced_pod, self.namespace,
                                           resource_version=pods.metadata.resource_version,
                                           timeout_seconds=min(remaining, 30)):
                    pod = event["object"]
                    state[pod.metadata.name] = pod
                    if all(n in state and self._running(state[n], schedulable) for n in names):
                        return {n: state[n] for n in names}
            finally:
                stream.stop()
        waiting = ", ".join("%s (%s)" % (n, state[n].status.phase if n in state else "absent") for n in names)
        raise BandwidthTestError("Test pods not running after %ss: %s" % (self.params["timeout"], waiting))

    def _running(self, pod, schedulable):
        """True when Running; raises on a pull failure or an unschedulable pod."""
        name = pod.metadata.name
        for cs in (pod.status.container_statuses or []):
            waiting = cs.state and cs.state.waiting
            if waiting and waiting.reason in PULL_FAILURES:
                raise BandwidthTestError(
                    "Image %s cannot be pulled for pod %s/%s (%s: %s). Set `image` to an image the nodes can pull "
                    "(it needs %s)." % (cs.image, self.namespace, name, waiting.reason, waiting.message or "",
                                        self.params["tool"]), pod=name, image=cs.image, reason=waiting.reason)
        for cond in (pod.status.conditions or []):
            if cond.type == "PodScheduled" and cond.status == "False" and cond.reason == "Unschedulable":
                raise BandwidthTestError(
                    "Pod %s/%s cannot be scheduled: %s. The test needs two schedulable nodes (server and client on "
                    "different nodes); found %d: %s." % (self.namespace, name, cond.message, len(schedulable),
                                                         ", ".join(schedulable) or "none"),
                    pod=name, schedulable_nodes=schedulable)
        return pod.status.phase == "Running" and bool(pod.status.pod_ip)

    # ------------------------------------------------------------------------------- agent
    def agent_pod(self, node):
        pods = self.k8s.core.list_namespaced_pod(self.params["cilium_namespace"], label_selector="k8s-app=cilium",
                                                 field_selector="spec.nodeName=%s" % node).items
        running = [p for p in pods if p.status.phase == "Running" and not p.metadata.deletion_timestamp]
        if not running:
            raise BandwidthTestError("No running Cilium agent pod on node %s (namespace %s, label k8s-app=cilium)"
                                     % (node, self.params["cilium_namespace"]), node=node)
        return running[0].metadata.name

    def endpoint_id(self, pod):
        from kubernetes.client.rest import ApiException

        deadline = time.monotonic() + min(60, self.params["timeout"])
        while True:
            try:
                cep = self.k8s.custom.get_namespaced_custom_object("cilium.io", "v2", self.namespace,
                                                                   "ciliumendpoints", pod)
                ep_id = (cep.get("status") or {}).get("id")
                if ep_id:
                    return int(ep_id)
            except ApiException as exc:
                if Cluster._status(exc) != 404:
                    raise
            if time.monotonic() > deadline:
                return None
            time.sleep(1)

    # --------------------------------------------------------------------------------- run
    def run(self):
        params = self.params
        version, image = self.cilium_version()
        self.progress("Cilium %s (%s)" % (".".join(map(str, version)) if version else "unknown", image))
        configured = self.config_says_enabled()
        if configured is not None and configured != "true":
            raise BandwidthTestError(
                "The Bandwidth Manager is off: cilium-config has enable-bandwidth-manager=%r. Enable it first "
                "(role cloudnet.cilium_eks.bandwidth_manager, or bandwidthManager.enabled=true)." % configured,
                enable_bandwidth_manager=configured)
        server_body, client_body = pod_manifests(params, version)
        nodes = self.k8s.core.list_node().items
        schedulable = schedulable_nodes(nodes)
        if len(schedulable) < 2:
            raise BandwidthTestError(
                "The test needs two schedulable nodes (the client is kept off the server's node by pod "
                "anti-affinity, as in the blog); found %d schedulable node%s out of %d: %s."
                % (len(schedulable), "" if len(schedulable) == 1 else "s", len(nodes), ", ".join(schedulable) or
                   "none"), schedulable_nodes=schedulable)
        result = {"changed": True, "namespace": self.namespace, "cleaned_up": False}
        try:
            self.ensure_namespace()
            self.k8s.core.create_namespaced_pod(self.namespace, server_body)
            self.k8s.core.create_namespaced_pod(self.namespace, client_body)
            self.progress("waiting for pods %s and %s" % (params["server_name"], params["client_name"]))
            pods = self.wait_for_pods([params["server_name"], params["client_name"]], schedulable)
            server, client = pods[params["server_name"]], pods[params["client_name"]]
            if server.spec.node_name == client.spec.node_name:
                raise BandwidthTestError("Server and client pods landed on the same node %s despite the "
                                         "anti-affinity" % server.spec.node_name)
            try:
                measured = self.measure(version, server, client)
            except Exception as exc:  # pylint: disable=broad-except  # say so if a node or pod went away meanwhile
                self.fail_if_lost([server, client], exc)
                raise
            self.fail_if_lost([server, client])  # a measurement across a vanished node means nothing
            result.update(measured)
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

    def lost_during_test(self, pods):
        """What went away of the test's pods and their nodes (node removed, pod deleted), as sentences."""
        from kubernetes.client.rest import ApiException

        lost = []
        for pod in pods:
            name, node = pod.metadata.name, pod.spec.node_name
            for read, what in ((lambda: self.k8s.core.read_node(node), "node %s (running pod %s) was removed"
                                % (node, name)),
                               (lambda: self.k8s.core.read_namespaced_pod(name, self.namespace),
                                "pod %s/%s on node %s was deleted" % (self.namespace, name, node))):
                try:
                    found = read()
                except ApiException as exc:
                    if Cluster._status(exc) != 404:
                        raise
                    found = None
                if found is None or found.metadata.deletion_timestamp:
                    lost.append(what)
                    break
        return lost

    def fail_if_lost(self, pods, cause=None):
        lost = self.lost_during_test(pods)
        if lost:
            raise BandwidthTestError(
                "The bandwidth test was cut short: %s. Its pods were deleted; run it again (on the remaining nodes, "
                "or once the node is back)." % "; ".join(lost), lost=lost, cause=str(cause) if cause else None)

    def measure(self, version, server, client):
        params = self.params
        server_ip = server.status.pod_ip
        argv = measure_argv(params["tool"], server_ip, params["duration"])
        self.progress("measuring for %ss: %s" % (params["duration"], " ".join(argv)))
        rc, out, err = self.k8s.exec(self.namespace, client.metadata.name, CONTAINER, argv,
                                     timeout=params["duration"] + 60)
        raw = {"measurement": out, "measurement_stderr": err}
        if params["tool"] == "iperf3":
            parsed = parse_iperf3_json(out, reverse=True)  # iperf3 -J reports errors in its JSON
        else:
            if rc != 0 and not out.strip():
                raise BandwidthTestError("netperf failed in %s/%s (exit %s): %s" % (
                    self.namespace, client.metadata.name, rc, (err or "").strip()), stderr=err)
            parsed = parse_netperf(out)
        if rc not in (0, None) and params["tool"] == "netperf":
            raise OutputParseError("netperf", "exit code %s" % rc, out + err)
        measured = parsed["bps"]
        limit_enforced = enforced_bps(params["limit_bps"])
        ratio, passed, reason = verdict(measured, limit_enforced, params["tolerance"], params["min_ratio"])

        agent = self.agent_pod(server.spec.node_name)
        cli = agent_cli(version)
        _rc, status_out, status_err = self.k8s.exec(params["cilium_namespace"], agent, AGENT_CONTAINER,
                                                    [cli, "status"], timeout=60)
        raw["agent_status"] = status_out
        try:
            bwm = parse_bandwidth_manager_status(status_out)
        except OutputParseError:
            bwm = None
        if bwm is not None and not bwm["enabled"]:
            raise BandwidthTestError("The Bandwidth Manager is off on the agent %s (node %s): `%s status` says "
                                     "BandwidthManager: %s. Restart the agents after enabling it."
                                     % (agent, server.spec.node_name, cli, bwm["line"]), agent=agent)
        _rc, list_out, list_err = self.k8s.exec(params["cilium_namespace"], agent, AGENT_CONTAINER,
                                                [cli, "bpf", "bandwidth", "list"], timeout=60)
        raw["bpf_bandwidth_list"] = list_out + list_err
        if bandwidth_manager_off_in_output(list_out + list_err):
            raise BandwidthTestError("The Bandwidth Manager is off on the agent %s (node %s): `%s bpf bandwidth "
                                     "list` says: %s" % (agent, server.spec.node_name, cli,
                                                         (list_out + list_err).strip()), agent=agent)
        entries = parse_bpf_bandwidth_list(list_out if list_out.strip() else list_err)
        ep_id = self.endpoint_id(server.metadata.name)
        entry = find_limit(entries, ep_id, "Egress") if ep_id is not None else None
        map_ok = entry is not None and entry["bps"] == limit_enforced
        if not map_ok:
            passed = False
            if ep_id is None:
                why = "no CiliumEndpoint %s/%s with a status.id" % (self.namespace, server.metadata.name)
            elif entry is None:
                why = "endpoint %s has no egress entry in `%s bpf bandwidth list` on %s" % (ep_id, cli, agent)
            else:
                why = "endpoint %s is limited to %s in the agent's map, not %s" % (
                    ep_id, entry["bandwidth"], format_decimal_si(limit_enforced))
            reason = "%s; and %s" % (reason, why)
        return {
            "passed": passed, "reason": reason, "tool": params["tool"], "limit": params["limit"],
            "limit_bps": params["limit_bps"], "enforced_bps": limit_enforced, "measured_bps": measured,
            "ratio": round(ratio, 4), "tolerance": params["tolerance"], "min_ratio": params["min_ratio"],
            "endpoint_id": ep_id, "map_limit": entry["bandwidth"] if entry else None,
            "map_entries": entries, "bandwidth_manager": bwm,
            "server_pod": server.metadata.name, "server_node": server.spec.node_name, "server_ip": server_ip,
            "client_pod": client.metadata.name, "client_node": client.spec.node_name, "agent_pod": agent,
            "cilium_version": ".".join(map(str, version)) if version else None, "measurement": parsed,
            "command": argv, "raw": raw,
        }


def run_bandwidth_test(api_client, params, progress=None):
    return BandwidthTest(api_client, params, progress).run()
