# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""K8sService: which API call each verb and kind makes, the exit-code rule, and how failures are told apart.

The calls themselves run against the sandbox's real kube-apiserver in tests/integration/test_k8s_service.py."""

from __future__ import annotations

import json

import pytest
import urllib3
from kubernetes.client.rest import ApiException

from ansible_collections.cloudnet.cilium_eks.plugins.module_utils import k8s_service
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.k8s_client import get_api_client

KUBECONFIG = {"apiVersion": "v1", "kind": "Config", "current-context": "c",
              "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:6443"}}],
              "users": [{"name": "u", "user": {"token": "t"}}],
              "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]}


@pytest.fixture(scope="module")
def service():
    return k8s_service.K8sService(get_api_client(KUBECONFIG))


@pytest.mark.parametrize("verb, kind, namespace, name, body, method, args", [
    ("read", "DaemonSet", "kube-system", "cilium", None, "read_namespaced_daemon_set", ["cilium", "kube-system"]),
    ("read", "Node", None, "n1", None, "read_node", ["n1"]),
    ("list", "Pod", "kube-system", None, None, "list_namespaced_pod", ["kube-system"]),
    ("list", "Pod", None, None, None, "list_pod_for_all_namespaces", []),
    ("create", "Namespace", None, None, {"b": 1}, "create_namespace", [{"b": 1}]),
    ("create", "Pod", "ns", None, {"b": 1}, "create_namespaced_pod", ["ns", {"b": 1}]),
    ("patch", "DaemonSet", "ns", "ds", {"b": 1}, "patch_namespaced_daemon_set", ["ds", "ns", {"b": 1}]),
    ("delete", "Namespace", None, "ns", None, "delete_namespace", ["ns"]),
    ("read", "CiliumEndpoint", "ns", "pod", None, "get_namespaced_custom_object",
     ["cilium.io", "v2", "ns", "ciliumendpoints", "pod"]),
    ("list", "CiliumEndpoint", None, None, None, "list_cluster_custom_object", ["cilium.io", "v2", "ciliumendpoints"]),
    ("list", "CiliumNode", None, None, None, "list_cluster_custom_object", ["cilium.io", "v2", "ciliumnodes"]),
])
def test_each_verb_and_kind_calls_its_api_method(service, verb, kind, namespace, name, body, method, args):
    fn, positional = service._method(verb, kind, namespace, name, body)  # pylint: disable=protected-access
    assert fn.__name__ == method and positional == args


def test_a_namespaced_kind_needs_a_namespace_except_to_list(service):
    with pytest.raises(ValueError):
        service._method("read", "Pod", None, "p")  # pylint: disable=protected-access
    with pytest.raises(ValueError):
        service._method("read", "Gizmo", None, "g")  # pylint: disable=protected-access


class Response:
    def __init__(self, data):
        self.data = data


def failing(exc):
    def call(*_args, **_kwargs):
        raise exc
    return call


def test_an_answer_is_read_raw_and_404_is_absent(service):
    assert service.request("read x", lambda *a, **k: Response(b'{"kind": "Pod"}')) == {"kind": "Pod"}
    assert service.request("read x", failing(ApiException(status=404, reason="Not Found"))) is None


@pytest.mark.parametrize("exc, error, words", [
    (urllib3.exceptions.MaxRetryError(None, "/api", ConnectionRefusedError(111, "Connection refused")),
     k8s_service.ApiUnavailableError, "did not answer read DaemonSet kube-system/cilium (connection refused"),
    (ApiException(status=503, reason="Service Unavailable"), k8s_service.ApiUnavailableError, "answered 503"),
    (ApiException(status=429, reason="Too Many Requests"), k8s_service.ApiUnavailableError, "answered 429"),
    (ApiException(status=403, reason="Forbidden"), k8s_service.K8sApiError,
     "Kubernetes API error on read DaemonSet kube-system/cilium: 403 Forbidden"),
])
def test_failures_are_told_apart(service, exc, error, words):
    with pytest.raises(error) as caught:
        service.request("read DaemonSet kube-system/cilium", failing(exc))
    assert words in caught.value.msg


@pytest.mark.parametrize("channel, rc", [
    ("", 0),
    (json.dumps({"metadata": {}, "status": "Success"}), 0),
    (json.dumps({"status": "Failure", "message": "command terminated with non-zero exit code",
                 "details": {"causes": [{"reason": "ExitCode", "message": "127"}]}}), 127),
    (json.dumps({"status": "Failure", "message": "Internal error occurred: error executing command in container: "
                 "cmd wait: exit status 3"}), 3),
    (json.dumps({"status": "Failure", "message": "container not found (\"cilium-agent\")"}), None),
    ("not json", None),
])
def test_one_rule_for_exit_codes(channel, rc):
    assert k8s_service.exit_code(channel)[0] == rc


def test_the_message_of_a_failure_is_kept():
    assert k8s_service.exit_code(json.dumps({"status": "Failure", "message": "boom"})) == (None, "boom")
