"""cilium_eni and cilium_chaining against their own local EKS look-alikes, with the real Cilium chart and helm."""
import subprocess

import pytest
from helpers import aws_client, cilium_role_vars, helm_json, local_inventory
from helpers import write_play as write_one_play

from eks_sandbox import charts, gobuild, kube

VERSION = "1.20.2"


def write_play(tmp_path, role, variables):
    return (write_one_play(tmp_path / f"{role}.yml", f"cilium {role}", role=role, variables=variables),
            local_inventory(tmp_path / "inventory.ini"))


def revisions(helm, env):
    return [r["revision"] for r in helm_json(helm, env, "history", "cilium")]


def config(api):
    cm = api.resources.get(api_version="v1", kind="ConfigMap").get(name="cilium-config", namespace="kube-system")
    return dict(cm.data)


def base_vars(role, box, helm, **extra):
    return cilium_role_vars(role, box, helm, VERSION, **extra)


# ------------------------------------------------------------------ ENI mode


@pytest.fixture(scope="module")
def eni_box(sandbox_factory):
    return sandbox_factory("it-cilium-eni", nodes=2)


@pytest.fixture(scope="module")
def eni_api(eni_box):
    return kube.dynamic_client(eni_box.kubeconfig)


@pytest.fixture(scope="module")
def eni_installed(eni_box, helm, run_playbook, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("eni")
    play, inventory = write_play(tmp, "cilium_eni", base_vars("cilium_eni", eni_box, helm))
    first = run_playbook(play, inventory, eni_box.env)
    return {"first": first, "tmp": tmp}


def test_eni_bad_input_fails_before_any_change(eni_box, helm, run_playbook, tmp_path):
    # Runs first in this module (pytest keeps file order): nothing is installed yet.
    for bad, word in [({"cluster_id": 200}, "cilium_eni_cluster_id"),
                      ({"extra_values": {"hubble": {"relai": {"enabled": True}}}}, "cilium_eni_extra_values"),
                      ({"version": "1.12.9"}, "cilium_eni_version"),
                      ({"cluster_name": "Not_Valid"}, "cilium_eni_cluster_name")]:
        play, inventory = write_play(tmp_path, "cilium_eni", base_vars("cilium_eni", eni_box, helm, **bad))
        result = run_playbook(play, inventory, eni_box.env)
        assert result.rc != 0 and result.failed("sandbox") == 1, result
        assert word in result.stdout
        assert helm_json(helm, eni_box.env, "list") == []
    api = kube.dynamic_client(eni_box.kubeconfig)
    ds = api.resources.get(api_version="apps/v1", kind="DaemonSet").get(name="aws-node", namespace="kube-system")
    assert not (ds.spec.template.spec.nodeSelector or {}).get("io.cilium/aws-node-enabled")


def test_eni_refuses_pods_without_masquerading_on_nodes_with_public_ips(eni_box, helm, run_playbook, tmp_path):
    """A node in a public subnet reports its public IP as ExternalIP; with egress vpc its pods could not reach the
    Internet (the internet gateway does not translate their VPC addresses). Refused before aws-node is touched."""
    from kubernetes import client, config  # pylint: disable=import-outside-toplevel

    api = kube.dynamic_client(eni_box.kubeconfig)
    core = client.CoreV1Api(config.new_client_from_config(config_file=str(eni_box.kubeconfig)))
    node = core.list_node().items[0]
    addresses = [{"type": a.type, "address": a.address} for a in node.status.addresses]
    public = addresses + [{"type": "ExternalIP", "address": "54.243.4.228"}]
    # JSON patches (a list body): a strategic merge would merge the list by type and never remove the address again
    core.patch_node_status(node.metadata.name, [{"op": "replace", "path": "/status/addresses", "value": public}])
    assert "ExternalIP" in [a.type for a in core.read_node(node.metadata.name).status.addresses]
    try:
        play, inventory = write_play(tmp_path, "cilium_eni", base_vars("cilium_eni", eni_box, helm))
        result = run_playbook(play, inventory, eni_box.env)
        assert result.rc != 0 and result.failed("sandbox") == 1, result
        assert "Invalid `cilium_eni_egress` 'vpc'" in result.stdout
        assert "%s have public IPs" % node.metadata.name in result.stdout
        assert helm_json(helm, eni_box.env, "list") == []
        ds = api.resources.get(api_version="apps/v1", kind="DaemonSet").get(name="aws-node", namespace="kube-system")
        assert not (ds.spec.template.spec.nodeSelector or {}).get("io.cilium/aws-node-enabled")
    finally:
        core.patch_node_status(node.metadata.name,
                               [{"op": "replace", "path": "/status/addresses", "value": addresses}])
        assert "ExternalIP" not in [a.type for a in core.read_node(node.metadata.name).status.addresses]


def test_eni_installs_and_evicts_aws_node(eni_installed, eni_api, helm, eni_box):
    first = eni_installed["first"]
    assert first.rc == 0, first
    assert first.changed("sandbox") >= 2  # aws-node patch + helm install
    data = config(eni_api)
    assert data["ipam"] == "eni" and data["routing-mode"] == "native"
    assert data["cluster-name"] == eni_box.spec.name
    # The default egress (vpc, nodes in private subnets): masquerading off, written out; the agents report it.
    assert "egress-masquerade-interfaces" not in data and data["enable-ipv4-masquerade"] == "false"
    assert "masquerading: expected disabled" not in first.stdout
    ds = eni_api.resources.get(api_version="apps/v1", kind="DaemonSet").get(name="aws-node", namespace="kube-system")
    assert ds.spec.template.spec.nodeSelector["io.cilium/aws-node-enabled"] == "true"
    assert ds.status.desiredNumberScheduled == 0
    deployments = eni_api.resources.get(api_version="apps/v1", kind="Deployment")
    op = deployments.get(name="cilium-operator", namespace="kube-system")
    assert "/operator-aws:v%s" % VERSION in op.spec.template.spec.containers[0].image
    assert revisions(helm, eni_box.env) == [1]


def test_eni_second_run_changes_nothing(eni_installed, eni_box, helm, run_playbook):
    play, inventory = write_play(eni_installed["tmp"], "cilium_eni", base_vars("cilium_eni", eni_box, helm))
    again = run_playbook(play, inventory, eni_box.env)
    assert again.rc == 0, again
    assert again.changed("sandbox") == 0, [t for p in again.report["plays"] for t in p["tasks"]
                                           if t["hosts"]["sandbox"].get("changed")]
    assert revisions(helm, eni_box.env) == [1]


def test_eni_an_eks_addon_update_keeps_the_aws_node_selector(eni_installed, eni_box, eni_api, helm, run_playbook):
    """Found out on the sandbox's EKS API, which applies the vpc-cni add-on's objects with server-side apply as field
    manager ``eks`` (EKS user guide, "Determine fields you can customize for Amazon EKS add-ons": EKS manages only the
    fields of its manifest): even an update with resolveConflicts OVERWRITE leaves the nodeSelector key the role
    added, which is not a field of the add-on's manifest (the aws-node DaemonSet has no nodeSelector, only an
    affinity: amazon-vpc-cni-k8s config/master/aws-k8s-cni.yaml at v1.19.2 l.598). aws-node stays off the nodes; the
    next run changes nothing."""
    eks = aws_client(eni_box.aws_env["AWS_ENDPOINT_URL"], "eks", eni_box.spec.region)
    update = eks.update_addon(clusterName=eni_box.spec.name, addonName="vpc-cni", addonVersion="v1.20.4-eksbuild.2",
                              resolveConflicts="OVERWRITE")["update"]
    assert update["status"] == "Successful", update
    daemonsets = eni_api.resources.get(api_version="apps/v1", kind="DaemonSet")
    ds = daemonsets.get(name="aws-node", namespace="kube-system")
    assert ds.spec.template.spec.containers[0].image.endswith(":v1.20.4-eksbuild.2")  # the update was applied
    assert ds.spec.template.spec.nodeSelector["io.cilium/aws-node-enabled"] == "true"
    play, inventory = write_play(eni_installed["tmp"], "cilium_eni", base_vars("cilium_eni", eni_box, helm))
    again = run_playbook(play, inventory, eni_box.env)
    assert again.rc == 0 and again.changed("sandbox") == 0, again


def test_eni_value_change_is_one_helm_upgrade(eni_installed, eni_box, eni_api, helm, run_playbook):
    variables = base_vars("cilium_eni", eni_box, helm, prefix_delegation=True)
    play, inventory = write_play(eni_installed["tmp"], "cilium_eni", variables)
    result = run_playbook(play, inventory, eni_box.env)
    assert result.rc == 0, result
    assert revisions(helm, eni_box.env) == [1, 2]
    assert config(eni_api)["aws-enable-prefix-delegation"] == "true"
    again = run_playbook(play, inventory, eni_box.env)
    assert again.rc == 0 and again.changed("sandbox") == 0, again
    assert revisions(helm, eni_box.env) == [1, 2]


def test_eni_reapplies_the_aws_node_selector_after_an_addon_update(eni_installed, eni_box, eni_api, helm,
                                                                   run_playbook):
    # The DaemonSet comes back without our nodeSelector, as when the vpc-cni add-on is deleted and created again (an
    # add-on update keeps it: test_eni_an_eks_addon_update_keeps_the_aws_node_selector).
    patch = [{"op": "remove", "path": "/spec/template/spec/nodeSelector/io.cilium~1aws-node-enabled"}]
    eni_api.resources.get(api_version="apps/v1", kind="DaemonSet").patch(
        body=patch, name="aws-node", namespace="kube-system", content_type="application/json-patch+json")
    variables = base_vars("cilium_eni", eni_box, helm, prefix_delegation=True)
    play, inventory = write_play(eni_installed["tmp"], "cilium_eni", variables)
    result = run_playbook(play, inventory, eni_box.env)
    assert result.rc == 0, result
    assert result.changed("sandbox") == 1
    assert "its DaemonSet was re-created or replaced" in result.stdout
    ds = eni_api.resources.get(api_version="apps/v1", kind="DaemonSet").get(name="aws-node", namespace="kube-system")
    assert ds.spec.template.spec.nodeSelector["io.cilium/aws-node-enabled"] == "true"


def test_eni_failed_upgrade_rolls_back(eni_installed, eni_box, helm, run_playbook):
    # A value that passes our checks and the chart, but that the API server refuses (an annotation key with a
    # space): helm applies part of the upgrade, fails, and --atomic rolls back to the previous revision.
    variables = base_vars("cilium_eni", eni_box, helm, prefix_delegation=True,
                          extra_values={"operator": {"podAnnotations": {"not a valid key": "x"}}})
    play, inventory = write_play(eni_installed["tmp"], "cilium_eni", variables)
    result = run_playbook(play, inventory, eni_box.env)
    assert result.rc != 0
    assert "rolled back" in result.stdout, result.failures()
    status = helm_json(helm, eni_box.env, "status", "cilium")
    assert status["info"]["status"] == "deployed"
    assert status["version"] == 4  # 3 failed, 4 = rollback to 2
    values = helm_json(helm, eni_box.env, "get", "values", "cilium")
    assert "podAnnotations" not in values.get("operator", {})


def test_eni_refuses_to_switch_to_chaining(eni_installed, eni_box, helm, run_playbook, tmp_path):
    play, inventory = write_play(tmp_path, "cilium_chaining", base_vars("cilium_chaining", eni_box, helm))
    before = revisions(helm, eni_box.env)
    # aws-node is evicted but still at a supported version: the refusal comes from the installed release.
    result = run_playbook(play, inventory, eni_box.env)
    assert result.rc != 0
    assert "installed Cilium release runs in eni mode" in result.stdout
    assert "Invalid `cilium_chaining role mode` 'chaining'" in result.stdout
    assert revisions(helm, eni_box.env) == before


# ------------------------------------------------------------------ chaining mode


@pytest.fixture(scope="module")
def chaining_box(sandbox_factory):
    """Chaining runs on the recorded-output replay: aws-cni chaining needs the AWS VPC CNI's aws-node pod on every
    node, which cannot run whole here (its network policy agent module is refused by the Go proxy:
    docs/real-cilium.md, "Chaining")."""
    return sandbox_factory("it-cilium-chaining", nodes=2, cilium="replay")


def test_chaining_installs_keeps_aws_node_and_is_idempotent(chaining_box, helm, run_playbook, tmp_path):
    api = kube.dynamic_client(chaining_box.kubeconfig)
    play, inventory = write_play(tmp_path, "cilium_chaining", base_vars("cilium_chaining", chaining_box, helm))
    first = run_playbook(play, inventory, chaining_box.env)
    assert first.rc == 0, first
    assert "AWS VPC CNI 1.19.2 >= 1.11.2" in first.stdout
    # verify.yml's own check ran (it skips itself when the CiliumNode API is not served)
    assert "Every node has a CiliumNode with a CiliumInternalIP" in first.stdout
    data = config(api)
    assert data["cni-chaining-mode"] == "aws-cni" and data["enable-ipv4-masquerade"] == "false"
    # 1.20: no endpoint routes (aws-cni chaining docs from 1.15), identity mark off (Cilium's aws-cni CI)
    assert "enable-endpoint-routes" not in data and data["routing-mode"] == "native"
    assert data["enable-identity-mark"] == "false" and data["ipam"] == "cluster-pool"
    ds = api.resources.get(api_version="apps/v1", kind="DaemonSet").get(name="aws-node", namespace="kube-system")
    assert not (ds.spec.template.spec.nodeSelector or {}).get("io.cilium/aws-node-enabled")
    assert ds.status.numberReady == chaining_box.spec.nodes
    again = run_playbook(play, inventory, chaining_box.env)
    assert again.rc == 0 and again.changed("sandbox") == 0, again
    assert revisions(helm, chaining_box.env) == [1]

    # And the reverse switch is refused too.
    play, inventory = write_play(tmp_path, "cilium_eni", base_vars("cilium_eni", chaining_box, helm))
    switch = run_playbook(play, inventory, chaining_box.env)
    assert switch.rc != 0 and "runs in chaining mode" in switch.stdout
    assert not (api.resources.get(api_version="apps/v1", kind="DaemonSet").get(
        name="aws-node", namespace="kube-system").spec.template.spec.nodeSelector or {}).get(
        "io.cilium/aws-node-enabled")
    assert revisions(helm, chaining_box.env) == [1]


@pytest.fixture(scope="module")
def oldcni_box(sandbox_factory):
    return sandbox_factory("it-cilium-oldcni", nodes=1, vpc_cni_tag="v1.10.4-eksbuild.1")


def test_chaining_refuses_an_old_vpc_cni(oldcni_box, helm, run_playbook, tmp_path):
    play, inventory = write_play(tmp_path, "cilium_chaining", base_vars("cilium_chaining", oldcni_box, helm))
    result = run_playbook(play, inventory, oldcni_box.env)
    assert result.rc != 0
    assert "The AWS VPC CNI is 1.10.4" in result.stdout and "1.11.2 or newer" in result.stdout
    assert helm_json(helm, oldcni_box.env, "list") == []


# Documented in roles/cilium_eni/README.md: what we set that `cilium install` (ENI datapath) does not, and back.
# enableIPv4Masquerade: the egress written out (vpc: false); the CLI leaves it to the chart (false in ENI mode from 1.18).
OURS_ONLY = {"cluster.id", "kubeProxyReplacement", "eni.awsEnablePrefixDelegation", "enableIPv4Masquerade"}
CLI_ONLY = set()
DIFFERENT = {"cluster.name"}  # operator.replicas: both 1 here (the tests set it; the role keeps the chart default 2)


def flatten(values, prefix=""):
    flat = {}
    for key, value in (values or {}).items():
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict) and value:
            flat.update(flatten(value, path))
        else:
            flat[path] = value
    return flat


def test_eni_values_compared_with_the_cilium_cli(eni_installed, eni_box, helm):
    reason = gobuild.unavailable_reason("cilium-cli")
    if reason:
        pytest.skip(reason)
    cli = gobuild.ensure("cilium-cli")["cilium"]
    # The sandbox's API server is not *.eks.amazonaws.com, so the CLI cannot auto-detect EKS: give it the datapath.
    done = subprocess.run([str(cli), "install", "--dry-run-helm-values", "--version", VERSION,
                           "--chart-directory", str(charts.ensure_chart_dir(VERSION)), "--datapath-mode", "aws-eni"],
                          env=eni_box.env, capture_output=True, text=True, timeout=120, check=True)
    import yaml  # pylint: disable=import-outside-toplevel

    theirs = flatten(yaml.safe_load(done.stdout))
    ours = flatten(helm_json(helm, eni_box.env, "get", "values", "cilium"))
    assert set(ours) - set(theirs) == OURS_ONLY
    assert set(theirs) - set(ours) == CLI_ONLY
    assert {k for k in set(ours) & set(theirs) if ours[k] != theirs[k]} == DIFFERENT
    assert theirs["cluster.name"] == "kwok-" + eni_box.spec.name  # the CLI takes the kubeconfig context name
    assert ours["cluster.name"] == eni_box.spec.name  # we take the EKS cluster name
