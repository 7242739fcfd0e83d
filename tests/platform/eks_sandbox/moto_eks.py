"""moto, extended so that the real eksctl's CloudFormation stacks run in it.

``python -m eks_sandbox.moto_eks -H 127.0.0.1 -p PORT`` is ``python -m moto.server`` with:

* **CloudFormation models moto lacks**: ``AWS::EKS::Cluster`` and ``AWS::EKS::Nodegroup``, the
  resources of eksctl's cluster and managed node group stacks (eksctl v0.225.0,
  ``pkg/cfn/builder/cluster.go`` and ``managed_nodegroup.go``). They create the cluster and node
  group in moto's EKS backend from the stack's resolved properties, the way EKS would: the cluster
  gets the security group EKS makes itself (``eks-cluster-sg-<name>-<n>``, tagged
  ``aws:eks:cluster-name``), and the sandbox's kube-apiserver as its endpoint and CA. They answer
  the ``Fn::GetAtt`` attributes of the CloudFormation reference (Arn, Endpoint,
  CertificateAuthorityData, ClusterSecurityGroupId, OpenIdConnectIssuerUrl; Arn, ClusterName,
  NodegroupName).
* **CloudFormation fidelity** where moto's models fall short of what eksctl's templates need:
  subnets honour ``MapPublicIpOnLaunch`` (eksctl refuses node groups in public subnets that do not
  map public IPs), and NAT gateways, EIPs, Internet gateways and their VPC attachments, route
  tables, routes and subnet associations can be deleted (moto has no CloudFormation delete for
  them, so eksctl's ``delete cluster`` ended in ``DependencyViolation`` on the VPC).
  A stack whose deletion fails ends ``DELETE_FAILED`` with a ``DELETE_FAILED`` event, as on AWS,
  instead of vanishing with an error answer to ``DeleteStack``.
* **Stack failures on demand** (moto's CloudFormation never fails by itself): a rule makes the next
  matching stack end ``ROLLBACK_COMPLETE`` with a ``CREATE_FAILED`` event on the named resource, or
  its deletion end ``DELETE_FAILED``; see :func:`fail_stack`.

Its admin API, under :data:`ADMIN_PATH` (no AWS path starts like it; the EKS proxy forwards it):

* ``PUT /platform`` ``{"endpoint", "certificateAuthorityData"}``: what every EKS cluster created
  from then on reports (the sandbox's kube-apiserver), through CloudFormation or CreateCluster;
  ``GET /platform`` shows it;
* ``PUT /clusters/<region>/<name>`` ``{"version", "platformVersion"}``: what a finished EKS version
  update leaves (the EKS proxy's ``UpdateClusterVersion`` calls it);
* ``PUT /stack-failures`` ``{"stack": glob, "logical_id", "reason", "operation": "create"|"delete",
  "count"}`` adds a failure rule, ``GET`` lists the rules left and the failures served, ``DELETE``
  clears them.

The models are defined when this module is imported, before moto's CloudFormation builds its
``lru_cache``'d model map on the first stack; their ``__module__`` says ``moto.eks.models``
because moto files every model class under the service named by its module
(``moto/core/base_backend.py``, ``InstanceTrackerMeta``).
"""
from __future__ import annotations

import fnmatch
import json
import random
import sys
import threading
from typing import Any

from moto.cloudformation import exceptions as cfn_exceptions
from moto.cloudformation import models as cfn_models
from moto.cloudformation import parsing as cfn_parsing
from moto.cloudformation import responses as cfn_responses
from moto.core.common_models import CloudFormationModel
from moto.core.responses import ActionResult
from moto.ec2.models import ec2_backends
from moto.ec2.models.elastic_ip_addresses import ElasticAddress
from moto.ec2.models.internet_gateways import InternetGateway
from moto.ec2.models.nat_gateways import NatGateway
from moto.ec2.models.route_tables import Route, RouteTable
from moto.ec2.models.subnets import Subnet, SubnetRouteTableAssociation
from moto.ec2.models.vpn_gateway import VPCGatewayAttachment
from moto.ec2.responses.elastic_network_interfaces import ElasticNetworkInterfaces
from moto.eks.models import EKSBackend, eks_backends

from .aws import node_release_version

ADMIN_PATH = "/__eks_sandbox_moto__"
# What EKS picks for the service range of a 192.168.0.0/16 VPC (EKS user guide, "Create a cluster":
# 10.100.0.0/16 or 172.20.0.0/16, whichever does not overlap); the kwok cluster uses the same.
SERVICE_CIDR = "10.100.0.0/16"


class PlatformState:
    """What the sandbox tells moto through the admin API; shared by the request threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.endpoint: str | None = None
        self.ca_data: str | None = None
        self.failures: list[dict] = []
        self.served: list[dict] = []

    def set_platform(self, settings: dict) -> dict:
        if not settings.get("endpoint"):
            raise ValueError("endpoint is required")
        with self.lock:
            self.endpoint = settings["endpoint"]
            self.ca_data = settings.get("certificateAuthorityData")
        return self.platform()

    def platform(self) -> dict:
        return {"endpoint": self.endpoint, "certificateAuthorityData": self.ca_data}

    def add_failure(self, rule: dict) -> dict:
        operation = rule.get("operation", "create")
        if operation not in ("create", "delete") or not rule.get("stack") or not rule.get("logical_id"):
            raise ValueError("stack (a glob), logical_id and operation create|delete are required")
        added = {"stack": rule["stack"], "logical_id": rule["logical_id"], "operation": operation,
                 "reason": rule.get("reason") or "Resource creation failed (injected by the eks_sandbox)",
                 "count": int(rule.get("count", 1))}
        with self.lock:
            self.failures.append(added)
        return added

    def take_failure(self, operation: str, stack: str) -> dict | None:
        with self.lock:
            for rule in self.failures:
                if rule["operation"] == operation and rule["count"] > 0 and fnmatch.fnmatchcase(stack, rule["stack"]):
                    rule["count"] -= 1
                    self.served.append({"stack": stack, "logical_id": rule["logical_id"], "operation": operation})
                    return dict(rule)
        return None

    def failure_report(self) -> dict:
        with self.lock:
            return {"pending": [r for r in self.failures if r["count"] > 0], "served": list(self.served)}

    def clear_failures(self) -> dict:
        with self.lock:
            self.failures, self.served = [], []
        return self.failure_report()


STATE = PlatformState()


# --------------------------------------------------------------------------------------------
# AWS::EKS::Cluster and AWS::EKS::Nodegroup
# --------------------------------------------------------------------------------------------

def _lower_first(value: Any) -> Any:
    """CloudFormation's PascalCase properties in the EKS API's camelCase (tags and labels kept)."""
    if isinstance(value, dict):
        return {key[:1].lower() + key[1:]: _lower_first(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_lower_first(item) for item in value]
    return value


def _tag_dict(tags) -> dict:
    """CloudFormation tags: a ``[{Key, Value}]`` list (AWS::EKS::Cluster) or a map (AWS::EKS::Nodegroup)."""
    if isinstance(tags, dict):
        return dict(tags)
    return {tag["Key"]: tag["Value"] for tag in tags or []}


def _truthy(value) -> bool:
    return str(value).lower() == "true"


def _cluster_security_group(ec2, name: str, vpc_id: str) -> str:
    """The security group EKS creates for a cluster: EKS's tags only, members talk to each other freely
    (EKS user guide, "View Amazon EKS security group requirements for clusters",
    docs.aws.amazon.com/eks/latest/userguide/sec-group-reqs.html: name ``eks-cluster-sg-<cluster>-<id>``,
    the ``aws:eks:cluster-name`` tag, all traffic allowed from the group itself)."""
    group_name = f"eks-cluster-sg-{name}-{random.randrange(10 ** 9, 10 ** 10)}"
    group = ec2.create_security_group(
        group_name,
        "EKS created security group applied to ENI that is attached to EKS Control Plane master nodes, "
        "as well as any managed workloads.",
        vpc_id=vpc_id,
        tags={"Name": group_name, "aws:eks:cluster-name": name, f"kubernetes.io/cluster/{name}": "owned"})
    ec2.authorize_security_group_ingress(group.id, "-1", None, None, [], source_groups=[{"GroupId": group.id}],
                                         vpc_id=vpc_id)
    return group.id


def create_eks_cluster(name: str, properties: dict, account_id: str, region_name: str):
    """An EKS cluster in moto from the resolved properties of an ``AWS::EKS::Cluster`` resource."""
    ec2 = ec2_backends[account_id][region_name]
    vpc = _lower_first(properties.get("ResourcesVpcConfig") or {})
    subnets = vpc.get("subnetIds") or []
    vpc_id = ec2.get_subnet(subnets[0]).vpc_id if subnets else None
    # The defaults of the EKS API reference, CreateCluster: VpcConfigRequest, AccessConfigRequest, UpgradePolicyRequest.
    vpc.setdefault("endpointPublicAccess", True)
    vpc.setdefault("endpointPrivateAccess", False)
    vpc.setdefault("publicAccessCidrs", ["0.0.0.0/0"])
    if vpc_id:
        vpc.update(vpcId=vpc_id, clusterSecurityGroupId=_cluster_security_group(ec2, name, vpc_id))
    network = {"serviceIpv4Cidr": SERVICE_CIDR, "ipFamily": "ipv4",
               **_lower_first(properties.get("KubernetesNetworkConfig") or {})}
    network.pop("elasticLoadBalancing", None)
    cluster = eks_backends[account_id][region_name].create_cluster(
        name=name, role_arn=properties["RoleArn"], resources_vpc_config=vpc, version=properties.get("Version"),
        kubernetes_network_config=network, tags=_tag_dict(properties.get("Tags")),
        encryption_config=_lower_first(properties.get("EncryptionConfig") or []),
    )
    access = _lower_first(properties.get("AccessConfig") or {})
    cluster.access_config = {"authenticationMode": access.get("authenticationMode", "CONFIG_MAP"),
                             "bootstrapClusterCreatorAdminPermissions":
                                 _truthy(access.get("bootstrapClusterCreatorAdminPermissions", True))}
    cluster.upgrade_policy = _lower_first(properties.get("UpgradePolicy") or {"SupportType": "EXTENDED"})
    return cluster


def _create_cluster(original):
    """moto's EKS CreateCluster, reporting the sandbox's API server as endpoint and CA (moto makes up
    an endpoint and a CA that is not even base64)."""
    def create_cluster(self, *args, **kwargs):
        cluster = original(self, *args, **kwargs)
        with STATE.lock:
            if STATE.endpoint:
                cluster.endpoint = STATE.endpoint
            if STATE.ca_data:
                cluster.certificate_authority = {"data": STATE.ca_data}
        return cluster
    return create_cluster


class EksClusterResource(CloudFormationModel):
    """``AWS::EKS::Cluster`` (CloudFormation user guide, "AWS::EKS::Cluster": Ref is the name)."""

    __module__ = "moto.eks.models"
    ATTRIBUTES = ("Arn", "CertificateAuthorityData", "ClusterSecurityGroupId", "Endpoint", "Id",
                  "OpenIdConnectIssuerUrl", "EncryptionConfigKeyArn", "KubernetesNetworkConfig.ServiceIpv6Cidr")

    def __init__(self, cluster, account_id: str, region_name: str):
        self.cluster, self.account_id, self.region_name = cluster, account_id, region_name

    @staticmethod
    def cloudformation_name_type() -> str:
        return "Name"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::EKS::Cluster"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr in cls.ATTRIBUTES

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name,
                                        **kwargs):  # noqa: ARG003 - moto's signature
        cluster = create_eks_cluster(resource_name, cloudformation_json["Properties"], account_id, region_name)
        return cls(cluster, account_id, region_name)

    @property
    def physical_resource_id(self) -> str:
        return self.cluster.name

    def get_cfn_attribute(self, attribute_name: str):
        cluster = self.cluster
        values = {
            "Arn": cluster.arn,
            "CertificateAuthorityData": (cluster.certificate_authority or {}).get("data"),
            "ClusterSecurityGroupId": cluster.resources_vpc_config.get("clusterSecurityGroupId", ""),
            "Endpoint": cluster.endpoint,
            "Id": cluster.name,
            "OpenIdConnectIssuerUrl": cluster.identity["oidc"]["issuer"],
            "EncryptionConfigKeyArn": "",
            "KubernetesNetworkConfig.ServiceIpv6Cidr": "",
        }
        if attribute_name not in values:
            from moto.cloudformation.exceptions import UnformattedGetAttTemplateException
            raise UnformattedGetAttTemplateException()
        return values[attribute_name]

    def delete(self, account_id: str, region_name: str) -> None:
        """Delete the cluster (moto refuses while node groups exist, as EKS does) and EKS's security group."""
        name = self.cluster.name
        group = self.cluster.resources_vpc_config.get("clusterSecurityGroupId")
        eks_backends[account_id][region_name].delete_cluster(name)
        if group:
            ec2 = ec2_backends[account_id][region_name]
            if ec2.get_security_group_from_id(group) is not None:
                ec2.delete_security_group(group_id=group)


def create_eks_nodegroup(name: str, properties: dict, account_id: str, region_name: str):
    """A managed node group in moto from the resolved properties of an ``AWS::EKS::Nodegroup`` resource."""
    launch_template = _lower_first(properties.get("LaunchTemplate")) or None
    if launch_template and "version" in launch_template:
        launch_template["version"] = str(launch_template["version"])
    scaling = _lower_first(properties.get("ScalingConfig") or {}) or None
    if scaling:
        scaling = {key: int(value) for key, value in scaling.items()}
    backend = eks_backends[account_id][region_name]
    cluster = backend.clusters.get(properties["ClusterName"])
    # Without Version/ReleaseVersion (eksctl v0.225.0 sets neither unless the config names a releaseVersion:
    # pkg/cfn/builder/managed_nodegroup.go:181-183) EKS takes the cluster's version and the newest AMI release
    # for it (EKS API reference, CreateNodegroup: version, releaseVersion); moto would say 1.19.
    version = str(properties.get("Version") or (cluster.version if cluster else ""))
    release = properties.get("ReleaseVersion") or (node_release_version(version) if version else None)
    return backend.create_nodegroup(
        cluster_name=properties["ClusterName"], node_role=properties["NodeRole"], nodegroup_name=name,
        subnets=properties.get("Subnets") or [], scaling_config=scaling,
        disk_size=properties.get("DiskSize"), instance_types=properties.get("InstanceTypes"),
        ami_type=properties.get("AmiType"), remote_access=_lower_first(properties.get("RemoteAccess")),
        labels=dict(properties.get("Labels") or {}), taints=_lower_first(properties.get("Taints") or []),
        tags=_tag_dict(properties.get("Tags")), launch_template=launch_template,
        capacity_type=properties.get("CapacityType"), version=version or None, release_version=release,
    )


class EksNodegroupResource(CloudFormationModel):
    """``AWS::EKS::Nodegroup``; Ref is ``<cluster>/<nodegroup>`` (CloudFormation user guide; observed in
    aws/aws-cdk issue #22442, "Nodegroup.nodegroupName is not the nodegroup's name")."""

    __module__ = "moto.eks.models"
    ATTRIBUTES = ("Arn", "ClusterName", "Id", "NodegroupName")

    def __init__(self, nodegroup):
        self.nodegroup = nodegroup

    @staticmethod
    def cloudformation_name_type() -> str:
        return "NodegroupName"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::EKS::Nodegroup"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr in cls.ATTRIBUTES

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name,
                                        **kwargs):  # noqa: ARG003 - moto's signature
        return cls(create_eks_nodegroup(resource_name, cloudformation_json["Properties"], account_id, region_name))

    @property
    def physical_resource_id(self) -> str:
        return f"{self.nodegroup.cluster_name}/{self.nodegroup.nodegroup_name}"

    def get_cfn_attribute(self, attribute_name: str):
        values = {"Arn": self.nodegroup.arn, "ClusterName": self.nodegroup.cluster_name,
                  "NodegroupName": self.nodegroup.nodegroup_name, "Id": self.physical_resource_id}
        if attribute_name not in values:
            from moto.cloudformation.exceptions import UnformattedGetAttTemplateException
            raise UnformattedGetAttTemplateException()
        return values[attribute_name]

    def delete(self, account_id: str, region_name: str) -> None:
        eks_backends[account_id][region_name].delete_nodegroup(self.nodegroup.cluster_name,
                                                               self.nodegroup.nodegroup_name)


# --------------------------------------------------------------------------------------------
# CloudFormation fidelity for the EC2 resources of eksctl's VPC
# --------------------------------------------------------------------------------------------

def _subnet_from_cloudformation(original):
    """eksctl's public subnets carry ``MapPublicIpOnLaunch: true`` (eksctl v0.225.0 ``pkg/cfn/builder/vpc_ipv4.go``
    :315) and it refuses new node groups in public subnets without it (``pkg/vpc/vpc.go``:608-620,
    ``ValidateExistingPublicSubnets``)."""
    def create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        subnet = original.__func__(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        properties = cloudformation_json["Properties"]
        if "MapPublicIpOnLaunch" in properties:
            subnet.map_public_ip_on_launch = _truthy(properties["MapPublicIpOnLaunch"])
        return subnet
    return classmethod(create)


def _delete_nat_gateway(self, account_id, region_name):
    """A NAT gateway goes with its network interface and lets go of its Elastic IP."""
    ec2 = ec2_backends[account_id][region_name]
    for address in list(ec2.addresses):
        if address.eni is self._eni:
            ec2.disassociate_address(association_id=address.association_id)
    if self._eni.id in ec2.enis:
        ec2.delete_network_interface(self._eni.id)
    ec2.nat_gateways.pop(self.id, None)


def _release_address(self, account_id, region_name):
    ec2 = ec2_backends[account_id][region_name]
    if self.association_id:
        ec2.disassociate_address(association_id=self.association_id)
    ec2.release_address(allocation_id=self.allocation_id)


def _delete_internet_gateway(self, account_id, region_name):
    ec2_backends[account_id][region_name].delete_internet_gateway(self.id)


def _delete_gateway_attachment(self, account_id, region_name):
    ec2 = ec2_backends[account_id][region_name]
    for gateway in ec2.internet_gateways.values():
        if gateway.vpc is not None and gateway.vpc.id == self.vpc_id:
            ec2.detach_internet_gateway(gateway.id, self.vpc_id)


def _delete_route_table(self, account_id, region_name):
    ec2_backends[account_id][region_name].delete_route_table(self.id)


def _delete_route(self, account_id, region_name):
    ec2 = ec2_backends[account_id][region_name]
    if self.route_table.id in ec2.route_tables:
        ec2.delete_route(self.route_table.id, self.destination_cidr_block, self.destination_ipv6_cidr_block,
                         self.destination_prefix_list_id)


def _delete_subnet_association(self, account_id, region_name):
    ec2_backends[account_id][region_name].subnet_associations.pop(f"{self.route_table_id}:{self.subnet_id}", None)


# --------------------------------------------------------------------------------------------
# Stack failures: CREATE_FAILED + ROLLBACK_COMPLETE, DELETE_FAILED
# --------------------------------------------------------------------------------------------

def _resource_event(stack, logical_id: str, status: str, reason: str | None = None) -> None:
    resource = stack.template_dict.get("Resources", {}).get(logical_id, {})
    event = cfn_models.Event(stack_id=stack.stack_id, stack_name=stack.name, logical_resource_id=logical_id,
                             physical_resource_id="", resource_type=resource.get("Type", "AWS::CloudFormation::Stack"),
                             resource_status=status, resource_status_reason=reason, resource_properties=None)
    stack.events.append(event)


def _forget_resources(stack) -> None:
    """A stack whose resources are gone keeps its template but resolves nothing any more: moto's
    ResourceMap creates a resource on first look, so describing the outputs of a deleted stack would
    make its VPC and cluster again."""
    stack.resource_map._resource_json_map = {}
    stack.output_map._output_json_map = {}


def _roll_back(stack, rule: dict) -> None:
    """What CloudFormation shows after a resource failed to create: nothing made, the cause in the events."""
    failed = rule["logical_id"]
    _resource_event(stack, failed, "CREATE_IN_PROGRESS")
    _resource_event(stack, failed, "CREATE_FAILED", rule["reason"])
    stack._add_stack_event("ROLLBACK_IN_PROGRESS",
                           resource_status_reason=f"The following resource(s) failed to create: [{failed}]. "
                                                  "Rollback requested by user.")
    _resource_event(stack, failed, "DELETE_COMPLETE")
    stack._add_stack_event("ROLLBACK_COMPLETE")
    stack.status = "ROLLBACK_COMPLETE"
    _forget_resources(stack)


def _stack_init(original):
    """Take a failure rule for the stack as soon as it exists: moto's create_stack resolves the stack's
    exports (and so creates the resources they name) before it creates the resources."""
    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.injected_failure = STATE.take_failure("create", self.name)
        if self.injected_failure:
            self.output_map._output_json_map = {}
    return init


def _create_resources(original):
    def create_resources(self):
        rule = getattr(self, "injected_failure", None)
        if rule is None:
            return original(self)
        self.status = "CREATE_IN_PROGRESS"
        return _roll_back(self, rule)
    return create_resources


def _delete_failed(stack, logical_id: str, reason: str) -> None:
    _resource_event(stack, logical_id, "DELETE_FAILED", reason)
    stack._add_stack_event("DELETE_FAILED",
                           resource_status_reason=f"The following resource(s) failed to delete: [{logical_id}]. ")
    stack.status = "DELETE_FAILED"


def _delete_stack(self, name_or_stack_id: str) -> None:
    """moto's delete_stack, except that a failure leaves the stack ``DELETE_FAILED`` (as CloudFormation
    does, later) instead of dropping it and answering DeleteStack with the error, and that a stack
    with termination protection is refused, as CloudFormation refuses it."""
    stacks = [s for s in self.stacks.values() if name_or_stack_id in (s.stack_id, s.name)]
    for stack in stacks:
        if stack.enable_termination_protection:
            raise cfn_exceptions.ValidationError(
                message=f"Stack [{stack.name}] cannot be deleted while TerminationProtection is enabled")
        rule = STATE.take_failure("delete", stack.name)
        stack._add_stack_event("DELETE_IN_PROGRESS", resource_status_reason="User Initiated")
        if rule is not None:
            _delete_failed(stack, rule["logical_id"], rule["reason"])
            continue
        exports = [export.name for export in stack.exports]  # resolved now: afterwards they would re-create
        try:
            stack.resource_map.delete()
        except Exception as err:  # noqa: BLE001 - any resource's failure is the stack's DELETE_FAILED
            _delete_failed(stack, getattr(err, "logical_id", stack.name), str(err))
            continue
        _forget_resources(stack)
        stack._add_stack_event("DELETE_COMPLETE")
        stack.status = "DELETE_COMPLETE"
        self.stacks.pop(stack.stack_id, None)
        self.deleted_stacks[stack.stack_id] = stack
        for name in exports:
            self.exports.pop(name, None)


def _update_termination_protection(self):
    """UpdateTerminationProtection, which moto lacks: eksctl 0.225 (not 0.215) creates its stacks protected
    (``pkg/cfn/manager/api.go``: ``EnableTerminationProtection: true``) and lifts it before deleting."""
    stack = self.cloudformation_backend.get_stack(self._get_param("StackName"))
    stack.enable_termination_protection = _truthy(self._get_param("EnableTerminationProtection"))
    return ActionResult({"StackId": stack.stack_id})


def _assign_private_ip_addresses(self) -> ActionResult:
    """EC2 AssignPrivateIpAddresses answering the addresses this call assigned, as EC2 does (API reference,
    AssignPrivateIpAddresses response: "The private IP addresses assigned to the network interface"); moto lists
    every address of the ENI. Cilium's operator sizes its result by the count it asked for and indexes the answer
    (``pkg/aws/api/api.go``:937-953 at v1.20.2, ``pkg/aws/ec2/ec2.go``:883-899 at v1.19.7): moto's answer made it
    panic "index out of range"."""
    eni = self.ec2_backend.get_network_interface(self._get_param("NetworkInterfaceId"))
    before = {item["PrivateIpAddress"] for item in eni.private_ip_addresses}
    self.ec2_backend.assign_private_ip_addresses(eni.id, self._get_param("PrivateIpAddresses", []),
                                                 self._get_int_param("SecondaryPrivateIpAddressCount", 0))
    return ActionResult({"NetworkInterfaceId": eni.id, "AssignedPrivateIpAddresses": [
        item for item in eni.private_ip_addresses if item["PrivateIpAddress"] not in before]})


_INSTALLED = []


def install() -> None:
    """Apply the fidelity patches and the failure knob (the EKS models exist by being defined). Once."""
    if _INSTALLED:
        return
    _INSTALLED.append(True)
    Subnet.create_from_cloudformation_json = _subnet_from_cloudformation(Subnet.create_from_cloudformation_json)
    NatGateway.delete = _delete_nat_gateway
    ElasticAddress.delete = _release_address
    InternetGateway.delete = _delete_internet_gateway
    VPCGatewayAttachment.delete = _delete_gateway_attachment
    RouteTable.delete = _delete_route_table
    Route.delete = _delete_route
    SubnetRouteTableAssociation.delete = _delete_subnet_association
    cfn_models.Stack.__init__ = _stack_init(cfn_models.Stack.__init__)
    cfn_models.Stack.create_resources = _create_resources(cfn_models.Stack.create_resources)
    EKSBackend.create_cluster = _create_cluster(EKSBackend.create_cluster)
    cfn_models.CloudFormationBackend.delete_stack = _delete_stack
    cfn_responses.CloudFormationResponse.update_termination_protection = _update_termination_protection
    ElasticNetworkInterfaces.assign_private_ip_addresses = _assign_private_ip_addresses
    cfn_parsing.get_model_list.cache_clear()
    cfn_parsing.get_model_map.cache_clear()
    cfn_parsing.get_name_type_map.cache_clear()


# --------------------------------------------------------------------------------------------
# The admin API and the server
# --------------------------------------------------------------------------------------------

def set_cluster_version(region: str, name: str, settings: dict) -> dict:
    """What a finished EKS version update leaves: the cluster's version and platform version."""
    from moto.core import DEFAULT_ACCOUNT_ID

    cluster = eks_backends[DEFAULT_ACCOUNT_ID][region].clusters.get(name)
    if cluster is None:
        raise LookupError(f"no EKS cluster {name} in {region}")
    cluster.version = settings["version"]
    cluster.platformVersion = settings.get("platformVersion", cluster.platformVersion)
    return {"name": name, "version": cluster.version, "platformVersion": cluster.platformVersion}


def admin(method: str, path: str, body: bytes) -> tuple[int, dict]:
    parts = [p for p in path.split("/") if p]
    try:
        payload = json.loads(body or b"{}")
        if len(parts) == 3 and parts[0] == "clusters" and method == "PUT":
            return 200, set_cluster_version(parts[1], parts[2], payload)
        if parts == ["platform"]:
            return 200, STATE.set_platform(payload) if method == "PUT" else STATE.platform()
        if parts == ["stack-failures"]:
            if method == "PUT":
                return 200, STATE.add_failure(payload)
            return 200, STATE.clear_failures() if method == "DELETE" else STATE.failure_report()
    except (ValueError, KeyError) as err:
        return 400, {"message": str(err)}
    except LookupError as err:
        return 404, {"message": str(err)}
    return 404, {"message": f"unknown admin call {method} {path}"}


def with_admin(app):
    """WSGI middleware: the admin API in front of moto's application."""
    def application(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path != ADMIN_PATH and not path.startswith(ADMIN_PATH + "/"):
            return app(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        status, payload = admin(environ["REQUEST_METHOD"], path[len(ADMIN_PATH):], body)
        data = json.dumps(payload).encode()
        start_response(f"{status} {'OK' if status == 200 else 'Error'}",
                       [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
        return [data]
    return application


def main(argv=None) -> None:
    """``moto.server``'s command line, serving moto behind :func:`with_admin`."""
    from moto import server

    install()
    dispatcher = server.DomainDispatcherApplication

    class Dispatcher(dispatcher):  # moto.server.main builds its app from this name
        def __call__(self, environ, start_response):
            return with_admin(super().__call__)(environ, start_response)

    server.DomainDispatcherApplication = Dispatcher
    server.main(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
