# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""cilium_status: the pure evaluation on plain Kubernetes objects, the agents' recorded answers and the wait loop."""

from __future__ import annotations

import copy
import json
import os
import random

import pytest

from ansible_collections.cloudnet.cilium_eks.plugins.module_utils import cilium_parsers as parsers
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils import cilium_status as cs
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.errors import ValidationError
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.runner import CommandResult

RECORDINGS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "recordings", "cilium")
NODES = ["ip-192-168-0-11.ec2.internal", "ip-192-168-0-48.ec2.internal"]
IMAGE = "quay.io/cilium/cilium:v1.17.4@sha256:0123"
OP_IMAGE = "quay.io/cilium/operator-aws:v1.17.4@sha256:4567"


def recorded_status(path):
    with open(os.path.join(RECORDINGS, path), encoding="utf-8") as handle:
        status, source = parsers.parse_agent_status(handle.read())
    return {"source": source, "status": status}


def node(name, ip):
    return {"metadata": {"name": name}, "status": {"addresses": [{"type": "InternalIP", "address": ip}]}}


def agent_pod(name, node_name, ready=True, image=IMAGE):
    return {
        "metadata": {"name": name, "uid": "uid-" + name},
        "spec": {"nodeName": node_name, "containers": [{"name": "cilium-agent", "image": image}]},
        "status": {"phase": "Running",
                   "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                                   "reason": None if ready else "ContainersNotReady",
                                   "message": None if ready else "containers with unready status: [cilium-agent]"}],
                   "containerStatuses": [{"name": "cilium-agent", "restartCount": 0}]},
    }


def daemonset(desired=2, ready=2, image=IMAGE):
    return {"metadata": {"generation": 1},
            "spec": {"template": {"spec": {"containers": [{"name": "cilium-agent", "image": image}]}}},
            "status": {"observedGeneration": 1, "desiredNumberScheduled": desired, "numberReady": ready,
                       "updatedNumberScheduled": desired, "numberAvailable": ready}}


def deployment(ready=1, image=OP_IMAGE):
    return {"metadata": {"generation": 2},
            "spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "cilium-operator", "image": image}]}}},
            "status": {"observedGeneration": 2, "replicas": 1, "readyReplicas": ready, "updatedReplicas": 1,
                       "availableReplicas": ready}}


def cep(ip):
    return {"status": {"networking": {"node": ip}}}


def cluster(**changes):
    """A healthy two-node 1.17.4 ENI install (the agents answer with the recorded 1.17.4 status)."""
    base = {
        "ds": daemonset(), "dep": deployment(),
        "pods": [agent_pod("cilium-aaaaa", NODES[0]), agent_pod("cilium-bbbbb", NODES[1])],
        "config_data": {"ipam": "eni", "routing-mode": "native", "kube-proxy-replacement": "true"},
        "nodes": [node(NODES[0], "192.168.0.11"), node(NODES[1], "192.168.0.48")],
        "ceps": [cep("192.168.0.11"), cep("192.168.0.11"), cep("192.168.0.48")],
        "agent_results": {"cilium-aaaaa": recorded_status("1.17.4/status.txt"),
                          "cilium-bbbbb": recorded_status("1.17.4/status.model-derived.json")},
    }
    base.update(changes)
    return base


def evaluate(data, expect=None, node_filter=None):
    return cs.evaluate(data, expect=cs.validate_expect(expect), node_filter=node_filter)


def test_healthy_cluster_summary():
    status = evaluate(cluster())
    assert status["healthy"] is True, status["problems"]
    assert status["version"] == "1.17.4"
    assert status["ipam_mode"] == "eni" and status["routing_mode"] == "native"
    assert status["chaining_mode"] == "none" and status["kube_proxy_replacement"] is True
    assert status["bandwidth_manager"] == {"enabled": False, "congestion_control": None, "devices": []}
    assert status["endpoints"] == 3
    assert status["nodes"][NODES[0]]["endpoints"] == 2 and status["nodes"][NODES[1]]["endpoints"] == 1
    assert status["source"] == {NODES[0]: "text", NODES[1]: "json"}
    assert status["agent"]["rolled_out"] and status["operator"]["rolled_out"]


def test_not_ready_agent_is_named_with_its_node():
    data = cluster(ds=daemonset(ready=1), pods=[agent_pod("cilium-aaaaa", NODES[0]),
                                                agent_pod("cilium-bbbbb", NODES[1], ready=False)])
    del data["agent_results"]["cilium-bbbbb"]
    status = evaluate(data)
    assert status["healthy"] is False
    assert status["problems"] == [
        "agent DaemonSet kube-system/cilium not rolled out: 1/2 ready, 2/2 updated, 1/2 available",
        "node %s: agent pod kube-system/cilium-bbbbb is not Ready (phase Running; ContainersNotReady: containers "
        "with unready status: [cilium-agent])" % NODES[1],
    ]
    assert status["nodes"][NODES[0]]["healthy"] is True and status["nodes"][NODES[1]]["healthy"] is False


def test_agent_reporting_failure_and_exec_errors():
    failing = copy.deepcopy(recorded_status("1.17.4/status.model-derived.json"))
    failing["status"]["state"] = "Failure"  # derived: the recorded agent answer with its state set to Failure
    data = cluster(agent_results={"cilium-aaaaa": failing, "cilium-bbbbb": {"error": "could not read the agent status"}})
    status = evaluate(data)
    assert "node %s: agent state is Failure (1.17.4 (v1.17.4-55aecc0f))" % NODES[0] in status["problems"]
    assert "node %s: agent pod kube-system/cilium-bbbbb: could not read the agent status" % NODES[1] in status["problems"]


def test_missing_objects_are_reported():
    status = evaluate(cluster(ds=None, dep=None, pods=[], config_data=None, agent_results={}, ceps=None))
    assert status["problems"] == [
        "agent DaemonSet kube-system/cilium not found (is Cilium installed in kube-system?)",
        "operator Deployment kube-system/cilium-operator not found",
        "ConfigMap kube-system/cilium-config not found",
    ]
    assert status["endpoints"] is None


def test_expect_mismatches_are_listed():
    status = evaluate(cluster(), expect={"chaining_mode": "aws-cni", "bandwidth_manager": True, "ipam_mode": "eni",
                                         "kube_proxy_replacement": "false", "routing_mode": "NATIVE"})
    assert status["healthy"] is False and status["problems"] == []
    assert status["mismatches"] == ["bandwidth_manager: expected true, found false",
                                    "chaining_mode: expected aws-cni, found none",
                                    "kube_proxy_replacement: expected false, found true"]


def test_expected_version_checks_images_and_agents():
    data = cluster(pods=[agent_pod("cilium-aaaaa", NODES[0]),
                         agent_pod("cilium-bbbbb", NODES[1], image="quay.io/cilium/cilium:v1.16.19")])
    status = evaluate(data, expect={"version": "1.17"})
    assert status["mismatches"] == []
    assert status["problems"] == ["node %s: agent pod kube-system/cilium-bbbbb runs quay.io/cilium/cilium:v1.16.19, "
                                  "not version 1.17" % NODES[1]]
    status = evaluate(cluster(), expect={"version": "1.18.11"})
    assert "agent DaemonSet kube-system/cilium image %s is not version 1.18.11" % IMAGE in status["mismatches"]
    assert "node %s: agent reports version 1.17.4, not 1.18.11" % NODES[0] in status["problems"]


def test_node_subset_and_unknown_node():
    status = evaluate(cluster(), node_filter=[NODES[1], "ip-10-0-0-1.ec2.internal"])
    assert sorted(status["nodes"]) == sorted([NODES[1], "ip-10-0-0-1.ec2.internal"])
    assert status["problems"] == ["node ip-10-0-0-1.ec2.internal: no such node in the cluster"]
    assert status["endpoints"] == 1


def test_facts_fall_back_to_the_config_map_without_agents():
    data = cluster(pods=[], agent_results={}, config_data={"ipam": "cluster-pool", "cni-chaining-mode": "aws-cni",
                                                           "enable-bandwidth-manager": "true", "enable-bbr": "false",
                                                           "routing-mode": "native"})
    status = evaluate(data)
    assert status["chaining_mode"] == "aws-cni" and status["routing_mode"] == "native"
    assert status["bandwidth_manager"] == {"enabled": True, "congestion_control": "cubic", "devices": []}


@pytest.mark.parametrize("cm, routing, protocol", [
    ({"tunnel": "disabled", "ipam": "eni"}, "native", None),  # 1.13 keys
    ({"tunnel": "geneve"}, "tunnel", "geneve"),
    ({"routing-mode": "tunnel"}, "tunnel", "vxlan"),
    ({"ipam": "eni"}, "native", None),
])
def test_config_facts_routing(cm, routing, protocol):
    facts = cs.config_facts(cm)
    assert (facts["routing_mode"], facts["tunnel_protocol"]) == (routing, protocol)


@pytest.mark.parametrize("expect, name", [
    ({"chaining": "aws-cni"}, "expect"),
    ({"bandwidth_manager": "maybe"}, "expect.bandwidth_manager"),
    ({"ipam_mode": ["eni"]}, "expect.ipam_mode"),
    ({"version": "latest"}, "expect.version"),
])
def test_validate_expect_rejects(expect, name):
    with pytest.raises(ValidationError) as info:
        cs.validate_expect(expect)
    assert info.value.name == name


def test_validate_expect_merges_expected_version():
    assert cs.validate_expect({"bandwidth_manager": "yes"}, "1.18") == {"bandwidth_manager": True, "version": "1.18"}
    with pytest.raises(ValidationError):
        cs.validate_expect({"version": "1.17"}, "1.18")
    with pytest.raises(ValidationError):
        cs.validate_expect(None, "one.eighteen")


class FakeChecker(cs.CiliumStatusChecker):
    """The wait loop over a scripted sequence of cluster states, on a fake clock."""

    def __init__(self, states, **kwargs):  # pylint: disable=super-init-not-called
        self.states = list(states)
        self.now = 0.0
        self.clock = lambda: self.now
        self.sleeps = []
        self.expect = cs.validate_expect(kwargs.get("expect"))
        self.node_filter = None

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds

    def snapshot(self):
        data = self.states.pop(0) if len(self.states) > 1 else self.states[0]
        return evaluate(data, expect=self.expect)


def test_wait_returns_once_healthy_and_records_progress():
    not_ready = cluster(ds=daemonset(ready=1), pods=[agent_pod("cilium-aaaaa", NODES[0]),
                                                     agent_pod("cilium-bbbbb", NODES[1], ready=False)])
    checker = FakeChecker([not_ready, not_ready, not_ready, cluster()])
    status = checker.wait(timeout=60)
    assert status["healthy"] is True
    assert checker.sleeps == [cs.POLL_INTERVAL] * 3
    assert [p["summary"] for p in status["progress"]] == [
        "agent DaemonSet kube-system/cilium not rolled out: 1/2 ready, 2/2 updated, 1/2 available (+1 more)", "healthy"]
    assert status["progress"][1]["at"] == 1.5


def test_wait_times_out_with_a_summary_naming_the_node():
    not_ready = cluster(pods=[agent_pod("cilium-aaaaa", NODES[0]), agent_pod("cilium-bbbbb", NODES[1], ready=False)])
    checker = FakeChecker([not_ready])
    with pytest.raises(cs.CiliumNotHealthyError) as info:
        checker.wait(timeout=3)
    assert info.value.msg.startswith("Cilium is not healthy after waiting 3.0s (timeout 3s):\n- node %s" % NODES[1])
    assert info.value.details["status"]["healthy"] is False
    assert sum(checker.sleeps) == 3.0


def test_mismatch_on_a_settled_cluster_fails_without_waiting():
    checker = FakeChecker([cluster()], expect={"chaining_mode": "aws-cni"})
    with pytest.raises(cs.CiliumNotHealthyError) as info:
        checker.wait(timeout=300)
    assert checker.sleeps == []
    assert info.value.msg == ("Cilium is healthy but does not match what was expected:\n"
                              "- chaining_mode: expected aws-cni, found none")


def test_no_wait_reads_once():
    not_ready = cluster(ds=daemonset(ready=1))
    checker = FakeChecker([not_ready, cluster()])
    with pytest.raises(cs.CiliumNotHealthyError) as info:
        checker.wait(timeout=300, wait=False)
    assert checker.sleeps == [] and "(wait=false)" in info.value.msg


class FlakyApiChecker(FakeChecker):
    """FakeChecker whose scripted states may be an exception raised by ``snapshot`` (the API server down)."""

    def snapshot(self):
        state = self.states.pop(0) if len(self.states) > 1 else self.states[0]
        if isinstance(state, Exception):
            raise state
        return evaluate(state, expect=self.expect)


def test_wait_rides_out_an_api_server_restart():
    down = cs.ApiUnavailableError("Kubernetes API server https://127.0.0.1:6443 did not answer (connection refused)")
    checker = FlakyApiChecker([down, down, cluster()])
    status = checker.wait(timeout=60)
    assert status["healthy"] is True
    assert [p["summary"] for p in status["progress"]] == [str(down), "healthy"]


def test_api_server_down_until_the_timeout_is_a_clear_error():
    down = cs.ApiUnavailableError("Kubernetes API server https://127.0.0.1:6443 answered 503 Service Unavailable")
    checker = FlakyApiChecker([down])
    with pytest.raises(cs.ApiUnavailableError) as info:
        checker.wait(timeout=3)
    assert info.value.msg.startswith(str(down) + ", still after waiting 3.0s (timeout 3s)")
    assert "kubectl get --raw /readyz" in info.value.msg
    assert sum(checker.sleeps) == 3.0


# ------------------------------------------------------------------------------- sample_agents


def running_agent(name, node_name, ready=True):
    pod = agent_pod(name, node_name, ready=ready)
    pod["status"]["containerStatuses"][0]["state"] = {"running": {"startedAt": "2026-12-05T22:00:00Z"}}
    return pod


def many_agents(count):
    names = ["ip-10-0-%d-%d.ec2.internal" % (i // 250, i % 250) for i in range(count)]
    return names, [running_agent("cilium-%04d" % i, name) for i, name in enumerate(names)]


class SamplingChecker(cs.CiliumStatusChecker):
    """The real snapshot/choose/ask path; the cluster read and the execs are scripted (execs are counted)."""

    def __init__(self, pods, sample, seed=7):  # pylint: disable=super-init-not-called
        cs.CiliumStatusChecker.__init__(self, k8s=None, sample_agents=sample, rng=random.Random(seed))
        self.pods = pods
        self.execs = []

    def read_cluster(self):
        return {"ds": daemonset(desired=len(self.pods), ready=len(self.pods)), "dep": deployment(), "pods": self.pods,
                "config_data": {"ipam": "eni"}, "nodes": [], "ceps": []}

    def ask_agent(self, pod):
        self.execs.append(pod["metadata"]["name"])
        return recorded_status("1.17.4/status.model-derived.json")


def test_sample_asks_at_most_n_agents_and_counts_the_others_by_readiness():
    names, pods = many_agents(300)
    checker = SamplingChecker(pods, sample=20)
    status = checker.snapshot()
    assert status["healthy"] is True, status["problems"][:3]
    assert len(checker.execs) == 20 and len(set(checker.execs)) == 20
    assert sorted(status["source"].values()).count("ready") == 280
    assert {status["source"][pod["spec"]["nodeName"]] for pod in pods if pod["metadata"]["name"] in checker.execs} == {"json"}
    assert len(status["nodes"]) == 300 and names[0] in status["nodes"]


def test_sample_holds_while_waiting_and_replaces_pods_that_went():
    _names, pods = many_agents(50)
    checker = SamplingChecker(pods, sample=5)
    checker.snapshot()
    first = set(checker.execs)
    checker.snapshot()  # cached healthy answers: no new exec, same pick
    assert set(checker.execs) == first and len(checker.execs) == 5
    gone = sorted(first)[0]
    checker.pods = [p for p in pods if p["metadata"]["name"] != gone]
    checker.snapshot()
    assert len(checker.execs) == 6 and checker.execs[-1] not in first  # one new agent picked for the one gone


def test_sample_never_hides_an_agent_that_is_not_ready():
    _names, pods = many_agents(40)
    pods[7] = running_agent("cilium-0007", pods[7]["spec"]["nodeName"], ready=False)
    checker = SamplingChecker(pods, sample=3, seed=1)
    status = checker.snapshot()
    assert status["healthy"] is False
    assert any("cilium-0007 is not Ready" in problem for problem in status["problems"])


def test_sample_larger_than_the_cluster_asks_everyone():
    _names, pods = many_agents(4)
    checker = SamplingChecker(pods, sample=25)
    assert checker.snapshot()["healthy"] and sorted(checker.execs) == sorted(p["metadata"]["name"] for p in pods)


def test_pods_asked_once_without_a_sample_are_all_asked():
    _names, pods = many_agents(12)
    checker = SamplingChecker(pods, sample=0)
    status = checker.snapshot()
    assert len(checker.execs) == 12 and "ready" not in status["source"].values()


# ---------------------------------------------------------------------------------------- crash loops

MASQUERADE_PANIC = ("panic: Egress masquerading interfaces cannot be empty when IP masquerading is enabled with IPAM "
                    "mode other than ClusterPool or Kubernetes")


def recording(path):
    with open(os.path.join(RECORDINGS, path), encoding="utf-8") as handle:
        return handle.read()


def crashing_pod(name, node_name, restarts=3, message=None, generation="1"):
    """An agent pod whose container the kubelet holds in CrashLoopBackOff after ``restarts`` restarts; its last
    termination: exit code 2 (a Go panic) and the termination message the real 1.20.2 agent left (recorded)."""
    pod = agent_pod(name, node_name, ready=False)
    pod["metadata"]["labels"] = {"k8s-app": "cilium", "pod-template-generation": generation}
    pod["status"]["containerStatuses"] = [{
        "name": "cilium-agent", "restartCount": restarts, "ready": False,
        "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s restarting failed container"}},
        "lastState": {"terminated": {"exitCode": 2, "reason": "Error", "finishedAt": "2026-12-06T12:40:00Z",
                                     "message": recording("1.20.2/agent-crash-masquerade.termination-message.txt")
                                     if message is None else message}}}]
    return pod


def crash_cluster(with_log=True, **changes):
    """One Ready agent and one crash-looping one; ``with_log``: its ``logs --previous`` was read (recorded)."""
    data = cluster(ds=daemonset(ready=1), pods=[agent_pod("cilium-aaaaa", NODES[0]),
                                                crashing_pod("cilium-bbbbb", NODES[1], **changes)])
    del data["agent_results"]["cilium-bbbbb"]
    if with_log:
        data["crash_logs"] = {"cilium-bbbbb": recording("1.20.2/agent-crash-masquerade.log")}
    return data


def test_a_crash_looping_agent_is_named_with_its_panic():
    status = evaluate(crash_cluster())
    crash = status["nodes"][NODES[1]]["crash"]
    assert crash == {"restarts": 3, "exit_code": 2, "reason": "Error", "log_line": MASQUERADE_PANIC}
    assert "node %s: agent pod kube-system/cilium-bbbbb crash-loops (CrashLoopBackOff after 3 restarts; last exit " \
           "code 2, Error): %s" % (NODES[1], MASQUERADE_PANIC) in status["problems"]
    assert status["crash_looping"] == [NODES[1]]
    assert status["nodes"][NODES[0]]["crash"] is None


def test_the_termination_message_of_a_panic_is_only_its_stack_so_the_log_says_why():
    message = recording("1.20.2/agent-crash-masquerade.termination-message.txt")  # the kubelet's 2048 bytes
    assert not parsers.crash_reason_found(message)
    assert parsers.crash_reason_found(recording("1.20.2/agent-crash-masquerade.log"))
    without_log = evaluate(crash_cluster(with_log=False))["nodes"][NODES[1]]["crash"]
    assert without_log["log_line"] == message.strip().splitlines()[-1].strip()  # the best it has: the last line
    with_reason = evaluate(crash_cluster(with_log=False, message="x\n" + MASQUERADE_PANIC + "\ngoroutine 1 [running]:"))
    assert with_reason["nodes"][NODES[1]]["crash"]["log_line"] == MASQUERADE_PANIC


def test_a_few_restarts_or_an_old_template_are_not_a_crash_loop_to_stop_on():
    assert evaluate(crash_cluster(restarts=2))["crash_looping"] == []
    assert evaluate(crash_cluster(generation="0"))["crash_looping"] == []  # the DaemonSet is at generation 1
    assert cs.evaluate(crash_cluster(), crash_loop_restarts=0)["crash_looping"] == []


@pytest.mark.parametrize("log, line", [
    ('time=2026-12-06T12:40:00Z level=info msg="Starting"\ntime=2026-12-06T12:40:01Z level=fatal '
     'msg="failed to start: daemon creation failed" error="x"\n',
     'time=2026-12-06T12:40:01Z level=fatal msg="failed to start: daemon creation failed" error="x"'),
    ('level=error msg="Start hook failed" error="a"\nlevel=info msg="Stopping"\n', 'level=error msg="Start hook failed" '
     'error="a"'),
    ("fatal error: concurrent map writes\n\ngoroutine 7 [running]:\nmain.f()\n", "fatal error: concurrent map writes"),
    ("just a line\nand the last one\n", "and the last one"),
    ("", None),
])
def test_crash_reason_prefers_the_line_that_says_why(log, line):
    assert parsers.crash_reason(log) == line


class CrashChecker(FakeChecker):
    def snapshot(self):
        data = self.states.pop(0) if len(self.states) > 1 else self.states[0]
        return cs.evaluate(data, expect=self.expect, crash_loop_restarts=self.crash_loop_restarts)


def test_the_wait_stops_on_a_crash_loop_and_names_it():
    starting = crash_cluster(restarts=1)
    checker = CrashChecker([starting, starting, crash_cluster()])
    checker.crash_loop_restarts = 3
    with pytest.raises(cs.CiliumNotHealthyError) as info:
        checker.wait(timeout=600)
    assert sum(checker.sleeps) == 2 * cs.POLL_INTERVAL
    assert info.value.msg.startswith("Cilium agents crash-loop on %s (stopped waiting after 1.0s of 600s" % NODES[1])
    assert MASQUERADE_PANIC in info.value.msg
    checker = CrashChecker([crash_cluster()])
    checker.crash_loop_restarts = 0  # wait them out
    with pytest.raises(cs.CiliumNotHealthyError) as info:
        checker.wait(timeout=3)
    assert sum(checker.sleeps) == 3.0 and info.value.msg.startswith("Cilium is not healthy after waiting 3.0s")


class LoggedK8s:
    def __init__(self, text):
        self.text, self.calls = text, []

    def logs(self, namespace, pod, container, previous=False, tail_lines=None):
        self.calls.append((namespace, pod, container, previous, tail_lines))
        return self.text


def test_the_previous_log_is_read_once_per_crash_and_only_when_needed():
    checker = cs.CiliumStatusChecker(k8s=None)
    checker.k8s = LoggedK8s("panic: boom\n")
    stack_only = crashing_pod("cilium-bbbbb", NODES[1], message="goroutine 1 [running]:\nmain.main()\n")
    assert checker.crash_logs([stack_only, agent_pod("cilium-aaaaa", NODES[0])]) == {"cilium-bbbbb": "panic: boom\n"}
    assert checker.crash_logs([stack_only]) == {"cilium-bbbbb": "panic: boom\n"}
    assert checker.k8s.calls == [("kube-system", "cilium-bbbbb", "cilium-agent", True, cs.CRASH_LOG_LINES)]
    assert checker.crash_logs([crashing_pod("cilium-bbbbb", NODES[1], restarts=4, message="x")]) == {
        "cilium-bbbbb": "panic: boom\n"}  # the next crash: read again
    assert len(checker.k8s.calls) == 2
    assert checker.crash_logs([crashing_pod("cilium-ccccc", NODES[1], message=MASQUERADE_PANIC)]) == {}


class ExecK8s:
    """A K8sService whose exec raises ``error``."""

    def __init__(self, error):
        self.error, self.calls = error, 0

    def exec(self, namespace, pod, container, argv, timeout):
        self.calls += 1
        raise self.error


def test_an_exec_that_cannot_be_made_as_asked_ends_the_check_while_others_are_retried():
    """An impersonating client cannot exec (K8sService refuses): waiting out the timeout would not help."""
    refused = ValidationError("impersonate_user", "cannot be applied to an exec into a pod")
    with pytest.raises(ValidationError, match="impersonate_user"):
        cs.CiliumStatusChecker(ExecK8s(refused)).ask_agent(agent_pod("cilium-aaaaa", NODES[0]))
    blip = ExecK8s(OSError("connection reset"))
    answer = cs.CiliumStatusChecker(blip).ask_agent(agent_pod("cilium-aaaaa", NODES[0]))
    assert "connection reset" in answer["error"] and blip.calls == 2  # JSON, then text: reported


# ---------------------------------------------------------------------------------- the CLI cross-check


class CliRunner:
    """The Cilium CLI as the runner gives it: ``run(args, check, env)`` -> CommandResult (``answer``: stdout text or
    an exception)."""

    def __init__(self, answer, rc=0):
        self.answer, self.rc, self.calls = answer, rc, []

    def run(self, args, check=True, env=None):
        self.calls.append((list(args), env))
        if isinstance(self.answer, Exception):
            raise self.answer
        return CommandResult(["cilium"] + list(args), self.rc, self.answer, "", 1.0)


def settled(agents=2, operator=2):
    """The status this module reads on the recorded cluster: ``agents`` agents and ``operator`` operators Ready."""
    status = evaluate(cluster(ds=daemonset(desired=agents, ready=agents)))
    status["operator"].update(replicas=operator, ready=operator)
    return status


def test_the_cli_json_report_of_real_agents():
    report = parsers.parse_cli_status_json(recording("1.20.2/cli-status.json"))
    agent = report["components"]["cilium"]
    assert (agent["type"], agent["desired"], agent["ready"], agent["available"]) == ("DaemonSet", 2, 2, 2)
    assert agent["errors"] == [] and agent["summary"] == "OK"
    assert report["components"]["cilium-operator"]["type"] == "Deployment"
    assert report["helm_chart_version"] == "1.20.2"
    assert report["pods"]["all"] >= report["pods"]["by_cilium"]


def test_the_cli_cross_check_passes_when_it_agrees():
    operators = parsers.parse_cli_status_json(recording("1.20.2/cli-status.json"))["components"]["cilium-operator"]
    status = settled(operator=operators["ready"])
    runner = CliRunner(recording("1.20.2/cli-status.json"))
    checked = cs.with_cli_check(status, runner, {"namespace": "kube-system", "kubeconfig": "/k", "context": "c"},
                                cs.DEFAULT_TARGET)
    assert checked["healthy"] and checked["cli"]["disagreements"] == [] and checked["cli"]["exit_code"] == 0
    assert runner.calls == [(["status", "-o", "json", "--namespace", "kube-system", "--context", "c"],
                             {"KUBECONFIG": "/k"})]


def test_the_cli_cross_check_names_what_differs():
    report = json.loads(recording("1.20.2/cli-status.json"))
    pod = sorted(report["cilium_status"])[0]  # an agent pod the CLI asked
    report["errors"] = {"cilium": {pod: {"Errors": ["controller ipcache-inject-labels is failing since 5s (3x): x"],
                                         "Warnings": [], "Disabled": False}}}  # derived: an error added
    status = cs.with_cli_check(settled(agents=3), CliRunner(json.dumps(report)), {"namespace": "kube-system"},
                               cs.DEFAULT_TARGET)
    assert status["healthy"] is False
    assert status["cli"]["disagreements"][0] == ("the Cilium CLI reports errors in cilium: %s: controller "
                                                 "ipcache-inject-labels is failing since 5s (3x): x" % pod)
    assert "the Cilium CLI counts cilium 2/2 ready, the API 3/3" in status["cli"]["disagreements"]
    assert status["cli"]["disagreements"][0] in status["problems"]


def test_a_cli_that_cannot_be_read_is_a_disagreement():
    status = cs.with_cli_check(settled(), CliRunner("Error: unable to connect"), {"namespace": "kube-system"},
                               cs.DEFAULT_TARGET)
    assert status["healthy"] is False
    assert status["cli"]["disagreements"][0].startswith("`cilium status -o json --namespace kube-system` could not "
                                                        "be read: not the JSON of `cilium status -o json`")


class CrossCheckModule:
    """What ``run_module`` uses of a module: its params, a temporary directory, the cilium runner, the client."""

    def __init__(self, tmpdir, **params):
        self.tmpdir = str(tmpdir)
        self.params = dict({"timeout": 1, "wait": True, "namespace": "kube-system", "agent_daemonset": "cilium",
                            "operator_deployment": "cilium-operator", "crash_loop_restarts": 3,
                            "cli_cross_check": True, "kubeconfig": None, "context": None}, **params)

    def runner(self, binary, path_option=None):
        return CliRunner(recording("1.20.2/cli-status.json"))

    def k8s_client(self):
        return object()


def test_the_cli_cross_check_reaches_the_cluster_of_the_host_and_token_options(tmp_path, monkeypatch):
    """With ``host`` and ``api_key`` (AWX's Kubernetes credential) and no kubeconfig, the CLI must not fall back
    to ~/.kube/config, which may be another cluster: it gets a kubeconfig written from those options."""
    seen = {}
    monkeypatch.setattr(cs, "status_result", lambda checker, params, runner: seen.update(params=params))
    cs.run_module(CrossCheckModule(tmp_path, host="https://10.0.0.1:443", api_key="secret"))
    written = seen["params"]["kubeconfig"]
    assert written and os.path.dirname(written) == str(tmp_path) and os.stat(written).st_mode & 0o777 == 0o600
    with open(written, encoding="utf-8") as handle:
        text = handle.read()
    assert "https://10.0.0.1:443" in text and "secret" in text
    cs.run_module(CrossCheckModule(tmp_path, kubeconfig="/k"))
    assert seen["params"]["kubeconfig"] == "/k"


def test_status_result_names_the_api_servers_version():
    """The version the module's reachability probe read (check_reachable), without asking the server again."""
    class Answers:
        def server_version(self):  # K8sService.server_version (tests/unit/.../test_k8s_service.py)
            return "v1.34.4"

    class Settled(cs.CiliumStatusChecker):
        def wait(self, timeout, wait=True, interval=cs.POLL_INTERVAL):
            return settled(agents=2)

    result = cs.status_result(Settled(Answers()), {"timeout": 1, "wait": True, "namespace": "kube-system"})
    assert result["status"]["kubernetes_version"] == "v1.34.4" and result["status"]["healthy"] is True


def test_status_result_fails_when_the_cli_disagrees_with_a_healthy_status():
    class Settled(cs.CiliumStatusChecker):
        def wait(self, timeout, wait=True, interval=cs.POLL_INTERVAL):
            return settled(agents=3)

    with pytest.raises(cs.CiliumNotHealthyError) as info:
        cs.status_result(Settled(None), {"timeout": 1, "wait": True, "namespace": "kube-system"},
                         CliRunner(recording("1.20.2/cli-status.json")))
    assert info.value.msg.startswith("Cilium is healthy by the agents' own status, but the Cilium CLI's `cilium "
                                     "status` disagrees:\n- the Cilium CLI counts cilium 2/2 ready, the API 3/3")


@pytest.mark.parametrize("cm, masquerading", [
    ({"enable-ipv4-masquerade": "false"}, "disabled"),
    ({"enable-ipv4-masquerade": "true"}, "iptables"),
    ({"enable-ipv4-masquerade": "true", "enable-bpf-masquerade": "true"}, "bpf"),
    ({}, None),
])
def test_masquerading_comes_from_the_config_when_no_agent_answered(cm, masquerading):
    """cilium-config keys enable-ipv4-masquerade / enable-bpf-masquerade (templates/cilium-configmap.yaml)."""
    assert cs.config_facts(cm)["masquerading"] == masquerading
    assert cs.summary_facts(cm, {})["masquerading"] == masquerading
