# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import json
import os
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.errors import (
    ClusterUnreachableError,
    MissingLibraryError,
    ValidationError,
)
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.k8s_client import (
    IN_MEMORY,
    OWN_CREDENTIALS,
    auth_options,
    check_reachable,
    cli_kubeconfig,
    get_api_client,
    k8s_auth_argument_spec,
)

pytest.importorskip("kubernetes")

VERSION = {"major": "1", "minor": "34", "gitVersion": "v1.34.4-eks-test", "platform": "linux/amd64"}
GOOD_TOKEN = "good-token"


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server API)
        self.server.seen.append((self.path, self.headers.get("Authorization")))
        self.server.impersonation.append((self.headers.get("Impersonate-User"), self.headers.get("Impersonate-Group")))
        if self.headers.get("Authorization") == "Bearer html":  # e.g. a captive proxy page
            self.send_response(200)
            self.send_header("Content-Length", "13")
            self.end_headers()
            self.wfile.write(b"<html></html>")
        elif self.headers.get("Authorization") != "Bearer " + GOOD_TOKEN:
            self._reply(401, {"kind": "Status", "status": "Failure", "reason": "Unauthorized", "code": 401})
        elif self.path.rstrip("/") == "/version":  # the client asks for /version/
            self._reply(200, VERSION)
        else:
            self._reply(404, {"kind": "Status", "code": 404})

    def _reply(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def api_server():
    """Plain-HTTP stand-in for kube-apiserver on 127.0.0.1 answering /version."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.seen = []
    server.impersonation = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def _url(server, scheme="http"):
    return "%s://127.0.0.1:%d" % (scheme, server.server_address[1])


def _closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def kubeconfig_dict(clusters, current=None, token=GOOD_TOKEN):
    """kubeconfig with one context per ``{name: server_url}``."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": n, "cluster": {"server": url}} for n, url in clusters.items()],
        "users": [{"name": "user", "user": {"token": token}}],
        "contexts": [{"name": n, "context": {"cluster": n, "user": "user"}} for n in clusters],
        "current-context": current if current is not None else next(iter(clusters)),
    }


def write_kubeconfig(tmp_path, config, name="kubeconfig"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(config))
    return str(path)


def test_closed_port_is_unreachable_and_names_server_and_kubeconfig(tmp_path):
    server = "https://127.0.0.1:%d" % _closed_port()
    path = write_kubeconfig(tmp_path, kubeconfig_dict({"sandbox": server}))
    client = get_api_client(kubeconfig=path)
    with pytest.raises(ClusterUnreachableError) as info:
        check_reachable(client, timeout=5)
    err = info.value
    msg = str(err)
    assert server in msg
    assert path in msg
    assert "context sandbox" in msg
    assert "connection refused" in msg
    assert err.server == server and err.kubeconfig == path and err.context == "sandbox"
    kwargs = err.to_fail_kwargs()
    assert kwargs["server"] == server and kwargs["error_type"] == "ClusterUnreachableError"


def test_reachable_server_returns_version(tmp_path, api_server):
    path = write_kubeconfig(tmp_path, kubeconfig_dict({"sandbox": _url(api_server)}))
    version = check_reachable(get_api_client(kubeconfig=path), timeout=5)
    assert version["gitVersion"] == VERSION["gitVersion"]
    assert version["minor"] == "34"
    assert [(path.rstrip("/"), auth) for path, auth in api_server.seen] == [("/version", "Bearer " + GOOD_TOKEN)]


def test_context_selection(tmp_path, api_server):
    closed = "http://127.0.0.1:%d" % _closed_port()
    config = kubeconfig_dict({"dead": closed, "alive": _url(api_server)}, current="dead")
    path = write_kubeconfig(tmp_path, config)

    default = get_api_client(kubeconfig=path)
    assert default.configuration.host == closed
    assert default.cilium_eks_source == {"kubeconfig": path, "context": "dead"}

    chosen = get_api_client(kubeconfig=path, context="alive")
    assert chosen.configuration.host == _url(api_server)
    assert chosen.cilium_eks_source["context"] == "alive"
    assert check_reachable(chosen)["major"] == "1"


def test_unknown_context_lists_accepted(tmp_path):
    path = write_kubeconfig(tmp_path, kubeconfig_dict({"a": "http://127.0.0.1:1", "b": "http://127.0.0.1:2"}))
    with pytest.raises(ValidationError) as info:
        get_api_client(kubeconfig=path, context="nope")
    err = info.value
    assert err.name == "context"
    assert err.accepted == ["a", "b"]
    assert "'nope'" in str(err) and "a, b" in str(err) and path in str(err)


def test_missing_kubeconfig_file(tmp_path):
    missing = str(tmp_path / "does-not-exist.yaml")
    with pytest.raises(ValidationError) as info:
        get_api_client(kubeconfig=missing)
    assert info.value.name == "kubeconfig"
    assert missing in str(info.value)
    assert "does not exist" in str(info.value)


def test_invalid_kubeconfig_yaml(tmp_path):
    path = tmp_path / "broken"
    path.write_text("clusters: [unclosed\n")
    with pytest.raises(ValidationError) as info:
        get_api_client(kubeconfig=str(path))
    assert info.value.name == "kubeconfig" and str(path) in str(info.value)


def test_no_current_context_requires_context(tmp_path):
    config = kubeconfig_dict({"only": "http://127.0.0.1:1"}, current="")
    with pytest.raises(ValidationError) as info:
        get_api_client(kubeconfig=config)
    assert info.value.name == "context" and info.value.accepted == ["only"]
    assert get_api_client(kubeconfig=config, context="only").configuration.host == "http://127.0.0.1:1"


def test_in_memory_kubeconfig(api_server):
    client = get_api_client(kubeconfig=kubeconfig_dict({"mem": _url(api_server)}))
    assert client.cilium_eks_source == {"kubeconfig": IN_MEMORY, "context": "mem"}
    assert check_reachable(client)["gitVersion"] == VERSION["gitVersion"]


def test_default_kubeconfig_from_env(monkeypatch, tmp_path, api_server):
    path = write_kubeconfig(tmp_path, kubeconfig_dict({"env": _url(api_server)}))
    monkeypatch.setenv("KUBECONFIG", path)
    client = get_api_client()
    assert client.cilium_eks_source == {"kubeconfig": path, "context": "env"}


def test_no_kubeconfig_anywhere(monkeypatch, tmp_path):
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(ValidationError) as info:
        get_api_client()
    assert info.value.name == "kubeconfig" and "default location" in str(info.value)


def test_unauthorized_is_explained(tmp_path, api_server):
    config = kubeconfig_dict({"sandbox": _url(api_server)}, token="expired")
    with pytest.raises(ClusterUnreachableError) as info:
        check_reachable(get_api_client(kubeconfig=config))
    assert "401" in str(info.value) and "access entry" in str(info.value)
    assert info.value.kubeconfig == IN_MEMORY


def test_non_json_answer_is_explained(api_server):
    client = get_api_client(kubeconfig=kubeconfig_dict({"proxy": _url(api_server)}, token="html"))
    with pytest.raises(ClusterUnreachableError) as info:
        check_reachable(client)
    assert "not JSON" in str(info.value)


def test_tls_failure_is_explained(api_server):
    client = get_api_client(kubeconfig=kubeconfig_dict({"tls": _url(api_server, "https")}))
    with pytest.raises(ClusterUnreachableError) as info:
        check_reachable(client, timeout=5)
    assert "TLS handshake failed" in str(info.value)


def test_silent_server_times_out():
    with socket.socket() as listener:  # accepts TCP connections (backlog) but never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(5)
        url = "http://127.0.0.1:%d" % listener.getsockname()[1]
        client = get_api_client(kubeconfig=kubeconfig_dict({"silent": url}))
        with pytest.raises(ClusterUnreachableError) as info:
            check_reachable(client, timeout=0.5)
    assert "no answer within 0.5s" in str(info.value)


def test_validate_certs_override_and_no_global_side_effect(tmp_path):
    from kubernetes.client import Configuration

    before = Configuration.get_default_copy().host
    config = kubeconfig_dict({"c": "https://127.0.0.1:1"})
    assert get_api_client(kubeconfig=config).configuration.verify_ssl is True
    assert get_api_client(kubeconfig=config, validate_certs=False).configuration.verify_ssl is False
    config["clusters"][0]["cluster"]["insecure-skip-tls-verify"] = True
    assert get_api_client(kubeconfig=config).configuration.verify_ssl is False
    assert get_api_client(kubeconfig=config, validate_certs=True).configuration.verify_ssl is True
    assert Configuration.get_default_copy().host == before


def test_missing_kubernetes_library(monkeypatch):
    for name in [m for m in sys.modules if m == "kubernetes" or m.startswith("kubernetes.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "kubernetes", None)  # makes `import kubernetes` raise ImportError
    with pytest.raises(MissingLibraryError) as info:
        get_api_client(kubeconfig={"clusters": []})
    assert "pip install kubernetes" in str(info.value)


def test_auth_argument_spec_is_kubernetes_cores():
    """Same option names, aliases and K8S_AUTH_* variables as kubernetes.core 6.2.0 (args_common.AUTH_ARG_SPEC,
    k8s/client.py): AWX's Kubernetes credential sets K8S_AUTH_HOST, K8S_AUTH_API_KEY, K8S_AUTH_VERIFY_SSL and
    K8S_AUTH_SSL_CA_CERT."""
    pytest.importorskip("ansible.module_utils.basic")
    spec = k8s_auth_argument_spec()
    assert set(spec) == {"kubeconfig", "context", "host", "api_key", "username", "password", "validate_certs",
                         "ca_cert", "client_cert", "client_key", "proxy", "no_proxy", "impersonate_user",
                         "impersonate_groups"}
    assert spec["kubeconfig"]["type"] == "path"
    assert spec["validate_certs"]["type"] == "bool" and spec["validate_certs"]["aliases"] == ["verify_ssl"]
    assert spec["ca_cert"]["aliases"] == ["ssl_ca_cert"] and spec["client_cert"]["aliases"] == ["cert_file"]
    assert spec["api_key"]["no_log"] and spec["password"]["no_log"]
    variables = {name: option["fallback"][1] for name, option in spec.items()}
    assert variables["host"] == ["K8S_AUTH_HOST"] and variables["api_key"] == ["K8S_AUTH_API_KEY"]
    assert "K8S_AUTH_VERIFY_SSL" in variables["validate_certs"] and "K8S_AUTH_SSL_CA_CERT" in variables["ca_cert"]


def test_auth_options_from_module_params():
    params = {"kubeconfig": "/k", "context": None, "validate_certs": None, "host": "https://h", "api_key": "t",
              "username": None, "impersonate_groups": []}
    assert auth_options(params) == {"host": "https://h", "api_key": "t"}


def test_host_and_token_need_no_kubeconfig(monkeypatch, tmp_path, api_server):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))  # no kubeconfig anywhere
    client = get_api_client(host=_url(api_server) + "/", api_key=GOOD_TOKEN)
    assert check_reachable(client)["gitVersion"] == VERSION["gitVersion"]
    assert client.configuration.host == _url(api_server)  # trailing slash removed, as kubernetes.core does
    assert client.cilium_eks_source["kubeconfig"] == OWN_CREDENTIALS


def test_host_and_token_override_the_kubeconfig(tmp_path, api_server):
    stale = kubeconfig_dict({"old": "http://127.0.0.1:%d" % _closed_port()}, token="expired")
    client = get_api_client(kubeconfig=write_kubeconfig(tmp_path, stale), host=_url(api_server), api_key=GOOD_TOKEN)
    assert check_reachable(client)["major"] == "1"


def test_a_host_without_credentials_keeps_the_kubeconfigs_token(tmp_path, api_server):
    config = kubeconfig_dict({"c": "http://127.0.0.1:%d" % _closed_port()})
    client = get_api_client(kubeconfig=config, host=_url(api_server))
    assert check_reachable(client)["major"] == "1"


def test_impersonation_headers_are_sent(api_server):
    client = get_api_client(host=_url(api_server), api_key=GOOD_TOKEN, impersonate_user="alice",
                            impersonate_groups=["ops"])
    check_reachable(client)
    assert api_server.impersonation[-1] == ("alice", "ops")


def test_cli_kubeconfig_from_host_and_token(tmp_path):
    params = {"kubeconfig": None, "host": "https://h:443/", "api_key": "t0k", "ca_cert": "/ca.pem",
              "validate_certs": None, "impersonate_user": "alice"}
    path = cli_kubeconfig(params, str(tmp_path))
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    config = yaml.safe_load(open(path).read())
    assert config["clusters"][0]["cluster"] == {"server": "https://h:443", "certificate-authority": "/ca.pem"}
    assert config["users"][0]["user"] == {"token": "t0k", "as": "alice"}
    assert cli_kubeconfig({"kubeconfig": "/k", "host": "https://h"}, str(tmp_path)) == "/k"  # no credentials
