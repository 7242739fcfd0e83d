#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: cilium_connectivity_test
short_description: Run C(cilium connectivity test) and report its results
version_added: 0.1.0
description:
  - Runs C(cilium connectivity test) of the Cilium CLI against the cluster, parses its test report (the
    C(✅ All N tests (M actions) successful) summary, or the C(❌ F/N tests failed) report and its failed
    actions, in the forms of Cilium 1.13 to 1.20), and returns the counts and the failed tests.
  - Fails when tests fail, unless every failed test matches O(expected_failures). When the failures are
    pod-to-host pings or NodePort tests, the message says to open ICMP and the NodePort range on the node
    security group.
  - Deletes the test namespaces afterwards (also after a failure or a timeout) unless O(keep_namespaces=true).
  - Check mode does not run the test.
author:
  - cloudnet.cilium_eks contributors (@cloudnet)
extends_documentation_fragment:
  - cloudnet.cilium_eks.k8s_auth
  - cloudnet.cilium_eks.attributes.no_diff
attributes:
  check_mode:
    support: partial
    description: Can run in check mode.
    details: In check mode the test is not run (the task is reported as skipped) and nothing is changed.
options:
  tests:
    description:
      - Run only these tests (C(--test), repeated). Names or regular expressions as the CLI takes them, a
        leading C(!) excludes, for example V(no-policies) or V(!pod-to-world).
    type: list
    elements: str
  namespace:
    description:
      - Namespace the test deploys its workloads in (C(--test-namespace)). Recent CLIs append C(-1) (one
        namespace per concurrent run), so V(cilium-test) gives C(cilium-test-1).
    type: str
    default: cilium-test
  cilium_namespace:
    description: Namespace Cilium is installed in (C(--namespace) of the CLI).
    type: str
    default: kube-system
  timeout:
    description: Seconds the whole test may take; the CLI and every process it started are then killed.
    type: int
    default: 1800
  extra_flags:
    description: More command line flags for C(cilium connectivity test), one list element per argument.
    type: list
    elements: str
    default: []
  junit_file:
    description: Write the results as a JUnit XML file there (C(--junit-file)), mode 0644.
    type: path
  cilium_path:
    description: Path of the C(cilium) CLI. Looked up on C(PATH) when not given.
    type: path
  keep_namespaces:
    description: Keep the test namespaces and their workloads after the run (for debugging).
    type: bool
    default: false
  expected_failures:
    description:
      - Failed tests that do not fail the task. Shell-style patterns matched against a test name
        (V(no-policies)), a test/scenario (V(*/pod-to-host), V(*nodeport*)) or a full action name
        (V(no-policies/pod-to-host/ping-ipv4-1)). A failed test is expected when each of its failed
        actions matches a pattern.
      - The classic case is a node security group closed to ICMP and NodePorts, see the examples.
    type: list
    elements: str
    default: []
notes:
  - The test deploys pods that pull images from the internet (quay.io, docker.io) and checks connectivity to
    the internet; on isolated clusters give O(tests) or O(extra_flags) accordingly.
  - Not idempotent by nature. It reports a change only when it created test namespaces and kept them
    (O(keep_namespaces=true)).
seealso:
  - module: cloudnet.cilium_eks.cilium_status
  - name: Cilium connectivity test
    description: Documentation of the test suite.
    link: https://docs.cilium.io/en/stable/installation/k8s-install-helm/#validate-the-installation
"""

EXAMPLES = r"""
- name: Check the datapath end to end, with a JUnit report for CI
  cloudnet.cilium_eks.cilium_connectivity_test:
    kubeconfig: "{{ cluster_kubeconfig }}"
    junit_file: "{{ playbook_dir }}/reports/cilium-connectivity.xml"
    timeout: 1800
  register: connectivity

- name: Accept the failures a node security group closed to ICMP and NodePorts causes
  cloudnet.cilium_eks.cilium_connectivity_test:
    expected_failures:
      - "*/pod-to-host"
      - "*nodeport*"

- name: Run two tests only and keep their namespaces to look at them
  cloudnet.cilium_eks.cilium_connectivity_test:
    tests: [no-policies, allow-all-except-world]
    keep_namespaces: true
    extra_flags: ["--test-concurrency", "1"]
"""

RETURN = r"""
cmd:
  description: The command that ran.
  returned: when the test ran
  type: str
  sample: cilium connectivity test --namespace kube-system --test-namespace cilium-test
exit_code:
  description:
    - Exit code of the CLI (non-zero when tests failed, also when all the failures were expected).
    - When the task fails because the CLI itself failed, the exit code is in C(rc) with C(stderr) and C(cmd).
  returned: when the test ran
  type: int
  sample: 1
result:
  description: C(success) or C(failure) as the report says.
  returned: when the test ran
  type: str
  sample: failure
tests:
  description: Number of tests run (skipped ones excluded).
  returned: when the test ran
  type: int
  sample: 42
actions:
  description: Number of actions run.
  returned: when the test ran
  type: int
  sample: 300
tests_failed:
  description: Number of failed tests.
  returned: when the test ran
  type: int
  sample: 4
actions_failed:
  description: Number of failed actions.
  returned: when the test ran
  type: int
  sample: 20
tests_skipped:
  description: Number of skipped tests.
  returned: when the test ran
  type: int
  sample: 12
scenarios_skipped:
  description: Number of skipped scenarios.
  returned: when the test ran
  type: int
  sample: 1
test_namespace:
  description: Test namespace the report names (current CLIs), else null.
  returned: when the test ran
  type: str
  sample: cilium-test-1
failed_tests:
  description:
    - The failed tests and their failed actions.
    - An action's C(message) is its whole failure message as the report prints it, several lines for some tests
      (for example the JSON objects of C(Found unexpected packet drops:)); the task's failure message shows them
      all, indented under the action.
  returned: when the test ran
  type: list
  elements: dict
  sample:
    - name: no-policies
      expected: true
      actions:
        - name: no-policies/pod-to-host/ping-ipv4-1
          test: no-policies
          scenario: pod-to-host
          source: cilium-test/client-6965d549d5-hwmbt (192.168.61.62)
          destination: 54.243.4.228 (54.243.4.228:0)
          message: null
expected_failures_seen:
  description: Names of the failed tests that matched O(expected_failures).
  returned: when the test ran
  type: list
  elements: str
  sample: [no-policies, host-entity]
hint:
  description: What to change when the failures point at the node security group, else null.
  returned: when the test ran
  type: str
  sample: "open ICMP and NodePorts 30000-32767 on the node security group (eks_cluster_open_nodeport_icmp: true)"
namespaces_deleted:
  description: Test namespaces deleted after the run.
  returned: always
  type: list
  elements: str
  sample: [cilium-test-1]
namespaces_kept:
  description: Test namespaces left in place (O(keep_namespaces=true)).
  returned: always
  type: list
  elements: str
  sample: []
junit_file:
  description: Path of the JUnit file written, when asked for.
  returned: when O(junit_file) is set and the test ran
  type: str
  sample: /tmp/reports/cilium-connectivity.xml
duration:
  description: Seconds the CLI ran.
  returned: when the test ran
  type: float
  sample: 412.3
stdout_tail:
  description: Last lines of the CLI's output.
  returned: when the test ran
  type: str
  sample: "✅ [cilium-test-1] All 72 tests (630 actions) successful, 43 tests skipped, 0 scenarios skipped."
"""

from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.cilium_connectivity import run_module
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.module_base import CiliumEksModule


def main():
    argument_spec = dict(
        tests=dict(type="list", elements="str"),
        namespace=dict(type="str", default="cilium-test"),
        cilium_namespace=dict(type="str", default="kube-system"),
        timeout=dict(type="int", default=1800),
        extra_flags=dict(type="list", elements="str", default=[]),
        junit_file=dict(type="path"),
        cilium_path=dict(type="path"),
        keep_namespaces=dict(type="bool", default=False),
        expected_failures=dict(type="list", elements="str", default=[]),
    )
    module = CiliumEksModule(argument_spec=argument_spec, k8s_auth=True, supports_check_mode=True)
    module.run(run_module)


if __name__ == "__main__":
    main()
