"""The eksctl contract double: CLI surface, eksctl-like exits, and its AWS side against moto.

The Kubernetes side (kwok Nodes, kubeconfig) is exercised by tests/integration/test_eks_cluster.py.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
import yaml

from eks_sandbox import aws, eksctl_double

SHIM = Path(__file__).resolve().parent / "eks_sandbox" / "eksctl_shim" / "eksctl"
REGION = "us-east-1"


def run(args, env=None):
    full_env = dict(os.environ, EKSCTL_DOUBLE_PYTHON=sys.executable, **(env or {}))
    full_env.pop("EKSCTL_DOUBLE_SANDBOX", None)
    return subprocess.run([str(SHIM)] + args, capture_output=True, text=True, env=full_env, timeout=120, check=False)


def test_version_and_help_say_it_is_a_double():
    version = run(["version"])
    assert version.returncode == 0
    assert version.stdout.startswith(aws.EKSCTL_VERSION + " ")
    assert "contract double" in version.stdout and "NOT the real eksctl" in version.stdout
    assert "NOT the real eksctl" in " ".join(run(["--help"]).stdout.split())


def test_errors_end_like_eksctl(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("kind: ClusterConfig\nmetadata: {name: x, region: us-east-1}\n")
    result = run(["create", "cluster", "-f", str(config)], env={"AWS_ENDPOINT_URL": ""})
    assert result.returncode == 1
    assert result.stderr.startswith("Error: the eksctl double needs AWS_ENDPOINT_URL")
    wrong = tmp_path / "w.yaml"
    wrong.write_text("kind: Pod\n")
    assert run(["create", "cluster", "-f", str(wrong)]).stderr == "Error: loading config file \"%s\": kind must be " \
        "ClusterConfig\n" % wrong


def test_failure_injection_spec(monkeypatch):
    monkeypatch.setenv("EKSCTL_DOUBLE_FAIL", "create-nodegroup:ng-2")
    assert eksctl_double.failure_target("create-nodegroup") == "ng-2"
    monkeypatch.setenv("EKSCTL_DOUBLE_FAIL", "create-nodegroup")
    assert eksctl_double.failure_target("create-nodegroup") == ""
    monkeypatch.delenv("EKSCTL_DOUBLE_FAIL")
    assert eksctl_double.failure_target("create-nodegroup") is None


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    state = tmp_path_factory.mktemp("aws")
    server = aws.MotoServer(state=state)
    record = server.start()
    yield {**aws.client_env(record["endpoint"], REGION)}
    server.stop()


def test_create_get_scale_delete_against_moto(moto, tmp_path):
    config = {"apiVersion": "eksctl.io/v1alpha5", "kind": "ClusterConfig",
              "metadata": {"name": "dbl", "region": REGION, "version": "1.33",
                           "tags": {"cloudnet.cilium_eks/managed": "true"}},
              "managedNodeGroups": [{"name": "ng-1", "instanceType": "t3.medium", "desiredCapacity": 2}]}
    path = tmp_path / "dbl.yaml"
    path.write_text(yaml.safe_dump(config))
    created = run(["create", "cluster", "--write-kubeconfig=false", "-f", str(path)], env=moto)
    assert created.returncode == 0, created.stderr
    lines = created.stdout.splitlines()
    assert "[ℹ]  eksctl version " + aws.EKSCTL_VERSION in lines[0]
    assert lines[-1].endswith('[✔]  EKS cluster "dbl" in "us-east-1" region is ready')

    again = run(["create", "cluster", "-f", str(path)], env=moto)
    assert again.returncode == 1 and "AlreadyExistsException: Stack [eksctl-dbl-cluster] already exists" in again.stderr

    got = json.loads(run(["get", "cluster", "--name", "dbl", "--region", REGION, "-o", "json"], env=moto).stdout)
    assert got[0]["Name"] == "dbl" and got[0]["Tags"]["cloudnet.cilium_eks/managed"] == "true"
    scaled = run(["scale", "nodegroup", "--cluster", "dbl", "--region", REGION, "--name", "ng-1", "--nodes", "3",
                  "--nodes-max", "3"], env=moto)
    assert scaled.returncode == 0, scaled.stderr
    assert scaled.stdout.splitlines()[-1].endswith("[ℹ]  nodegroup successfully scaled")
    groups = json.loads(run(["get", "nodegroup", "--cluster", "dbl", "--region", REGION, "-o", "json"],
                            env=moto).stdout)
    assert [(g["Name"], g["DesiredCapacity"], g["MaxSize"]) for g in groups] == [("ng-1", 3, 3)]

    deleted = run(["delete", "cluster", "--name", "dbl", "--region", REGION, "--wait"], env=moto)
    assert deleted.returncode == 0, deleted.stderr
    assert deleted.stdout.splitlines()[-1].endswith("[✔]  all cluster resources were deleted")
    eks = boto3.session.Session(region_name=REGION, aws_access_key_id="testing",
                                aws_secret_access_key="testing").client("eks", endpoint_url=moto["AWS_ENDPOINT_URL"])
    assert "dbl" not in eks.list_clusters()["clusters"]


def test_injected_nodegroup_failure_leaves_the_control_plane_and_the_stack(moto, tmp_path):
    config = {"apiVersion": "eksctl.io/v1alpha5", "kind": "ClusterConfig",
              "metadata": {"name": "half", "region": REGION, "version": "1.33"},
              "managedNodeGroups": [{"name": "ng-1"}]}
    path = tmp_path / "half.yaml"
    path.write_text(yaml.safe_dump(config))
    failed = run(["create", "cluster", "-f", str(path)], env=dict(moto, EKSCTL_DOUBLE_FAIL="create-nodegroup"))
    assert failed.returncode == 1
    assert failed.stderr == 'Error: failed to create cluster "half"\n'
    assert "[✖]  AWS::EKS::Nodegroup/ManagedNodeGroup: CREATE_FAILED" in failed.stdout
    session = boto3.session.Session(region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")
    eks = session.client("eks", endpoint_url=moto["AWS_ENDPOINT_URL"])
    cfn = session.client("cloudformation", endpoint_url=moto["AWS_ENDPOINT_URL"])
    assert eks.list_nodegroups(clusterName="half")["nodegroups"] == []
    assert "eksctl-half-nodegroup-ng-1" in [s["StackName"] for s in cfn.describe_stacks()["Stacks"]]


def test_upgrade_is_refused_explicitly(moto):
    result = run(["upgrade", "cluster", "--name", "x", "--version", "1.34", "--approve"], env=moto)
    assert result.returncode == 1 and "moto has no UpdateClusterVersion" in result.stderr
