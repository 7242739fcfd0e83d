# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""amazon.aws's AWS options on the modules that call AWS: the spec is amazon.aws's, boto3 gets them as amazon.aws
passes them, eksctl gets them through its environment (never its argv)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from botocore.stub import Stubber

pytest.importorskip("ansible.module_utils.testing")

from ansible.module_utils.testing import patch_module_args  # noqa: E402

from ansible_collections.cloudnet.cilium_eks.plugins.module_utils import aws_client  # noqa: E402
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.eks_service import ClusterManager  # noqa: E402
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.errors import CiliumEksError  # noqa: E402
from ansible_collections.cloudnet.cilium_eks.plugins.modules import (  # noqa: E402
    eks_nodeport_access,
    eksctl_cluster,
    eksctl_cluster_info,
)

REPO = Path(__file__).resolve().parents[4]
AWS_VARIABLES = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY",
                 "AWS_SECRET_KEY", "AWS_SESSION_TOKEN", "AWS_URL", "AWS_CA_BUNDLE", "ANSIBLE_DEBUG_BOTOCORE_LOGS")


@pytest.fixture(autouse=True)
def no_aws_environment(monkeypatch):
    for name in AWS_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def amazon_aws_modules():
    """amazon.aws's plugins/module_utils/modules.py as installed beside the collection (``make deps``)."""
    for root in os.environ.get("ANSIBLE_COLLECTIONS_PATH", "").split(os.pathsep) + [str(REPO / ".collections")]:
        if root and (Path(root) / "ansible_collections" / "amazon" / "aws").is_dir():
            sys.path.append(root)
            try:
                from ansible_collections.amazon.aws.plugins.module_utils import modules
            finally:
                sys.path.remove(root)
            return modules
    pytest.skip("amazon.aws is not installed beside the collection (make deps installs it)")
    return None


def test_the_options_are_amazon_aws_ones_with_their_aliases_and_environment_variables():
    theirs = amazon_aws_modules().aws_argument_spec()
    ours = aws_client.aws_argument_spec()
    assert ours.pop("region") == {"aliases": ["aws_region"]}  # resolved by the modules: option, config, then env
    theirs.pop("region")
    assert ours == theirs
    for module, required in ((eksctl_cluster, "name"), (eksctl_cluster_info, "name"), (eks_nodeport_access, "cluster")):
        with patch_module_args({required: "c", "region": "us-east-1"}):
            spec = module.build_module().argument_spec
        assert {name: spec[name] for name in theirs} == theirs
        assert spec["secret_key"]["no_log"] and spec["session_token"]["no_log"]


def test_boto3_gets_keys_endpoint_and_ca_bundle_as_amazon_aws_passes_them():
    session, client, config = aws_client.connection({
        "access_key": "AKIDKEYS", "secret_key": "s3cret", "session_token": "", "endpoint_url": "http://127.0.0.1:9",
        "validate_certs": True, "aws_ca_bundle": "/etc/ca.pem", "aws_config": {"connect_timeout": 7}})
    assert session == {"aws_access_key_id": "AKIDKEYS", "aws_secret_access_key": "s3cret", "aws_session_token": None}
    assert client == {"endpoint_url": "http://127.0.0.1:9", "verify": "/etc/ca.pem"}
    assert config == {"connect_timeout": 7}
    assert aws_client.connection({"profile": "team", "validate_certs": False})[:2] == (
        {"profile_name": "team"}, {"endpoint_url": None, "verify": False})


def test_aws_config_is_merged_over_the_collections_retries():
    clients = aws_client.AwsClients("us-east-1", params={"aws_config": {"connect_timeout": 7}})
    assert clients.config.connect_timeout == 7
    assert clients.config.retries == {"mode": "standard", "total_max_attempts": aws_client.MAX_ATTEMPTS}
    mine = aws_client.AwsClients("us-east-1", params={"aws_config": {"retries": {"total_max_attempts": 2}}})
    assert mine.config.retries == {"total_max_attempts": 2}  # the user's aws_config wins, as in amazon.aws


def test_a_profile_and_keys_together_are_refused_as_amazon_aws_does():
    with pytest.raises(CiliumEksError, match="either `profile` or `access_key`"):
        aws_client.connection({"profile": "team", "access_key": "AKID", "secret_key": "x"})


def test_eksctl_gets_exactly_the_credentials_the_options_give():
    keys = aws_client.eksctl_env({"access_key": "AKIDKEYS", "secret_key": "s3cret", "endpoint_url": "http://e:1"},
                                 "eu-west-1")
    assert keys == {"AWS_ACCESS_KEY_ID": "AKIDKEYS", "AWS_SECRET_ACCESS_KEY": "s3cret", "AWS_SESSION_TOKEN": None,
                    "AWS_PROFILE": None, "AWS_DEFAULT_PROFILE": None, "AWS_REGION": "eu-west-1",
                    "AWS_ENDPOINT_URL": "http://e:1"}
    profile = aws_client.eksctl_env({"profile": "team", "aws_ca_bundle": "/ca.pem"})
    assert profile["AWS_PROFILE"] == "team" and profile["AWS_CA_BUNDLE"] == "/ca.pem"
    assert all(profile[name] is None for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"))
    assert aws_client.eksctl_env({}) == {}  # nothing set: eksctl keeps the environment it inherits


FAKE_EKSCTL = """#!%s
import json, os, sys
names = ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION",
         "AWS_ENDPOINT_URL")
json.dump({"argv": sys.argv[1:], "env": {n: os.environ.get(n) for n in names}}, open(os.environ["FAKE_OUT"], "w"))
"""


def test_the_module_options_reach_boto3_and_eksctl_and_the_secret_stays_off_argv(tmp_path, monkeypatch):
    fake, out = tmp_path / "eksctl", tmp_path / "seen.json"
    fake.write_text(FAKE_EKSCTL % sys.executable)
    fake.chmod(0o755)
    monkeypatch.setenv("FAKE_OUT", str(out))
    args = {"name": "c", "region": "eu-west-1", "eksctl_path": str(fake), "aws_access_key_id": "AKIDOPTION",
            "aws_secret_access_key": "s3cret-option", "aws_session_token": "t0ken", "profile": "",
            "aws_endpoint_url": "http://127.0.0.1:9", "debug_botocore_endpoint_logs": True}
    with patch_module_args(args):
        module = eksctl_cluster.build_module()
    manager = ClusterManager(module, "eu-west-1")
    credentials = manager.aws.session.get_credentials()
    assert (credentials.access_key, credentials.secret_key, credentials.token) == (
        "AKIDOPTION", "s3cret-option", "t0ken")
    eks = manager.aws.client("eks")
    assert eks.meta.endpoint_url == "http://127.0.0.1:9" and eks.meta.region_name == "eu-west-1"
    with Stubber(eks) as stub:
        stub.add_client_error("describe_cluster", "ResourceNotFoundException")
        assert manager.describe("c") == (None, {})
    assert module.aws_calls == ["eks:DescribeCluster"]  # resource_actions

    monkeypatch.setenv("AWS_PROFILE", "inherited")  # dropped for eksctl: the options give keys
    manager.run_eksctl(["utils", "write-kubeconfig", "--cluster", "c", "--region", "eu-west-1"])
    seen = json.loads(out.read_text())
    assert seen["env"] == {"AWS_PROFILE": None, "AWS_ACCESS_KEY_ID": "AKIDOPTION",
                           "AWS_SECRET_ACCESS_KEY": "s3cret-option", "AWS_SESSION_TOKEN": "t0ken",
                           "AWS_REGION": "eu-west-1", "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}
    assert not any("s3cret" in part or "t0ken" in part for part in seen["argv"])


def test_an_unknown_profile_is_named_with_where_profiles_come_from(tmp_path, monkeypatch):
    config = tmp_path / "config"
    config.write_text("[profile team]\naws_access_key_id = AKIDPROFILE\naws_secret_access_key = x\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    clients = aws_client.AwsClients("us-east-1", params={"profile": "team"})
    assert clients.session.get_credentials().access_key == "AKIDPROFILE"
    with pytest.raises(CiliumEksError, match="AWS profile 'other' .* is not in this host's AWS config files"):
        aws_client.AwsClients("us-east-1", params={"profile": "other"})


def test_the_environment_fallbacks_are_amazon_aws_ones(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY", "AKIDLEGACY")
    monkeypatch.setenv("AWS_SECRET_KEY", "legacy")
    monkeypatch.setenv("AWS_URL", "http://127.0.0.1:8")
    with patch_module_args({}):
        module = eksctl_cluster_info.build_module()
    assert (module.params["access_key"], module.params["endpoint_url"]) == ("AKIDLEGACY", "http://127.0.0.1:8")
    assert "legacy" in module.no_log_values
