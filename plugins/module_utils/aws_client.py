# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""boto3 access for the collection: one ``AwsClients`` per region, uniform errors, retries.

* Credentials, profile and endpoint come from the usual boto3 chain (``AWS_PROFILE``,
  ``AWS_ACCESS_KEY_ID``..., ``AWS_ENDPOINT_URL`` which botocore >= 1.31 honours natively).
* Throttling and transient errors are retried by botocore's ``standard`` retry mode with
  exponential backoff and jitter (``max_attempts`` tries in all).
* Every ``botocore`` error becomes a ``CiliumEksError`` naming the API call, the AWS error
  code and what to do (``AwsError``); a missing boto3 becomes ``MissingLibraryError``.
"""

from __future__ import annotations

import contextlib
import os

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

    def __init__(self, region, session=None, max_attempts=MAX_ATTEMPTS):
        if not HAS_BOTO3:
            raise MissingLibraryError("boto3", reason=BOTO3_IMPORT_ERROR)
        self.region = region
        self.session = session or boto3.session.Session(region_name=region)
        # total_max_attempts counts the first try; botocore's max_attempts would count the retries only.
        self.config = botocore.config.Config(retries={"mode": "standard", "total_max_attempts": max_attempts},
                                             user_agent_extra="cloudnet.cilium_eks")
        self._clients = {}

    def client(self, service):
        if service not in self._clients:
            try:
                self._clients[service] = self.session.client(service, region_name=self.region, config=self.config)
            except botocore.exceptions.BotoCoreError as exc:
                raise AwsError("%s client" % service, self.region, "", str(exc)) from exc
        return self._clients[service]

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


def _api_name(service, operation):
    """``eks``, ``describe_cluster`` -> ``eks:DescribeCluster`` (the IAM action name)."""
    return "%s:%s" % (service, "".join(part.title() for part in operation.split("_")))
