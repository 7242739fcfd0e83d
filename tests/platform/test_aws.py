"""The AWS side of the sandbox: moto + the EKS API proxy, seeded like a fresh eksctl-made cluster."""
import base64
import json
import os
import socket
import subprocess
import sys
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

import boto3
import pytest
import botocore.config
import botocore.exceptions
from botocore.exceptions import ClientError

from eks_sandbox import aws

REGION = "us-east-1"
CLUSTER = "tst"
API_SERVER = "https://127.0.0.1:6443"
CA_DATA = base64.b64encode(b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n").decode()
AGENT_NOT_READY = {"key": "node.cilium.io/agent-not-ready", "value": "true", "effect": "NoExecute"}
NODEGROUPS = [
    # The sandbox's spelling ...
    {"name": "ng-1", "instance_type": "t3.medium", "min": 1, "desired": 2, "max": 3,
     "labels": {"role": "worker"}, "taints": [AGENT_NOT_READY]},
    # ... and eksctl's.
    {"name": "ng-arm", "instanceTypes": ["m6g.large"], "minSize": 0, "desiredCapacity": 1, "maxSize": 2,
     "spot": True},
]
HERE = Path(__file__).resolve().parent


def alive(pid: int) -> bool:
    """A live (not zombie) process: psutil when installed, /proc otherwise."""
    try:
        import psutil
    except ImportError:
        return bool(aws.group_members(pid))
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def client(endpoint: str, service: str, region: str = REGION):
    return boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                 region_name=region).client(service, endpoint_url=endpoint)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    """moto + proxy as the sandbox starts them, in a cache of their own, seeded once."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CILIUM_EKS_CACHE", str(tmp_path_factory.mktemp("cache")))
        patch.delenv("CILIUM_EKS_STATE", raising=False)
        result = aws.start_aws(CLUSTER, REGION, "1.34", NODEGROUPS, API_SERVER, ca_data=CA_DATA,
                               tags={"team": "net"})
        yield result
        aws.stop_aws()


@pytest.fixture
def eks(sandbox):
    return client(sandbox["endpoint"], "eks")


@pytest.fixture
def ec2(sandbox):
    return client(sandbox["endpoint"], "ec2")


def test_moto_server_start_stop_leaves_no_process_or_port(tmp_path):
    server = aws.MotoServer(state=tmp_path)
    info = server.start()
    record = json.loads((tmp_path / "moto.json").read_text())
    assert (record["pid"], record["port"]) == (info["pid"], info["port"])
    assert info["running"] and info["responding"] and listening(info["port"])
    assert (tmp_path / "moto.log").exists()
    assert server.start()["pid"] == info["pid"]  # reused, not restarted
    assert client(info["endpoint"], "sts").get_caller_identity()["Account"] == "123456789012"

    assert server.stop() is True
    assert not alive(info["pid"]) and not aws.group_members(info["pid"])
    assert not listening(info["port"])
    assert not (tmp_path / "moto.json").exists()
    assert server.stop() is False
    assert server.status() == {"name": "moto", "running": False}


def test_down_from_another_process_then_stop_is_idempotent(tmp_path):
    env = dict(os.environ, CILIUM_EKS_CACHE=str(tmp_path))
    env.pop("CILIUM_EKS_STATE", None)  # the state folder follows the cache here
    state = tmp_path / "state" / "aws"
    moto = aws.MotoServer(state=state).start()
    proxy = aws.EksProxyServer(upstream=moto["endpoint"], state=state).start()
    assert proxy["upstream"] == moto["endpoint"] and proxy["responding"]

    down = subprocess.run([sys.executable, "-m", "eks_sandbox", "aws", "down"], cwd=HERE, env=env,
                          capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(down.stdout) == {"moto": True, "proxy": True}
    for info in (moto, proxy):
        assert not alive(info["pid"]) and not listening(info["port"])
    again = subprocess.run([sys.executable, "-m", "eks_sandbox", "aws", "down"], cwd=HERE, env=env,
                           capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(again.stdout) == {"moto": False, "proxy": False}
    assert aws.MotoServer(state=state).stop() is False


def test_client_env_is_all_a_client_needs(sandbox, monkeypatch):
    for key in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(key)
    for key, value in sandbox["env"].items():
        monkeypatch.setenv(key, value)
    sts = boto3.session.Session().client("sts")  # endpoint, credentials and region from the env
    assert sts.meta.endpoint_url == sandbox["endpoint"]
    assert sts.get_caller_identity()["Account"] == "123456789012"
    assert aws.status()["running"]


def test_cluster_looks_like_eksctl_made_it(sandbox, eks):
    seed = sandbox["seed"]
    cluster = eks.describe_cluster(name=CLUSTER)["cluster"]
    assert cluster["status"] == "ACTIVE" and cluster["version"] == "1.34"
    assert cluster["endpoint"] == API_SERVER and cluster["certificateAuthority"]["data"] == CA_DATA
    assert cluster["roleArn"] == seed["cluster_role_arn"]
    assert cluster["roleArn"].split("/")[-1].startswith(f"eksctl-{CLUSTER}-cluster-ServiceRole-")
    assert cluster["tags"] | {
        "alpha.eksctl.io/cluster-name": CLUSTER,
        "eksctl.cluster.k8s.io/v1alpha1/cluster-name": CLUSTER,
        "cloudnet.cilium_eks/managed": "true",
        "team": "net",
    } == cluster["tags"]
    vpc_config = cluster["resourcesVpcConfig"]
    assert vpc_config["vpcId"] == seed["vpc_id"]
    assert vpc_config["clusterSecurityGroupId"] == seed["cluster_security_group_id"]
    assert vpc_config["securityGroupIds"] == [seed["security_group_ids"]["control_plane"]]
    assert sorted(vpc_config["subnetIds"]) == sorted(seed["subnet_ids"]["public"] + seed["subnet_ids"]["private"])
    assert cluster["kubernetesNetworkConfig"]["serviceIpv4Cidr"] == "10.100.0.0/16"
    assert cluster["accessConfig"]["authenticationMode"] == "API_AND_CONFIG_MAP"
    assert eks.list_clusters()["clusters"] == [CLUSTER]


def test_managed_nodegroups(sandbox, eks):
    assert sorted(eks.list_nodegroups(clusterName=CLUSTER)["nodegroups"]) == ["ng-1", "ng-arm"]
    ng = eks.describe_nodegroup(clusterName=CLUSTER, nodegroupName="ng-1")["nodegroup"]
    assert ng["status"] == "ACTIVE" and ng["version"] == "1.34" and ng["releaseVersion"].startswith("1.34.")
    assert ng["scalingConfig"] == {"minSize": 1, "desiredSize": 2, "maxSize": 3}
    assert ng["instanceTypes"] == ["t3.medium"]
    assert (ng["capacityType"], ng["amiType"]) == ("ON_DEMAND", "AL2023_x86_64_STANDARD")
    assert ng["labels"] == {"role": "worker", "alpha.eksctl.io/cluster-name": CLUSTER,
                            "alpha.eksctl.io/nodegroup-name": "ng-1"}
    assert ng["taints"] == [{"key": "node.cilium.io/agent-not-ready", "value": "true", "effect": "NO_EXECUTE"}]
    assert ng["nodeRole"] == sandbox["seed"]["node_role_arns"]["ng-1"]
    assert ng["nodeRole"].split("/")[-1].startswith(f"eksctl-{CLUSTER}-nodegroup-ng-1-NodeInstanceRole-")
    assert ng["subnets"] == sandbox["seed"]["subnet_ids"]["public"]
    assert ng["launchTemplate"]["name"] == f"eksctl-{CLUSTER}-nodegroup-ng-1"
    assert ng["tags"]["alpha.eksctl.io/nodegroup-type"] == "managed"
    assert ng["tags"]["cloudnet.cilium_eks/managed"] == "true"

    arm = eks.describe_nodegroup(clusterName=CLUSTER, nodegroupName="ng-arm")["nodegroup"]
    assert arm["scalingConfig"] == {"minSize": 0, "desiredSize": 1, "maxSize": 2}
    assert (arm["capacityType"], arm["amiType"]) == ("SPOT", "AL2023_ARM_64_STANDARD")
    assert arm["taints"] == []


def test_vpc_security_groups_and_roles(sandbox, ec2):
    seed = sandbox["seed"]
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [seed["vpc_id"]]}])["Subnets"]
    zones = {s["AvailabilityZone"] for s in subnets}
    assert zones == {"us-east-1a", "us-east-1b", "us-east-1c"} and len(subnets) == 6
    public = [s for s in subnets if s["SubnetId"] in seed["subnet_ids"]["public"]]
    assert all(aws._tag_dict(s["Tags"])["kubernetes.io/role/elb"] == "1" for s in public)
    assert sorted(s["CidrBlock"] for s in public) == ["192.168.0.0/19", "192.168.32.0/19", "192.168.64.0/19"]

    group = ec2.describe_security_groups(GroupIds=[seed["cluster_security_group_id"]])["SecurityGroups"][0]
    assert group["GroupName"].startswith(f"eks-cluster-sg-{CLUSTER}-")
    assert aws._tag_dict(group["Tags"]) == {"Name": group["GroupName"], "aws:eks:cluster-name": CLUSTER,
                                            f"kubernetes.io/cluster/{CLUSTER}": "owned"}
    shared = ec2.describe_security_groups(GroupIds=[seed["security_group_ids"]["shared_node"]])["SecurityGroups"]
    assert shared[0]["GroupName"].startswith(f"eksctl-{CLUSTER}-cluster-ClusterSharedNodeSecurityGroup-")

    iam = client(sandbox["endpoint"], "iam")
    node_role = seed["node_role_arns"]["ng-1"].split("/")[-1]
    policies = {p["PolicyName"] for p in iam.list_attached_role_policies(RoleName=node_role)["AttachedPolicies"]}
    assert {"AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryReadOnly"} <= policies
    cluster_role = iam.get_role(RoleName=seed["cluster_role_arn"].split("/")[-1])["Role"]
    assert cluster_role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["Service"] == ["eks.amazonaws.com"]


def test_seeding_twice_changes_nothing(sandbox, ec2, eks):
    def counts():
        return (len(ec2.describe_vpcs()["Vpcs"]), len(ec2.describe_subnets()["Subnets"]),
                len(ec2.describe_security_groups()["SecurityGroups"]),
                len(client(sandbox["endpoint"], "iam").list_roles()["Roles"]),
                len(eks.list_nodegroups(clusterName=CLUSTER)["nodegroups"]))

    before = counts()
    again = aws.seed_eks(sandbox["endpoint"], REGION, CLUSTER, "1.34", NODEGROUPS, API_SERVER,
                         {"team": "net"}, ca_data=CA_DATA, managed=True)
    assert again["created"] == []
    assert {k: v for k, v in again.items() if k != "created"} == \
           {k: v for k, v in sandbox["seed"].items() if k != "created"}
    assert counts() == before


def test_seeding_moto_directly_keeps_moto_endpoint_and_fits_two_zones(sandbox):
    moto = sandbox["moto_endpoint"]
    seed = aws.seed_eks(moto, "us-west-1", "plain", "1.33", ["ng-a"], API_SERVER)
    assert seed["endpoint_override"] is False
    assert len(seed["subnet_ids"]["public"]) == len(seed["subnet_ids"]["private"]) == 2  # us-west-1: 2 AZs
    described = aws.eks_describe(moto, "us-west-1", "plain")
    assert described["cluster"]["endpoint"].endswith(".us-west-1.eks.amazonaws.com/")  # moto's own
    assert list(described["nodegroups"]) == ["ng-a"]
    assert described["nodegroups"]["ng-a"]["scalingConfig"] == {"minSize": 2, "maxSize": 2, "desiredSize": 2}
    assert aws.eks_describe(moto, "us-west-1", "absent") is None


def test_describe_cluster_versions_through_the_proxy(eks):
    answer = eks.describe_cluster_versions()
    rows = {row["clusterVersion"]: row for row in answer["clusterVersions"]}
    assert {"1.34", "1.35"} <= set(rows)
    default = [v for v, row in rows.items() if row["defaultVersion"]]
    assert default == ["1.34"]
    row = rows["1.34"]
    assert row["clusterType"] == "eks" and row["defaultPlatformVersion"].startswith("eks.")
    assert row["kubernetesPatchVersion"] == "1.34.4"  # the sandbox's API server version
    assert isinstance(row["releaseDate"], datetime)
    assert row["releaseDate"] < row["endOfStandardSupportDate"] < row["endOfExtendedSupportDate"]
    assert row["status"] == row["versionStatus"]
    assert row["status"] in ("STANDARD_SUPPORT", "EXTENDED_SUPPORT")

    assert [r["clusterVersion"] for r in eks.describe_cluster_versions(clusterVersions=["1.33"])
            ["clusterVersions"]] == ["1.33"]
    assert [r["clusterVersion"] for r in eks.describe_cluster_versions(defaultOnly=True)["clusterVersions"]] == \
           ["1.34"]
    pages = eks.get_paginator("describe_cluster_versions").paginate(includeAll=True, maxResults=2)
    assert [r["clusterVersion"] for p in pages for r in p["clusterVersions"]] == \
           ["1.35", "1.34", "1.33", "1.32", "1.31"]
    with pytest.raises(ClientError) as error:
        eks.describe_cluster_versions(includeAll=True, clusterVersions=["1.33"])
    assert error.value.response["Error"]["Code"] == "InvalidParameterException"


def test_cluster_versions_follow_the_support_calendar():
    def listed(now, **query):
        query = {k: [str(v).lower()] if not isinstance(v, list) else v for k, v in query.items()}
        return {r["clusterVersion"]: r["versionStatus"] for r in
                aws.describe_cluster_versions(query, now)["clusterVersions"]}

    mid_2025 = datetime(2025, 6, 1, tzinfo=timezone.utc)
    assert listed(mid_2025) == {"1.33": "STANDARD_SUPPORT", "1.32": "STANDARD_SUPPORT",
                                "1.31": "STANDARD_SUPPORT"}  # 1.34 and 1.35 not released yet
    end_2026 = datetime(2026, 12, 15, tzinfo=timezone.utc)
    assert listed(end_2026) == {"1.35": "STANDARD_SUPPORT", "1.34": "EXTENDED_SUPPORT",
                                "1.33": "EXTENDED_SUPPORT", "1.32": "EXTENDED_SUPPORT"}
    assert listed(end_2026, includeAll=True)["1.31"] == "UNSUPPORTED"
    assert set(listed(end_2026, status=["extended-support"])) == {"1.34", "1.33", "1.32"}
    assert listed(end_2026, clusterType="eks-local-outposts") == {}


def test_other_calls_are_forwarded_to_moto(sandbox, eks, ec2):
    sts = client(sandbox["endpoint"], "sts")
    assert sts.get_caller_identity()["Arn"].startswith("arn:aws:sts::123456789012:")
    groups = ec2.describe_security_groups(Filters=[{"Name": "tag:aws:eks:cluster-name", "Values": [CLUSTER]}])
    assert [g["GroupId"] for g in groups["SecurityGroups"]] == [sandbox["seed"]["cluster_security_group_id"]]
    with pytest.raises(ClientError) as error:
        eks.describe_cluster(name="no-such-cluster")
    assert error.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404

    # Byte for byte: the same request gets the same answer from moto and through the proxy.
    def raw(endpoint):
        request = urllib.request.Request(endpoint + "/", data=b"Action=GetCallerIdentity&Version=2011-06-15",
                                         headers={"Content-Type": "application/x-www-form-urlencoded",
                                                  "Authorization": "AWS4-HMAC-SHA256 Credential=testing/"
                                                  "20260101/us-east-1/sts/aws4_request, SignedHeaders=host, "
                                                  "Signature=0"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()

    direct, proxied = raw(sandbox["moto_endpoint"]), raw(sandbox["endpoint"])
    assert direct[0] == proxied[0] == 200
    assert direct[1].split(b"<RequestId>")[0] == proxied[1].split(b"<RequestId>")[0]


def test_in_process_proxy_registers_endpoints_and_stops_cleanly(sandbox):
    proxy = aws.EksApiProxy(sandbox["moto_endpoint"], quiet=True,
                            clock=lambda: datetime(2025, 6, 1, tzinfo=timezone.utc)).start()
    port = int(proxy.url.rsplit(":", 1)[1])
    try:
        eks = client(proxy.url, "eks")
        assert eks.describe_cluster(name=CLUSTER)["cluster"]["endpoint"] != "https://10.0.0.1"
        assert aws.register_cluster_endpoint(proxy.url, CLUSTER, "https://10.0.0.1") is True
        cluster = eks.describe_cluster(name=CLUSTER)["cluster"]
        assert cluster["endpoint"] == "https://10.0.0.1"
        assert cluster["platformVersion"] == "eks.13"
        assert max(r["clusterVersion"] for r in eks.describe_cluster_versions()["clusterVersions"]) == "1.33"
    finally:
        proxy.stop()
    assert not listening(port)


def test_nodegroup_specs_are_normalised():
    plain = aws.nodegroup_request("ng")
    assert plain["instance_types"] == ["m5.large"]
    assert plain["scaling"] == {"minSize": 2, "desiredSize": 2, "maxSize": 2}
    tainted = aws.nodegroup_request({"name": "ng", "taints": ["dedicated=infra:NoSchedule", "bare:NoExecute"]})
    assert tainted["taints"] == [{"key": "dedicated", "value": "infra", "effect": "NO_SCHEDULE"},
                                 {"key": "bare", "effect": "NO_EXECUTE"}]
    with pytest.raises(ValueError):
        aws.nodegroup_request({"name": "ng", "min": 3, "desired": 1, "max": 3})


def test_injected_faults_answer_the_chosen_operation_then_stop(sandbox):
    proxy = aws.EksApiProxy(sandbox["moto_endpoint"], quiet=True).start()
    try:
        no_retry = botocore.config.Config(retries={"mode": "standard", "total_max_attempts": 1})
        session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                        region_name=REGION)
        eks = session.client("eks", endpoint_url=proxy.url, config=no_retry)
        cfn = session.client("cloudformation", endpoint_url=proxy.url, config=no_retry)
        aws.inject_faults(proxy.url, "eks:DescribeCluster", count=2, status=429)
        aws.inject_faults(proxy.url, "cloudformation:DescribeStacks", count=1, status=503)
        for attempt in (1, 2):
            with pytest.raises(botocore.exceptions.ClientError) as info:
                eks.describe_cluster(name=CLUSTER)
            assert info.value.response["Error"]["Code"] == "ThrottlingException", f"call {attempt}"
            assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
        assert eks.list_clusters()["clusters"] == [CLUSTER]  # other operations are not touched
        assert eks.describe_cluster(name=CLUSTER)["cluster"]["name"] == CLUSTER  # the count is used up
        with pytest.raises(botocore.exceptions.ClientError) as info:
            cfn.describe_stacks()
        assert info.value.response["Error"]["Code"] == "ServiceUnavailable"
        report = aws.fault_report(proxy.url)
        assert report == {"pending": [], "served": {"eks:DescribeCluster": 2, "cloudformation:DescribeStacks": 1}}
        aws.inject_faults(proxy.url, "*", count=5, status=500)
        assert aws.inject_faults(proxy.url) == {"pending": [], "served": {}}  # cleared
        assert eks.describe_cluster(name=CLUSTER)["cluster"]["name"] == CLUSTER
    finally:
        proxy.stop()


def test_standard_retries_ride_out_fewer_faults_than_attempts(sandbox):
    proxy = aws.EksApiProxy(sandbox["moto_endpoint"], quiet=True).start()
    try:
        eks = client(proxy.url, "eks")  # botocore's default: legacy mode, 5 attempts
        aws.inject_faults(proxy.url, "eks:ListNodegroups", count=2, status=503)
        assert eks.list_nodegroups(clusterName=CLUSTER)["nodegroups"]
        assert aws.fault_report(proxy.url)["served"] == {"eks:ListNodegroups": 2}
    finally:
        proxy.stop()


def test_the_proxy_records_which_access_key_and_client_made_each_call(sandbox):
    proxy = aws.EksApiProxy(sandbox["moto_endpoint"], quiet=True).start()
    try:
        session = boto3.session.Session(aws_access_key_id="AKIDRECORDED", aws_secret_access_key="x",
                                        region_name=REGION)
        session.client("eks", endpoint_url=proxy.url).describe_cluster(name=CLUSTER)
        assert aws.callers(proxy.url) == [{"access_key": "AKIDRECORDED", "operation": "eks:DescribeCluster",
                                           "client": "Boto3"}]
        assert aws.callers(proxy.url, clear=True) and aws.callers(proxy.url) == []
    finally:
        proxy.stop()


def test_operation_names_of_rest_and_query_requests():
    signed = {"Authorization": "AWS4-HMAC-SHA256 Credential=testing/20250601/us-east-1/eks/aws4_request, ..."}
    assert aws.operation_of("GET", "/clusters/demo", signed, b"") == "eks:DescribeCluster"
    assert aws.operation_of("GET", "/clusters/demo/node-groups/ng-1", signed, b"") == "eks:DescribeNodegroup"
    query = {"Authorization": signed["Authorization"].replace("/eks/", "/ec2/"),
             "Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
    assert aws.operation_of("POST", "/", query, b"Action=DescribeSubnets&Version=2016-11-15") == "ec2:DescribeSubnets"
    # REST operations the proxy itself answers, and query strings, are named too (fault rules can target them).
    assert aws.operation_of("GET", "/addons/supported-versions?addonName=vpc-cni&kubernetesVersion=1.34", signed,
                            b"") == "eks:DescribeAddonVersions"
    assert aws.operation_of("GET", "/cluster-versions?clusterType=eks", signed, b"") == "eks:DescribeClusterVersions"
    assert aws.operation_of("POST", "/clusters/demo/node-groups/ng-1/update-config", signed, b"") == \
        "eks:UpdateNodegroupConfig"
    assert aws.operation_of("POST", "/clusters/demo/updates", signed, b"") == "eks:UpdateClusterVersion"
    assert aws.region_of(signed) == "us-east-1" and aws.region_of({}) == aws.DEFAULT_REGION


def test_client_error_faults_say_sender_and_server_errors_receiver(sandbox):
    proxy = aws.EksApiProxy(sandbox["moto_endpoint"], quiet=True).start()
    try:
        no_retry = botocore.config.Config(retries={"mode": "standard", "total_max_attempts": 1})
        cfn = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                    region_name=REGION).client("cloudformation", endpoint_url=proxy.url,
                                                               config=no_retry)
        aws.inject_faults(proxy.url, "cloudformation:DescribeStacks", count=1, status=400, code="ValidationError")
        aws.inject_faults(proxy.url, "cloudformation:DescribeStacks", count=1, status=503)
        types = []
        for _attempt in range(2):
            with pytest.raises(botocore.exceptions.ClientError) as info:
                cfn.describe_stacks()
            types.append((info.value.response["Error"]["Code"], info.value.response["Error"]["Type"]))
        assert types == [("ValidationError", "Sender"), ("ServiceUnavailable", "Receiver")]
    finally:
        proxy.stop()


def test_the_proxy_answers_eks_addons_and_fault_rules_reach_them(sandbox):
    proxy = aws.EksApiProxy(sandbox["moto_endpoint"], quiet=True).start()
    try:
        eks = client(proxy.url, "eks")
        versions = eks.describe_addon_versions(addonName="coredns", kubernetesVersion="1.34")["addons"]
        assert versions[0]["addonName"] == "coredns"
        eks.create_addon(clusterName=CLUSTER, addonName="coredns")  # no API server registered: recorded only
        assert eks.list_addons(clusterName=CLUSTER)["addons"] == ["coredns"]
        aws.inject_faults(proxy.url, "eks:DescribeAddon", count=1, status=400, code="InvalidRequestException")
        with pytest.raises(botocore.exceptions.ClientError, match="InvalidRequestException"):
            eks.describe_addon(clusterName=CLUSTER, addonName="coredns")
        assert eks.describe_addon(clusterName=CLUSTER, addonName="coredns")["addon"]["status"] == "ACTIVE"
        with pytest.raises(eks.exceptions.ResourceNotFoundException):
            eks.list_addons(clusterName="no-such-cluster")
    finally:
        proxy.stop()


def test_a_registered_platform_is_every_clusters_endpoint(sandbox):
    proxy = aws.EksApiProxy(sandbox["moto_endpoint"], quiet=True).start()
    try:
        aws.seed_eks(proxy.url, REGION, "other", "1.34", [], managed=False)
        assert client(proxy.url, "eks").describe_cluster(name="other")["cluster"]["endpoint"] != "https://10.9.9.9"
        registered = aws.register_platform(proxy.url, "https://10.9.9.9", CA_DATA)
        assert registered["endpoint"] == "https://10.9.9.9" and registered["kubeconfig"] is None
        other = client(proxy.url, "eks").describe_cluster(name="other")["cluster"]
        assert other["endpoint"] == "https://10.9.9.9" and other["certificateAuthority"] == {"data": CA_DATA}
        aws.register_cluster_endpoint(proxy.url, CLUSTER, API_SERVER, CA_DATA)
        tst = client(proxy.url, "eks").describe_cluster(name=CLUSTER)["cluster"]
        assert tst["endpoint"] == API_SERVER  # a cluster registered by name keeps its own
        aws.seed_eks(proxy.url, REGION, "later", "1.34", [], managed=False)  # moto itself now says so too
        later = client(sandbox["moto_endpoint"], "eks").describe_cluster(name="later")["cluster"]
        assert later["endpoint"] == "https://10.9.9.9" and later["certificateAuthority"] == {"data": CA_DATA}
    finally:
        for name in ("other", "later"):
            client(sandbox["moto_endpoint"], "eks").delete_cluster(name=name)
        aws.MotoClient(sandbox["moto_endpoint"]).set_platform({"endpoint": API_SERVER, "certificateAuthorityData": None})
        proxy.stop()
