# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The one Kubernetes client factory of this collection.

``get_api_client()`` builds a ``kubernetes.client.ApiClient`` from a kubeconfig file (+ context),
an in-memory kubeconfig dict, or the in-cluster service account, without touching the
``kubernetes`` library's global default configuration. ``check_reachable()`` probes ``/version``
and turns every failure into a ``ClusterUnreachableError`` that says which server, which
kubeconfig/context and what to do. ``kubernetes`` is imported lazily: this file imports without it.
"""

from __future__ import annotations

import copy
import json
import os

from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.errors import (
    CiliumEksError,
    ClusterUnreachableError,
    MissingLibraryError,
    ValidationError,
)

SOURCE_ATTR = "cilium_eks_source"  # attribute set on the ApiClients we build: {"kubeconfig": ..., "context": ...}
VERSION_ATTR = "cilium_eks_version"  # attribute set by check_reachable: the /version answer it read
IN_MEMORY = "<in-memory kubeconfig>"
IN_CLUSTER = "<in-cluster service account>"
_DEFAULT_KUBECONFIG = os.path.join("~", ".kube", "config")


# kubernetes.core's connection options and the environment variables its client reads for them: K8S_AUTH_<option>,
# then K8S_AUTH_<kubernetes client name> (kubernetes.core 6.2.0 plugins/module_utils/args_common.py AUTH_ARG_SPEC and
# AUTH_ARG_MAP, plugins/module_utils/k8s/client.py _create_auth_spec and _create_headers). Same names, so that
# module_defaults and AWX's Kubernetes credential (K8S_AUTH_HOST, K8S_AUTH_API_KEY, K8S_AUTH_VERIFY_SSL,
# K8S_AUTH_SSL_CA_CERT) reach these modules as they reach kubernetes.core's.
AUTH_OPTIONS = {
    "kubeconfig": (dict(type="path"), ["K8S_AUTH_KUBECONFIG"]),
    "context": (dict(type="str"), ["K8S_AUTH_CONTEXT"]),
    "host": (dict(type="str"), ["K8S_AUTH_HOST"]),
    "api_key": (dict(type="str", no_log=True), ["K8S_AUTH_API_KEY"]),
    "username": (dict(type="str"), ["K8S_AUTH_USERNAME"]),
    "password": (dict(type="str", no_log=True), ["K8S_AUTH_PASSWORD"]),
    "validate_certs": (dict(type="bool", aliases=["verify_ssl"]), ["K8S_AUTH_VALIDATE_CERTS", "K8S_AUTH_VERIFY_SSL"]),
    "ca_cert": (dict(type="path", aliases=["ssl_ca_cert"]), ["K8S_AUTH_CA_CERT", "K8S_AUTH_SSL_CA_CERT"]),
    "client_cert": (dict(type="path", aliases=["cert_file"]), ["K8S_AUTH_CLIENT_CERT", "K8S_AUTH_CERT_FILE"]),
    "client_key": (dict(type="path", aliases=["key_file"], no_log=False),
                   ["K8S_AUTH_CLIENT_KEY", "K8S_AUTH_KEY_FILE"]),
    "proxy": (dict(type="str"), ["K8S_AUTH_PROXY"]),
    "no_proxy": (dict(type="str"), ["K8S_AUTH_NO_PROXY"]),
    "impersonate_user": (dict(type="str"), ["K8S_AUTH_IMPERSONATE_USER"]),
    "impersonate_groups": (dict(type="list", elements="str"), ["K8S_AUTH_IMPERSONATE_GROUPS"]),
}
# Options that override the kubeconfig's values: option -> kubernetes.client.Configuration attribute.
_OVERRIDES = (("username", "username"), ("password", "password"), ("ca_cert", "ssl_ca_cert"),
              ("client_cert", "cert_file"), ("client_key", "key_file"), ("proxy", "proxy"), ("no_proxy", "no_proxy"))
OWN_CREDENTIALS = "<host and credential options>"


def k8s_auth_argument_spec():
    """Module options shared by every module that talks to the Kubernetes API (kubernetes.core's AUTH_ARG_SPEC
    without proxy_headers and persist_config), each with kubernetes.core's K8S_AUTH_* environment variables."""
    from ansible.module_utils.basic import env_fallback

    return {name: dict(spec, fallback=(env_fallback, variables)) for name, (spec, variables) in AUTH_OPTIONS.items()}


def auth_options(params):
    """The connection options set in module ``params`` (those of ``k8s_auth_argument_spec`` other than kubeconfig,
    context and validate_certs), for ``get_api_client(**auth)``."""
    return {name: params[name] for name in AUTH_OPTIONS
            if name not in ("kubeconfig", "context", "validate_certs") and params.get(name) not in (None, "", [])}


def has_own_credentials(auth):
    """kubernetes.core's rule (k8s/client.py _create_configuration): a host with a token, a user and password or a
    client certificate and key needs no kubeconfig."""
    return bool(auth.get("host")) and bool(auth.get("api_key") or (auth.get("username") and auth.get("password"))
                                           or (auth.get("client_cert") and auth.get("client_key")))


def _override(configuration, auth):
    """The explicit options over what the kubeconfig set (kubernetes.core's order)."""
    if auth.get("host"):
        configuration.host = auth["host"].rstrip("/")
    if auth.get("api_key"):
        configuration.api_key = {"authorization": "Bearer " + auth["api_key"]}
    for option, attribute in _OVERRIDES:
        if auth.get(option):
            setattr(configuration, attribute, auth[option])
    if auth.get("username") and auth.get("password") and not auth.get("api_key"):
        # The client keeps username/password but no longer sends them: its auth_settings() has only BearerToken
        # (kubernetes 37.0.1 client/configuration.py), so HTTP basic auth goes in that header, as client-go does
        # for a kubeconfig user with username/password (rest.Config Username/Password). kube-apiserver itself
        # dropped basic auth in 1.19 (kubernetes#89069): such a cluster answers 401, which is then reported.
        configuration.api_key = {"authorization": configuration.get_basic_auth_token()}


def _apply_options(configuration, auth):
    """The explicit options over the kubeconfig's, also after each token refresh (the kubeconfig loader's
    refresh_api_key_hook sets its host and token again before every request). Before the ApiClient is made: its
    connection pool takes the CA and client certificate from the configuration once."""
    _override(configuration, auth)
    loader_hook = configuration.refresh_api_key_hook
    if loader_hook is not None and auth:
        def refresh(config):
            loader_hook(config)
            _override(config, auth)

        configuration.refresh_api_key_hook = refresh


def _impersonate(api_client, auth):
    """The impersonation headers (kubernetes.core's _create_headers)."""
    if auth.get("impersonate_user"):
        api_client.set_default_header("Impersonate-User", auth["impersonate_user"])
    groups = list(auth.get("impersonate_groups") or [])
    if len(groups) > 1:
        # One Impersonate-Group header per group is what the API server reads; the kubernetes client keeps one value
        # per header name.
        raise ValidationError("impersonate_groups", "more than one group cannot be sent by the kubernetes client",
                              accepted="one group", value=groups)
    if groups:
        api_client.set_default_header("Impersonate-Group", groups[0])


def cli_kubeconfig(params, directory):
    """The kubeconfig a CLI (cilium, helm) gets for module ``params``: the ``kubeconfig`` option, or, when the host
    and credential options are given, a kubeconfig written from them (mode 0600) in ``directory``; None: the CLI's
    default."""
    auth = auth_options(params)
    if not has_own_credentials(auth):
        return params.get("kubeconfig")
    import yaml

    cluster = {"server": auth["host"].rstrip("/")}
    if auth.get("ca_cert"):
        cluster["certificate-authority"] = auth["ca_cert"]
    if params.get("validate_certs") is False:
        cluster["insecure-skip-tls-verify"] = True
    if auth.get("proxy"):
        cluster["proxy-url"] = auth["proxy"]
    user = {"token": auth["api_key"]} if auth.get("api_key") else \
        {"client-certificate": auth["client_cert"], "client-key": auth["client_key"]} if auth.get("client_cert") else \
        {"username": auth["username"], "password": auth["password"]}
    if auth.get("impersonate_user"):
        user["as"] = auth["impersonate_user"]
    if auth.get("impersonate_groups"):
        user["as-groups"] = list(auth["impersonate_groups"])
    config = {"apiVersion": "v1", "kind": "Config", "current-context": "cluster",
              "clusters": [{"name": "cluster", "cluster": cluster}], "users": [{"name": "user", "user": user}],
              "contexts": [{"name": "cluster", "context": {"cluster": "cluster", "user": "user"}}]}
    path = os.path.join(directory, "kubeconfig")
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
        yaml.safe_dump(config, handle)
    return path


def import_kubernetes():
    """Return the ``kubernetes`` package, or raise ``MissingLibraryError`` telling how to install it."""
    try:
        import kubernetes
        import kubernetes.client
        import kubernetes.config
    except ImportError as exc:
        raise MissingLibraryError("kubernetes", reason=str(exc)) from exc
    return kubernetes


def _context_names(raw):
    names = []
    for item in raw.get("contexts") or []:
        item = getattr(item, "value", item)  # KubeConfigMerger wraps merged entries in ConfigNode
        if isinstance(item, dict) and item.get("name"):
            names.append(item["name"])
    return names


def _default_kubeconfig_paths():
    spec = os.environ.get("KUBECONFIG") or _DEFAULT_KUBECONFIG
    return spec, [os.path.expanduser(p) for p in spec.split(os.pathsep) if p]


def _load_incluster(configuration, why):
    from kubernetes.config.config_exception import ConfigException
    from kubernetes.config.incluster_config import load_incluster_config

    try:
        load_incluster_config(client_configuration=configuration)
    except ConfigException as exc:
        raise CiliumEksError("In-cluster Kubernetes configuration is unavailable (%s): %s" % (why, exc)) from exc


def _default_source(configuration, context):
    """The kubeconfig to read when none is given, or the in-cluster account (configuration loaded, returns None)."""
    spec, paths = _default_kubeconfig_paths()
    existing = [p for p in paths if os.path.isfile(p)]
    if existing:
        return os.pathsep.join(existing)
    if context is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
        _load_incluster(configuration, "no kubeconfig found at %s" % spec)
        return None
    raise ValidationError(
        "kubeconfig", "not set, and no kubeconfig exists at the default location %s" % spec,
        accepted="path of a kubeconfig file (the `kubeconfig` option or K8S_AUTH_KUBECONFIG), "
                 "e.g. the one `eksctl utils write-kubeconfig` writes",
    )


def _read_kubeconfig(kubeconfig):
    """``(raw config, label)`` of a kubeconfig path (several joined by ``os.pathsep`` are merged) or dict."""
    from kubernetes.config.kube_config import KubeConfigMerger

    if isinstance(kubeconfig, dict):
        return kubeconfig, IN_MEMORY
    kubeconfig = str(kubeconfig)
    for path in [os.path.expanduser(p) for p in kubeconfig.split(os.pathsep) if p]:
        if not os.path.isfile(path):
            raise ValidationError("kubeconfig", "file %s does not exist or is not a regular file" % path,
                                  accepted="path of an existing kubeconfig file")
        if not os.access(path, os.R_OK):
            raise ValidationError("kubeconfig", "file %s is not readable" % path,
                                  accepted="a kubeconfig file readable by this user")
    raw = KubeConfigMerger(kubeconfig).config
    if raw is None:
        raise ValidationError("kubeconfig", "%s holds no configuration" % kubeconfig)
    return raw, kubeconfig


def _load_kubeconfig(configuration, kubeconfig, context):
    """Load ``kubeconfig`` (+ ``context``) into ``configuration``; returns ``{"kubeconfig", "context"}`` used."""
    import yaml
    from kubernetes.config.config_exception import ConfigException
    from kubernetes.config.kube_config import KubeConfigLoader

    label = kubeconfig if isinstance(kubeconfig, str) else IN_MEMORY
    try:
        raw, label = _read_kubeconfig(kubeconfig)
        raw_dict = getattr(raw, "value", raw)
        if not isinstance(raw_dict, dict):
            raise ValidationError("kubeconfig", "%s is not a kubeconfig mapping" % label)
        names = _context_names(raw_dict)
        if context is not None and context not in names:
            raise ValidationError("context", "no such context in %s" % label, accepted=names, value=context)
        if context is None and not raw_dict.get("current-context"):
            raise ValidationError("context", "%s sets no current-context, so a context must be given" % label,
                                  accepted=names)
        loader = KubeConfigLoader(config_dict=raw, active_context=context, config_base_path=None)
        loader.load_and_set(configuration)
    except (ConfigException, yaml.YAMLError, AttributeError, KeyError, TypeError) as exc:
        raise ValidationError("kubeconfig", "cannot load %s: %s" % (label, exc)) from exc
    current = loader.current_context  # the context entry: {"name": ..., "context": {...}}
    return {"kubeconfig": label, "context": current.get("name") if isinstance(current, dict) else current}


def get_api_client(kubeconfig=None, context=None, validate_certs=None, in_cluster=False, **auth):
    """Build an ``ApiClient``.

    ``kubeconfig``: a path (``~`` expanded; several joined by ``os.pathsep`` are merged like kubectl does)
    or a kubeconfig ``dict``. ``None``: ``$KUBECONFIG`` or ``~/.kube/config``, and if neither exists but
    the process runs in a pod, the in-cluster service account. ``context``: overrides ``current-context``.
    ``validate_certs``: ``None`` keeps what the kubeconfig says, ``True``/``False`` force it.
    ``in_cluster=True``: use the pod's service account only. ``auth``: kubernetes.core's other connection options
    (``AUTH_OPTIONS``: host, api_key, ca_cert...): they override the kubeconfig's values, and a host with its own
    credentials (``has_own_credentials``) needs no kubeconfig at all.

    Raises ``ValidationError`` (missing/invalid kubeconfig, unknown context), ``MissingLibraryError``.
    The returned client carries ``cilium_eks_source`` (kubeconfig and context used) for error messages.
    """
    kubernetes = import_kubernetes()
    configuration = kubernetes.client.Configuration()
    if in_cluster:
        if kubeconfig is not None or context is not None:
            raise ValidationError("in_cluster", "cannot be combined with kubeconfig or context")
        _load_incluster(configuration, "requested")
        source = {"kubeconfig": IN_CLUSTER, "context": None}
    elif has_own_credentials(auth) and kubeconfig is None and context is None:
        source = {"kubeconfig": OWN_CREDENTIALS, "context": None}
    else:
        kubeconfig = kubeconfig if kubeconfig is not None else _default_source(configuration, context)
        if kubeconfig is None:
            source = {"kubeconfig": IN_CLUSTER, "context": None}
        else:
            source = _load_kubeconfig(configuration, kubeconfig, context)
    if validate_certs is not None:
        configuration.verify_ssl = bool(validate_certs)
    _apply_options(configuration, auth)
    api_client = kubernetes.client.ApiClient(configuration=configuration)
    _impersonate(api_client, auth)
    setattr(api_client, SOURCE_ATTR, source)
    return api_client


def _chain(exc):
    """The exception, its urllib3 ``reason`` and its ``__cause__``/``__context__`` chain."""
    seen = []
    while exc is not None and exc not in seen and len(seen) < 10:
        seen.append(exc)
        reason = getattr(exc, "reason", None)
        exc = reason if isinstance(reason, BaseException) else (exc.__cause__ or exc.__context__)
    return seen


def classify_failure(exc, timeout):
    """(reason, advice) for a request to the API server that failed with ``exc`` (``timeout``: seconds allowed)."""
    status = getattr(exc, "status", None)
    if status == 401:
        return ("401 Unauthorized: the API server rejected the credentials",
                "EKS tokens (`aws eks get-token`) expire after 15 minutes and the AWS identity needs an EKS "
                "access entry for this cluster: check the AWS profile/role the kubeconfig's exec command uses")
    if status == 403:
        return ("403 Forbidden: the credentials were accepted but may not GET /version",
                "grant this identity access to the cluster (EKS access entry / access policy)")
    chain = _chain(exc)
    names = " ".join(type(e).__name__ for e in chain)
    text = " ".join(str(e) for e in chain)
    detail = str(chain[-1]) or type(chain[-1]).__name__
    if "SSL" in names or "SSLError" in text or "CERTIFICATE_VERIFY_FAILED" in text:
        return ("TLS handshake failed (%s)" % detail,
                "the kubeconfig's certificate-authority-data must match the cluster (regenerate it with "
                "`aws eks update-kubeconfig` or `eksctl utils write-kubeconfig`); validate_certs=false is only "
                "for throwaway test clusters")
    if "ConnectionRefused" in names or "Connection refused" in text:
        return ("connection refused (%s)" % detail,
                "nothing listens at that address: check that the cluster exists and the kubeconfig is not stale")
    if "NameResolution" in names or "Name or service not known" in text or "name resolution" in text \
            or "nodename nor servname" in text:
        return ("DNS lookup failed (%s)" % detail,
                "the endpoint name does not resolve: the cluster may be deleted or the kubeconfig stale; a "
                "private-only EKS endpoint resolves only inside its VPC")
    if "Timeout" in names or "timed out" in text:
        return ("no answer within %ss (%s)" % (timeout, detail),
                "the EKS endpoint may be private-only, or a security group / network ACL / proxy blocks port 443 "
                "from here: check endpointPublicAccess and publicAccessCidrs")
    if status:
        return ("HTTP %s %s" % (status, getattr(exc, "reason", "")), None)
    if isinstance(exc, ValueError):
        return ("the answer to /version is not JSON (%s)" % exc,
                "the URL may point at a proxy or at something that is not a Kubernetes API server")
    return ("%s: %s" % (type(exc).__name__, detail), None)


def check_reachable(api_client, timeout=10):
    """GET ``/version`` (one attempt, no retries, ``timeout`` s to connect and to read) and return it as a dict
    (``major``, ``minor``, ``gitVersion``, ...). Raises ``ClusterUnreachableError``.
    """
    kubernetes = import_kubernetes()
    source = getattr(api_client, SOURCE_ATTR, None) or {}
    probe_configuration = copy.deepcopy(api_client.configuration)
    probe_configuration.retries = 0  # urllib3 would retry a refused connection 3 times by default
    probe = kubernetes.client.ApiClient(configuration=probe_configuration)
    for name, value in api_client.default_headers.items():  # impersonation
        probe.set_default_header(name, value)
    try:
        # Raw JSON rather than the VersionInfo model: newer clients validate every field strictly.
        # A (connect, read) tuple: kubernetes < 30 silently ignores a single float timeout.
        response = kubernetes.client.VersionApi(probe).get_code(
            _preload_content=False, _request_timeout=(timeout, timeout))
        status = getattr(response, "status", 200)
        if not 200 <= status < 300:  # some client versions leave status checks to the caller here
            raise kubernetes.client.ApiException(status=status, reason=getattr(response, "reason", ""))
        version = json.loads(response.data)
    except Exception as exc:
        reason, advice = classify_failure(exc, timeout)
        raise ClusterUnreachableError(
            api_client.configuration.host, reason,
            kubeconfig=source.get("kubeconfig"), context=source.get("context"), advice=advice,
        ) from exc
    finally:
        probe.close()
    if not isinstance(version, dict):
        raise ClusterUnreachableError(api_client.configuration.host, "/version did not return a JSON object",
                                      kubeconfig=source.get("kubeconfig"), context=source.get("context"))
    setattr(api_client, VERSION_ATTR, version)
    return version
