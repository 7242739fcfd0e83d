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

from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.errors import CiliumEksError
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.k8s_client import classify_failure, import_kubernetes

# kind -> (API class attribute, method suffix, namespaced) for the built-in kinds, or
# (None, (group, version, plural), namespaced) for custom resources.
KINDS = {
    "Pod": ("core", "pod", True),
    "Node": ("core", "node", False),
    "Namespace": ("core", "namespace", False),
    "ConfigMap": ("core", "config_map", True),
    "DaemonSet": ("apps", "daemon_set", True),
    "Deployment": ("apps", "deployment", True),
    "ReplicaSet": ("apps", "replica_set", True),
    "StatefulSet": ("apps", "stateful_set", True),
    "CiliumEndpoint": (None, ("cilium.io", "v2", "ciliumendpoints"), True),
    "CiliumNode": (None, ("cilium.io", "v2", "ciliumnodes"), False),
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


class K8sService:
    """Plain-dict access to one cluster through one ``ApiClient`` (see the module docstring for the rules)."""

    def __init__(self, api_client, request_timeout=REQUEST_TIMEOUT):
        self.kubernetes = import_kubernetes()
        self.api_client = api_client
        self.request_timeout = request_timeout
        client = self.kubernetes.client
        self.apis = {"core": client.CoreV1Api(api_client), "apps": client.AppsV1Api(api_client),
                     None: client.CustomObjectsApi(api_client)}

    @property
    def host(self):
        return self.api_client.configuration.host

    # -- requests ------------------------------------------------------------------------------------------

    def _method(self, verb, kind, namespace=None, name=None, body=None):
        """``(bound API method, positional args)`` of ``verb`` (read, list, create, patch, delete) on ``kind``."""
        if kind not in KINDS:
            raise ValueError("unknown kind %r; known: %s" % (kind, ", ".join(sorted(KINDS))))
        api, suffix, namespaced = KINDS[kind]
        scoped = namespaced and namespace is not None
        tail = [a for a in (name, body) if a is not None]
        if api is None:  # custom resource: (group, version, [namespace,] plural, [name,] [body])
            group, version, plural = suffix
            where = [group, version] + ([namespace] if scoped else []) + [plural]
            method = "%s_%s_custom_object" % ("get" if verb == "read" else verb, "namespaced" if scoped else "cluster")
            return getattr(self.apis[None], method), where + tail
        if namespaced and not scoped:
            if verb != "list":
                raise ValueError("%s %s needs a namespace" % (verb, kind))
            return getattr(self.apis[api], "list_%s_for_all_namespaces" % suffix), []
        method = getattr(self.apis[api], "%s_%s%s" % (verb, "namespaced_" if scoped else "", suffix))
        if verb == "create":  # create_namespaced_x(namespace, body)
            return method, ([namespace] if scoped else []) + [body]
        return method, ([name] if name is not None else []) + ([namespace] if scoped else []) + \
            ([body] if body is not None else [])

    def request(self, what, fn, *args, **kwargs):
        """``fn(*args, **kwargs)`` read raw: the JSON answer as a dict (None: 404), errors turned into ours."""
        from kubernetes.client.rest import ApiException
        from urllib3.exceptions import HTTPError

        kwargs.setdefault("_request_timeout", self.request_timeout)
        try:
            response = fn(*args, _preload_content=False, **kwargs)
            return json.loads(response.data or b"null")
        except (HTTPError, OSError) as exc:  # no answer at all: connection refused/reset, timeout
            raise ApiUnavailableError("Kubernetes API server %s did not answer %s (%s)" % (
                self.host, what, classify_failure(exc, self.request_timeout)[0])) from exc
        except ApiException as exc:
            if exc.status == 404:
                return None
            if exc.status == 429 or exc.status >= 500:
                raise ApiUnavailableError("Kubernetes API server %s answered %s %s to %s" % (
                    self.host, exc.status, exc.reason, what)) from exc
            raise K8sApiError("Kubernetes API error on %s: %s %s" % (what, exc.status, exc.reason),
                              status_code=exc.status, body=(exc.body or "")[:2000] or None) from exc

    @staticmethod
    def _what(verb, kind, name=None, namespace=None):
        return "%s %s %s" % (verb, kind, "/".join(p for p in (namespace, name) if p) or "(all)")

    def get(self, kind, name, namespace=None):
        """The object as a dict, or None when it does not exist."""
        fn, args = self._method("read", kind, namespace, name)
        return self.request(self._what("read", kind, name, namespace), fn, *args)

    def list_object(self, kind, namespace=None, label_selector=None, field_selector=None):
        """The whole list answer (``items`` and ``metadata.resourceVersion``); ``{"items": []}`` when the API
        (a custom resource whose CRD is not there yet) does not exist."""
        fn, args = self._method("list", kind, namespace)
        selectors = {k: v for k, v in (("label_selector", label_selector), ("field_selector", field_selector)) if v}
        found = self.request(self._what("list", kind, namespace=namespace), fn, *args, **selectors)
        return found if isinstance(found, dict) else {"items": [], "metadata": {}, "absent": True}

    def list(self, kind, namespace=None, label_selector=None, field_selector=None):
        """The objects (dicts) of ``kind``, in ``namespace`` or everywhere."""
        return self.list_object(kind, namespace, label_selector, field_selector).get("items") or []

    def create(self, kind, body, namespace=None):
        fn, args = self._method("create", kind, namespace, body=body)
        name = (body.get("metadata") or {}).get("name")
        return self.request(self._what("create", kind, name, namespace), fn, *args)

    def patch(self, kind, name, body, namespace=None, patch_type="strategic"):
        """Patch an object (``strategic``, ``merge`` or ``json`` patch); None when it does not exist."""
        fn, args = self._method("patch", kind, namespace, name, body)
        return self.request(self._what("patch", kind, name, namespace), fn, *args,
                            _content_type=PATCH_TYPES[patch_type])

    def delete(self, kind, name, namespace=None, **options):
        """Delete an object (``options``: grace_period_seconds, propagation_policy); False when already gone."""
        fn, args = self._method("delete", kind, namespace, name)
        return self.request(self._what("delete", kind, name, namespace), fn, *args, **options) is not None

    # -- exec ----------------------------------------------------------------------------------------------

    def exec(self, namespace, pod, container, argv, timeout):
        """Run ``argv`` in a container: ``ExecResult(rc, stdout, stderr, message)`` (see ``exit_code``)."""
        from kubernetes.stream import stream
        from kubernetes.stream.ws_client import ERROR_CHANNEL

        # stream() swaps the call_api of the client it is given: a private client per call keeps threads apart.
        core = self.kubernetes.client.CoreV1Api(self.kubernetes.client.ApiClient(self.api_client.configuration))
        resp = stream(core.connect_get_namespaced_pod_exec, pod, namespace, container=container, command=list(argv),
                      stdout=True, stderr=True, stdin=False, tty=False, _preload_content=False,
                      _request_timeout=timeout)
        out, err = [], []
        deadline = time.monotonic() + timeout
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
            fn, args = self._method("list", kind, namespace)
            selector = {"field_selector": "metadata.name=%s" % name} if name else {}
            try:
                resp = fn(*args, watch=True, resource_version=resource_version,
                          timeout_seconds=max(1, int(math.ceil(seconds))), _preload_content=False,
                          _request_timeout=(5, seconds), **selector)
                try:
                    return bool(resp.read(1))  # the first byte of the first event, or the read timeout
                finally:
                    resp.release_conn()
                    resp.close()
            except Exception:  # pylint: disable=broad-except  # read timeout (no change) or no watch: sleep
                return False

        return pause
