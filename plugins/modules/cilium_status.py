#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: cilium_status
short_description: Wait until Cilium is healthy and report how it is configured
version_added: 0.1.0
description:
  - Reads the Cilium agent DaemonSet, the operator Deployment and the agent pods through the Kubernetes
    API, then asks every agent for its own status (C(cilium-dbg status -o json) from Cilium 1.15,
    C(cilium status -o json) before, run with an exec into the C(cilium-agent) container; the text form is
    parsed when the JSON form is not available).
  - With O(wait=true) (the default) it waits until the DaemonSet and the operator are fully rolled out
    (with the expected version when O(expected_version) is given) and every agent reports OK, re-checking
    about twice a second, and fails after O(timeout) seconds with a summary of what is unhealthy and on
    which node.
  - An agent that crash-loops is named with its last termination, its exit code and the log line that says why
    (the Go C(panic) line, Cilium's C(level=fatal) line, else the last error line), read from the termination
    message or from C(kubectl logs --previous). Once an agent of the DaemonSet's current template has restarted
    O(crash_loop_restarts) times, the wait stops at once instead of running out O(timeout).
  - Returns the version, the health of the agent on each node, the IPAM mode, the routing mode, the CNI
    chaining mode, kube-proxy replacement, the Bandwidth Manager state and the number of endpoints.
  - Read-only; never reports a change.
author:
  - cloudnet.cilium_eks contributors (@cloudnet)
extends_documentation_fragment:
  - cloudnet.cilium_eks.k8s_auth
  - cloudnet.cilium_eks.attributes.read_only
options:
  namespace:
    description: Namespace Cilium is installed in.
    type: str
    default: kube-system
  agent_daemonset:
    description: Name of the agent DaemonSet (its pods carry the label C(k8s-app=cilium)).
    type: str
    default: cilium
  operator_deployment:
    description: Name of the operator Deployment.
    type: str
    default: cilium-operator
  wait:
    description:
      - Wait until Cilium is healthy (up to O(timeout) seconds).
      - When V(false), the status is read once and the task fails if Cilium is not healthy.
    type: bool
    default: true
  timeout:
    description: Seconds to wait for Cilium to become healthy when O(wait=true).
    type: int
    default: 300
  expected_version:
    description:
      - Cilium version the agents and the operator must run, for example V(1.18.11) or V(1.18) (any patch).
      - Compared with the image tags of the DaemonSet, the Deployment and every agent pod, and with the
        version each agent reports.
    type: str
  expect:
    description:
      - Facts the running Cilium must show; the task fails listing every mismatch.
      - Keys (all optional) V(ipam_mode) (for example V(eni), V(cluster-pool)), V(routing_mode) (V(native) or
        V(tunnel)), V(chaining_mode) (for example V(aws-cni), V(none)), V(kube_proxy_replacement) (bool),
        V(bandwidth_manager) (bool), V(congestion_control) (V(cubic) or V(bbr)), V(host_routing)
        (V(bpf) or V(legacy)), V(masquerading) (IPv4 masquerading, V(disabled), V(iptables) or V(bpf)), V(version) (same as
        O(expected_version)).
    type: dict
  nodes:
    description:
      - Only check the agents of these nodes (names of Kubernetes nodes). The DaemonSet rollout is still
        checked as a whole.
      - A listed node without a Cilium agent pod is reported as unhealthy.
    type: list
    elements: str
  sample_agents:
    description:
      - Ask at most this many running agents for their own status (one exec each), picked at random at each
        run; V(0) asks every agent.
      - For large clusters, where an exec per node costs time and API server load (the C(cilium status)
        command of the CLI makes two per node). The agents not asked count through their pod's C(Ready)
        condition, which the agent's own C(/healthz) readiness probe sets, and the DaemonSet rollout still
        covers every node; RV(status.source) says V(ready) for them. The configuration facts
        (O(expect), O(expected_version)) are checked on the agents asked and on every pod's image.
    type: int
    default: 0
  cli_cross_check:
    description:
      - Also run the Cilium CLI's own C(cilium status -o json) (its checks of every agent and operator pod, with
        their errors, warnings and pod counts) and return its report in RV(status.cli). Where it disagrees with the
        status read here (errors in the agent or operator pods while the agents report OK, other pod counts), the
        task fails naming what differs.
      - Runs once, after the wait. Needs the C(cilium) CLI (O(cilium_path) or C(PATH)); the CLI's minor should be
        the agents' (see the Cilium table's C(cilium_cli) line in the collection's docs).
    type: bool
    default: false
  cilium_path:
    description: Path of the C(cilium) CLI for O(cli_cross_check). Looked up on C(PATH) when not given.
    type: path
  crash_loop_restarts:
    description:
      - Stop waiting as soon as an agent pod of the DaemonSet's current template is in C(CrashLoopBackOff) after
        this many restarts, and fail naming its last termination (a values change the agent refuses does not
        get better by waiting). V(0) waits out crash loops until O(timeout).
      - An agent of an older template is left to the rollout that replaces it.
    type: int
    default: 3
  unmanaged_pods:
    description:
      - Once healthy, also find the pods Cilium does not manage yet and return them in RV(unmanaged). These are
        the pods not C(hostNetwork), Running or Pending on a node whose agent is Ready, without a CiliumEndpoint
        (C(cilium status) counts the same pods against the number of CiliumEndpoints for its line "Cluster Pods
        N/M managed by Cilium"; matching each pod to its endpoint names them). Three more lists (pods,
        CiliumEndpoints, ReplicaSets), no exec.
      - M(cloudnet.cilium_eks.cilium_restart_unmanaged) restarts their workloads; a play can skip it when this
        finds none.
    type: bool
    default: false
notes:
  - The agent's answer is read with an exec into its pod, so the Kubernetes identity used needs
    C(pods/exec) in O(namespace); the log of a crashed agent needs C(pods/log) (without it the termination
    message alone is used).
  - The number of endpoints is the number of C(CiliumEndpoint) objects (on the checked nodes when O(nodes) is
    given); it is V(null) when the CRD is not installed.
seealso:
  - module: cloudnet.cilium_eks.cilium_connectivity_test
  - name: cilium status
    description: The C(cilium status) command of the Cilium CLI does the same checks interactively.
    link: https://docs.cilium.io/en/stable/observability/troubleshooting/
"""

EXAMPLES = r"""
- name: Wait for Cilium to be healthy after the Helm install
  cloudnet.cilium_eks.cilium_status:
    kubeconfig: "{{ cluster_kubeconfig }}"
    expected_version: "1.18.11"
    timeout: 600
  register: cilium

- name: Show the datapath configuration
  ansible.builtin.debug:
    msg: "{{ cilium.status.ipam_mode }} / {{ cilium.status.routing_mode }} / {{ cilium.status.endpoints }} endpoints"

- name: Check that Cilium is chained to the AWS VPC CNI with the Bandwidth Manager (BBR)
  cloudnet.cilium_eks.cilium_status:
    expect:
      chaining_mode: aws-cni
      bandwidth_manager: true
      congestion_control: bbr

- name: Check a 1000-node cluster asking 25 agents picked at random (the others by their Ready condition)
  cloudnet.cilium_eks.cilium_status:
    sample_agents: 25
    timeout: 900

- name: Read the status once, without waiting
  cloudnet.cilium_eks.cilium_status:
    wait: false
  register: cilium_now
"""

RETURN = r"""
status:
  description: What Cilium runs and how healthy it is. Also returned when the task fails.
  returned: always
  type: dict
  contains:
    healthy:
      description: Whether everything checked is healthy (and matches O(expected_version) and O(expect)).
      type: bool
      sample: true
    version:
      description: Cilium version the agents report (else the agent image tag).
      type: str
      sample: 1.18.11
    kubernetes_version:
      description:
        - The API server's version (C(gitVersion) of C(/version)) as the module's reachability check read it, for
          reports (no further request, where C(kubernetes.core.k8s_cluster_info) discovers every API group).
      type: str
      returned: when the task succeeds
      sample: v1.34.4
    agent:
      description: Rollout of the agent DaemonSet.
      type: dict
      sample: {desired: 3, ready: 3, updated: 3, available: 3, image: "quay.io/cilium/cilium:v1.18.11", rolled_out: true}
    operator:
      description: Rollout of the operator Deployment.
      type: dict
      sample: {replicas: 2, ready: 2, updated: 2, available: 2, image: "quay.io/cilium/operator-aws:v1.18.11", rolled_out: true}
    nodes:
      description:
        - Per node (name -> details) the agent pod, whether it is healthy, the state the agent reports, its
          version, its IPAM status line, its endpoint count and the problems found.
        - C(crash) is V(null), or for an agent in C(CrashLoopBackOff) its C(restarts), the C(exit_code) and
          C(reason) of its last termination and the C(log_line) that says why it stopped.
      type: dict
      sample:
        ip-192-168-0-11.ec2.internal:
          pod: cilium-x2x8k
          healthy: true
          state: Ok
          version: 1.18.11
          ipam: "IPv4: 4/12 allocated,"
          endpoints: 2
          crash: null
          problems: []
          warnings: []
    ipam_mode:
      description: IPAM mode (C(ipam) of the C(cilium-config) ConfigMap).
      type: str
      sample: eni
    routing_mode:
      description: C(native) or C(tunnel).
      type: str
      sample: native
    tunnel_protocol:
      description: C(vxlan) or C(geneve) in tunnel mode, else V(null).
      type: str
      sample: null
    host_routing:
      description: C(BPF) or C(Legacy) as the agents report it.
      type: str
      sample: Legacy
    masquerading:
      description: IPv4 masquerading as the agents report it, C(disabled), C(iptables) or C(bpf); V(null) when not reported.
      type: str
      sample: disabled
    chaining_mode:
      description: CNI chaining mode the agents report (C(none) when not chained).
      type: str
      sample: aws-cni
    kube_proxy_replacement:
      description: Whether kube-proxy replacement is on.
      type: bool
      sample: false
    kube_proxy_replacement_mode:
      description: The mode the agents print (C(True)/C(False) from 1.14, C(Strict)/C(Partial)/C(Disabled) before).
      type: str
      sample: "False"
    bandwidth_manager:
      description: Bandwidth Manager state.
      type: dict
      sample: {enabled: true, congestion_control: bbr, devices: [eth0]}
    endpoints:
      description: Number of CiliumEndpoint objects (on the checked nodes).
      type: int
      sample: 4
    source:
      description:
        - How the agents' status was read on each node (C(json), C(text)), or C(ready) for an agent left out
          of the O(sample_agents) sample and counted through its Ready condition.
      type: dict
      sample: {ip-192-168-0-11.ec2.internal: json}
    problems:
      description: Everything found unhealthy, one line each, naming the node or object.
      type: list
      elements: str
      sample: ["node ip-192-168-0-11.ec2.internal: agent pod kube-system/cilium-x2x8k is not Ready"]
    cli:
      description:
        - With O(cli_cross_check=true), the Cilium CLI's report - per component (C(cilium), C(cilium-operator),
          C(cilium-envoy)...) C(type), C(desired), C(ready), C(available), C(unavailable), C(summary) (C(OK),
          C(N errors, M warnings), C(disabled)), C(errors) and C(warnings) as C(<pod>) then the message; C(pods)
          (C(all), C(by_cilium)); C(helm_chart_version); C(config_errors); C(exit_code) - and
          C(disagreements) with this module's status. C(error) instead of the report when the CLI could not be read.
      returned: with O(cli_cross_check=true)
      type: dict
      sample: {components: {cilium: {type: DaemonSet, desired: 2, ready: 2, available: 2, unavailable: 0,
               summary: OK, errors: [], warnings: []}}, pods: {all: 4, by_cilium: 2}, helm_chart_version: 1.20.2,
               config_errors: [], exit_code: 0, disagreements: []}
    crash_looping:
      description: Nodes whose agent crash-loops past O(crash_loop_restarts) (the reason the wait stopped early).
      type: list
      elements: str
      sample: []
    mismatches:
      description: Expected facts (O(expect), O(expected_version)) that differ, one line each.
      type: list
      elements: str
      sample: ["chaining_mode: expected aws-cni, found none"]
    elapsed:
      description: Seconds spent (waiting included).
      type: float
      sample: 2.4
    progress:
      description: How the state changed while waiting (seconds since start and summary), newest last.
      type: list
      elements: dict
      sample: [{at: 0.0, summary: "agent DaemonSet kube-system/cilium: 2/3 ready"}, {at: 1.5, summary: healthy}]
unmanaged:
  description: With O(unmanaged_pods=true), the pods Cilium does not manage yet.
  returned: when O(unmanaged_pods=true) and Cilium is healthy
  type: dict
  contains:
    restart:
      description: The workloads owning them (what M(cloudnet.cilium_eks.cilium_restart_unmanaged) would restart).
      type: list
      elements: dict
      sample: [{kind: Deployment, namespace: kube-system, name: coredns}]
    bare_pods:
      description: Those without a controller, as C(namespace/name).
      type: list
      elements: str
      sample: []
"""

from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.cilium_status import run_module
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.module_base import CiliumEksModule


def main():
    argument_spec = dict(
        namespace=dict(type="str", default="kube-system"),
        agent_daemonset=dict(type="str", default="cilium"),
        operator_deployment=dict(type="str", default="cilium-operator"),
        wait=dict(type="bool", default=True),
        timeout=dict(type="int", default=300),
        expected_version=dict(type="str"),
        expect=dict(type="dict"),
        nodes=dict(type="list", elements="str"),
        sample_agents=dict(type="int", default=0),
        crash_loop_restarts=dict(type="int", default=3),
        cli_cross_check=dict(type="bool", default=False),
        cilium_path=dict(type="path"),
        unmanaged_pods=dict(type="bool", default=False),
    )
    module = CiliumEksModule(argument_spec=argument_spec, k8s_auth=True, supports_check_mode=True)
    module.run(run_module)


if __name__ == "__main__":
    main()
