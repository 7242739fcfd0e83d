# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""boto3 access for the collection: one ``AwsClients`` per region, uniform errors, retries.

* The AWS options are amazon.aws's (``aws_argument_spec()``: profile, access_key, secret_key, session_token,
  endpoint_url, region... with their aliases and environment fallbacks); ``connection(params)`` turns them into
  boto3's session and client arguments as amazon.aws does, ``eksctl_env(params)`` into the environment of eksctl
  (never its argv). Options left unset leave the usual chain in charge (``AWS_PROFILE``, ``AWS_ACCESS_KEY_ID``...,
  ``AWS_ENDPOINT_URL`` which botocore >= 1.31 honours natively, an instance role).
* Throttling and transient errors are retried by botocore's ``standard`` retry mode with
  exponential backoff and jitter (``max_attempts`` tries in all).
* Every ``botocore`` error becomes a ``CiliumEksError`` naming the API call, the AWS error
  code and what to do (``AwsError``); a missing boto3 becomes ``MissingLibraryError``.
"""

from __future__ import annotations

import contextlib
import os

from ansible.module_utils.basic import env_fallback

from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.errors import CiliumEksError, MissingLibraryError

try:
    import boto3
    import botocore.config
    import botocore.exceptions

    HAS_BOTO3 = True
    BOTO3_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - depends on the managed node
    HAS_BOTO3 = False
    BOTO3_IMPORT_ERROR = str(exc)

MAX_ATTEMPTS = 8

_ADVICE = {
    "AccessDenied": "the AWS identity in use lacks this permission; check `aws sts get-caller-identity` and its IAM policies",
    "AccessDeniedException": "the AWS identity in use lacks this permission; check `aws sts get-caller-identity` "
                             "and its IAM policies",
    "UnrecognizedClientException": "the AWS credentials are invalid or expired; refresh them (AWS_PROFILE, "
                                   "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, `aws sso login`)",
    "ExpiredTokenException": "the AWS session token expired; refresh the credentials",
    "InvalidClientTokenId": "the AWS access key is unknown; check the credentials in use",
}
_THROTTLED = "AWS kept throttling after %d attempts with backoff; retry later or lower the parallelism" % MAX_ATTEMPTS
_SERVER_ERROR = ("AWS answered with a server error %d times in a row (retried with backoff); it is usually "
                 "transient: run again later, and check the AWS Health Dashboard for the region" % MAX_ATTEMPTS)
_ADVICE.update(dict.fromkeys(("Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException"),
                             _THROTTLED))
_ADVICE.update(dict.fromkeys(("ServiceUnavailable", "ServiceUnavailableException", "InternalError", "InternalFailure",
                              "ServerException"), _SERVER_ERROR))


def aws_argument_spec():
    """amazon.aws's AWS options (doc fragments ``amazon.aws.common.modules`` and ``amazon.aws.region.modules``): a copy
    of ``aws_argument_spec`` in plugins/module_utils/modules.py of amazon.aws 10.1.2, with its aliases and environment
    fallbacks (tests/unit compares it with the installed amazon.aws). ``region`` has no fallback here: the modules
    resolve it themselves (option, then the ClusterConfig's ``metadata.region``, then ``AWS_REGION`` and
    ``AWS_DEFAULT_REGION``)."""
    return dict(
        access_key=dict(aliases=["aws_access_key_id", "aws_access_key"],
                        fallback=(env_fallback, ["AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY"]), no_log=False),
        secret_key=dict(aliases=["aws_secret_access_key", "aws_secret_key"],
                        fallback=(env_fallback, ["AWS_SECRET_ACCESS_KEY", "AWS_SECRET_KEY"]), no_log=True),
        session_token=dict(aliases=["aws_session_token"], fallback=(env_fallback, ["AWS_SESSION_TOKEN"]), no_log=True),
        profile=dict(aliases=["aws_profile"], fallback=(env_fallback, ["AWS_PROFILE", "AWS_DEFAULT_PROFILE"])),
        endpoint_url=dict(aliases=["aws_endpoint_url"], fallback=(env_fallback, ["AWS_URL"])),
        validate_certs=dict(type="bool", default=True),
        aws_ca_bundle=dict(type="path", fallback=(env_fallback, ["AWS_CA_BUNDLE"])),
        aws_config=dict(type="dict"),
        debug_botocore_endpoint_logs=dict(type="bool", default=False,
                                          fallback=(env_fallback, ["ANSIBLE_DEBUG_BOTOCORE_LOGS"])),
        region=dict(aliases=["aws_region"]),
    )


def connection(params):
    """``(session_kwargs, client_kwargs, aws_config)`` for boto3 from the AWS options, as amazon.aws builds them
    (``_aws_connection_info`` in plugins/module_utils/botocore.py, amazon.aws 10.1.2): a profile excludes keys, empty
    keys are unset, ``aws_ca_bundle`` or ``validate_certs`` decide ``verify``, ``aws_config`` is a botocore Config."""
    profile = params.get("profile")
    keys = {"aws_access_key_id": params.get("access_key") or None,
            "aws_secret_access_key": params.get("secret_key") or None,
            "aws_session_token": params.get("session_token") or None}
    if profile and any(keys.values()):
        raise CiliumEksError("Give either `profile` or `access_key`/`secret_key`/`session_token`, not both (set from "
                             "the task, module_defaults or AWS_PROFILE/AWS_ACCESS_KEY_ID...); amazon.aws refuses the "
                             "same", option="profile")
    session = {"profile_name": profile} if profile else keys
    validate_certs = params.get("validate_certs", True)
    client = {"endpoint_url": params.get("endpoint_url") or None,
              "verify": params.get("aws_ca_bundle") if validate_certs and params.get("aws_ca_bundle")
              else validate_certs}
    return session, client, params.get("aws_config") or {}


def eksctl_env(params, region=None):
    """The environment eksctl gets for the AWS options that are set: credentials never go on its argv. A profile
    removes key variables inherited from this process and keys remove a profile, so eksctl uses exactly what the
    options say. eksctl reads ``AWS_PROFILE`` (``AddCommonFlagsForAWS``, pkg/ctl/cmdutils/cmdutils.go at v0.225.0)
    and writes it into the kubeconfig's exec user (``AppendAuthenticator``, pkg/utils/kubeconfig/kubeconfig.go);
    its AWS SDK (aws-sdk-go-v2 config v1.32.7, env_config.go) reads ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
    ``AWS_SESSION_TOKEN``, ``AWS_REGION``, ``AWS_ENDPOINT_URL`` and ``AWS_CA_BUNDLE``."""
    env = {}
    if params.get("profile"):
        env.update(AWS_PROFILE=params["profile"], AWS_ACCESS_KEY_ID=None, AWS_SECRET_ACCESS_KEY=None,
                   AWS_SESSION_TOKEN=None, AWS_ACCESS_KEY=None, AWS_SECRET_KEY=None)
    elif params.get("access_key") or params.get("secret_key"):
        env.update(AWS_ACCESS_KEY_ID=params.get("access_key"), AWS_SECRET_ACCESS_KEY=params.get("secret_key"),
                   AWS_SESSION_TOKEN=params.get("session_token") or None, AWS_PROFILE=None, AWS_DEFAULT_PROFILE=None)
    if region:
        env["AWS_REGION"] = region
    if params.get("endpoint_url"):
        env["AWS_ENDPOINT_URL"] = params["endpoint_url"]
    if params.get("aws_ca_bundle"):
        env["AWS_CA_BUNDLE"] = params["aws_ca_bundle"]
    return env


def region_from_env():
    """``AWS_REGION`` or ``AWS_DEFAULT_REGION`` (what the AWS SDKs and eksctl read), else None."""
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or None


class AwsError(CiliumEksError):
    """An AWS API call failed. Names the call, the region, the AWS error code and the advice."""

    def __init__(self, operation, region, code, message, advice=None):
        self.operation = operation
        self.region = region
        self.code = code
        msg = "AWS call %s in %s failed" % (operation, region)
        if code:
            msg += " with %s" % code
        msg += ": %s" % message
        advice = advice or _ADVICE.get(code)
        if advice:
            msg += ". %s" % advice[0].upper() + advice[1:]
        super().__init__(msg, operation=operation, region=region, aws_error_code=code, advice=advice)


def error_code(exc):
    """The AWS error code of a botocore ``ClientError`` (``""`` otherwise)."""
    response = getattr(exc, "response", None) or {}
    return response.get("Error", {}).get("Code", "")


class AwsClients:
    """Lazily created boto3 clients for one region, with ``call(service, operation, **kwargs)``."""

    def __init__(self, region, session=None, max_attempts=MAX_ATTEMPTS, params=None, calls=None):
        """``params``: the module's AWS options (``aws_argument_spec``); None uses the default chain alone.
        ``calls``: a list that gets ``service:Operation`` for every API call made (``resource_actions``)."""
        if not HAS_BOTO3:
            raise MissingLibraryError("boto3", reason=BOTO3_IMPORT_ERROR)
        self.region = region
        session_kwargs, self.client_kwargs, aws_config = connection(params or {})
        self.session = session or _session(region, session_kwargs)
        # total_max_attempts counts the first try; botocore's max_attempts would count the retries only.
        self.config = botocore.config.Config(retries={"mode": "standard", "total_max_attempts": max_attempts},
                                             user_agent_extra="cloudnet.cilium_eks")
        if aws_config:  # the user's aws_config wins, as in amazon.aws
            self.config = self.config.merge(botocore.config.Config(**aws_config))
        self._clients = {}
        self._calls = calls

    def client(self, service):
        if service not in self._clients:
            try:
                self._clients[service] = self.session.client(service, region_name=self.region, config=self.config,
                                                             **self.client_kwargs)
                if self._calls is not None:
                    self._clients[service].meta.events.register("before-parameter-build", self._record)
            except botocore.exceptions.BotoCoreError as exc:
                raise AwsError("%s client" % service, self.region, "", str(exc)) from exc
        return self._clients[service]

    def _record(self, model, **_kwargs):
        """botocore's ``before-parameter-build`` event: one entry per API call, retries not counted."""
        self._calls.append("%s:%s" % (model.service_model.endpoint_prefix, model.name))

    @contextlib.contextmanager
    def _translated(self, service, operation, missing_ok=()):
        """Every botocore error of ``service``.``operation`` as an ``AwsError`` with advice; an error code in
        ``missing_ok`` (e.g. ``ResourceNotFoundException``) is swallowed instead."""
        api = _api_name(service, operation)
        try:
            yield
        except botocore.exceptions.ClientError as exc:
            code = error_code(exc)
            if code in missing_ok:
                return
            raise AwsError(api, self.region, code, exc.response.get("Error", {}).get("Message", str(exc))) from exc
        except botocore.exceptions.NoCredentialsError as exc:
            raise AwsError(api, self.region, "NoCredentials", str(exc),
                           "configure AWS credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
                           "an instance role) for the host running the module") from exc
        except botocore.exceptions.EndpointConnectionError as exc:
            raise AwsError(api, self.region, "EndpointConnectionError", str(exc),
                           "check the region name, the network path to AWS and AWS_ENDPOINT_URL if set") from exc
        except botocore.exceptions.BotoCoreError as exc:
            raise AwsError(api, self.region, type(exc).__name__, str(exc)) from exc

    def call(self, service, operation, missing_ok=(), **kwargs):
        """``client(service).<operation>(**kwargs)`` with errors turned into ``AwsError``; None when the error
        code is one of ``missing_ok`` (the resource does not exist)."""
        client = self.client(service)
        with self._translated(service, operation, missing_ok):
            return getattr(client, operation)(**kwargs)
        return None

    def paginate(self, service, operation, key, **kwargs):
        """All items under ``key`` of every page of ``operation``."""
        client = self.client(service)
        items = []
        with self._translated(service, operation):
            for page in client.get_paginator(operation).paginate(**kwargs):
                items.extend(page.get(key, []))
        return items


def _session(region, session_kwargs):
    try:
        return boto3.session.Session(region_name=region, **session_kwargs)
    except botocore.exceptions.ProfileNotFound as exc:
        raise CiliumEksError("AWS profile %r (option `profile` or AWS_PROFILE) is not in this host's AWS config files "
                             "(~/.aws/config, ~/.aws/credentials, or AWS_CONFIG_FILE/AWS_SHARED_CREDENTIALS_FILE): "
                             "%s. Add it there, or give the keys instead" % (
                                 session_kwargs.get("profile_name") or os.environ.get("AWS_PROFILE"), exc),
                             option="profile") from exc


def _api_name(service, operation):
    """``eks``, ``describe_cluster`` -> ``eks:DescribeCluster`` (the IAM action name)."""
    return "%s:%s" % (service, "".join(part.title() for part in operation.split("_")))
