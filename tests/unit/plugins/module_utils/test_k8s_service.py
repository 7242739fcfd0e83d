# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""K8sService: which API call each verb and kind makes, the exit-code rule, and how failures are told apart.

The calls themselves run against the sandbox's real kube-apiserver in tests/integration/test_k8s_service.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys

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


@pytest.mark.parametrize("kind, namespace, name, path", [
    ("DaemonSet", "kube-system", "cilium", "/apis/apps/v1/namespaces/kube-system/daemonsets/cilium"),
    ("Node", None, "n1", "/api/v1/nodes/n1"),
    ("Pod", "kube-system", None, "/api/v1/namespaces/kube-system/pods"),
    ("Pod", None, None, "/api/v1/pods"),
    ("Namespace", None, "ns", "/api/v1/namespaces/ns"),
    ("CiliumEndpoint", "ns", "pod", "/apis/cilium.io/v2/namespaces/ns/ciliumendpoints/pod"),
    ("CiliumEndpoint", None, None, "/apis/cilium.io/v2/ciliumendpoints"),
    ("CiliumNode", None, None, "/apis/cilium.io/v2/ciliumnodes"),
    ("ConfigMap", "a b", "c/d", "/api/v1/namespaces/a%20b/configmaps/c%2Fd"),
])
def test_each_kind_has_its_api_path(kind, namespace, name, path):
    assert k8s_service.resource_path(kind, namespace, name) == path


def test_a_namespaced_object_needs_a_namespace_and_a_kind_must_be_known():
    with pytest.raises(ValueError):
        k8s_service.resource_path("Pod", None, "p")
    with pytest.raises(ValueError):
        k8s_service.resource_path("Gizmo")


def test_no_generated_api_class_is_imported():
    """The generated API modules (core_v1_api...) cost more CPU to import than a whole status check."""
    script = ("import json, sys; from ansible_collections.cloudnet.cilium_eks.plugins.module_utils import k8s_client, "
              "k8s_service; k8s_service.K8sService(k8s_client.get_api_client(json.loads(sys.argv[1]))); "
              "print(sorted(m for m in sys.modules if m.startswith('kubernetes.client.api.')))")
    done = subprocess.run([sys.executable, "-c", script, json.dumps(KUBECONFIG)], capture_output=True, text=True,
                          check=True, env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    assert done.stdout.strip() == "[]"


class Answer:
    def __init__(self, data, status=200, reason="OK"):
        self.data, self.status, self.reason = data, status, reason


class Replying(k8s_service.K8sService):
    """A K8sService whose requests get ``reply`` (``(status, reason, body)`` or an exception) from nowhere."""

    def __init__(self, service, reply):  # pylint: disable=super-init-not-called
        self.api_client, self.request_timeout, self.reply = service.api_client, 5, reply

    def send(self, method, path, query=(), body=None, content_type="application/json", timeout=None,
             accept="application/json"):
        self.sent = (method, path, list(query), accept)
        if isinstance(self.reply, Exception):
            raise self.reply
        status, reason, data = self.reply
        return status, reason, Answer(data)


def test_an_answer_is_read_raw_and_404_is_absent(service):
    assert Replying(service, (200, "OK", b'{"kind": "Pod"}')).request("read x", "GET", "/p") == {"kind": "Pod"}
    assert Replying(service, (404, "Not Found", b"{}")).request("read x", "GET", "/p") is None
    assert Replying(service, (404, "Not Found", b"{}")).list_object("CiliumEndpoint")["absent"] is True


@pytest.mark.parametrize("reply, error, words", [
    (urllib3.exceptions.MaxRetryError(None, "/api", ConnectionRefusedError(111, "Connection refused")),
     k8s_service.ApiUnavailableError, "did not answer (connection refused"),
    ((503, "Service Unavailable", b""), k8s_service.ApiUnavailableError, "answered 503"),
    ((429, "Too Many Requests", b""), k8s_service.ApiUnavailableError, "answered 429"),
    ((403, "Forbidden", b'{"message": "no"}'), k8s_service.K8sApiError,
     "Kubernetes API error on read DaemonSet kube-system/cilium: 403 Forbidden"),
])
def test_failures_are_told_apart(service, reply, error, words):
    with pytest.raises(error) as caught:
        Replying(service, reply).request("read DaemonSet kube-system/cilium", "GET", "/p")
    assert words in caught.value.msg


def test_logs_are_text_and_a_missing_previous_container_is_none(service):
    reply = Replying(service, (200, "OK", b"line 1\npanic: boom\n"))
    assert reply.logs("kube-system", "cilium-x", "cilium-agent", previous=True, tail_lines=50) == \
        "line 1\npanic: boom\n"
    assert reply.sent == ("GET", "/api/v1/namespaces/kube-system/pods/cilium-x/log",
                          [("container", "cilium-agent"), ("previous", "true"), ("tailLines", 50)], "text/plain, */*")
    # "previous terminated container ... not found" is a 400 from the API server
    assert Replying(service, (400, "Bad Request", b"{}")).logs("kube-system", "p", "c", previous=True) is None
    with pytest.raises(k8s_service.K8sApiError, match="read the log of kube-system/p .*403 Forbidden"):
        Replying(service, (403, "Forbidden", b"{}")).logs("kube-system", "p", "c")


class LegacyClient:
    """An ApiClient of kubernetes < 35 (no param_serialize): call_api(resource_path, method, ...) raises on non-2xx."""

    def __init__(self, configuration, status):
        self.configuration, self.status, self.calls = configuration, status, []

    def call_api(self, path, method, **kwargs):
        self.calls.append((path, method, kwargs))
        if self.status != 200:
            raise ApiException(status=self.status, reason="Not Found")
        return Answer(b'{"kind": "DaemonSet"}')


def test_older_clients_go_through_their_own_call_api(service):
    legacy = LegacyClient(service.api_client.configuration, 200)
    old = k8s_service.K8sService(legacy)
    assert old.get("DaemonSet", "cilium", "kube-system") == {"kind": "DaemonSet"}
    path, method, kwargs = legacy.calls[0]
    assert (path, method, kwargs["auth_settings"]) == (
        "/apis/apps/v1/namespaces/kube-system/daemonsets/cilium", "GET", ["BearerToken"])
    assert k8s_service.K8sService(LegacyClient(service.api_client.configuration, 404)).get("Node", "n") is None


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
