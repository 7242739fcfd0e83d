"""The local platform is real: a real API server, real scheduling and rollouts, the real Cilium chart."""
import json
import os
import stat
import subprocess

import boto3
import pytest
import yaml
from kubernetes import client, config

from eks_sandbox import charts, kube, versions

NEWEST_CILIUM = max(versions.CILIUM_CHARTS.values(), key=lambda v: tuple(int(p) for p in v.split(".")))


def run(argv, env, timeout=180, check=True):
    result = subprocess.run([str(a) for a in argv], env=env, capture_output=True, text=True, timeout=timeout,
                            check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"{argv} exited {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}")
    return result


@pytest.fixture(scope="module")
def api(eks_sandbox):
    return kube.dynamic_client(eks_sandbox.kubeconfig)


def test_api_server_reports_the_built_kubernetes_version(eks_sandbox):
    version = client.VersionApi(config.new_client_from_config(config_file=eks_sandbox.kubeconfig)).get_code()
    assert version.git_version == versions.KUBERNETES


def test_every_component_listens_on_loopback_only(eks_sandbox):
    assert eks_sandbox.api_server.startswith("https://127.0.0.1:")
    endpoint = eks_sandbox.aws_env.get("AWS_ENDPOINT_URL", "")
    assert endpoint.startswith("http://127.0.0.1:")


def test_kubeconfig_is_private(eks_sandbox):
    mode = stat.S_IMODE(os.stat(eks_sandbox.kubeconfig).st_mode)
    assert mode == 0o600


def test_nodes_look_like_an_eks_managed_node_group(api, eks_sandbox):
    nodes = api.resources.get(api_version="v1", kind="Node").get().items
    assert len(nodes) == eks_sandbox.spec.nodes
    for node in nodes:
        labels = dict(node.metadata.labels)
        assert labels["eks.amazonaws.com/nodegroup"] == eks_sandbox.spec.nodegroup
        assert labels["node.kubernetes.io/instance-type"] == eks_sandbox.spec.instance_type
        assert labels["topology.kubernetes.io/region"] == eks_sandbox.spec.region
        assert labels["eks.amazonaws.com/capacityType"] == "ON_DEMAND"
        assert labels["topology.kubernetes.io/zone"].startswith(eks_sandbox.spec.region)
        taints = [(t.key, t.value, t.effect) for t in node.spec.taints or []]
        assert ("node.cilium.io/agent-not-ready", "true", "NoExecute") in taints


def test_kube_system_holds_the_default_eks_addons(api):
    ds = api.resources.get(api_version="apps/v1", kind="DaemonSet").get(name="aws-node", namespace="kube-system")
    image = ds.spec.template.spec.containers[0].image
    assert "/amazon-k8s-cni:v1." in image
    assert kube.daemonset_rolled_out(api, "kube-system", "aws-node")
    assert kube.daemonset_rolled_out(api, "kube-system", "kube-proxy")
    coredns = api.resources.get(api_version="apps/v1", kind="Deployment").get(name="coredns", namespace="kube-system")
    assert coredns.spec.replicas == 2
    # coredns does not tolerate the agent-not-ready taint: it waits for Cilium, as on real EKS.
    pods = api.resources.get(api_version="v1", kind="Pod").get(namespace="kube-system",
                                                               label_selector="k8s-app=kube-dns").items
    assert pods and all(p.status.phase == "Pending" for p in pods)


def test_the_seeded_cluster_has_its_eks_addons_and_the_real_eksctl_sees_them(api, eks_sandbox, sandbox_env):
    """As after `eksctl create cluster`: EKS add-ons own the kube-system objects (field manager eks)."""
    listed = run([sandbox_env["CILIUM_EKS_EKSCTL"], "get", "addons", "--cluster", eks_sandbox.spec.name, "--region",
                  eks_sandbox.spec.region, "-o", "json"], sandbox_env)
    addons = {a["Name"]: a for a in json.loads(listed.stdout)}
    assert sorted(addons) == ["coredns", "kube-proxy", "vpc-cni"]
    assert addons["vpc-cni"]["Version"] == eks_sandbox.spec.vpc_cni_tag
    ds = api.resources.get(api_version="apps/v1", kind="DaemonSet").get(name="aws-node", namespace="kube-system")
    assert "eks" in [field.manager for field in ds.metadata.managedFields]


def test_a_daemonset_rolls_out_and_its_pods_get_ips(api, eks_sandbox, kubectl, sandbox_env):
    manifest = {
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "smoke-ds", "namespace": "default"},
        "spec": {"selector": {"matchLabels": {"app": "smoke-ds"}},
                 "template": {"metadata": {"labels": {"app": "smoke-ds"}},
                              "spec": {"tolerations": [{"operator": "Exists"}],
                                       "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]}}},
    }
    kube.apply(api, manifest)
    run([kubectl, "rollout", "status", "daemonset/smoke-ds", "-n", "default", "--timeout=90s"], sandbox_env)
    pods = api.resources.get(api_version="v1", kind="Pod").get(namespace="default", label_selector="app=smoke-ds").items
    assert len(pods) == eks_sandbox.spec.nodes
    assert len({p.spec.nodeName for p in pods}) == eks_sandbox.spec.nodes
    assert all(p.status.podIP for p in pods)
    assert len({p.status.podIP for p in pods}) == len(pods)


def test_moto_holds_the_matching_eks_cluster(eks_sandbox):
    env = eks_sandbox.aws_env
    eks = boto3.client("eks", region_name=eks_sandbox.spec.region, endpoint_url=env["AWS_ENDPOINT_URL"],
                       aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])
    cluster = eks.describe_cluster(name=eks_sandbox.spec.name)["cluster"]
    assert cluster["status"] == "ACTIVE"
    assert cluster["version"] == ".".join(versions.KUBERNETES.lstrip("v").split(".")[:2])
    nodegroup = eks.describe_nodegroup(clusterName=eks_sandbox.spec.name, nodegroupName=eks_sandbox.spec.nodegroup)
    scaling = nodegroup["nodegroup"]["scalingConfig"]
    assert scaling["desiredSize"] == eks_sandbox.spec.nodes


def test_real_cilium_chart_installs_and_its_daemonset_rolls_out(eks_sandbox, helm, kubectl, sandbox_env):
    chart = charts.ensure_chart(NEWEST_CILIUM)
    run([helm, "install", "cilium", chart, "--namespace", "kube-system",
         "--set", "eni.enabled=true", "--set", "ipam.mode=eni", "--set", "routingMode=native",
         "--set", f"cluster.name={eks_sandbox.spec.name}", "--set", "operator.replicas=1",
         "--wait", "--timeout", "3m"], sandbox_env, timeout=240)
    run([kubectl, "-n", "kube-system", "rollout", "status", "ds/cilium", "--timeout=120s"], sandbox_env)
    releases = json.loads(run([helm, "list", "-n", "kube-system", "-o", "json"], sandbox_env).stdout)
    assert [(r["name"], r["status"], r["chart"]) for r in releases] == [("cilium", "deployed", f"cilium-{NEWEST_CILIUM}")]


@pytest.mark.parametrize("bad_value, complaint", [
    # The chart's own template validation: 1.16+ takes true/false only (the blog's 1.13 took strict).
    (["--set", "kubeProxyReplacement=strict"], "kubeProxyReplacement"),
    # values.schema.json (1.16+): wrong type.
    (["--set-json", "routingMode=5"], "routingMode"),
    # Removed in 1.15: the chart refuses it rather than ignoring it.
    (["--set", "tunnel=disabled"], "tunnel"),
])
def test_real_chart_rejects_an_invalid_value(helm, bad_value, complaint):
    chart = charts.ensure_chart(NEWEST_CILIUM)
    result = run([helm, "template", "cilium", chart, "--namespace", "kube-system"] + bad_value,
                 dict(os.environ), check=False)
    assert result.returncode != 0, result.stdout[:500]
    assert complaint in result.stderr


def test_eksctls_kubeconfig_logs_in_through_the_token_webhook(eks_sandbox, sandbox_env, kubectl, tmp_path):
    """eksctl writes an exec user (aws-iam-authenticator token -i <cluster>); kube-apiserver asks the sandbox's
    proxy about the EKS token, which names the caller moto's STS knows (in system:masters)."""
    kubeconfig = tmp_path / "eksctl.kubeconfig"
    run([sandbox_env["CILIUM_EKS_EKSCTL"], "utils", "write-kubeconfig", "--cluster", eks_sandbox.spec.name,
         "--region", eks_sandbox.spec.region, "--kubeconfig", kubeconfig], sandbox_env)
    user = yaml.safe_load(kubeconfig.read_text())["users"][0]["user"]
    assert user["exec"]["command"] == "aws-iam-authenticator"
    whoami = json.loads(run([kubectl, "--kubeconfig", kubeconfig, "auth", "whoami", "-o", "json"], sandbox_env).stdout)
    assert whoami["status"]["userInfo"]["username"] == "arn:aws:sts::123456789012:user/moto"
    assert "system:masters" in whoami["status"]["userInfo"]["groups"]
    forged = "k8s-aws-v1." + "aHR0cHM6Ly9zdHMuYW1hem9uYXdzLmNvbS8_QWN0aW9uPUxpc3RVc2Vycw"  # not a GetCallerIdentity URL
    refused = run([kubectl, "--kubeconfig", kubeconfig, "--token", forged, "get", "nodes"], sandbox_env, check=False)
    assert refused.returncode != 0 and "Unauthorized" in refused.stderr
