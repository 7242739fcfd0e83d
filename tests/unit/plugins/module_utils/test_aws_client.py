# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""module_utils/aws_client.py: botocore errors become AwsError naming the call; retries are configured."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

from ansible_collections.cloudnet.cilium_eks.plugins.module_utils import aws_client


@pytest.fixture
def clients():
    session = boto3.session.Session(aws_access_key_id="a", aws_secret_access_key="b", region_name="us-east-1")
    return aws_client.AwsClients("us-east-1", session=session)


def test_client_error_names_the_call_code_and_advice(clients):
    with Stubber(clients.client("eks")) as stub:
        stub.add_client_error("describe_cluster", service_error_code="AccessDeniedException",
                              service_message="User: x is not authorized to perform: eks:DescribeCluster")
        with pytest.raises(aws_client.AwsError) as caught:
            clients.call("eks", "describe_cluster", name="c")
    err = caught.value
    assert err.operation == "eks:DescribeCluster" and err.code == "AccessDeniedException"
    assert err.msg.startswith("AWS call eks:DescribeCluster in us-east-1 failed with AccessDeniedException: User: x")
    assert "sts get-caller-identity" in err.msg
    assert err.to_fail_kwargs()["aws_error_code"] == "AccessDeniedException"


def test_paginated_errors_are_converted_too(clients):
    with Stubber(clients.client("cloudformation")) as stub:
        stub.add_client_error("describe_stacks", service_error_code="Throttling", service_message="Rate exceeded")
        with pytest.raises(aws_client.AwsError) as caught:
            clients.paginate("cloudformation", "describe_stacks", "Stacks")
    assert caught.value.operation == "cloudformation:DescribeStacks"
    assert "kept throttling after 8 attempts" in caught.value.msg


def test_an_error_code_given_as_missing_ok_answers_none_and_others_still_raise(clients):
    with Stubber(clients.client("eks")) as stub:
        stub.add_client_error("describe_cluster", service_error_code="ResourceNotFoundException",
                              service_message="No cluster found for name: c.")
        stub.add_client_error("describe_cluster", service_error_code="AccessDeniedException", service_message="no")
        assert clients.call("eks", "describe_cluster", missing_ok=("ResourceNotFoundException",), name="c") is None
        with pytest.raises(aws_client.AwsError) as caught:
            clients.call("eks", "describe_cluster", missing_ok=("ResourceNotFoundException",), name="c")
    assert caught.value.code == "AccessDeniedException"


def test_retries_use_botocores_standard_mode_with_backoff(clients):
    assert clients.config.retries == {"mode": "standard", "total_max_attempts": aws_client.MAX_ATTEMPTS}
    assert clients.client("eks").meta.config.retries["mode"] == "standard"


def test_region_from_env(monkeypatch):
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-3")
    assert aws_client.region_from_env() == "eu-west-3"
    monkeypatch.setenv("AWS_REGION", "us-west-2")
    assert aws_client.region_from_env() == "us-west-2"


@pytest.mark.parametrize("code", ["ServiceUnavailableException", "ServerException", "InternalFailure"])
def test_persistent_server_errors_say_they_were_retried_and_are_usually_transient(clients, code):
    with Stubber(clients.client("eks")) as stub:
        stub.add_client_error("list_clusters", service_error_code=code, service_message="try later", http_status_code=503)
        with pytest.raises(aws_client.AwsError) as caught:
            clients.call("eks", "list_clusters")
    assert caught.value.msg.startswith("AWS call eks:ListClusters in us-east-1 failed with %s: try later" % code)
    assert "server error 8 times in a row (retried with backoff)" in caught.value.msg
