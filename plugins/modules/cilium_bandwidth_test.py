#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: cilium_bandwidth_test
short_description: Measure that Cilium's Bandwidth Manager enforces a pod's egress bandwidth limit
version_added: "0.1.0"
description:
  - Creates, in a namespace of its own (created and labelled C(cloudnet.cilium-eks/purpose=bandwidth-test)), a
    server pod annotated C(kubernetes.io/egress-bandwidth) with O(limit) and a client pod kept off the server's
    node by a required pod anti-affinity, as in Cilium's bandwidth manager guide.
  - Once both run, measures from the client what the server sends (netperf C(TCP_MAERTS), or C(iperf3 -R)),
    asks the Cilium agent on the server's node whether the Bandwidth Manager is on (C(cilium-dbg status)) and
    which limit its C(cilium_throttle) map holds for the server's endpoint (C(cilium-dbg bpf bandwidth list),
    endpoint ID from the server's CiliumEndpoint), and compares the measured rate with the limit.
  - Passes when the measured rate is at most O(tolerance) above the limit, at least O(min_ratio) of it (so a
    broken path does not pass as "under the limit"), and the agent's map holds the limit for the endpoint.
  - Deletes its pods and namespace whatever happens, unless O(keep=true).
  - The test always creates and deletes objects, so it reports C(changed=true). In check mode nothing is created
    and the module only reports what it would run.
author:
  - cloudnet.cilium_eks contributors (@cloudnet)
extends_documentation_fragment:
  - cloudnet.cilium_eks.k8s_auth
  - cloudnet.cilium_eks.attributes.no_diff
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: partial
    details: In check mode the options are validated and the pods are not created.
options:
  limit:
    description:
      - Egress limit put on the server pod, a Kubernetes quantity in bit/s, e.g. C(10M) (10,000,000 bit/s),
        C(1G), C(500k), C(100Mi) (104,857,600 bit/s).
      - Parsed like Kubernetes C(resource.ParseQuantity) and Cilium (bytes/s = value / 8); values outside the
        Kubernetes bandwidth range 1k .. 1P are refused.
    type: str
    default: 10M
  ingress_limit:
    description:
      - Also annotate the server with C(kubernetes.io/ingress-bandwidth). Enforced by Cilium 1.18 and later only;
        refused for older versions. Reported, not measured.
    type: str
  tool:
    description:
      - C(netperf) runs C(netperf -t TCP_MAERTS) (the blog's method); C(iperf3) runs C(iperf3 -R -J).
    type: str
    choices: [netperf, iperf3]
    default: netperf
  image:
    description: Image of both pods; must contain the chosen tool (C(cilium/netperf) has netperf and iperf3).
    type: str
    default: cilium/netperf
  duration:
    description: Seconds the measurement runs (1 .. 600).
    type: int
    default: 10
  tolerance:
    description: Highest accepted excess over the limit, as a fraction (C(0.05) = 5%).
    type: float
    default: 0.05
  min_ratio:
    description: Lowest accepted measured/limit ratio; below it the path is considered broken.
    type: float
    default: 0.5
  namespace:
    description:
      - Namespace the module creates for its pods and deletes afterwards. An existing namespace not created by
        this module is refused.
    type: str
    default: cilium-bandwidth-test
  server_name:
    description: Name of the server pod.
    type: str
    default: netperf-server
  client_name:
    description: Name of the client pod.
    type: str
    default: netperf-client
  cilium_namespace:
    description: Namespace of the Cilium DaemonSet C(cilium) and the C(cilium-config) ConfigMap.
    type: str
    default: kube-system
  timeout:
    description: Seconds to wait for the pods to run, and for the namespace to be deleted.
    type: int
    default: 300
  keep:
    description: Leave the namespace and pods in place after the test (for debugging).
    type: bool
    default: false
  report_dir:
    description:
      - Folder where C(bandwidth-test.json) and C(bandwidth-test.md) are written (mode 0644).
    type: path
requirements:
  - kubernetes >= 24.2.0 (Python library)
notes:
  - The measured rate comes from the receiver (the client); EDT pacing makes it settle slightly under the limit,
    so a ratio of 0.9 .. 1.0 is the expected result.
seealso:
  - name: Cilium Bandwidth Manager
    description: The guide this test follows.
    link: https://docs.cilium.io/en/stable/network/kubernetes/bandwidth-manager/
"""

EXAMPLES = r"""
- name: Check that a 10 Mbit/s egress limit is enforced
  cloudnet.cilium_eks.cilium_bandwidth_test:
    limit: 10M
  register: bandwidth

- name: Same with iperf3, 20 seconds, reports kept as CI artefacts
  cloudnet.cilium_eks.cilium_bandwidth_test:
    limit: 50M
    tool: iperf3
    duration: 20
    report_dir: "{{ playbook_dir }}/reports"
"""

RETURN = r"""
passed:
  description: Whether the limit is enforced (rate within bounds and the agent's map holds the limit).
  returned: success
  type: bool
  sample: true
reason:
  description: One sentence explaining the verdict.
  returned: success
  type: str
  sample: measured 9.91 Mbit/s for a 10.00 Mbit/s limit (ratio 0.991)
limit_bps:
  description: The limit in bit/s, as Kubernetes reads the quantity.
  returned: success
  type: int
  sample: 10000000
enforced_bps:
  description: The rate Cilium enforces (whole bytes per second times 8).
  returned: success
  type: int
  sample: 10000000
measured_bps:
  description: The measured rate at the receiver, bit/s.
  returned: success
  type: float
  sample: 9910000.0
ratio:
  description: measured_bps / enforced_bps.
  returned: success
  type: float
  sample: 0.991
endpoint_id:
  description: Endpoint ID of the server pod (its CiliumEndpoint C(status.id)); null if none was found.
  returned: success
  type: int
  sample: 124
map_limit:
  description: The limit the agent's C(bpf bandwidth list) shows for the endpoint, as printed.
  returned: success
  type: str
  sample: 10M
map_entries:
  description: Every entry of C(bpf bandwidth list) on the server's node.
  returned: success
  type: list
  elements: dict
bandwidth_manager:
  description: The agent's C(BandwidthManager) status (enabled, congestion_control, devices, line).
  returned: success
  type: dict
  sample: {enabled: true, congestion_control: CUBIC, devices: [eth0], line: "EDT with BPF [CUBIC] [eth0]"}
server_node:
  description: Node of the server pod.
  returned: success
  type: str
client_node:
  description: Node of the client pod.
  returned: success
  type: str
measurement:
  description: The parsed measurement (tool-specific keys, always C(bps)).
  returned: success
  type: dict
raw:
  description: Raw outputs (measurement, agent status, bpf bandwidth list).
  returned: success
  type: dict
cleaned_up:
  description: Whether the namespace is gone after the test.
  returned: success
  type: bool
report_files:
  description: Paths of the JSON and Markdown reports, when O(report_dir) is set.
  returned: when report_dir is set
  type: dict
  sample: {json: /tmp/reports/bandwidth-test.json, md: /tmp/reports/bandwidth-test.md}
"""

from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.bandwidth import DEFAULTS, run_module
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.module_base import CiliumEksModule


def main():
    module = CiliumEksModule(
        argument_spec=dict(
            limit=dict(type="str", default=DEFAULTS["limit"]),
            ingress_limit=dict(type="str"),
            tool=dict(type="str", default=DEFAULTS["tool"], choices=["netperf", "iperf3"]),
            image=dict(type="str", default=DEFAULTS["image"]),
            duration=dict(type="int", default=DEFAULTS["duration"]),
            tolerance=dict(type="float", default=DEFAULTS["tolerance"]),
            min_ratio=dict(type="float", default=DEFAULTS["min_ratio"]),
            namespace=dict(type="str", default=DEFAULTS["namespace"]),
            server_name=dict(type="str", default=DEFAULTS["server_name"]),
            client_name=dict(type="str", default=DEFAULTS["client_name"]),
            cilium_namespace=dict(type="str", default=DEFAULTS["cilium_namespace"]),
            timeout=dict(type="int", default=DEFAULTS["timeout"]),
            keep=dict(type="bool", default=DEFAULTS["keep"]),
            report_dir=dict(type="path"),
        ),
        k8s_auth=True,
        supports_check_mode=True,
    )
    module.run(run_module)


if __name__ == "__main__":
    main()
