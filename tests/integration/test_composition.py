"""The roles composed by a user's own playbook, without site.yml: any order, any subset, run twice, changes nothing.

A user embeds cilium_eni (or cilium_chaining) and bandwidth_manager in a playbook of their own, as the role docs
describe, without site.yml's settle step that agrees on the release's values. The install role must keep what it does
not own from the installed release (the Bandwidth Manager settings bandwidth_manager writes), and bandwidth_manager
keeps everything else, so neither undoes the other: a second run reports changed=0, makes no Helm revision and does not
restart the agents; ``--tags cilium`` alone leaves the Bandwidth Manager on; the other order converges too.
The failure this guards against (ux-review #1): changed=3 and an agent restart on every run.
"""
import pytest
import yaml
from helpers import cilium_role_vars, helm_json, local_inventory

from eks_sandbox import kube

VERSION = "1.20.2"
HOST = "sandbox"


def revisions(helm, box):
    return [r["revision"] for r in helm_json(helm, box.env, "history", "cilium")]


def agents(box):
    """What a restart changes: the agent DaemonSet's generation and its pod template's restartedAt annotation."""
    api = kube.dynamic_client(box.kubeconfig)
    ds = api.resources.get(api_version="apps/v1", kind="DaemonSet").get(name="cilium", namespace="kube-system")
    annotations = ds.spec.template.metadata.annotations or {}
    return {"generation": ds.metadata.generation, "restartedAt": annotations.get("kubectl.kubernetes.io/restartedAt")}


def cilium_config(box):
    api = kube.dynamic_client(box.kubeconfig)
    return dict(api.resources.get(api_version="v1", kind="ConfigMap").get(
        name="cilium-config", namespace="kube-system").data)


def roles_play(path, box, helm, install_role, order=("install", "bandwidth")):
    """The user's playbook: the install role and bandwidth_manager with include_role, each with its own tag."""
    steps = {
        "install": {"name": f"Cilium ({install_role})", "ansible.builtin.include_role": {
            "name": f"cloudnet.cilium_eks.{install_role}", "apply": {"tags": ["cilium"]}},
            "vars": cilium_role_vars(install_role, box, helm, VERSION), "tags": ["cilium"]},
        "bandwidth": {"name": "Bandwidth Manager", "ansible.builtin.include_role": {
            "name": "cloudnet.cilium_eks.bandwidth_manager", "apply": {"tags": ["bandwidth"]}},
            "vars": {"bandwidth_manager_kubeconfig": box.kubeconfig, "bandwidth_manager_helm_path": str(helm),
                     "bandwidth_manager_chart_path": cilium_role_vars(install_role, box, helm, VERSION)[
                         f"{install_role}_chart_path"],
                     "bandwidth_manager_rollout_timeout": 300}, "tags": ["bandwidth"]},
    }
    play = {"name": "My own playbook", "hosts": "cluster", "gather_facts": False,
            "tasks": [steps[step] for step in order]}
    path.write_text(yaml.safe_dump([play], sort_keys=False))
    return path


def changed_tasks(result):
    return [t["task"]["name"] for p in result.report["plays"] for t in p["tasks"] if t["hosts"].get(HOST, {}).get("changed")]


@pytest.fixture(scope="module")
def eni_box(sandbox_factory):
    return sandbox_factory("it-compose-eni", nodes=2)


@pytest.fixture(scope="module")
def eni_converged(eni_box, helm, run_playbook, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("compose")
    inventory = local_inventory(tmp / "inventory.ini")
    play = roles_play(tmp / "play.yml", eni_box, helm, "cilium_eni")
    first = run_playbook(play, inventory, eni_box.env)
    assert first.rc == 0, first
    return {"tmp": tmp, "inventory": inventory, "play": play, "first": first}


def test_install_then_bandwidth_manager_twice_changes_nothing(eni_converged, eni_box, helm, run_playbook):
    assert cilium_config(eni_box)["enable-bandwidth-manager"] == "true"
    before = {"revisions": revisions(helm, eni_box), "agents": agents(eni_box)}
    again = run_playbook(eni_converged["play"], eni_converged["inventory"], eni_box.env)
    assert again.rc == 0, again
    assert again.changed(HOST) == 0, changed_tasks(again)
    assert revisions(helm, eni_box) == before["revisions"]
    assert agents(eni_box) == before["agents"]  # no rollout restart
    assert cilium_config(eni_box)["enable-bandwidth-manager"] == "true"


def test_the_install_role_alone_keeps_the_bandwidth_manager(eni_converged, eni_box, helm, run_playbook):
    before = {"revisions": revisions(helm, eni_box), "agents": agents(eni_box)}
    alone = run_playbook(eni_converged["play"], eni_converged["inventory"], eni_box.env, args=["--tags", "cilium"])
    assert alone.rc == 0, alone
    assert alone.changed(HOST) == 0, changed_tasks(alone)
    assert "Bandwidth Manager" not in " ".join(alone.task_names())  # the tag selected the install role only
    assert cilium_config(eni_box)["enable-bandwidth-manager"] == "true"
    installed = helm_json(helm, eni_box.env, "get", "values", "cilium")
    assert installed["bandwidthManager"] == {"enabled": True, "bbr": False}
    assert revisions(helm, eni_box) == before["revisions"] and agents(eni_box) == before["agents"]


def test_the_other_order_changes_nothing(eni_converged, eni_box, helm, run_playbook):
    play = roles_play(eni_converged["tmp"] / "reversed.yml", eni_box, helm, "cilium_eni",
                      order=("bandwidth", "install"))
    before = {"revisions": revisions(helm, eni_box), "agents": agents(eni_box)}
    result = run_playbook(play, eni_converged["inventory"], eni_box.env)
    assert result.rc == 0, result
    assert result.changed(HOST) == 0, changed_tasks(result)
    assert revisions(helm, eni_box) == before["revisions"] and agents(eni_box) == before["agents"]


def test_a_value_change_of_the_install_role_keeps_the_bandwidth_manager(eni_converged, eni_box, helm, run_playbook):
    tmp = eni_converged["tmp"]
    play = roles_play(tmp / "changed.yml", eni_box, helm, "cilium_eni")
    text = yaml.safe_load(play.read_text())
    text[0]["tasks"][0]["vars"]["cilium_eni_prefix_delegation"] = True
    play.write_text(yaml.safe_dump(text, sort_keys=False))
    result = run_playbook(play, eni_converged["inventory"], eni_box.env, args=["--tags", "cilium"])
    assert result.rc == 0, result
    values = helm_json(helm, eni_box.env, "get", "values", "cilium")
    assert values["eni"]["awsEnablePrefixDelegation"] is True
    assert values["bandwidthManager"] == {"enabled": True, "bbr": False}
    both = run_playbook(play, eni_converged["inventory"], eni_box.env)
    assert both.rc == 0 and both.changed(HOST) == 0, changed_tasks(both)


@pytest.fixture(scope="module")
def chaining_box(sandbox_factory):
    return sandbox_factory("it-compose-chain", nodes=2)


def test_chaining_then_bandwidth_manager_twice_changes_nothing(chaining_box, helm, run_playbook, tmp_path):
    inventory = local_inventory(tmp_path / "inventory.ini")
    play = roles_play(tmp_path / "play.yml", chaining_box, helm, "cilium_chaining")
    first = run_playbook(play, inventory, chaining_box.env)
    assert first.rc == 0, first
    before = {"revisions": revisions(helm, chaining_box), "agents": agents(chaining_box)}
    again = run_playbook(play, inventory, chaining_box.env)
    assert again.rc == 0, again
    assert again.changed(HOST) == 0, changed_tasks(again)
    assert revisions(helm, chaining_box) == before["revisions"] and agents(chaining_box) == before["agents"]
    assert cilium_config(chaining_box)["enable-bandwidth-manager"] == "true"


def connection_options(box):
    """The sandbox kubeconfig's server, CA and client certificate as kubernetes.core's option names."""
    config = yaml.safe_load(open(box.kubeconfig).read())
    cluster, user = config["clusters"][0]["cluster"], config["users"][0]["user"]
    return {"host": cluster["server"], "ca_cert": cluster["certificate-authority"],
            "client_cert": user["client-certificate"], "client_key": user["client-key"]}


def status_and_nodes_play(path, module_defaults=None):
    """cilium_status and kubernetes.core.k8s_info without any connection option of their own."""
    play = {"name": "Access given once", "hosts": "cluster", "gather_facts": False, "tasks": [
        {"name": "Cilium status",
         "cloudnet.cilium_eks.cilium_status": {"expect": {"ipam_mode": "eni"}, "timeout": 120}},
        {"name": "Nodes", "kubernetes.core.k8s_info": {"kind": "Node"}}]}
    if module_defaults:
        play["module_defaults"] = module_defaults
    path.write_text(yaml.safe_dump([play], sort_keys=False))
    return path


def test_module_defaults_of_the_k8s_group_reach_ours_and_kubernetes_cores(
        eni_converged, eni_box, run_playbook, tmp_path):
    """One module_defaults entry (group/cloudnet.cilium_eks.k8s, kubernetes.core's option names) gives the access
    of this collection's modules and of kubernetes.core's k8s group; no kubeconfig anywhere."""
    env = dict(eni_box.env, KUBECONFIG=str(tmp_path / "absent"))
    play = status_and_nodes_play(tmp_path / "play.yml",
                                 {"group/cloudnet.cilium_eks.k8s": connection_options(eni_box)})
    result = run_playbook(play, eni_converged["inventory"], env)
    assert result.rc == 0, result.failures()
    assert result.task("Cilium status", HOST)["status"]["healthy"] is True
    assert len(result.task("Nodes", HOST)["resources"]) == 2


def test_k8s_auth_environment_reaches_the_modules(eni_converged, eni_box, run_playbook, tmp_path):
    """AWX's Kubernetes credential sets K8S_AUTH_* variables: they reach this collection's modules too."""
    options = connection_options(eni_box)
    env = dict(eni_box.env, KUBECONFIG=str(tmp_path / "absent"), K8S_AUTH_HOST=options["host"],
               K8S_AUTH_SSL_CA_CERT=options["ca_cert"], K8S_AUTH_CERT_FILE=options["client_cert"],
               K8S_AUTH_KEY_FILE=options["client_key"])
    result = run_playbook(status_and_nodes_play(tmp_path / "play.yml"), eni_converged["inventory"], env)
    assert result.rc == 0, result.failures()
    assert result.task("Cilium status", HOST)["status"]["healthy"] is True
