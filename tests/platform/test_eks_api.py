"""eks_sandbox.eks_api: the EKS APIs moto lacks and the token webhook, without servers.

Requests and answers have the shapes of the EKS API reference; tokens are presigned by botocore
the way ``aws eks get-token`` makes them (a GET to STS GetCallerIdentity signing x-k8s-aws-id).
"""
import base64
import json
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

import boto3
import pytest

from eks_sandbox import eks_api, eks_objects

REGION = "us-east-1"
ARN = "arn:aws:eks:us-east-1:123456789012:cluster/c1"
CALLER = "arn:aws:sts::123456789012:user/moto"
STS_ANSWER = (f'<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult>'
              f'<UserId>AKIA</UserId><Account>123456789012</Account><Arn>{CALLER}</Arn></GetCallerIdentityResult>'
              f'</GetCallerIdentityResponse>')


class FakeKube:
    """Records what the add-ons apply and delete; ``conflict`` makes a non-forced apply fail like a 409."""

    def __init__(self):
        self.applied, self.deleted, self.conflict = [], [], False

    def apply(self, objects, force):
        if self.conflict and not force:
            return False
        self.applied.append(([f"{o['kind']}/{o['metadata']['name']}" for o in objects], force))
        return True

    def delete(self, objects):
        self.deleted.append([f"{o['kind']}/{o['metadata']['name']}" for o in objects])


@pytest.fixture
def moto():
    """What the proxy's MotoClient would answer: one cluster, whose version set_version changes."""
    state = {"cluster": {"name": "c1", "arn": ARN, "version": "1.33", "createdAt": 1.0}, "versions": [],
             "sts_queries": []}

    def describe(name, region):
        return dict(state["cluster"]) if name == "c1" and region == REGION else None

    def set_version(name, region, version, platform):
        state["versions"].append((name, region, version, platform))
        state["cluster"]["version"] = version

    def sts(query, region):
        state["sts_queries"].append((query, region))
        return STS_ANSWER

    state["api"] = eks_api.EksApi(describe, set_version, sts, kube=FakeKube())
    return state


def call(api, method, path, body=None):
    return api.handle(method, path, json.dumps(body).encode() if body is not None else b"", REGION)


def test_routes_name_every_operation_and_leave_the_rest_to_moto():
    assert eks_api.EksApi.operation("GET", "/addons/supported-versions") == ("DescribeAddonVersions", {})
    assert eks_api.EksApi.operation("POST", "/clusters/c1/addons/vpc-cni/update") == (
        "UpdateAddon", {"cluster": "c1", "addon": "vpc-cni"})
    principal = quote("arn:aws:iam::123456789012:role/admin", safe="")
    assert eks_api.EksApi.operation("GET", f"/clusters/c1/access-entries/{principal}") == (
        "DescribeAccessEntry", {"cluster": "c1", "principal": "arn:aws:iam::123456789012:role/admin"})
    assert eks_api.EksApi.operation("GET", "/clusters/c1") is None  # moto's
    assert eks_api.EksApi.operation("POST", "/clusters/c1/node-groups") is None


def test_addon_versions_offer_the_sandbox_images_as_defaults():
    answer = eks_api.addon_versions({"addonName": ["vpc-cni"], "kubernetesVersion": ["1.34"]})
    (addon,) = answer["addons"]
    defaults = [v["addonVersion"] for v in addon["addonVersions"] if v["compatibilities"][0]["defaultVersion"]]
    assert defaults == [eks_objects.VPC_CNI_TAG]
    assert addon["addonVersions"][0]["compatibilities"][0]["clusterVersion"] == "1.34"
    assert {a["addonName"] for a in eks_api.addon_versions({})["addons"]} == set(eks_api.ADDONS)
    assert eks_api.addon_versions({"kubernetesVersion": ["1.20"]}) == {"addons": []}


def test_addon_configuration_names_the_cni_policy_and_refuses_unknown_versions():
    answer = eks_api.addon_configuration({"addonName": ["vpc-cni"], "addonVersion": [eks_objects.VPC_CNI_TAG]})
    assert answer["podIdentityConfiguration"][0]["serviceAccount"] == "aws-node"
    json.loads(answer["configurationSchema"])
    with pytest.raises(eks_api.EksApiError, match="No addon found"):
        eks_api.addon_configuration({"addonName": ["vpc-cni"], "addonVersion": ["v0.0.1"]})


def test_addon_lifecycle_deploys_and_removes_the_kube_system_objects(moto):
    api, kube = moto["api"], moto["api"].kube
    status, created = call(api, "POST", "/clusters/c1/addons", {"addonName": "vpc-cni"})
    assert status == 200 and created["addon"]["addonVersion"] == eks_objects.VPC_CNI_TAG
    assert created["addon"]["status"] == "ACTIVE"
    assert kube.applied == [(["ServiceAccount/aws-node", "DaemonSet/aws-node"], False)]
    with pytest.raises(eks_api.EksApiError, match="already exists") as again:
        call(api, "POST", "/clusters/c1/addons", {"addonName": "vpc-cni"})
    assert again.value.status == 409
    assert call(api, "GET", "/clusters/c1/addons") == (200, {"addons": ["vpc-cni"]})
    assert call(api, "GET", "/clusters/c1/addons/vpc-cni")[1]["addon"]["addonName"] == "vpc-cni"
    call(api, "DELETE", "/clusters/c1/addons/vpc-cni")
    assert kube.deleted == [["ServiceAccount/aws-node", "DaemonSet/aws-node"]]
    with pytest.raises(eks_api.EksApiError) as gone:
        call(api, "GET", "/clusters/c1/addons/vpc-cni")
    assert gone.value.status == 404 and gone.value.kind == "ResourceNotFoundException"


def test_create_over_objects_someone_else_owns_fails_unless_overwrite(moto):
    api = moto["api"]
    api.kube.conflict = True
    _status, failed = call(api, "POST", "/clusters/c1/addons", {"addonName": "kube-proxy"})
    assert failed["addon"]["status"] == "CREATE_FAILED"
    assert failed["addon"]["health"]["issues"][0]["code"] == "ConfigurationConflict"
    call(api, "DELETE", "/clusters/c1/addons/kube-proxy?preserve=true")
    _status, taken = call(api, "POST", "/clusters/c1/addons", {"addonName": "kube-proxy", "resolveConflicts": "OVERWRITE"})
    assert taken["addon"]["status"] == "ACTIVE"


def test_delete_with_preserve_keeps_the_objects(moto):
    api = moto["api"]
    call(api, "POST", "/clusters/c1/addons", {"addonName": "coredns"})
    call(api, "DELETE", "/clusters/c1/addons/coredns?preserve=true")
    assert api.kube.deleted == []
    assert call(api, "GET", "/clusters/c1/addons") == (200, {"addons": []})


def test_update_addon_takes_over_changed_fields_only_with_overwrite(moto):
    api = moto["api"]
    call(api, "POST", "/clusters/c1/addons", {"addonName": "vpc-cni"})
    api.kube.conflict = True  # someone else (the cilium_eni role) now owns a field of aws-node
    _status, refused = call(api, "POST", "/clusters/c1/addons/vpc-cni/update", {"resolveConflicts": "NONE"})
    assert refused["update"]["status"] == "Failed"
    assert refused["update"]["errors"][0]["errorCode"] == "ConfigurationConflict"
    _status, kept = call(api, "POST", "/clusters/c1/addons/vpc-cni/update", {"resolveConflicts": "PRESERVE"})
    assert kept["update"]["status"] == "Successful"
    _status, taken = call(api, "POST", "/clusters/c1/addons/vpc-cni/update",
                          {"addonVersion": "v1.20.4-eksbuild.2", "resolveConflicts": "OVERWRITE"})
    assert taken["update"]["status"] == "Successful" and api.kube.applied[-1][1] is True
    assert call(api, "GET", "/clusters/c1/addons/vpc-cni")[1]["addon"]["addonVersion"] == "v1.20.4-eksbuild.2"
    updates = call(api, "GET", "/clusters/c1/updates")[1]["updateIds"]
    assert len(updates) == 3


def test_records_belong_to_one_incarnation_of_a_cluster(moto):
    api = moto["api"]
    call(api, "POST", "/clusters/c1/addons", {"addonName": "kube-proxy"})
    moto["cluster"]["createdAt"] = 2.0  # deleted and made again under the same name
    assert call(api, "GET", "/clusters/c1/addons") == (200, {"addons": []})
    with pytest.raises(eks_api.EksApiError, match="No cluster found for name: c2"):
        call(api, "GET", "/clusters/c2/addons")


def test_version_updates_go_one_minor_at_a_time(moto):
    api = moto["api"]
    with pytest.raises(eks_api.EksApiError, match="from 1.33 to 1.35"):
        call(api, "POST", "/clusters/c1/updates", {"version": "1.35"})
    _status, answer = call(api, "POST", "/clusters/c1/updates", {"version": "1.34"})
    update = answer["update"]
    assert (update["type"], update["status"]) == ("VersionUpdate", "Successful")
    assert {"type": "Version", "value": "1.34"} in update["params"]
    assert moto["versions"] == [("c1", REGION, "1.34", "eks.13")]
    assert call(api, "GET", f"/clusters/c1/updates/{update['id']}")[1]["update"] == update
    with pytest.raises(eks_api.EksApiError, match="No update found"):
        call(api, "GET", "/clusters/c1/updates/nope")


def test_access_entries(moto):
    api = moto["api"]
    principal = "arn:aws:iam::123456789012:role/admin"
    path = f"/clusters/c1/access-entries/{quote(principal, safe='')}"
    with pytest.raises(eks_api.EksApiError, match="principalArn parameter is invalid"):
        call(api, "POST", "/clusters/c1/access-entries", {"principalArn": "admin"})
    entry = call(api, "POST", "/clusters/c1/access-entries", {"principalArn": principal})[1]["accessEntry"]
    assert entry["username"] == principal and entry["type"] == "STANDARD"
    assert call(api, "GET", "/clusters/c1/access-entries")[1] == {"accessEntries": [principal]}
    policy = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
    call(api, "POST", path + "/access-policies", {"policyArn": policy, "accessScope": {"type": "cluster"}})
    listed = call(api, "GET", path + "/access-policies")[1]["associatedAccessPolicies"]
    assert [p["policyArn"] for p in listed] == [policy]
    call(api, "DELETE", path)
    assert call(api, "GET", "/clusters/c1/access-entries")[1] == {"accessEntries": []}


# ------------------------------------------------------------------------------- the token webhook

def presigned_token(cluster="c1", sign_cluster=True, expires=60):
    """An EKS token as ``aws eks get-token`` builds it (botocore presign; no network)."""
    sts = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                region_name=REGION).client("sts", endpoint_url="http://127.0.0.1:1")

    def add_header(request, **_kwargs):
        if sign_cluster:
            request.headers["x-k8s-aws-id"] = cluster

    sts.meta.events.register("before-sign.sts.GetCallerIdentity", add_header)
    url = sts.generate_presigned_url("get_caller_identity", Params={}, ExpiresIn=expires, HttpMethod="GET")
    return "k8s-aws-v1." + base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")


def review(token):
    return {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}}


def test_a_valid_token_is_the_sts_caller_in_system_masters(moto):
    answer = moto["api"].authenticate(review(presigned_token()))
    status = answer["status"]
    assert status["authenticated"] is True
    assert status["user"]["username"] == CALLER and status["user"]["groups"] == ["system:masters"]
    (query, region), = moto["sts_queries"]
    assert "Action=GetCallerIdentity" in query and region == REGION


@pytest.mark.parametrize("token, error", [
    ("not-a-token", "no k8s-aws-v1. prefix"),
    ("k8s-aws-v1." + base64.urlsafe_b64encode(b"https://sts.amazonaws.com/?Action=ListUsers").decode(),
     "not a presigned STS GetCallerIdentity"),
    (presigned_token(sign_cluster=False), "did not sign the x-k8s-aws-id header"),
    (presigned_token(expires=901), "invalid X-Amz-Expires"),
])
def test_bad_tokens_are_refused_with_the_reason(moto, token, error):
    status = moto["api"].authenticate(review(token))["status"]
    assert status["authenticated"] is False and error in status["error"]
    assert moto["sts_queries"] == []


def test_tokens_last_fifteen_minutes_whatever_x_amz_expires_says(moto, monkeypatch):
    token = presigned_token(expires=60)
    later = datetime.now(timezone.utc) + timedelta(minutes=14)
    monkeypatch.setattr(eks_api.time, "time", later.timestamp)
    assert moto["api"].authenticate(review(token))["status"]["authenticated"] is True
    too_late = datetime.now(timezone.utc) + timedelta(minutes=16)
    monkeypatch.setattr(eks_api.time, "time", too_late.timestamp)
    assert "expired" in moto["api"].authenticate(review(token))["status"]["error"]


VPC_CNI_MANIFEST = """\
apiVersion: v1
kind: ServiceAccount
metadata: {name: aws-node, namespace: kube-system}
---
kind: DaemonSet
apiVersion: apps/v1
metadata: {name: aws-node, namespace: kube-system}
spec:
  template:
    metadata: {labels: {k8s-app: aws-node}}
    spec:
      initContainers:
      - {name: aws-vpc-cni-init, image: 602401143452.dkr.ecr.us-west-2.amazonaws.com/amazon-k8s-cni-init:v1.19.2}
      containers:
      - {name: aws-node, image: 602401143452.dkr.ecr.us-west-2.amazonaws.com/amazon-k8s-cni:v1.19.2}
      - name: aws-eks-nodeagent
        image: 602401143452.dkr.ecr.us-west-2.amazonaws.com/amazon/aws-network-policy-agent:v1.1.6
"""


def test_a_real_vpc_cni_addon_deploys_the_manifest_it_was_built_from(tmp_path):
    """With aws-node run for real, the vpc-cni add-on of the built version deploys the add-on's own manifest (minus the
    network policy agent, which cannot be built here), labelled for the node runtime, images of the region's
    registry; any other version stays the sandbox's kwok DaemonSet."""
    manifest = tmp_path / "aws-k8s-cni.yaml"
    manifest.write_text(VPC_CNI_MANIFEST)
    objects = eks_api.addon_objects("vpc-cni", eks_objects.VPC_CNI_TAG, REGION, str(manifest))
    daemonset = next(o for o in objects if o["kind"] == "DaemonSet")
    template = daemonset["spec"]["template"]
    assert template["metadata"]["labels"][eks_objects.REAL_RUN_LABEL] == "real"
    assert [c["name"] for c in template["spec"]["containers"]] == ["aws-node"]
    assert template["spec"]["containers"][0]["image"] == \
        f"602401143452.dkr.ecr.{REGION}.amazonaws.com/amazon-k8s-cni:{eks_objects.VPC_CNI_TAG}"
    assert template["spec"]["initContainers"][0]["image"].endswith(f"/amazon-k8s-cni-init:{eks_objects.VPC_CNI_TAG}")
    older = eks_api.addon_objects("vpc-cni", "v1.18.6-eksbuild.1", REGION, str(manifest))
    assert older == eks_objects.aws_node(REGION, "v1.18.6-eksbuild.1")
    assert eks_api.addon_objects("vpc-cni", eks_objects.VPC_CNI_TAG, REGION) == eks_objects.aws_node(REGION)
