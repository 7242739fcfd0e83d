# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.cloudnet.cilium_eks.plugins.filter.cilium_bandwidth_test_manifests import (
    FilterModule,
    cilium_bandwidth_test_manifests,
)
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.bandwidth import (
    DEFAULTS,
    namespace_manifest,
    pod_manifests,
    validate_params,
)


def test_defaults_are_the_modules():
    namespace, server, client = cilium_bandwidth_test_manifests({})
    assert namespace == namespace_manifest(DEFAULTS["namespace"])
    expected_server, expected_client = pod_manifests(validate_params(dict(DEFAULTS)), None)
    for rendered, expected in ((server, expected_server), (client, expected_client)):
        assert rendered["metadata"].pop("namespace") == DEFAULTS["namespace"]
        assert rendered == expected
    assert server["metadata"]["annotations"] == {"kubernetes.io/egress-bandwidth": "10M"}
    assert server["spec"]["containers"][0]["image"] == DEFAULTS["image"]


def test_options_shape_the_objects():
    namespace, server, client = cilium_bandwidth_test_manifests(
        {"limit": "20M", "tool": "iperf3", "image": "example/iperf3", "namespace": "bw", "kubeconfig": None},
        cilium_version="1.20.2")
    assert namespace["metadata"]["name"] == server["metadata"]["namespace"] == client["metadata"]["namespace"] == "bw"
    assert server["metadata"]["annotations"]["kubernetes.io/egress-bandwidth"] == "20M"
    assert server["spec"]["containers"][0]["args"] == ["iperf3", "-s"]
    anti = client["spec"]["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]
    assert anti["labelSelector"]["matchExpressions"][0]["values"] == [server["metadata"]["name"]]


@pytest.mark.parametrize("options, version, named", [
    ({"limit": "ten"}, None, "limit"),
    ({"tool": "ping"}, None, "tool"),
    ({"ingress_limit": "20M"}, "1.17.4", "ingress_limit"),
    ({"speed": 1}, None, "speed"),
    ({}, "latest", "cilium_version"),
])
def test_errors_name_the_input(options, version, named):
    with pytest.raises(AnsibleFilterError, match=named):
        cilium_bandwidth_test_manifests(options, cilium_version=version)


def test_registered():
    assert FilterModule().filters()["cilium_bandwidth_test_manifests"] is cilium_bandwidth_test_manifests
