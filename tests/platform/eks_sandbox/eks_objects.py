"""Kubernetes objects that make a kwok cluster look like a fresh EKS cluster. Pure functions.

A fresh EKS cluster made by eksctl has managed nodes carrying EKS/eksctl labels, and kube-system
populated with the default add-ons: the ``aws-node`` DaemonSet (AWS VPC CNI), ``kube-proxy`` and
``coredns``. The image tags below are real EKS add-on tags; the account in the registry host is
the one EKS uses in us-east-1 (it differs per region in real life).
"""
import hashlib
import ipaddress

EKS_REGISTRY = "602401143452.dkr.ecr.{region}.amazonaws.com"
VPC_CNI_TAG = "v1.19.2-eksbuild.1"
KUBE_PROXY_TAG = "v1.33.0-minimal-eksbuild.2"
COREDNS_TAG = "v1.11.4-eksbuild.14"
# The metrics-server EKS add-on (a default add-on of eksctl >= 0.209); the build suffix is a best estimate.
METRICS_SERVER_TAG = "v0.8.0-eksbuild.1"
AGENT_NOT_READY_TAINT = {"key": "node.cilium.io/agent-not-ready", "value": "true", "effect": "NoExecute"}
NODE_CIDR = ipaddress.ip_network("192.168.0.0/19")
KERNEL_VERSION = "6.12.40-63.114.amzn2023.x86_64"
OS_IMAGE = "Amazon Linux 2023.8.20250808"


def node_name(index, region):
    """EKS node names are the EC2 private DNS names: ip-192-168-x-y.<region>.compute.internal."""
    return private_dns_name(node_address(index), region)


def node_address(index):
    return NODE_CIDR.network_address + 11 + index * 37


def zones(region):
    return [f"{region}{suffix}" for suffix in "abc"]


def private_dns_name(address, region):
    """EC2's private DNS name of an address: ip-192-168-0-11.ec2.internal (us-east-1), else
    ip-...<region>.compute.internal; EKS nodes are named so."""
    domain = "ec2.internal" if region == "us-east-1" else f"{region}.compute.internal"
    return "ip-" + str(address).replace(".", "-") + "." + domain


def node(index, *, cluster, region, nodegroup, instance_type, kubelet_version,
         capacity_type="ON_DEMAND", taints=(), kernel_version=KERNEL_VERSION):
    """A Node as an EKS managed node group registers it, marked for kwok to manage (no EC2 instance behind
    it: see ec2_nodes.launch_instance_nodes for nodes backed by moto instances)."""
    name = node_name(index, region)
    return instance_node(name=name, address=node_address(index), zone=zones(region)[index % 3],
                         instance_id="i-0" + hashlib.sha256(name.encode()).hexdigest()[:16], cluster=cluster,
                         region=region, nodegroup=nodegroup, instance_type=instance_type,
                         kubelet_version=kubelet_version, capacity_type=capacity_type, taints=taints,
                         kernel_version=kernel_version)


def instance_node(*, name, address, zone, instance_id, cluster, region, nodegroup, instance_type, kubelet_version,
                  capacity_type="ON_DEMAND", taints=(), kernel_version=KERNEL_VERSION, labels=None, annotations=None):
    """The Node an EKS managed node group's instance registers: its private DNS name, InternalIP and
    ``providerID: aws:///<zone>/<instance id>`` (what Cilium's ENI IPAM and the cloud provider read).
    ``labels``: the node group's own labels, added to those EKS sets."""
    extra_labels = labels
    labels = {
        "alpha.eksctl.io/cluster-name": cluster,
        "alpha.eksctl.io/nodegroup-name": nodegroup,
        "beta.kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/instance-type": instance_type,
        "beta.kubernetes.io/os": "linux",
        "eks.amazonaws.com/capacityType": capacity_type,
        "eks.amazonaws.com/nodegroup": nodegroup,
        "eks.amazonaws.com/nodegroup-image": "ami-0f9c4b3c0d1e2a3b4",
        "failure-domain.beta.kubernetes.io/region": region,
        "failure-domain.beta.kubernetes.io/zone": zone,
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "node.kubernetes.io/instance-type": instance_type,
        "topology.k8s.aws/zone-id": zone.replace(region, region[:2] + region.split("-")[-1][0] + "-az"),
        "topology.kubernetes.io/region": region,
        "topology.kubernetes.io/zone": zone,
        "type": "kwok",
        **(extra_labels or {}),
    }
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": labels,
            "annotations": {
                "kwok.x-k8s.io/node": "fake",
                "node.alpha.kubernetes.io/ttl": "0",
                "alpha.kubernetes.io/provided-node-ip": str(address),
                **(annotations or {}),
            },
        },
        "spec": {
            "providerID": f"aws:///{zone}/{instance_id}",
            "taints": [dict(t) for t in taints],
        },
        "status": {
            "allocatable": {"cpu": "1930m", "ephemeral-storage": "76224326324", "memory": "3388364Ki",
                            "pods": "17"},
            "capacity": {"cpu": "2", "ephemeral-storage": "83873772Ki", "memory": "3943372Ki", "pods": "17"},
            "addresses": [
                {"type": "InternalIP", "address": str(address)},
                {"type": "InternalDNS", "address": name},
                {"type": "Hostname", "address": name},
            ],
            "nodeInfo": {
                "architecture": "amd64",
                "operatingSystem": "linux",
                "osImage": OS_IMAGE,
                "kernelVersion": kernel_version,
                "containerRuntimeVersion": "containerd://1.7.27",
                "kubeletVersion": kubelet_version,
                "kubeProxyVersion": "",
                "machineID": hashlib.md5(name.encode()).hexdigest(),  # noqa: S324 - an identifier, not security
                "systemUUID": "ec2" + hashlib.md5(name.encode()).hexdigest()[3:],  # noqa: S324
                "bootID": hashlib.sha1(name.encode()).hexdigest(),  # noqa: S324
            },
        },
    }


def _node_affinity():
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{
        "matchExpressions": [
            {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]},
            {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64", "arm64"]},
            {"key": "eks.amazonaws.com/compute-type", "operator": "NotIn",
             "values": ["fargate", "hybrid", "auto"]},
        ]}]}}}


def _service_account(name, labels):
    return {"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": name, "namespace": "kube-system", "labels": labels}}


def aws_node(region, vpc_cni_tag=VPC_CNI_TAG):
    """The AWS VPC CNI DaemonSet as the EKS ``vpc-cni`` default add-on installs it."""
    registry = EKS_REGISTRY.format(region=region)
    labels = {"app.kubernetes.io/instance": "aws-vpc-cni", "app.kubernetes.io/name": "aws-node",
              "k8s-app": "aws-node", "app.kubernetes.io/version": vpc_cni_tag.split("-")[0]}
    env = [
        {"name": "ADDITIONAL_ENI_TAGS", "value": "{}"},
        {"name": "AWS_VPC_CNI_NODE_PORT_SUPPORT", "value": "true"},
        {"name": "AWS_VPC_ENI_MTU", "value": "9001"},
        {"name": "AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG", "value": "false"},
        {"name": "AWS_VPC_K8S_CNI_EXTERNALSNAT", "value": "false"},
        {"name": "AWS_VPC_K8S_CNI_LOGLEVEL", "value": "DEBUG"},
        {"name": "ENABLE_PREFIX_DELEGATION", "value": "false"},
        {"name": "WARM_ENI_TARGET", "value": "1"},
        {"name": "MY_NODE_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "spec.nodeName"}}},
    ]
    daemonset = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "aws-node", "namespace": "kube-system", "labels": labels},
        "spec": {
            "selector": {"matchLabels": {"k8s-app": "aws-node"}},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "10%"}},
            "template": {
                "metadata": {"labels": {"app.kubernetes.io/instance": "aws-vpc-cni",
                                        "app.kubernetes.io/name": "aws-node", "k8s-app": "aws-node"}},
                "spec": {
                    "priorityClassName": "system-node-critical",
                    "serviceAccountName": "aws-node",
                    "hostNetwork": True,
                    "terminationGracePeriodSeconds": 10,
                    "tolerations": [{"operator": "Exists"}],
                    "affinity": _node_affinity(),
                    "initContainers": [{
                        "name": "aws-vpc-cni-init",
                        "image": f"{registry}/amazon-k8s-cni-init:{vpc_cni_tag}",
                        "env": [{"name": "DISABLE_TCP_EARLY_DEMUX", "value": "false"},
                                {"name": "ENABLE_IPv6", "value": "false"}],
                        "securityContext": {"privileged": True},
                    }],
                    "containers": [
                        {
                            "name": "aws-node",
                            "image": f"{registry}/amazon-k8s-cni:{vpc_cni_tag}",
                            "ports": [{"containerPort": 61678, "name": "metrics"}],
                            "env": env,
                            "resources": {"requests": {"cpu": "25m"}},
                            "securityContext": {"capabilities": {"add": ["NET_ADMIN", "NET_RAW"]}},
                        },
                        {
                            "name": "aws-eks-nodeagent",
                            "image": f"{registry}/amazon/aws-network-policy-agent:v1.1.6-eksbuild.1",
                            "args": ["--enable-ipv6=false", "--enable-network-policy=false",
                                     "--enable-cloudwatch-logs=false", "--metrics-bind-addr=:8162",
                                     "--health-probe-bind-addr=:8163", "--conntrack-cache-cleanup-period=300"],
                            "resources": {"requests": {"cpu": "25m"}},
                            "securityContext": {"privileged": True},
                        },
                    ],
                },
            },
        },
    }
    return [_service_account("aws-node", labels), daemonset]


def kube_proxy(region, tag=KUBE_PROXY_TAG):
    registry = EKS_REGISTRY.format(region=region)
    labels = {"eks.amazonaws.com/component": "kube-proxy", "k8s-app": "kube-proxy"}
    return [
        _service_account("kube-proxy", labels),
        {
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": {"name": "kube-proxy", "namespace": "kube-system", "labels": labels},
            "spec": {
                "selector": {"matchLabels": {"k8s-app": "kube-proxy"}},
                "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "10%"}},
                "template": {
                    "metadata": {"labels": {"k8s-app": "kube-proxy"}},
                    "spec": {
                        "priorityClassName": "system-node-critical",
                        "serviceAccountName": "kube-proxy",
                        "hostNetwork": True,
                        "tolerations": [{"operator": "Exists"}],
                        "affinity": _node_affinity(),
                        "containers": [{
                            "name": "kube-proxy",
                            "image": f"{registry}/eks/kube-proxy:{tag}",
                            "command": ["kube-proxy", "--v=2", "--config=/var/lib/kube-proxy-config/config",
                                        "--hostname-override=$(NODE_NAME)"],
                            "env": [{"name": "NODE_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "spec.nodeName"}}}],
                            "resources": {"requests": {"cpu": "100m"}},
                            "securityContext": {"privileged": True},
                        }],
                    },
                },
            },
        },
    ]


def coredns(region, tag=COREDNS_TAG, cluster_dns="10.100.0.10"):
    """CoreDNS: not host-network, so its pods are the ones Cilium must take over (and restart)."""
    registry = EKS_REGISTRY.format(region=region)
    labels = {"eks.amazonaws.com/component": "coredns", "k8s-app": "kube-dns"}
    return [
        _service_account("coredns", labels),
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "coredns", "namespace": "kube-system", "labels": labels},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"eks.amazonaws.com/component": "coredns", "k8s-app": "kube-dns"}},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
                "template": {
                    "metadata": {"labels": {"eks.amazonaws.com/component": "coredns", "k8s-app": "kube-dns"}},
                    "spec": {
                        "priorityClassName": "system-cluster-critical",
                        "serviceAccountName": "coredns",
                        "tolerations": [{"key": "CriticalAddonsOnly", "operator": "Exists"},
                                        {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}],
                        "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{
                            "weight": 100, "podAffinityTerm": {
                                "labelSelector": {"matchExpressions": [
                                    {"key": "k8s-app", "operator": "In", "values": ["kube-dns"]}]},
                                "topologyKey": "kubernetes.io/hostname"}}]}},
                        "containers": [{
                            "name": "coredns",
                            "image": f"{registry}/eks/coredns:{tag}",
                            "args": ["-conf", "/etc/coredns/Corefile"],
                            "ports": [{"containerPort": 53, "name": "dns", "protocol": "UDP"},
                                      {"containerPort": 53, "name": "dns-tcp", "protocol": "TCP"}],
                            "resources": {"limits": {"memory": "170Mi"}, "requests": {"cpu": "100m", "memory": "70Mi"}},
                        }],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "kube-dns", "namespace": "kube-system", "labels": labels},
            "spec": {"selector": {"k8s-app": "kube-dns"}, "clusterIP": cluster_dns,
                     "ports": [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                               {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53}]},
        },
    ]


def metrics_server(region, tag=METRICS_SERVER_TAG):
    """metrics-server as the EKS ``metrics-server`` add-on deploys it (a Deployment and its Service)."""
    registry = EKS_REGISTRY.format(region=region)
    labels = {"app.kubernetes.io/name": "metrics-server", "app.kubernetes.io/instance": "metrics-server"}
    return [
        _service_account("metrics-server", labels),
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "metrics-server", "namespace": "kube-system", "labels": labels},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "priorityClassName": "system-cluster-critical",
                        "serviceAccountName": "metrics-server",
                        "containers": [{
                            "name": "metrics-server",
                            "image": f"{registry}/eks/metrics-server:{tag}",
                            "args": ["--secure-port=10251", "--cert-dir=/tmp", "--kubelet-use-node-status-port",
                                     "--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname"],
                            "ports": [{"containerPort": 10251, "name": "https", "protocol": "TCP"}],
                            "resources": {"requests": {"cpu": "100m", "memory": "200Mi"}},
                        }],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "metrics-server", "namespace": "kube-system", "labels": labels},
            "spec": {"selector": labels, "ports": [{"name": "https", "port": 443, "protocol": "TCP",
                                                    "targetPort": "https"}]},
        },
    ]


# Pods the sandbox's node runtime runs for real (node_runtime.py): kwok leaves their status alone.
REAL_RUN_LABEL = "eks-sandbox.cloudnet.io/run"
NETWORK_POLICY_AGENT = "aws-eks-nodeagent"


def vpc_cni_addon(manifest_docs, region, vpc_cni_tag=VPC_CNI_TAG):
    """The AWS VPC CNI add-on from its own manifest (amazon-vpc-cni-k8s ``config/master/aws-k8s-cni.yaml`` of the
    built version: CRDs, RBAC, ConfigMap, the aws-node DaemonSet), for nodes that run it for real: images of the
    region's EKS registry at ``vpc_cni_tag``, pods labelled for the node runtime (:data:`REAL_RUN_LABEL`), and
    without the ``aws-eks-nodeagent`` container (the network policy agent, off by its own
    ``--enable-network-policy=false``: its module, github.com/aws/aws-network-policy-agent v1.1.6, is refused by the
    Go module proxy, so it cannot run here)."""
    registry = EKS_REGISTRY.format(region=region)
    objects = []
    for doc in manifest_docs:
        if not doc:
            continue
        if doc["kind"] == "DaemonSet" and doc["metadata"]["name"] == "aws-node":
            template = doc["spec"]["template"]
            template["metadata"].setdefault("labels", {})[REAL_RUN_LABEL] = "real"
            spec = template["spec"]
            spec["containers"] = [c for c in spec["containers"] if c["name"] != NETWORK_POLICY_AGENT]
            for container in spec.get("initContainers", []) + spec["containers"]:
                repository = container["image"].rsplit("/", 1)[-1].split(":", 1)[0]
                container["image"] = f"{registry}/{repository}:{vpc_cni_tag}"
        objects.append(doc)
    return objects


def vpc_cni_addon_from_manifest(manifest_path, region, vpc_cni_tag=VPC_CNI_TAG):
    """:func:`vpc_cni_addon` of the manifest file at ``manifest_path``."""
    import yaml
    with open(manifest_path, encoding="utf-8") as manifest:
        return vpc_cni_addon(list(yaml.safe_load_all(manifest)), region, vpc_cni_tag)


def kube_system_addons(region, vpc_cni_tag=VPC_CNI_TAG, with_vpc_cni=True):
    """Everything a fresh EKS cluster has in kube-system (``with_vpc_cni=False``: default add-ons
    disabled, as eksctl's ``addonsConfig.disableDefaultAddons`` leaves it, minus coredns/kube-proxy)."""
    objects = []
    if with_vpc_cni:
        objects += aws_node(region, vpc_cni_tag)
        objects += kube_proxy(region)
        objects += coredns(region)
    return objects
