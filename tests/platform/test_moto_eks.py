"""eks_sandbox.moto_eks: the real eksctl's CloudFormation templates run in moto, and fail on demand.

The templates are eksctl 0.225.0's own, recorded from its CreateStack calls against the sandbox
(tests/recordings/eksctl/SOURCES.md); here they are sent to ``python -m eks_sandbox.moto_eks`` by
boto3, without eksctl's fixed waits (its create takes 150 s of sleeps; tests/integration covers it).
"""
import json
import urllib.error
from pathlib import Path

import boto3
import pytest

from eks_sandbox import aws, moto_eks

REGION = "us-east-1"
RECORDINGS = Path(__file__).resolve().parents[1] / "recordings" / "eksctl"
CLUSTER_STACK = "eksctl-real-1-cluster"
NODEGROUP_STACK = "eksctl-real-1-nodegroup-ng-1"
API_SERVER = "https://127.0.0.1:6443"
CA_DATA = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUIKLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo="


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    server = aws.MotoServer(state=tmp_path_factory.mktemp("moto-eks"))
    record = server.start()
    client = aws.MotoClient(record["endpoint"])
    client.set_platform({"endpoint": API_SERVER, "certificateAuthorityData": CA_DATA})
    yield {"endpoint": record["endpoint"], "server": server, "client": client}
    server.stop()


@pytest.fixture
def clients(moto):
    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
    yield {name: session.client(name, endpoint_url=moto["endpoint"])
           for name in ("cloudformation", "ec2", "eks", "iam")}
    server = moto["server"]
    server.reset()
    moto["client"].set_platform({"endpoint": API_SERVER, "certificateAuthorityData": CA_DATA})
    aws.fail_stack(moto["endpoint"])


def template(name: str) -> dict:
    return json.loads((RECORDINGS / name).read_text())


def outputs(cfn, stack):
    return {o["OutputKey"]: o["OutputValue"] for o in cfn.describe_stacks(StackName=stack)["Stacks"][0]
            .get("Outputs") or []}


def create_cluster_stack(cfn):
    cfn.create_stack(StackName=CLUSTER_STACK, TemplateBody=json.dumps(template("cluster_stack_0.225.template.json")),
                     Capabilities=["CAPABILITY_IAM"], EnableTerminationProtection=True)
    return outputs(cfn, CLUSTER_STACK)


def nodegroup_template(cluster_outputs: dict) -> str:
    """The recorded node group stack, pointed at this run's public subnets (eksctl writes subnet ids in)."""
    body = template("nodegroup_stack_0.225.template.json")
    body["Resources"]["ManagedNodeGroup"]["Properties"]["Subnets"] = cluster_outputs["SubnetsPublic"].split(",")
    return json.dumps(body)


def test_eksctls_cluster_stack_makes_an_eks_cluster_on_the_sandbox_api_server(clients):
    cfn, ec2, eks = clients["cloudformation"], clients["ec2"], clients["eks"]
    out = create_cluster_stack(cfn)
    assert cfn.describe_stacks(StackName=CLUSTER_STACK)["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
    assert (out["Endpoint"], out["CertificateAuthorityData"]) == (API_SERVER, CA_DATA)
    cluster = eks.describe_cluster(name="real-1")["cluster"]
    assert out["ARN"] == cluster["arn"] and cluster["version"] == "1.34"
    vpc = cluster["resourcesVpcConfig"]
    assert vpc["vpcId"] == out["VPC"] and vpc["clusterSecurityGroupId"] == out["ClusterSecurityGroupId"]
    assert sorted(vpc["subnetIds"]) == sorted(out["SubnetsPublic"].split(",") + out["SubnetsPrivate"].split(","))
    assert cluster["kubernetesNetworkConfig"]["serviceIpv4Cidr"] == moto_eks.SERVICE_CIDR
    assert cluster["accessConfig"]["bootstrapClusterCreatorAdminPermissions"] is True
    assert cluster["tags"]["cloudnet.cilium_eks/managed"] == "true"
    (group,) = ec2.describe_security_groups(GroupIds=[out["ClusterSecurityGroupId"]])["SecurityGroups"]
    assert {t["Key"]: t["Value"] for t in group["Tags"]}["aws:eks:cluster-name"] == "real-1"
    assert group["IpPermissions"][0]["UserIdGroupPairs"][0]["GroupId"] == group["GroupId"]  # EKS's own rule
    subnets = ec2.describe_subnets(SubnetIds=out["SubnetsPublic"].split(",") + out["SubnetsPrivate"].split(","))
    public = {s["SubnetId"]: s["MapPublicIpOnLaunch"] for s in subnets["Subnets"]}
    assert all(public[s] for s in out["SubnetsPublic"].split(","))
    assert not any(public[s] for s in out["SubnetsPrivate"].split(","))


def test_eksctls_nodegroup_stack_makes_a_managed_node_group_of_the_clusters_version(clients):
    cfn, eks = clients["cloudformation"], clients["eks"]
    out = create_cluster_stack(cfn)
    cfn.create_stack(StackName=NODEGROUP_STACK, TemplateBody=nodegroup_template(out), Capabilities=["CAPABILITY_IAM"])
    nodegroup = eks.describe_nodegroup(clusterName="real-1", nodegroupName="ng-1")["nodegroup"]
    assert nodegroup["scalingConfig"] == {"minSize": 2, "maxSize": 2, "desiredSize": 2}
    assert nodegroup["version"] == "1.34" and nodegroup["releaseVersion"] == aws.node_release_version("1.34")
    assert nodegroup["taints"] == [{"key": "node.cilium.io/agent-not-ready", "value": "true", "effect": "NO_EXECUTE"}]
    assert nodegroup["labels"]["alpha.eksctl.io/nodegroup-name"] == "ng-1"
    assert nodegroup["subnets"] == out["SubnetsPublic"].split(",")
    resources = cfn.describe_stack_resources(StackName=NODEGROUP_STACK)["StackResources"]
    physical = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in resources}
    assert physical["ManagedNodeGroup"] == "real-1/ng-1"


def test_deleting_both_stacks_leaves_nothing_behind(clients):
    cfn, ec2, eks, iam = (clients[n] for n in ("cloudformation", "ec2", "eks", "iam"))
    out = create_cluster_stack(cfn)
    cfn.create_stack(StackName=NODEGROUP_STACK, TemplateBody=nodegroup_template(out), Capabilities=["CAPABILITY_IAM"])
    with pytest.raises(cfn.exceptions.ClientError, match="cannot be deleted while TerminationProtection"):
        cfn.delete_stack(StackName=CLUSTER_STACK)
    cfn.update_termination_protection(StackName=CLUSTER_STACK, EnableTerminationProtection=False)
    for stack in (NODEGROUP_STACK, CLUSTER_STACK):  # eksctl's order: node groups first
        cfn.delete_stack(StackName=stack)
    assert cfn.describe_stacks()["Stacks"] == []
    assert eks.list_clusters()["clusters"] == []
    assert [v for v in ec2.describe_vpcs()["Vpcs"] if not v["IsDefault"]] == []
    assert ec2.describe_addresses()["Addresses"] == []
    assert ec2.describe_nat_gateways()["NatGateways"] == []
    assert ec2.describe_internet_gateways()["InternetGateways"] == []
    assert ec2.describe_network_interfaces()["NetworkInterfaces"] == []
    assert [g["GroupName"] for g in ec2.describe_security_groups()["SecurityGroups"]] == ["default"]
    assert ec2.describe_launch_templates()["LaunchTemplates"] == []
    assert [r["RoleName"] for r in iam.list_roles()["Roles"] if r["RoleName"].startswith("eksctl-")] == []


def test_a_failing_resource_rolls_the_stack_back_with_its_reason(moto, clients):
    cfn, eks = clients["cloudformation"], clients["eks"]
    out = create_cluster_stack(cfn)
    reason = "Nodegroup ng-1 failed to stabilize: [{Code: NodeCreationFailure}]"
    aws.fail_stack(moto["endpoint"], "eksctl-*-nodegroup-ng-1", "ManagedNodeGroup", reason)
    cfn.create_stack(StackName=NODEGROUP_STACK, TemplateBody=nodegroup_template(out))
    stack = cfn.describe_stacks(StackName=NODEGROUP_STACK)["Stacks"][0]
    assert stack["StackStatus"] == "ROLLBACK_COMPLETE" and "Outputs" not in stack
    events = cfn.describe_stack_events(StackName=NODEGROUP_STACK)["StackEvents"]  # newest first, as AWS
    assert [e["ResourceStatus"] for e in events][:2] == ["ROLLBACK_COMPLETE", "DELETE_COMPLETE"]
    (failed,) = [e for e in events if e["ResourceStatus"] == "CREATE_FAILED"]
    assert (failed["LogicalResourceId"], failed["ResourceType"], failed["ResourceStatusReason"]) == (
        "ManagedNodeGroup", "AWS::EKS::Nodegroup", reason)
    assert eks.list_nodegroups(clusterName="real-1")["nodegroups"] == []  # nothing was left
    assert aws.fail_stack(moto["endpoint"], "no-such-stack", "X")["served"] == [
        {"stack": NODEGROUP_STACK, "logical_id": "ManagedNodeGroup", "operation": "create"}]
    cfn.delete_stack(StackName=NODEGROUP_STACK)  # what `eksctl delete cluster` does with it
    assert cfn.describe_stacks(StackName=stack["StackId"])["Stacks"][0]["StackStatus"] == "DELETE_COMPLETE"


def test_a_failing_cluster_stack_leaves_no_cluster_and_no_vpc(moto, clients):
    cfn, ec2, eks = clients["cloudformation"], clients["ec2"], clients["eks"]
    aws.fail_stack(moto["endpoint"], CLUSTER_STACK, "ControlPlane", "Cannot create cluster")
    create_cluster_stack(cfn)  # its outputs name the cluster: resolving them must not make it
    assert cfn.describe_stacks(StackName=CLUSTER_STACK)["Stacks"][0]["StackStatus"] == "ROLLBACK_COMPLETE"
    assert eks.list_clusters()["clusters"] == []
    assert [v for v in ec2.describe_vpcs()["Vpcs"] if not v["IsDefault"]] == []


def test_a_failing_delete_leaves_the_stack_delete_failed_until_retried(moto, clients):
    cfn, eks = clients["cloudformation"], clients["eks"]
    out = create_cluster_stack(cfn)
    cfn.update_termination_protection(StackName=CLUSTER_STACK, EnableTerminationProtection=False)
    cfn.create_stack(StackName=NODEGROUP_STACK, TemplateBody=nodegroup_template(out))
    # EKS refuses to delete a cluster that still has node groups: moto's error becomes DELETE_FAILED.
    cfn.delete_stack(StackName=CLUSTER_STACK)
    stack = cfn.describe_stacks(StackName=CLUSTER_STACK)["Stacks"][0]
    assert stack["StackStatus"] == "DELETE_FAILED"
    failed = [e for e in cfn.describe_stack_events(StackName=CLUSTER_STACK)["StackEvents"]
              if e["ResourceStatus"] == "DELETE_FAILED"]
    assert failed and "nodegroups" in failed[-1]["ResourceStatusReason"].lower()
    aws.fail_stack(moto["endpoint"], NODEGROUP_STACK, "LaunchTemplate", "injected", operation="delete")
    cfn.delete_stack(StackName=NODEGROUP_STACK)
    assert cfn.describe_stacks(StackName=NODEGROUP_STACK)["Stacks"][0]["StackStatus"] == "DELETE_FAILED"
    assert eks.list_nodegroups(clusterName="real-1")["nodegroups"] == ["ng-1"]  # nothing deleted
    for stack_name in (NODEGROUP_STACK, CLUSTER_STACK):  # retried, as a user would
        cfn.delete_stack(StackName=stack_name)
    assert cfn.describe_stacks()["Stacks"] == [] and eks.list_clusters()["clusters"] == []


def test_admin_api_refuses_bad_rules_and_sets_cluster_versions(moto, clients):
    with pytest.raises(urllib.error.HTTPError) as refused:
        aws.fail_stack(moto["endpoint"], "x", None)
    assert refused.value.code == 400 and b"logical_id" in refused.value.read()
    with pytest.raises(aws.ApiError, match="no EKS cluster nope"):
        moto["client"].set_version("nope", REGION, "1.35", "eks.8")
    create_cluster_stack(clients["cloudformation"])
    moto["client"].set_version("real-1", REGION, "1.35", "eks.8")
    assert clients["eks"].describe_cluster(name="real-1")["cluster"]["version"] == "1.35"
