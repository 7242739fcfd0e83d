"""eksctl CONTRACT DOUBLE -- a stand-in for the real eksctl, for tests only. It is NOT eksctl.

Superseded: the platform now builds and runs the real eksctl v0.225.0 (``gobuild``, ``moto_eks``;
tests/integration/test_real_eksctl.py drives create, re-run, scale, node group failure, failed delete,
delete and a failed control plane with it). What still runs this double, through
``helpers.start_empty_platform``: tests/integration/test_eks_cluster.py and test_faults.py's half-way
create. It models an older eksctl: its placeholder stacks carry no termination protection, which eksctl
0.225 sets (``pkg/cfn/manager/api.go``:125), so the clean-up advice asserted through it differs from what the
real eksctl leads to. Do not extend it; move what those tests assert onto the real eksctl.

It was written when the Go module proxy refused github.com/eksctl-io/eksctl; the collection's eksctl
modules were tested against it, put first on PATH through the executable shim ``eksctl_shim/eksctl``.
It implements the subset of
the eksctl CLI the ``eksctl_cluster`` module calls, prints eksctl's log line forms (taken from the
real outputs in tests/recordings/eksctl, see SOURCES.md there), exits like eksctl (0, or 1 with
``Error: ...`` on stderr), and acts on the local platform:

* AWS side, through ``AWS_ENDPOINT_URL`` (the sandbox's EKS proxy in front of moto) as eksctl
  would: eksctl's CloudFormation stacks (placeholders: moto cannot run eksctl's templates), and
  the cluster and its managed node groups, created by ``aws.seed_eks`` (IAM roles, VPC, subnets,
  security groups, EKS cluster and node groups, the cluster's endpoint pointed at kwok);
* Kubernetes side, through the sandbox named by ``EKSCTL_DOUBLE_SANDBOX`` (``sandbox.load``):
  one kwok Node per desired node (``eks_objects.node``: EKS labels, the node group's taints),
  created and deleted as node groups are created, scaled and deleted;
* ``utils write-kubeconfig`` writes a kubeconfig for the cluster from DescribeCluster (endpoint,
  CA) with the sandbox's client credentials (real eksctl writes an ``aws eks get-token`` exec
  user, which cannot authenticate to kwok).

Subset: ``version``, ``create cluster -f``, ``create nodegroup -f [--include]``,
``get cluster [--name] -o json``, ``get nodegroup --cluster -o json``, ``scale nodegroup``,
``delete cluster --wait``, ``utils write-kubeconfig``, ``upgrade cluster`` (refused: moto has no
UpdateClusterVersion). Failure injection: ``EKSCTL_DOUBLE_FAIL=create-nodegroup[:<name>]`` makes
the node group stack fail during ``create cluster``/``create nodegroup`` the way eksctl reports it
(control plane created, node group stack left behind without a node group, exit 1).

Not verified against real eksctl: the exact wording of modern (>= 0.200) success lines, the JSON
shapes of ``get ... -o json``, and the stack status after a failure (moto keeps a failed stack in
CREATE_IN_PROGRESS where AWS would show ROLLBACK_COMPLETE).
"""
import argparse
import json
import os
import sys
from datetime import datetime
from pathlib import Path

import yaml

from . import aws, cluster, eks_objects, kube, sandbox

DOUBLE_VERSION = aws.EKSCTL_VERSION
BANNER = "eksctl contract double (tests/platform/eks_sandbox/eksctl_double.py), NOT the real eksctl"
PLACEHOLDER_TEMPLATE = json.dumps({
    "AWSTemplateFormatVersion": "2010-09-09",
    "Description": "placeholder of the eksctl contract double",
    "Resources": {"Placeholder": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
})
FAILING_TEMPLATE = json.dumps({
    "AWSTemplateFormatVersion": "2010-09-09",
    "Resources": {"ManagedNodeGroup": {"Type": "AWS::EC2::Subnet",
                                       "Properties": {"VpcId": "vpc-0eksctldoublefail", "CidrBlock": "10.0.0.0/24"}}},
})


class EksctlFailure(Exception):
    """Ends the command like eksctl does: ``Error: <msg>`` on stderr, exit code 1."""


def log(icon: str, message: str) -> None:
    stamp = datetime.now().strftime("%Y-%m-%d %H:%M:%S")
    print(f"{stamp} [{icon}]  {message}", flush=True)


def info(message):
    log("ℹ", message)


def success(message):
    log("✔", message)


def warning(message):
    log("!", message)


def error(message):
    log("✖", message)


# ---------------------------------------------------------------------------------------------

class Platform:
    """The AWS endpoint from the environment and the sandbox from EKSCTL_DOUBLE_SANDBOX."""

    def __init__(self, region: str):
        import boto3

        self.endpoint = os.environ.get("AWS_ENDPOINT_URL")
        if not self.endpoint:
            raise EksctlFailure("the eksctl double needs AWS_ENDPOINT_URL (the sandbox's EKS proxy)")
        self.region = region
        session = boto3.session.Session(region_name=region)
        self.eks = session.client("eks", endpoint_url=self.endpoint)
        self.cfn = session.client("cloudformation", endpoint_url=self.endpoint)
        self.box = None
        name = os.environ.get("EKSCTL_DOUBLE_SANDBOX")
        if name:
            self.box = sandbox.load(name)
            if self.box is None:
                raise EksctlFailure(f"EKSCTL_DOUBLE_SANDBOX={name}: no such sandbox is running")

    # AWS
    def describe(self, name):
        try:
            return self.eks.describe_cluster(name=name)["cluster"]
        except self.eks.exceptions.ResourceNotFoundException:
            return None

    def nodegroups(self, name):
        names = self.eks.list_nodegroups(clusterName=name)["nodegroups"]
        return {n: self.eks.describe_nodegroup(clusterName=name, nodegroupName=n)["nodegroup"] for n in names}

    def stack_exists(self, stack):
        try:
            stacks = self.cfn.describe_stacks(StackName=stack)["Stacks"]
        except self.cfn.exceptions.ClientError:
            return False
        return any(s["StackStatus"] != "DELETE_COMPLETE" for s in stacks)

    def create_stack(self, stack, cluster_name, fail=False):
        tags = [{"Key": "alpha.eksctl.io/cluster-name", "Value": cluster_name},
                {"Key": "alpha.eksctl.io/eksctl-version", "Value": DOUBLE_VERSION}]
        try:
            self.cfn.create_stack(StackName=stack, TemplateBody=FAILING_TEMPLATE if fail else PLACEHOLDER_TEMPLATE,
                                  Tags=tags, Capabilities=["CAPABILITY_IAM"])
        except self.cfn.exceptions.ClientError as err:
            if not fail:
                raise EksctlFailure(f"creating CloudFormation stack \"{stack}\": {err}") from err

    def delete_stack(self, stack):
        if self.stack_exists(stack):
            self.cfn.delete_stack(StackName=stack)

    # Kubernetes
    def api(self):
        return kube.dynamic_client(self.box.kubeconfig) if self.box else None

    def node_names(self, cluster_name, nodegroup=None):
        if not self.box:
            return []
        selector = f"alpha.eksctl.io/cluster-name={cluster_name}"
        if nodegroup:
            selector += f",eks.amazonaws.com/nodegroup={nodegroup}"
        core = kube.core_v1(self.box.kubeconfig)
        return sorted(n.metadata.name for n in core.list_node(label_selector=selector).items)

    def set_node_count(self, cluster_name, ng, count, version):
        """Create or delete kwok Nodes of node group ``ng`` (an EKS DescribeNodegroup answer) to reach ``count``."""
        if not self.box:
            return
        name = ng["nodegroupName"]
        core = kube.core_v1(self.box.kubeconfig)
        current = self.node_names(cluster_name, name)
        if len(current) > count:
            for node in current[count:]:
                core.delete_node(node)
            return
        taken = {n.metadata.name for n in core.list_node().items}
        api = self.api()
        index, added = 0, 0
        kubelet = kubelet_version(version)
        taints = [{"key": t["key"], **({"value": t["value"]} if t.get("value") else {}),
                   "effect": {"NO_SCHEDULE": "NoSchedule", "NO_EXECUTE": "NoExecute",
                              "PREFER_NO_SCHEDULE": "PreferNoSchedule"}.get(t["effect"], t["effect"])}
                  for t in ng.get("taints") or []]
        while added < count - len(current):
            if eks_objects.node_name(index, self.region) not in taken:
                node = eks_objects.node(index, cluster=cluster_name, region=self.region, nodegroup=name,
                                        instance_type=(ng.get("instanceTypes") or ["m5.large"])[0],
                                        kubelet_version=kubelet, taints=taints,
                                        capacity_type=ng.get("capacityType", "ON_DEMAND"))
                node["metadata"]["labels"].update(ng.get("labels") or {})
                kube.apply(api, node)
                added += 1
            index += 1

    def delete_nodes(self, cluster_name):
        if not self.box:
            return
        core = kube.core_v1(self.box.kubeconfig)
        for node in self.node_names(cluster_name):
            core.delete_node(node)


def kubelet_version(version):
    patch = aws.node_release_version(version).split("-", maxsplit=1)[0]
    return f"v{patch}-eks-{patch.replace('.', '')[:4]}a1b2"


def load_config(path):
    try:
        config = yaml.safe_load(Path(path).read_text())
    except OSError as err:
        raise EksctlFailure(f"reading config file \"{path}\": {err}") from err
    if not isinstance(config, dict) or config.get("kind") != "ClusterConfig":
        raise EksctlFailure(f"loading config file \"{path}\": kind must be ClusterConfig")
    metadata = config.get("metadata") or {}
    if not metadata.get("name"):
        raise EksctlFailure("metadata.name must be set")
    return config


def region_of(args, config=None):
    region = getattr(args, "region", None) or ((config or {}).get("metadata") or {}).get("region") \
        or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if not region:
        raise EksctlFailure("--region=input is not a valid region; set a region")
    return region


def failure_target(operation):
    """``EKSCTL_DOUBLE_FAIL=create-nodegroup[:name]`` -> name ('' = any), None when not injected."""
    spec = os.environ.get("EKSCTL_DOUBLE_FAIL", "")
    for item in filter(None, (s.strip() for s in spec.split(","))):
        op, _sep, target = item.partition(":")
        if op == operation:
            return target
    return None


# ---------------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------------

def _nodegroup_stack(cluster_name, ng_name):
    return f"eksctl-{cluster_name}-nodegroup-{ng_name}"


def _create_nodegroups(platform, config, items, version):
    name = config["metadata"]["name"]
    fail = failure_target("create-nodegroup")
    tags = dict(config["metadata"].get("tags") or {})
    for item in items:
        stack = _nodegroup_stack(name, item["name"])
        info(f"building managed nodegroup stack \"{stack}\"")
        info(f"deploying stack \"{stack}\"")
        if fail is not None and fail in ("", item["name"]):
            platform.create_stack(stack, name, fail=True)
            error(f"unexpected status \"ROLLBACK_IN_PROGRESS\" while waiting for CloudFormation stack \"{stack}\"")
            info("fetching stack events in attempt to troubleshoot the root cause of the failure")
            error(f"AWS::EKS::Nodegroup/ManagedNodeGroup: CREATE_FAILED – \"Nodegroup {item['name']} failed to "
                  "stabilize: [{Code: NodeCreationFailure,Message: Instances failed to join the kubernetes "
                  "cluster,ResourceIds: [i-0eksctldouble0001]}]\" (injected by EKSCTL_DOUBLE_FAIL)")
            return stack
        platform.create_stack(stack, name)
        aws.seed_eks(platform.endpoint, platform.region, name, version, [item], tags=tags, managed=False)
        ng = platform.eks.describe_nodegroup(clusterName=name, nodegroupName=item["name"])["nodegroup"]
        platform.set_node_count(name, ng, ng["scalingConfig"]["desiredSize"], version)
    return None


def cmd_create_cluster(args):
    config = load_config(args.config_file)
    metadata = config["metadata"]
    name = metadata["name"]
    region = region_of(args, config)
    platform = Platform(region)
    version = str(metadata.get("version") or aws.DEFAULT_EKS_VERSION)
    if version not in {row.version for row in aws.EKS_VERSIONS}:
        raise EksctlFailure(f"invalid version, supported values: {', '.join(r.version for r in aws.EKS_VERSIONS)}")
    info(f"eksctl version {DOUBLE_VERSION}")
    info(f"using region {region}")
    if platform.describe(name) is not None or platform.stack_exists(f"eksctl-{name}-cluster"):
        raise EksctlFailure(f"creating CloudFormation stack \"eksctl-{name}-cluster\": operation error CloudFormation: "
                            f"CreateStack, https response error StatusCode: 400, AlreadyExistsException: Stack "
                            f"[eksctl-{name}-cluster] already exists")
    groups = config.get("managedNodeGroups") or []
    info(f"using Kubernetes version {version}")
    info(f"creating EKS cluster \"{name}\" in \"{region}\" region with managed nodes")
    info("will create 2 separate CloudFormation stacks for cluster itself and the initial managed nodegroup")
    info(f"if you encounter any issues, check CloudFormation console or try 'eksctl utils describe-stacks "
         f"--region={region} --cluster={name}'")
    info(f"building cluster stack \"eksctl-{name}-cluster\"")
    info(f"deploying stack \"eksctl-{name}-cluster\"")
    platform.create_stack(f"eksctl-{name}-cluster", name)
    tags = dict(metadata.get("tags") or {})
    box = platform.box
    aws.seed_eks(platform.endpoint, region, name, version, [], api_server_url=box.api_server if box else None,
                 tags=tags, managed=False,
                 ca_data=cluster.kubeconfig_ca_data(Path(box.kubeconfig)) if box else None)
    failed = _create_nodegroups(platform, config, groups, version)
    if failed:
        info("1 error(s) occurred and cluster hasn't been created properly, you may wish to check CloudFormation "
             "console")
        info(f"to cleanup resources, run 'eksctl delete cluster --region={region} --name={name}'")
        error(f"waiting for CloudFormation stack \"{failed}\": ResourceNotReady: failed waiting for successful "
              "resource state")
        raise EksctlFailure(f"failed to create cluster \"{name}\"")
    if groups:
        success(f"created {len(groups)} managed nodegroup(s) in cluster \"{name}\"")
    if args.write_kubeconfig:
        warning("the eksctl double does not write ~/.kube/config; use 'eksctl utils write-kubeconfig --kubeconfig'")
    success(f"all EKS cluster resources for \"{name}\" have been created")
    success(f"EKS cluster \"{name}\" in \"{region}\" region is ready")
    return 0


def cmd_create_nodegroup(args):
    config = load_config(args.config_file)
    name = config["metadata"]["name"]
    region = region_of(args, config)
    platform = Platform(region)
    info(f"eksctl version {DOUBLE_VERSION}")
    info(f"using region {region}")
    current = platform.describe(name)
    if current is None:
        raise EksctlFailure(f"getting existing configuration for cluster \"{name}\": operation error EKS: "
                            f"DescribeCluster, ResourceNotFoundException: No cluster found for name: {name}.")
    existing = set(platform.nodegroups(name))
    include = set(filter(None, (args.include or "").split(",")))
    groups = [ng for ng in config.get("managedNodeGroups") or []
              if ng["name"] not in existing and (not include or ng["name"] in include)]
    for ng in groups:
        info(f"nodegroup \"{ng['name']}\" present in the given config, but missing in the cluster")
    if existing:
        info(f"{len(existing)} existing nodegroup(s) ({','.join(sorted(existing))}) will be excluded")
    for ng in groups:
        stack = _nodegroup_stack(name, ng["name"])
        if platform.stack_exists(stack):
            raise EksctlFailure(f"creating CloudFormation stack \"{stack}\": operation error CloudFormation: "
                                f"CreateStack, AlreadyExistsException: Stack [{stack}] already exists")
    info(f"{len(groups)} nodegroup(s) ({','.join(n['name'] for n in groups)}) was included (based on the "
         "include/exclude rules)")
    info(f"will create a CloudFormation stack for each of {len(groups)} managed nodegroups in cluster \"{name}\"")
    failed = _create_nodegroups(platform, config, groups, current["version"])
    if failed:
        raise EksctlFailure(f"failed to create nodegroups for cluster \"{name}\"")
    success(f"created {len(groups)} managed nodegroup(s) in cluster \"{name}\"")
    return 0


def _pascal(value):
    """An EKS answer in the Go SDK's JSON spelling (PascalCase keys; tag and label keys kept as they are)."""
    if isinstance(value, dict):
        return {k[:1].upper() + k[1:]: (dict(v) if k in ("tags", "labels") else _pascal(v))
                for k, v in value.items() if k != "ResponseMetadata"}
    if isinstance(value, list):
        return [_pascal(v) for v in value]
    return value.isoformat() if isinstance(value, datetime) else value


def cmd_get_cluster(args):
    platform = Platform(region_of(args))
    names = [args.name] if args.name else platform.eks.list_clusters()["clusters"]
    clusters = []
    for name in names:
        found = platform.describe(name)
        if found is None:
            raise EksctlFailure(f"unable to describe control plane \"{name}\": operation error EKS: DescribeCluster, "
                                f"ResourceNotFoundException: No cluster found for name: {name}.")
        clusters.append(_pascal(found))
    print(json.dumps(clusters, indent=4))
    return 0


def cmd_get_nodegroup(args):
    platform = Platform(region_of(args))
    if platform.describe(args.cluster) is None:
        raise EksctlFailure(f"No cluster found for name: {args.cluster}")
    rows = []
    for name, ng in sorted(platform.nodegroups(args.cluster).items()):
        if args.name and name != args.name:
            continue
        scaling = ng["scalingConfig"]
        rows.append({"StackName": _nodegroup_stack(args.cluster, name), "Cluster": args.cluster, "Name": name,
                     "Status": ng["status"], "MaxSize": scaling["maxSize"], "MinSize": scaling["minSize"],
                     "DesiredCapacity": scaling["desiredSize"], "InstanceType": ",".join(ng.get("instanceTypes", [])),
                     "ImageID": ng.get("amiType"), "CreationTime": _pascal(ng.get("createdAt")),
                     "NodeInstanceRoleARN": ng.get("nodeRole"), "Version": ng.get("version"),
                     "NodeGroupType": "managed"})
    if args.name and not rows:
        raise EksctlFailure(f"nodegroup with name {args.name} not found")
    print(json.dumps(rows, indent=4))
    return 0


def cmd_scale_nodegroup(args):
    platform = Platform(region_of(args))
    current = platform.describe(args.cluster)
    if current is None:
        raise EksctlFailure(f"No cluster found for name: {args.cluster}")
    groups = platform.nodegroups(args.cluster)
    if args.name not in groups:
        raise EksctlFailure(f"nodegroup with name {args.name} not found")
    scaling = dict(groups[args.name]["scalingConfig"])
    for key, value in (("desiredSize", args.nodes), ("minSize", args.nodes_min), ("maxSize", args.nodes_max)):
        if value is not None:
            scaling[key] = value
    if not scaling["minSize"] <= scaling["desiredSize"] <= scaling["maxSize"]:
        raise EksctlFailure("the number of nodes must be greater than minimum nodes and less than maximum nodes")
    info(f"scaling nodegroup \"{args.name}\" in cluster {args.cluster}")
    platform.eks.update_nodegroup_config(clusterName=args.cluster, nodegroupName=args.name, scalingConfig=scaling)
    ng = platform.eks.describe_nodegroup(clusterName=args.cluster, nodegroupName=args.name)["nodegroup"]
    platform.set_node_count(args.cluster, ng, scaling["desiredSize"], current["version"])
    info("nodegroup successfully scaled")
    return 0


def cmd_delete_cluster(args):
    region = region_of(args)
    platform = Platform(region)
    name = args.name
    info(f"eksctl version {DOUBLE_VERSION}")
    info(f"using region {region}")
    info(f"deleting EKS cluster \"{name}\"")
    current = platform.describe(name)
    stacks = [s["StackName"] for s in platform.cfn.describe_stacks()["Stacks"]
              if s["StackName"].startswith(f"eksctl-{name}-") and s["StackStatus"] != "DELETE_COMPLETE"]
    if current is None and not stacks:
        raise EksctlFailure(f"unable to describe cluster control plane: operation error EKS: DescribeCluster, "
                            f"ResourceNotFoundException: No cluster found for name: {name}.")
    info("deleted 0 Fargate profile(s)")
    info("cleaning up AWS load balancers created by Kubernetes objects of Kind Service or Ingress")
    if current is not None:
        for ng in platform.nodegroups(name):
            info(f"will delete stack \"{_nodegroup_stack(name, ng)}\"")
            platform.eks.delete_nodegroup(clusterName=name, nodegroupName=ng)
            info(f"waiting for stack \"{_nodegroup_stack(name, ng)}\" to get deleted")
        platform.eks.delete_cluster(name=name)
    for stack in sorted(stacks, key=lambda s: s.endswith("-cluster")):
        platform.delete_stack(stack)
    platform.delete_nodes(name)
    info(f"will delete stack \"eksctl-{name}-cluster\"")
    if args.wait:
        info(f"waiting for stack \"eksctl-{name}-cluster\" to get deleted")
    success("all cluster resources were deleted")
    return 0


def cmd_write_kubeconfig(args):
    platform = Platform(region_of(args))
    found = platform.describe(args.cluster)
    if found is None:
        raise EksctlFailure(f"unable to describe cluster control plane: operation error EKS: DescribeCluster, "
                            f"ResourceNotFoundException: No cluster found for name: {args.cluster}.")
    if platform.box is None:
        raise EksctlFailure("the eksctl double needs EKSCTL_DOUBLE_SANDBOX to write a kubeconfig")
    source = yaml.safe_load(Path(platform.box.kubeconfig).read_text())
    user = source["users"][0]["user"]
    full = f"{args.cluster}.{platform.region}.eksctl.io"
    identity = f"eksctl-double@{full}"
    path = Path(args.kubeconfig or os.environ.get("KUBECONFIG") or Path.home() / ".kube" / "config")
    existing = yaml.safe_load(path.read_text()) if path.exists() and path.stat().st_size else None
    config = existing or {"apiVersion": "v1", "kind": "Config", "preferences": {}}

    def upsert(section, entry):
        items = [i for i in config.get(section) or [] if i.get("name") != entry["name"]]
        config[section] = items + [entry]

    upsert("clusters", {"name": full, "cluster": {"server": found["endpoint"],
                                                  "certificate-authority-data": found["certificateAuthority"]["data"]}})
    upsert("users", {"name": identity, "user": user})
    upsert("contexts", {"name": identity, "context": {"cluster": full, "user": identity}})
    config["current-context"] = identity
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, default_flow_style=False, sort_keys=True))
    path.chmod(0o600)
    success(f"saved kubeconfig as \"{path}\"")
    return 0


def cmd_upgrade_cluster(args):
    raise EksctlFailure("the eksctl contract double cannot upgrade clusters: moto has no UpdateClusterVersion")


def cmd_version(_args):
    print(f"{DOUBLE_VERSION} ({BANNER})")
    return 0


def parser():
    top = argparse.ArgumentParser(prog="eksctl", description=BANNER + ". " + __doc__.split("\n\n")[1])
    commands = top.add_subparsers(dest="verb", required=True)
    commands.add_parser("version", help="print the version (of the double)").set_defaults(fn=cmd_version)

    def with_common(p):
        p.add_argument("--region", "-r")
        p.add_argument("--config-file", "-f")
        p.add_argument("--output", "-o", default="table")
        p.add_argument("--timeout", default="40m")
        p.add_argument("--verbose", "-v", default="3")
        return p

    create = commands.add_parser("create").add_subparsers(dest="noun", required=True)
    create_cluster = with_common(create.add_parser("cluster"))
    create_cluster.add_argument("--write-kubeconfig", type=lambda v: v.lower() == "true", default=True,
                                nargs="?", const=True)
    create_cluster.set_defaults(fn=cmd_create_cluster)
    create_ng = with_common(create.add_parser("nodegroup"))
    create_ng.add_argument("--include")
    create_ng.set_defaults(fn=cmd_create_nodegroup)

    get = commands.add_parser("get").add_subparsers(dest="noun", required=True)
    get_cluster = with_common(get.add_parser("cluster"))
    get_cluster.add_argument("--name", "-n")
    get_cluster.set_defaults(fn=cmd_get_cluster)
    get_ng = with_common(get.add_parser("nodegroup"))
    get_ng.add_argument("--cluster", required=True)
    get_ng.add_argument("--name", "-n")
    get_ng.set_defaults(fn=cmd_get_nodegroup)

    scale = commands.add_parser("scale").add_subparsers(dest="noun", required=True)
    scale_ng = with_common(scale.add_parser("nodegroup"))
    scale_ng.add_argument("--cluster", required=True)
    scale_ng.add_argument("--name", "-n", required=True)
    scale_ng.add_argument("--nodes", "-N", type=int)
    scale_ng.add_argument("--nodes-min", "-m", type=int)
    scale_ng.add_argument("--nodes-max", "-M", type=int)
    scale_ng.set_defaults(fn=cmd_scale_nodegroup)

    delete = commands.add_parser("delete").add_subparsers(dest="noun", required=True)
    delete_cluster = with_common(delete.add_parser("cluster"))
    delete_cluster.add_argument("--name", "-n", required=True)
    delete_cluster.add_argument("--wait", "-w", action="store_true")
    delete_cluster.set_defaults(fn=cmd_delete_cluster)

    utils = commands.add_parser("utils").add_subparsers(dest="noun", required=True)
    write = with_common(utils.add_parser("write-kubeconfig"))
    write.add_argument("--cluster", "-c", required=True)
    write.add_argument("--kubeconfig")
    write.set_defaults(fn=cmd_write_kubeconfig)

    upgrade = commands.add_parser("upgrade").add_subparsers(dest="noun", required=True)
    upgrade_cluster = with_common(upgrade.add_parser("cluster"))
    upgrade_cluster.add_argument("--name", "-n", required=True)
    upgrade_cluster.add_argument("--version")
    upgrade_cluster.add_argument("--approve", action="store_true")
    upgrade_cluster.set_defaults(fn=cmd_upgrade_cluster)
    return top


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.fn(args)
    except EksctlFailure as err:
        print(f"Error: {err}", file=sys.stderr, flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
