# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The one way this collection talks to the Kubernetes API: read, list, create, patch, delete, exec, watch.

``K8sService(api_client)`` works on plain dicts (the objects' JSON, as ``kubectl get -o json`` prints them), read
raw: building the client's models of a few thousand pods and nodes, then turning them back into dicts, costs more
than the request. One rule each, written once:

* absent: ``get`` returns None for a 404, ``delete`` returns False for an object already gone;
* unavailable: no answer, 429 or 5xx raise ``ApiUnavailableError`` (worth asking again while waiting); any other
  API error raises ``K8sApiError`` with the status and the object named;
* exec: ``exec(...)`` returns ``ExecResult(rc, stdout, stderr, message)``: ``rc`` 0 on success, the command's exit
  code when the runtime gives one, None when the command failed without one; ``ExecTimeoutError`` after ``timeout``;
  refused (``ValidationError``) when the client impersonates, which the exec websocket cannot carry;
* watch: ``wake_on_change(kind, ...)`` returns the ``pause`` a ``waiter.Waiter`` takes, returning early when the
  object (or list) changes.

Kinds are named as in manifests (``Pod``, ``DaemonSet``, ``CiliumEndpoint``...): ``KINDS`` maps each to its API.
``kubernetes`` is imported when a service is built, not when this file is.
"""

from __future__ import annotations

import collections
import json
import math
import re
import time
from urllib.parse import quote

from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.errors import CiliumEksError, ValidationError
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.k8s_client import (
    VERSION_ATTR,
    classify_failure,
    import_kubernetes,
)

# kind -> (API group path, resource, namespaced).
KINDS = {
    "Pod": ("/api/v1", "pods", True),
    "Node": ("/api/v1", "nodes", False),
    "Namespace": ("/api/v1", "namespaces", False),
    "ConfigMap": ("/api/v1", "configmaps", True),
    "DaemonSet": ("/apis/apps/v1", "daemonsets", True),
    "Deployment": ("/apis/apps/v1", "deployments", True),
    "ReplicaSet": ("/apis/apps/v1", "replicasets", True),
    "StatefulSet": ("/apis/apps/v1", "statefulsets", True),
    "CiliumEndpoint": ("/apis/cilium.io/v2", "ciliumendpoints", True),
    "CiliumNode": ("/apis/cilium.io/v2", "ciliumnodes", False),
    "Lease": ("/apis/coordination.k8s.io/v1", "leases", True),
}
PATCH_TYPES = {"strategic": "application/strategic-merge-patch+json", "merge": "application/merge-patch+json",
               "json": "application/json-patch+json"}
REQUEST_TIMEOUT = 30  # seconds for one request (an exec has its own timeout)
ExecResult = collections.namedtuple("ExecResult", "rc stdout stderr message")


class K8sApiError(CiliumEksError):
    """The API server refused a request (403, 409, 422...): the status and what was asked are in the message."""


class ApiUnavailableError(CiliumEksError):
    """The API server did not answer (restarting, overloaded, network blip): worth asking again while waiting."""


class ExecTimeoutError(CiliumEksError):
    """A command run in a container did not finish in time."""


def exit_code(error_channel):
    """``(rc, message)`` from an exec's error channel (a ``v1.Status`` JSON): the one rule for exit codes.

    Success -> ``(0, None)``; a failure with an ``ExitCode`` cause or ``exit status N`` in its message -> ``(N,
    message)``; a failure without a code -> ``(None, message)``. An empty channel (the stream closed without a
    status) counts as success: the API server sends a status on every failure."""
    if not error_channel:
        return 0, None
    try:
        status = json.loads(error_channel)
    except ValueError:
        status = {"status": "Failure", "message": error_channel.strip()}
    if status.get("status") == "Success":
        return 0, None
    message = status.get("message") or error_channel.strip()
    for cause in (status.get("details") or {}).get("causes") or []:
        if cause.get("reason") == "ExitCode":
            try:
                return int(cause.get("message")), message
            except (TypeError, ValueError):
                break
    found = re.search(r"exit status (\d+)", message or "")
    return (int(found.group(1)) if found else None), message


def resource_path(kind, namespace=None, name=None):
    """The API path of ``kind`` (in ``namespace``; one object when ``name``): ``/apis/apps/v1/namespaces/x/daemonsets``."""
    if kind not in KINDS:
        raise ValueError("unknown kind %r; known: %s" % (kind, ", ".join(sorted(KINDS))))
    group, plural, namespaced = KINDS[kind]
    if namespaced and namespace is None and name is not None:
        raise ValueError("%s %s needs a namespace" % (kind, name))
    path = "%s/namespaces/%s/%s" % (group, quote(namespace, safe=""), plural) if namespaced and namespace is not None \
        else "%s/%s" % (group, plural)
    return path + ("/" + quote(name, safe="") if name is not None else "")


def bearer_token(configuration):
    """The ``Authorization`` value the client sends on ordinary requests, for the exec websocket, which builds its
    own headers. The kubeconfig loader of kubernetes >= 32 keeps a token (static, or from an exec plugin such as
    the ``aws eks get-token``/aws-iam-authenticator command eksctl writes) under ``api_key['BearerToken']``;
    explicit ``api_key`` options and older clients under ``'authorization'``: read both, as the client's own
    ``auth_settings`` does. Without this the exec reaches the API server as ``system:anonymous`` (403)."""
    return configuration.get_api_key_with_prefix("BearerToken", alias="authorization")


def refuse_impersonated_exec(api_client):
    """``ValidationError`` when the client impersonates (``impersonate_user``/``impersonate_groups``): the exec
    websocket of the kubernetes client sends only the ``authorization`` header of the headers it is given
    (kubernetes 37.0.1 ``kubernetes/stream/ws_client.py`` ``create_websocket``; kubernetes-client/python#2510), so
    the command would run as the kubeconfig's own identity, with rights the impersonated one may not have."""
    headers = sorted(h for h in api_client.default_headers if h.lower().startswith("impersonate-"))
    if headers:
        option = "impersonate_user" if "Impersonate-User" in headers else "impersonate_groups"
        raise ValidationError(option, "cannot be applied to an exec into a pod (the kubernetes client's websocket "
                                      "does not send %s), so the command would run unimpersonated" % ", ".join(headers),
                              accepted="no impersonation for a module that execs into pods; give it a kubeconfig or "
                                       "token of that identity instead")


def _within(timeout, message, call, *args, **kwargs):
    """``call(*args, **kwargs)``, or ``ExecTimeoutError(message)`` after ``timeout`` seconds. For the exec's websocket
    handshake, which the kubernetes client opens with no socket timeout at all (kubernetes 37.0.1
    ``stream/ws_client.py`` ``create_websocket``: ``WebSocket.connect`` without ``timeout``; websocket-client
    ``_http._open_socket`` then sets ``settimeout(None)``), so an API server that accepts the connection and never
    answers would hang the module forever. The call runs in a daemon thread that the module's exit ends."""
    import threading

    outcome = {}

    def run():
        try:
            outcome["value"] = call(*args, **kwargs)
        except BaseException as exc:  # pylint: disable=broad-except  # handed to the caller's thread
            outcome["error"] = exc

    worker = threading.Thread(target=run, name="exec-handshake", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise ExecTimeoutError(message)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


class K8sService:
    """Plain-dict access to one cluster through one ``ApiClient`` (see the module docstring for the rules).

    Requests go through the client's generic request path (its serializer, its authentication, its TLS and
    retries), never through the generated API classes: importing those costs more CPU than a whole no-op check."""

    def __init__(self, api_client, request_timeout=REQUEST_TIMEOUT):
        self.kubernetes = import_kubernetes()
        self.api_client = api_client
        self.request_timeout = request_timeout

    @property
    def host(self):
        return self.api_client.configuration.host

    # -- requests ------------------------------------------------------------------------------------------

    def send(self, method, path, query=(), body=None, content_type="application/json", timeout=None,
             accept="application/json"):
        """``(status, reason, response)`` of one request; ``response`` is urllib3's, unread. Raises urllib3/OSError
        errors when there is no answer at all."""
        api, headers = self.api_client, {"Accept": accept, "Content-Type": content_type}
        timeout = self.request_timeout if timeout is None else timeout
        if hasattr(api, "param_serialize"):  # kubernetes >= 35: the generator's serializer, then one call
            request = api.param_serialize(method, path, query_params=list(query), header_params=headers, body=body,
                                          auth_settings=["BearerToken"])
            answer = api.call_api(*request, _request_timeout=timeout)
            return answer.status, answer.reason, answer.response
        from kubernetes.client.rest import ApiException

        try:  # older clients: call_api(resource_path, method, ...) raises ApiException on a non-2xx answer
            answer = api.call_api(path, method, query_params=list(query), header_params=headers, body=body,
                                  auth_settings=["BearerToken"], _preload_content=False, _return_http_data_only=True,
                                  _request_timeout=timeout)
            return answer.status, answer.reason, answer
        except ApiException as exc:
            return exc.status, exc.reason, _Answered(exc.body)

    def _answer(self, what, method, path, query=(), body=None, content_type="application/json",
                accept="application/json"):
        """``(status, reason, body bytes)``; no answer at all raises ``ApiUnavailableError`` naming ``what``."""
        from urllib3.exceptions import HTTPError

        try:
            status, reason, answer = self.send(method, path, query, body, content_type, accept=accept)
            return status, reason, answer.data
        except (HTTPError, OSError) as exc:  # no answer at all: connection refused/reset, timeout
            raise ApiUnavailableError("Kubernetes API server %s did not answer (%s) to %s" % (
                self.host, classify_failure(exc, self.request_timeout)[0], what)) from exc

    def server_version(self):
        """The API server's ``gitVersion``: from the ``/version`` answer ``check_reachable`` already read for this
        client when it did, else one ``GET /version``; None when the server does not say."""
        version = getattr(self.api_client, VERSION_ATTR, None)
        if version is None:
            version = self.request("read the API server's version", "GET", "/version") or {}
        return version.get("gitVersion")

    def request(self, what, method, path, query=(), body=None, content_type="application/json"):
        """The JSON answer as a dict (None: 404); failures turned into ``ApiUnavailableError``/``K8sApiError``."""
        status, reason, data = self._answer(what, method, path, query, body, content_type)
        if status == 404:
            return None
        if status == 429 or status >= 500:
            raise ApiUnavailableError("Kubernetes API server %s answered %s %s to %s" % (
                self.host, status, reason, what))
        if not 200 <= status < 300:
            text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data or "")
            raise K8sApiError("Kubernetes API error on %s: %s %s" % (what, status, reason), status_code=status,
                              body=text[:2000] or None)
        return json.loads(data or b"null")

    @staticmethod
    def _what(verb, kind, name=None, namespace=None):
        return "%s %s %s" % (verb, kind, "/".join(p for p in (namespace, name) if p) or "(all)")

    def get(self, kind, name, namespace=None):
        """The object as a dict, or None when it does not exist."""
        return self.request(self._what("read", kind, name, namespace), "GET", resource_path(kind, namespace, name))

    def list_object(self, kind, namespace=None, label_selector=None, field_selector=None):
        """The whole list answer (``items`` and ``metadata.resourceVersion``); ``{"items": [], "absent": True}`` when
        the API (a custom resource whose CRD is not there yet) does not exist."""
        query = [(k, v) for k, v in (("labelSelector", label_selector), ("fieldSelector", field_selector)) if v]
        found = self.request(self._what("list", kind, namespace=namespace), "GET", resource_path(kind, namespace),
                             query)
        return found if isinstance(found, dict) else {"items": [], "metadata": {}, "absent": True}

    def list(self, kind, namespace=None, label_selector=None, field_selector=None):
        """The objects (dicts) of ``kind``, in ``namespace`` or everywhere."""
        return self.list_object(kind, namespace, label_selector, field_selector).get("items") or []

    def create(self, kind, body, namespace=None):
        name = (body.get("metadata") or {}).get("name")
        return self.request(self._what("create", kind, name, namespace), "POST", resource_path(kind, namespace),
                            body=body)

    def patch(self, kind, name, body, namespace=None, patch_type="strategic"):
        """Patch an object (``strategic``, ``merge`` or ``json`` patch); None when it does not exist."""
        return self.request(self._what("patch", kind, name, namespace), "PATCH", resource_path(kind, namespace, name),
                            body=body, content_type=PATCH_TYPES[patch_type])

    def replace(self, kind, name, body, namespace=None):
        """Replace an object (PUT); with ``metadata.resourceVersion`` in ``body`` the API server refuses (409) when
        the object changed since it was read."""
        return self.request(self._what("replace", kind, name, namespace), "PUT", resource_path(kind, namespace, name),
                            body=body)

    def delete(self, kind, name, namespace=None, grace_period_seconds=None, propagation_policy=None,
               resource_version=None):
        """Delete an object; False when it was already gone. With ``resource_version`` only that version of it
        (a precondition: 409 when it changed since it was read)."""
        query = [(k, v) for k, v in (("gracePeriodSeconds", grace_period_seconds),
                                     ("propagationPolicy", propagation_policy)) if v is not None]
        body = {"preconditions": {"resourceVersion": resource_version}} if resource_version else None
        return self.request(self._what("delete", kind, name, namespace), "DELETE",
                            resource_path(kind, namespace, name), query, body=body) is not None

    def logs(self, namespace, pod, container, previous=False, tail_lines=None):
        """A container's log as text (``kubectl logs [--previous] [--tail N]``); None when the pod, or with
        ``previous`` its terminated container, is not there (the API answers 400 or 404)."""
        query = [("container", container)] + ([("previous", "true")] if previous else []) + (
            [("tailLines", int(tail_lines))] if tail_lines else [])
        what = "read the log of %s/%s (container %s%s)" % (namespace, pod, container, ", previous" if previous else "")
        status, reason, data = self._answer(what, "GET", resource_path("Pod", namespace, pod) + "/log", query,
                                            accept="text/plain, */*")
        if status in (400, 404):
            return None
        if not 200 <= status < 300:
            raise K8sApiError("Kubernetes API error on %s: %s %s" % (what, status, reason), status_code=status)
        return data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data or "")

    # -- exec ----------------------------------------------------------------------------------------------

    def exec(self, namespace, pod, container, argv, timeout):
        """Run ``argv`` in a container: ``ExecResult(rc, stdout, stderr, message)`` (see ``exit_code``)."""
        from kubernetes.stream.ws_client import ERROR_CHANNEL, websocket_call

        refuse_impersonated_exec(self.api_client)
        configuration = self.api_client.configuration
        token = bearer_token(configuration)
        query = [("command", list(argv)), ("container", container), ("stdin", "false"), ("stdout", "true"),
                 ("stderr", "true"), ("tty", "false")]
        deadline = time.monotonic() + timeout
        resp = _within(timeout, "`%s` in %s/%s (container %s): the API server did not answer the exec's websocket "
                       "handshake within %ss" % (" ".join(argv), namespace, pod, container, timeout),
                       websocket_call, configuration, "GET",
                       self.host + resource_path("Pod", namespace, pod) + "/exec",
                       query_params=query, headers={"authorization": token} if token else {},
                       _preload_content=False, _request_timeout=timeout)
        out, err = [], []
        try:
            while resp.is_open():
                if time.monotonic() > deadline:
                    raise ExecTimeoutError("`%s` in %s/%s (container %s) did not finish within %ss"
                                           % (" ".join(argv), namespace, pod, container, timeout))
                resp.update(timeout=1)
                out.append(resp.read_stdout() if resp.peek_stdout() else "")
                err.append(resp.read_stderr() if resp.peek_stderr() else "")
            out.append(resp.read_stdout() if resp.peek_stdout() else "")
            err.append(resp.read_stderr() if resp.peek_stderr() else "")
            rc, message = exit_code(resp.read_channel(ERROR_CHANNEL))
        finally:
            resp.close()
        return ExecResult(rc, "".join(out), "".join(err), message)

    # -- watch ---------------------------------------------------------------------------------------------

    def wake_on_change(self, kind, namespace=None, name=None, resource_version=None):
        """A ``pause(seconds)`` for ``waiter.Waiter``: waits up to ``seconds`` and returns True as soon as the
        object ``name`` (or any object of the list) changes after ``resource_version``; False when nothing changed
        or the watch is not possible (no version, RBAC, errors), in which case the waiter sleeps the rest."""

        def pause(seconds):
            if not resource_version or seconds <= 0.05:
                return False
            query = [("watch", "true"), ("resourceVersion", resource_version),
                     ("timeoutSeconds", max(1, int(math.ceil(seconds))))]
            if name:
                query.append(("fieldSelector", "metadata.name=%s" % name))
            try:
                status, _reason, answer = self.send("GET", resource_path(kind, namespace), query,
                                                    timeout=(5, seconds))
                try:
                    return 200 <= status < 300 and bool(answer.read(1))  # the first byte of the first event
                finally:
                    getattr(answer, "release_conn", lambda: None)()
            except Exception:  # pylint: disable=broad-except  # read timeout (no change) or no watch: sleep
                return False

        return pause


class _Answered:
    """The body of an answer an older client raised as an ApiException, read like a response."""

    def __init__(self, body):
        self.data = body.encode("utf-8") if isinstance(body, str) else body

    def read(self, _amount=None):
        return self.data
