# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""K8sService: which API call each verb and kind makes, the exit-code rule, and how failures are told apart.

The calls themselves run against the sandbox's real kube-apiserver through the modules (tests/integration); the
exec's authentication (a login-command user's token, impersonation refused) in tests/integration/test_cilium_status.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
import urllib3
from kubernetes.client.rest import ApiException

from ansible_collections.cloudnet.cilium_eks.plugins.module_utils import k8s_service
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.errors import ValidationError
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
    ("Lease", "kube-system", "cloudnet-cilium-eks",
     "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/cloudnet-cilium-eks"),
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


@pytest.mark.parametrize("user, expected", [
    ({"token": "t"}, "Bearer t"),
    # What eksctl writes: a login command whose ExecCredential carries the token (the sandbox's exec plugin here).
    ({"exec": {"apiVersion": "client.authentication.k8s.io/v1beta1", "command": sys.executable,
               "args": ["-c", 'import json; print(json.dumps({"apiVersion": "client.authentication.k8s.io/v1beta1",'
                              ' "kind": "ExecCredential", "status": {"token": "from-exec"}}))']}}, "Bearer from-exec"),
])
def test_exec_sends_the_token_ordinary_requests_send(monkeypatch, user, expected):
    """An exec into a pod authenticates like any other request (a 403 as system:anonymous on real EKS otherwise)."""
    from kubernetes.stream import ws_client

    kubeconfig = dict(KUBECONFIG, users=[{"name": "u", "user": user}])
    service = k8s_service.K8sService(get_api_client(kubeconfig))
    sent = {}

    def refuse(configuration, method, url, **kwargs):
        sent.update(kwargs.get("headers") or {})
        raise ApiException(status=0, reason="stopped by the test")

    monkeypatch.setattr(ws_client, "websocket_call", refuse)
    with pytest.raises(Exception):
        service.exec("kube-system", "cilium-x", "cilium-agent", ["cilium-dbg", "status"], timeout=5)
    assert sent.get("authorization") == expected
    assert service.api_client.configuration.auth_settings()["BearerToken"]["value"] == expected


def _exec_request_headers(**options):
    """The header lines (lower-cased names) of the handshake of an exec made with ``get_api_client(**options)``, as
    a local socket receives them."""
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    seen = {}

    def answer():
        conn, _addr = server.accept()
        seen["request"] = conn.recv(65536).decode("latin-1")
        conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
        conn.close()

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    service = k8s_service.K8sService(get_api_client(host="http://127.0.0.1:%d" % server.getsockname()[1], **options))
    with pytest.raises(Exception):
        service.exec("kube-system", "cilium-x", "cilium-agent", ["cilium-dbg", "status"], timeout=5)
    thread.join(5)
    server.close()
    return {line.split(":", 1)[0].lower(): line.split(":", 1)[1].strip()
            for line in seen["request"].split("\r\n")[1:] if ":" in line}


def test_the_exec_websocket_of_the_kubernetes_client_drops_impersonation(monkeypatch):
    """Why an impersonating exec is refused: the client's websocket sends only ``authorization``. If a client
    version sends Impersonate-* on exec, this fails and ``refuse_impersonated_exec`` can go."""
    monkeypatch.setattr(k8s_service, "refuse_impersonated_exec", lambda api_client: None)
    headers = _exec_request_headers(api_key="t", impersonate_user="limited")
    assert headers["authorization"] == "Bearer t" and "impersonate-user" not in headers


@pytest.mark.parametrize("options, option", [
    ({"impersonate_user": "limited"}, "impersonate_user"),
    ({"impersonate_groups": ["readers"]}, "impersonate_groups"),
])
def test_an_impersonating_exec_is_refused_before_any_connection(monkeypatch, options, option):
    """Run unimpersonated, the command would have the kubeconfig identity's rights, not the impersonated one's."""
    from kubernetes.stream import ws_client

    calls = []
    monkeypatch.setattr(ws_client, "websocket_call", lambda *args, **kwargs: calls.append(args))
    service = k8s_service.K8sService(get_api_client(KUBECONFIG, **options))
    with pytest.raises(ValidationError, match="Invalid `%s`: cannot be applied to an exec into a pod" % option):
        service.exec("kube-system", "cilium-x", "cilium-agent", ["cilium-dbg", "status"], timeout=5)
    assert calls == []


def test_an_exec_whose_handshake_is_never_answered_times_out():
    """An API server (or a proxy in front of it) that accepts the connection and never answers the websocket
    handshake: the kubernetes client would wait forever (no socket timeout); the exec gives up after its timeout."""
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)  # accepted by the kernel, never read nor answered
    service = k8s_service.K8sService(get_api_client(host="http://127.0.0.1:%d" % server.getsockname()[1], api_key="t"))
    started = time.monotonic()
    try:
        with pytest.raises(k8s_service.ExecTimeoutError,
                           match=r"`cilium-dbg status` in kube-system/cilium-x \(container cilium-agent\): the API "
                                 r"server did not answer the exec's websocket handshake within 1s"):
            service.exec("kube-system", "cilium-x", "cilium-agent", ["cilium-dbg", "status"], timeout=1)
    finally:
        server.close()
    assert time.monotonic() - started < 5


def test_username_and_password_are_sent_as_basic_auth():
    """kubernetes.core's username/password options: the client keeps them without sending them; they go out as
    HTTP basic auth, on exec too (the same header)."""
    service = k8s_service.K8sService(get_api_client(host="https://127.0.0.1:6443", username="u", password="p"))
    assert service.api_client.configuration.auth_settings()["BearerToken"]["value"] == "Basic dTpw"
    assert _exec_request_headers(username="u", password="p")["authorization"] == "Basic dTpw"


def test_the_server_version_is_the_reachability_probes_answer_when_there_was_one(monkeypatch):
    """cilium_status's report names the Kubernetes version: the /version answer the module's reachability probe
    already read, not a second request; without a probe, one GET /version."""
    from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.k8s_client import VERSION_ATTR

    service = k8s_service.K8sService(get_api_client(KUBECONFIG))
    asked = []
    monkeypatch.setattr(service, "request", lambda what, method, path: asked.append(path) or {"gitVersion": "v9"})
    assert service.server_version() == "v9" and asked == ["/version"]
    setattr(service.api_client, VERSION_ATTR, {"gitVersion": "v1.34.4"})
    assert service.server_version() == "v1.34.4" and asked == ["/version"]
