"""EKS APIs moto lacks, answered by the sandbox's EKS proxy (see ``aws.EksApiProxy``).

The real eksctl calls them while it creates, upgrades and deletes a cluster (eksctl v0.225.0,
``pkg/actions/addon``, ``pkg/actions/cluster/upgrade.go``, ``pkg/actions/accessentry``); their
shapes are the EKS API reference's (REST + JSON, camelCase):

* add-ons: ``DescribeAddonVersions`` (``GET /addons/supported-versions``),
  ``DescribeAddonConfiguration`` (``GET /addons/configuration-schemas``), ``CreateAddon``,
  ``ListAddons``, ``DescribeAddon``, ``UpdateAddon``, ``DeleteAddon``. Creating ``vpc-cni``,
  ``kube-proxy``, ``coredns`` or ``metrics-server`` applies its kube-system objects
  (``eks_objects``) to the sandbox's API server with field manager ``eks``, as EKS's add-on manager
  does (server-side apply; EKS user guide, "Determine fields you can customize for Amazon EKS
  add-ons"); deleting the add-on removes them unless ``preserve=true``; ``UpdateAddon`` applies
  them again, taking over changed fields only with ``resolveConflicts: OVERWRITE``.
* updates: ``UpdateClusterVersion`` (one minor at a time, as EKS allows), ``DescribeUpdate``,
  ``ListUpdates``. The update succeeds at once and the cluster's version in moto follows; the
  sandbox's kube-apiserver keeps its own version (eksctl's ``upgrade cluster`` then waits for
  ``/version`` to change, which never happens here).
* access entries: ``CreateAccessEntry``, ``ListAccessEntries``, ``DescribeAccessEntry``,
  ``DeleteAccessEntry``, ``AssociateAccessPolicy``, ``ListAssociatedAccessPolicies``.

State is kept per cluster *incarnation* (name + creation time in moto), so a cluster deleted and
made again with the same name starts without add-ons, updates or access entries.

``authenticate`` answers the kube-apiserver's token webhook (``TokenReview``) for EKS tokens:
``k8s-aws-v1.`` + base64url of a presigned STS ``GetCallerIdentity`` URL carrying the
``x-k8s-aws-id`` cluster header, what ``aws eks get-token``, aws-iam-authenticator and eksctl send
(aws-iam-authenticator ``pkg/token/token.go``). The URL is sent to moto's STS; the caller's ARN is
authenticated as a member of ``system:masters``: the sandbox's stand-in for the cluster-admin access
EKS gives the cluster creator (``bootstrapClusterCreatorAdminPermissions``).
"""
from __future__ import annotations

import base64
import json
import re
import threading
import time
import uuid
from datetime import datetime, timezone
from urllib.parse import parse_qs, unquote, urlsplit
from xml.etree import ElementTree

from . import eks_objects, versions

TOKEN_PREFIX = "k8s-aws-v1."
CLUSTER_ID_HEADER = "x-k8s-aws-id"
MASTERS = "system:masters"
TOKEN_LIFETIME = 15 * 60  # seconds from X-Amz-Date (aws-iam-authenticator pkg/token presignedURLExpiration)

# The add-ons EKS offers here: name -> versions, newest first; ``default`` is what EKS installs
# when no version is asked for (eksctl then takes it: pkg/actions/addon/addon.go,
# getLatestMatchingVersion). The defaults are the image tags ``eks_objects`` deploys, so a cluster
# made by the real eksctl has the same kube-system as one seeded by ``sandbox.up``.
ADDONS = {
    "vpc-cni": {"default": eks_objects.VPC_CNI_TAG, "versions": ["v1.20.4-eksbuild.2", eks_objects.VPC_CNI_TAG],
                "type": "networking", "iam": True},
    "kube-proxy": {"default": eks_objects.KUBE_PROXY_TAG,
                   "versions": ["v1.34.0-eksbuild.2", eks_objects.KUBE_PROXY_TAG], "type": "networking", "iam": False},
    "coredns": {"default": eks_objects.COREDNS_TAG, "versions": ["v1.12.3-eksbuild.1", eks_objects.COREDNS_TAG],
                "type": "networking", "iam": False},
    "metrics-server": {"default": eks_objects.METRICS_SERVER_TAG, "versions": [eks_objects.METRICS_SERVER_TAG],
                       "type": "observability-and-monitoring", "iam": False},
}
CLUSTER_VERSIONS = ("1.31", "1.32", "1.33", "1.34", "1.35")
# vpc-cni's recommended IAM policy, as DescribeAddonConfiguration reports it for pod identity.
VPC_CNI_POD_IDENTITY = [{"serviceAccount": "aws-node", "recommendedManagedPolicies": [
    "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy"]}]


class EksApiError(Exception):
    """An EKS error answer: ``{"message": ...}`` with its type in ``x-amzn-ErrorType``."""

    def __init__(self, kind: str, message: str, status: int = 400):
        super().__init__(message)
        self.kind, self.message, self.status = kind, message, status


def _epoch(moment: datetime = None) -> float:
    return round((moment or datetime.now(timezone.utc)).timestamp(), 3)


def addon_versions(query: dict) -> dict:
    """``DescribeAddonVersions``: the catalogue, filtered by ``addonName`` and ``kubernetesVersion``."""
    def one(name):
        return (query.get(name) or [None])[-1]

    name, k8s = one("addonName"), one("kubernetesVersion")
    if k8s and k8s not in CLUSTER_VERSIONS:
        return {"addons": []}
    addons = []
    for addon, spec in ADDONS.items():
        if name not in (None, addon):
            continue
        versions = [{"addonVersion": version, "architecture": ["amd64", "arm64"], "computeTypes": ["ec2"],
                     "compatibilities": [{"clusterVersion": v, "platformVersions": ["*"],
                                          "defaultVersion": version == spec["default"]}
                                         for v in ([k8s] if k8s else CLUSTER_VERSIONS)],
                     "requiresConfiguration": False, "requiresIamPermissions": spec["iam"]}
                    for version in spec["versions"]]
        addons.append({"addonName": addon, "type": spec["type"], "addonVersions": versions,
                       "publisher": "eks", "owner": "aws"})
    return {"addons": addons}


def addon_configuration(query: dict) -> dict:
    name = (query.get("addonName") or [""])[-1]
    version = (query.get("addonVersion") or [""])[-1]
    spec = ADDONS.get(name)
    if spec is None or version not in spec["versions"]:
        raise EksApiError("ResourceNotFoundException", f"No addon found for name {name} and version {version}", 404)
    return {"addonName": name, "addonVersion": version,
            "configurationSchema": json.dumps({"$schema": "http://json-schema.org/draft-07/schema#",
                                               "type": "object", "additionalProperties": True}),
            "podIdentityConfiguration": VPC_CNI_POD_IDENTITY if name == "vpc-cni" else []}


def addon_objects(name: str, version: str, region: str, vpc_cni_manifest: str | None = None) -> list:
    """The kube-system objects an add-on version deploys (the sandbox's eks_objects). ``vpc_cni_manifest``: the
    VPC CNI's own manifest (a sandbox whose aws-node runs for real), used for the version it was built from."""
    if name == "vpc-cni":
        if vpc_cni_manifest and version.split("-", 1)[0] == versions.AWS_VPC_CNI:
            return eks_objects.vpc_cni_addon_from_manifest(vpc_cni_manifest, region, version)
        return eks_objects.aws_node(region, version)
    if name == "kube-proxy":
        return eks_objects.kube_proxy(region, version)
    if name == "coredns":
        return eks_objects.coredns(region, version)
    if name == "metrics-server":
        return eks_objects.metrics_server(region, version)
    return []


# --------------------------------------------------------------------------------------------
# Per-cluster state
# --------------------------------------------------------------------------------------------

class ClusterRecords:
    """Add-ons, updates and access entries of one cluster incarnation."""

    def __init__(self):
        self.addons: dict = {}
        self.updates: dict = {}
        self.access_entries: dict = {}


class EksApi:
    """The EKS operations moto lacks, for :class:`aws.EksApiProxy`.

    ``describe_cluster(name, region)`` returns moto's cluster (a dict) or None; ``set_version(name,
    region, version, platform_version)`` changes it in moto; ``apply_objects(objects, force)`` and
    ``delete_objects(objects)`` reach the sandbox's API server (None when no API server is
    registered: the add-ons are then recorded only); ``sts(query)`` answers a GetCallerIdentity query
    from moto's STS (the XML text).
    """

    def __init__(self, describe_cluster, set_version, sts, kube=None, clock=None):
        self.describe_cluster = describe_cluster
        self.set_version = set_version
        self.sts = sts
        self.kube = kube
        self.vpc_cni_manifest = None  # set by the platform registration when aws-node runs for real
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self._lock = threading.Lock()
        self._records: dict = {}

    # -- routing -------------------------------------------------------------------------------
    ROUTES = [
        ("GET", re.compile(r"^/addons/supported-versions$"), "DescribeAddonVersions"),
        ("GET", re.compile(r"^/addons/configuration-schemas$"), "DescribeAddonConfiguration"),
        ("POST", re.compile(r"^/clusters/(?P<cluster>[^/]+)/addons$"), "CreateAddon"),
        ("GET", re.compile(r"^/clusters/(?P<cluster>[^/]+)/addons$"), "ListAddons"),
        ("GET", re.compile(r"^/clusters/(?P<cluster>[^/]+)/addons/(?P<addon>[^/]+)$"), "DescribeAddon"),
        ("DELETE", re.compile(r"^/clusters/(?P<cluster>[^/]+)/addons/(?P<addon>[^/]+)$"), "DeleteAddon"),
        ("POST", re.compile(r"^/clusters/(?P<cluster>[^/]+)/addons/(?P<addon>[^/]+)/update$"), "UpdateAddon"),
        ("POST", re.compile(r"^/clusters/(?P<cluster>[^/]+)/updates$"), "UpdateClusterVersion"),
        ("GET", re.compile(r"^/clusters/(?P<cluster>[^/]+)/updates$"), "ListUpdates"),
        ("GET", re.compile(r"^/clusters/(?P<cluster>[^/]+)/updates/(?P<update>[^/]+)$"), "DescribeUpdate"),
        ("POST", re.compile(r"^/clusters/(?P<cluster>[^/]+)/access-entries$"), "CreateAccessEntry"),
        ("GET", re.compile(r"^/clusters/(?P<cluster>[^/]+)/access-entries$"), "ListAccessEntries"),
        ("GET", re.compile(r"^/clusters/(?P<cluster>[^/]+)/access-entries/(?P<principal>[^/]+)$"),
         "DescribeAccessEntry"),
        ("DELETE", re.compile(r"^/clusters/(?P<cluster>[^/]+)/access-entries/(?P<principal>[^/]+)$"),
         "DeleteAccessEntry"),
        ("POST", re.compile(r"^/clusters/(?P<cluster>[^/]+)/access-entries/(?P<principal>[^/]+)/access-policies$"),
         "AssociateAccessPolicy"),
        ("GET", re.compile(r"^/clusters/(?P<cluster>[^/]+)/access-entries/(?P<principal>[^/]+)/access-policies$"),
         "ListAssociatedAccessPolicies"),
    ]

    @classmethod
    def operation(cls, method: str, path: str):
        """``(operation, path parameters)`` of an EKS request this class answers, or None."""
        for verb, pattern, name in cls.ROUTES:
            match = pattern.match(path)
            if verb == method and match:
                return name, {key: unquote(value) for key, value in match.groupdict().items()}
        return None

    def handle(self, method: str, raw_path: str, body: bytes, region: str):
        """``(status, payload)`` for a request this class answers; None for anything else."""
        split = urlsplit(raw_path)
        found = self.operation(method, split.path)
        if found is None:
            return None
        name, params = found
        query = parse_qs(split.query)
        request = json.loads(body or b"{}") if method in ("POST", "PUT") else {}
        if name == "DescribeAddonVersions":
            return 200, addon_versions(query)
        if name == "DescribeAddonConfiguration":
            return 200, addon_configuration(query)
        cluster = self._cluster(params["cluster"], region)
        handler = getattr(self, "_" + re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower())
        return handler(cluster, params, query, request, region)

    def _cluster(self, name: str, region: str) -> dict:
        cluster = self.describe_cluster(name, region)
        if cluster is None:
            raise EksApiError("ResourceNotFoundException", f"No cluster found for name: {name}.", 404)
        return cluster

    def records(self, cluster: dict) -> ClusterRecords:
        key = (cluster["arn"], str(cluster.get("createdAt")))
        with self._lock:
            return self._records.setdefault(key, ClusterRecords())

    # -- add-ons -------------------------------------------------------------------------------
    def _create_addon(self, cluster, _params, _query, request, region):
        name = request.get("addonName", "")
        records = self.records(cluster)
        spec = ADDONS.get(name)
        if spec is None:
            raise EksApiError("InvalidParameterException", f"Addon {name} specified is not supported")
        version = request.get("addonVersion") or spec["default"]
        if version not in spec["versions"]:
            raise EksApiError("InvalidParameterException",
                              f"Addon version specified is not supported, Addon {name} version {version}")
        if name in records.addons:
            raise EksApiError("ResourceInUseException", f"Addon already exists with name: {name}", 409)
        now = _epoch(self.clock())
        addon = {"addonName": name, "clusterName": cluster["name"], "status": "ACTIVE", "addonVersion": version,
                 "health": {"issues": []},
                 "addonArn": f"{cluster['arn'].replace(':cluster/', ':addon/')}/{name}/{uuid.uuid4()}",
                 "createdAt": now, "modifiedAt": now, "tags": dict(request.get("tags") or {}),
                 "configurationValues": request.get("configurationValues") or ""}
        if request.get("serviceAccountRoleArn"):
            addon["serviceAccountRoleArn"] = request["serviceAccountRoleArn"]
        if not self._deploy(name, version, region, force=request.get("resolveConflicts") == "OVERWRITE"):
            # What EKS reports when fields of existing objects belong to someone else (resolveConflicts NONE).
            addon.update(status="CREATE_FAILED", health={"issues": [{
                "code": "ConfigurationConflict", "message": "Conflicts found when trying to apply. Will not continue "
                "due to resolve conflicts mode. Conflicts: DaemonSet/Deployment fields owned by another manager",
                "resourceIds": [name]}]})
        records.addons[name] = addon
        return 200, {"addon": addon}

    def _deploy(self, name: str, version: str, region: str, force: bool) -> bool:
        """Apply the add-on's objects; False when a field another manager owns stopped it (no force)."""
        if self.kube is None:
            return True
        return self.kube.apply(addon_objects(name, version, region, self.vpc_cni_manifest), force=force)

    def _addon(self, cluster, params) -> dict:
        addon = self.records(cluster).addons.get(params["addon"])
        if addon is None:
            raise EksApiError("ResourceNotFoundException",
                              f"No addon: {params['addon']} found in cluster: {cluster['name']}", 404)
        return addon

    def _list_addons(self, cluster, _params, _query, _request, _region):
        return 200, {"addons": sorted(self.records(cluster).addons)}

    def _describe_addon(self, cluster, params, _query, _request, _region):
        return 200, {"addon": self._addon(cluster, params)}

    def _delete_addon(self, cluster, params, query, _request, region):
        addon = self._addon(cluster, params)
        if (query.get("preserve") or ["false"])[-1].lower() != "true" and self.kube is not None:
            self.kube.delete(addon_objects(addon["addonName"], addon["addonVersion"], region, self.vpc_cni_manifest))
        del self.records(cluster).addons[addon["addonName"]]
        return 200, {"addon": dict(addon, status="DELETING")}

    def _update_addon(self, cluster, params, _query, request, region):
        addon = self._addon(cluster, params)
        version = request.get("addonVersion") or addon["addonVersion"]
        if version not in ADDONS[addon["addonName"]]["versions"]:
            raise EksApiError("InvalidParameterException", f"Addon version specified is not supported: {version}")
        mode = request.get("resolveConflicts") or "NONE"
        applied = self._deploy(addon["addonName"], version, region, force=mode == "OVERWRITE")
        errors = []
        if applied or mode == "PRESERVE":
            addon.update(addonVersion=version, modifiedAt=_epoch(self.clock()))
            if "configurationValues" in request:
                addon["configurationValues"] = request["configurationValues"]
        else:
            errors = [{"errorCode": "ConfigurationConflict", "errorMessage": "Conflicts found when trying to apply. "
                       "Will not continue due to resolve conflicts mode.", "resourceIds": [addon["addonName"]]}]
        update = self._record_update(cluster, "AddonUpdate", [
            {"type": "AddonVersion", "value": version}, {"type": "ResolveConflicts", "value": mode}], errors)
        update["addonName"] = addon["addonName"]
        return 200, {"update": update}

    # -- updates -------------------------------------------------------------------------------
    def _record_update(self, cluster, kind: str, params: list, errors=()) -> dict:
        update = {"id": str(uuid.uuid4()), "status": "Failed" if errors else "Successful", "type": kind,
                  "params": params, "createdAt": _epoch(self.clock()), "errors": list(errors)}
        self.records(cluster).updates[update["id"]] = update
        return update

    def _update_cluster_version(self, cluster, _params, _query, request, region):
        from .aws import EKS_VERSIONS  # noqa: PLC0415 - aws imports this module

        wanted = str(request.get("version", ""))
        known = {row.version: row for row in EKS_VERSIONS}
        current = cluster["version"]
        if wanted not in known:
            raise EksApiError("InvalidParameterException", f"Unsupported Kubernetes minor version update from "
                              f"{current} to {wanted}")
        if tuple(int(p) for p in wanted.split(".")) != (int(current.split(".")[0]), int(current.split(".")[1]) + 1):
            raise EksApiError("InvalidParameterException", f"Unsupported Kubernetes minor version update from "
                              f"{current} to {wanted}")
        self.set_version(cluster["name"], region, wanted, known[wanted].platform_version)
        update = self._record_update(cluster, "VersionUpdate", [
            {"type": "Version", "value": wanted}, {"type": "PlatformVersion", "value": known[wanted].platform_version}])
        return 200, {"update": update}

    def _list_updates(self, cluster, _params, _query, _request, _region):
        return 200, {"updateIds": list(self.records(cluster).updates)}

    def _describe_update(self, cluster, params, _query, _request, _region):
        update = self.records(cluster).updates.get(params["update"])
        if update is None:
            raise EksApiError("ResourceNotFoundException", f"No update found for ID: {params['update']}", 404)
        return 200, {"update": update}

    # -- access entries ------------------------------------------------------------------------
    def _entry(self, cluster, params) -> dict:
        entry = self.records(cluster).access_entries.get(params["principal"])
        if entry is None:
            raise EksApiError("ResourceNotFoundException",
                              f"The specified principalArn could not be found: {params['principal']}", 404)
        return entry

    def _create_access_entry(self, cluster, _params, _query, request, _region):
        principal = request.get("principalArn", "")
        if not re.match(r"^arn:aws[a-z-]*:(iam|sts)::\d{12}:", principal):
            raise EksApiError("InvalidParameterException", f"The principalArn parameter is invalid: {principal}")
        entries = self.records(cluster).access_entries
        if principal in entries:
            raise EksApiError("ResourceInUseException", "The specified access entry resource is already in use "
                              "on this cluster.", 409)
        now = _epoch(self.clock())
        entries[principal] = {
            "clusterName": cluster["name"], "principalArn": principal,
            "kubernetesGroups": list(request.get("kubernetesGroups") or []),
            "accessEntryArn": f"{cluster['arn'].replace(':cluster/', ':access-entry/')}/{uuid.uuid4()}",
            "createdAt": now, "modifiedAt": now, "tags": dict(request.get("tags") or {}),
            "username": request.get("username") or principal, "type": request.get("type") or "STANDARD",
            "policies": {},
        }
        return 200, {"accessEntry": _public_entry(entries[principal])}

    def _list_access_entries(self, cluster, _params, _query, _request, _region):
        return 200, {"accessEntries": sorted(self.records(cluster).access_entries)}

    def _describe_access_entry(self, cluster, params, _query, _request, _region):
        return 200, {"accessEntry": _public_entry(self._entry(cluster, params))}

    def _delete_access_entry(self, cluster, params, _query, _request, _region):
        self._entry(cluster, params)
        del self.records(cluster).access_entries[params["principal"]]
        return 200, {}

    def _associate_access_policy(self, cluster, params, _query, request, _region):
        entry = self._entry(cluster, params)
        now = _epoch(self.clock())
        policy = {"policyArn": request.get("policyArn", ""), "accessScope": request.get("accessScope") or
                  {"type": "cluster"}, "associatedAt": now, "modifiedAt": now}
        entry["policies"][policy["policyArn"]] = policy
        return 200, {"clusterName": cluster["name"], "principalArn": entry["principalArn"],
                     "associatedAccessPolicy": policy}

    def _list_associated_access_policies(self, cluster, params, _query, _request, _region):
        entry = self._entry(cluster, params)
        return 200, {"clusterName": cluster["name"], "principalArn": entry["principalArn"],
                     "associatedAccessPolicies": list(entry["policies"].values())}

    # -- kube-apiserver token webhook ------------------------------------------------------------
    def authenticate(self, review: dict) -> dict:
        """A ``TokenReview`` answer (authentication.k8s.io/v1) for the token in ``review``."""
        token = ((review or {}).get("spec") or {}).get("token", "")
        answer = {"apiVersion": review.get("apiVersion", "authentication.k8s.io/v1"), "kind": "TokenReview"}
        try:
            arn, _region = self.caller_of(token)
        except EksApiError as err:
            return dict(answer, status={"authenticated": False, "error": err.message})
        return dict(answer, status={"authenticated": True, "user": {
            "username": arn, "uid": f"aws-iam-authenticator:{arn}", "groups": [MASTERS],
            "extra": {"sessionName": [arn.rsplit("/", 1)[-1]], "canonicalArn": [arn]}}})

    def caller_of(self, token: str) -> tuple:
        """``(caller ARN, cluster name)`` of a valid EKS token; EksApiError saying what is wrong otherwise.

        The checks of aws-iam-authenticator's server (``pkg/token/token.go`` ``Verify`` at v0.7.8):
        GetCallerIdentity, the ``x-k8s-aws-id`` header signed, ``X-Amz-Expires`` within 0..900, and
        the token valid 15 minutes from ``X-Amz-Date`` whatever ``X-Amz-Expires`` says. Not checked:
        the STS host (tokens here are presigned for the sandbox's endpoint) and the signature, hence
        which cluster the token was made for (STS checks the signed header; moto checks no signature)."""
        _url, query = presigned_request(token)
        headers = [h.lower() for h in (query.get("X-Amz-SignedHeaders") or [""])[-1].split(";")]
        if CLUSTER_ID_HEADER not in headers:
            raise EksApiError("Unauthorized", f"client did not sign the {CLUSTER_ID_HEADER} header in the "
                                              "pre-signed URL")
        try:
            expires = int((query.get("X-Amz-Expires") or [""])[-1])
            signed = datetime.strptime((query.get("X-Amz-Date") or [""])[-1], "%Y%m%dT%H%M%SZ")
        except ValueError:
            raise EksApiError("Unauthorized", "invalid X-Amz-Expires or X-Amz-Date in the pre-signed URL") from None
        if not 0 <= expires <= 900:
            raise EksApiError("Unauthorized", f"invalid X-Amz-Expires parameter in pre-signed URL: {expires}")
        if time.time() > signed.replace(tzinfo=timezone.utc).timestamp() + TOKEN_LIFETIME:
            raise EksApiError("Unauthorized", "X-Amz-Date parameter is expired (15 minute expiration)")
        credential = (query.get("X-Amz-Credential") or [""])[-1].split("/")
        region = credential[2] if len(credential) > 2 else "us-east-1"
        identity = self.sts(urlsplit(_url).query, region)
        arn = _xml_text(identity, "Arn")
        if not arn:
            raise EksApiError("Unauthorized", "STS did not name the caller")
        return arn, region


def _public_entry(entry: dict) -> dict:
    return {k: v for k, v in entry.items() if k != "policies"}


def presigned_request(token: str) -> tuple:
    """``(url, query)`` of the presigned STS request inside an EKS token; EksApiError when it is none."""
    if not token.startswith(TOKEN_PREFIX):
        raise EksApiError("Unauthorized", f"not an EKS token (no {TOKEN_PREFIX} prefix)")
    encoded = token[len(TOKEN_PREFIX):]
    try:
        url = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        raise EksApiError("Unauthorized", "the token is not base64url") from None
    split = urlsplit(url)
    query = parse_qs(split.query)
    if (query.get("Action") or [""])[-1] != "GetCallerIdentity" or not split.scheme.startswith("http"):
        raise EksApiError("Unauthorized", "the token is not a presigned STS GetCallerIdentity request")
    return url, query


def _xml_text(document: str, tag: str) -> str:
    try:
        root = ElementTree.fromstring(document)
    except ElementTree.ParseError:
        return ""
    for element in root.iter():
        if element.tag.rsplit("}", 1)[-1] == tag:
            return (element.text or "").strip()
    return ""


class KubeObjects:
    """Server-side apply and delete of add-on objects on the sandbox's API server, as field manager ``eks``."""

    FIELD_MANAGER = "eks"

    def __init__(self, kubeconfig):
        self.kubeconfig = str(kubeconfig)
        self._api = None

    def api(self):
        if self._api is None:
            from . import kube

            self._api = kube.dynamic_client(self.kubeconfig)
        return self._api

    def apply(self, objects: list, force: bool) -> bool:
        """Apply every object; False (and the rest skipped) when a field another manager owns conflicts."""
        from kubernetes.client.exceptions import ApiException

        for obj in objects:
            resource = self.api().resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
            meta = obj["metadata"]
            try:
                resource.server_side_apply(body=obj, name=meta["name"], namespace=meta.get("namespace"),
                                           field_manager=self.FIELD_MANAGER, force_conflicts=force)
            except ApiException as err:
                if err.status == 409:
                    return False
                raise
        return True

    def delete(self, objects: list) -> None:
        from kubernetes.client.exceptions import ApiException

        for obj in objects:
            resource = self.api().resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
            try:
                resource.delete(name=obj["metadata"]["name"], namespace=obj["metadata"].get("namespace"))
            except ApiException as err:
                if err.status != 404:
                    raise
