"""The user's playbooks end to end on one sandbox: site.yml twice, verify.yml, render.yml, teardown.yml.

One module-scoped sandbox (2 tainted nodes, as `make sandbox` makes it) is converged once by site.yml
with the real inventories/sandbox variables; the tests then run, in this order, a second site.yml,
verify.yml, render.yml (with AWS and Kubernetes pointed at a port nothing listens on) and teardown.yml
(refused twice, check mode, Cilium only, then everything, twice). AWS is moto behind the sandbox's EKS proxy and
eksctl is the real one (the sandbox's CILIUM_EKS_EKSCTL), on the cluster the sandbox seeds.
"""
import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import boto3
import pytest
import yaml
from kubernetes import client

from helpers import helm_run

from eks_sandbox import kube

REPO = Path(__file__).resolve().parents[2]
PLAYBOOKS = REPO / "playbooks"
CLUSTER = "hp-playbooks"
TEST_NAMESPACE = "cilium-bandwidth-test"  # bandwidth_manager_verify_namespace's default
PLAN_TASK = "Plan the changes (read-only; the whole run in check mode)"
MEASURE_TASK = "Measure a limited pod's bandwidth"
PROGRESS_INTERVAL = 2
HELM_TASK = "Helm install or upgrade of the Cilium release"


def task_named(result, fragment):
    """The last result on this cluster of the task whose name holds ``fragment`` (names with templates in them)."""
    found = [task["hosts"][CLUSTER] for play in result.report.get("plays", []) for task in play["tasks"]
             if fragment in task["task"]["name"] and CLUSTER in task["hosts"]]
    assert found, f"no task {fragment!r} ran: {result.task_names()}"
    return found[-1]


def progress_lines(result, waiting_for):
    """The progress lines (plugin_utils/progress.py, on stderr) of this cluster that say ``waiting_for``."""
    return [line for line in result.stderr.splitlines()
            if re.match(rf"{CLUSTER}: \d+s {re.escape(waiting_for)}", line)]


@pytest.fixture(scope="module")
def platform(sandbox_factory, tmp_path_factory):
    """The sandbox, its datapath for the bandwidth test, and an inventory naming its cluster.

    The inventory is inventories/sandbox's group_vars (linked, so the playbooks see exactly what
    `make sandbox` uses) with one host named after this sandbox's cluster.
    """
    box = sandbox_factory(CLUSTER, nodes=2, agent_not_ready_taint=True)
    datapath = subprocess.run([sys.executable, "-m", "eks_sandbox", "datapath", "up", "--name", CLUSTER,
                               "--namespace", TEST_NAMESPACE], capture_output=True, text=True, check=False,
                              env=dict(os.environ, PYTHONPATH=str(REPO / "tests" / "platform")))
    assert datapath.returncode == 0, datapath.stderr
    work = tmp_path_factory.mktemp("playbooks")
    inventory = work / "inventory"
    inventory.mkdir()
    (inventory / "group_vars").symlink_to(REPO / "inventories" / "sandbox" / "group_vars")
    (inventory / "hosts.yml").write_text(yaml.safe_dump({"eks_clusters": {"hosts": {CLUSTER: {
        "eks_cluster_name": CLUSTER, "eks_cluster_region": box.spec.region}}}}))
    # Progress lines (stderr) every 2 s instead of 30, so that the waits of these runs show some.
    extra_vars = {"cilium_eks_kubeconfig": str(work / "kubeconfig"), "cilium_eks_report_dir": str(work / "reports"),
                  "cilium_eks_progress_interval": PROGRESS_INTERVAL}
    return {"box": box, "env": box.env, "inventory": inventory, "vars": extra_vars, "work": work}


def play(run_playbook, platform, name, env=None, extra_vars=None, check=False):
    return run_playbook(PLAYBOOKS / name, platform["inventory"], env or platform["env"],
                        extra_vars=dict(platform["vars"], **(extra_vars or {})), check=check)


def helm(platform, *args):
    """The platform's helm on this sandbox (``helpers.helm_run``), not failing the test by itself."""
    return helm_run(platform["env"]["CILIUM_EKS_HELM"], platform["env"], *args, "--kubeconfig",
                    platform["box"].kubeconfig, check=False, timeout=120)


def user_values(platform):
    """The Cilium release's user-supplied values (``helm get values``)."""
    completed = helm(platform, "get", "values", "cilium", "-n", "kube-system", "-o", "json")
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout) or {}


def release(platform):
    """``helm status`` of the Cilium release as JSON, or None when there is none."""
    completed = helm(platform, "status", "cilium", "-n", "kube-system", "-o", "json")
    return json.loads(completed.stdout) if completed.returncode == 0 else None


def eks(platform):
    env = platform["env"]
    return boto3.session.Session(region_name=platform["box"].spec.region,
                                 aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                                 aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"]) \
        .client("eks", endpoint_url=env["AWS_ENDPOINT_URL"])


def cluster_state(platform):
    """What moto holds for the cluster: None when it is gone, else its record and node groups."""
    client = eks(platform)
    if CLUSTER not in client.list_clusters()["clusters"]:
        return None
    cluster = client.describe_cluster(name=CLUSTER)["cluster"]
    nodegroups = {name: client.describe_nodegroup(clusterName=CLUSTER, nodegroupName=name)["nodegroup"]
                  for name in client.list_nodegroups(clusterName=CLUSTER)["nodegroups"]}
    return {"cluster": cluster, "nodegroups": nodegroups}


def unlistened_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def converged(platform, run_playbook):
    """site.yml's first run (from a sandbox with the EKS records but no Cilium)."""
    assert release(platform) is None
    result = play(run_playbook, platform, "site.yml")
    assert result.rc == 0, result
    assert result.changed(CLUSTER) > 0
    return result


def test_site_check_mode_plans_a_cluster_that_does_not_exist_yet(platform, run_playbook):
    """--check --diff of a new cluster: the eksctl plan, then what Cilium and the Bandwidth Manager would be given,
    the steps that need the cluster skipped, nothing failing and nothing created (no cluster, no kubeconfig)."""
    kubeconfig = platform["work"] / "planned.kubeconfig"
    result = run_playbook(PLAYBOOKS / "site.yml", platform["inventory"], platform["env"], check=True, diff=True,
                          extra_vars=dict(platform["vars"], eks_cluster_name="hp-planned",
                                          cilium_eks_kubeconfig=str(kubeconfig)))
    assert result.rc == 0, result
    assert result.failures() == []
    assert "hp-planned" not in eks(platform).list_clusters()["clusters"]
    assert not kubeconfig.exists()
    cilium = result.task("Show the plan, the cluster not being there yet (check mode); the steps that need the "
                         "cluster are skipped", CLUSTER)
    assert "kubeconfig %s does not exist yet" % kubeconfig in cilium["msg"]["plan"]
    assert cilium["msg"]["values"]["cluster"]["name"] == "hp-planned"
    assert cilium["msg"]["values"]["ipam"]["mode"] == "eni"
    bandwidth = result.task("Show what the Bandwidth Manager step would do, the cluster not being there yet (check "
                            "mode)", CLUSTER)
    assert 'bandwidthManager {"enabled": true, "bbr": false}' in bandwidth["msg"]
    assert "the steps that need the cluster are skipped" in " ".join(bandwidth["msg"].split())
    assert task_named(result, HELM_TASK).get("skipped") is True
    assert "does not exist yet" in result.task("Say that there is nothing to verify yet (check mode, the cluster "
                                               "not created yet)", CLUSTER)["msg"]


def test_site_diff_shows_the_helm_values_that_would_change(platform, converged, run_playbook):
    """--check --diff with one more Helm value: the helm step's diff is the release's values before and after (no
    helm-diff plugin, no warning about it, no managedFields), and nothing changes."""
    before = release(platform)
    values = user_values(platform)
    assert "debug" not in values
    result = run_playbook(PLAYBOOKS / "site.yml", platform["inventory"], platform["env"], check=True, diff=True,
                          extra_vars=dict(platform["vars"], cilium_eks_extra_values={"debug": {"enabled": True}}))
    assert result.rc == 0, result.failure_message()
    helm_step = task_named(result, HELM_TASK)
    assert helm_step["changed"] is True
    diff = helm_step["diff"]
    assert yaml.safe_load(diff["before"]) == values
    assert yaml.safe_load(diff["after"]) == dict(values, debug={"enabled": True})
    assert diff["before_header"] == "kube-system/cilium: user-supplied values (helm get values)"
    diffs = [outcome["diff"] for ran_play in result.report["plays"] for ran_task in ran_play["tasks"]
             for outcome in ran_task["hosts"].values() if outcome.get("diff")]
    assert "managedFields" not in json.dumps(diffs)
    assert "helm diff" not in (result.stdout + result.stderr).lower()
    assert release(platform)["version"] == before["version"]


def test_site_first_run_says_what_helm_waits_for_every_interval(converged):
    """While helm installs Cilium (atomic, waiting for its pods), a line every interval says so, and nothing else is
    added to the run's output: no task header per line (the lines are on stderr, the json report is whole)."""
    lines = progress_lines(converged, "waiting for helm upgrade --install of release kube-system/cilium (timeout ")
    assert lines, converged.stderr[-3000:]
    seconds = [int(re.match(rf"{CLUSTER}: (\d+)s", line).group(1)) for line in lines]
    assert seconds == sorted(seconds) and seconds[0] >= PROGRESS_INTERVAL
    assert len(lines) <= max(seconds) // PROGRESS_INTERVAL + 1


def test_a_long_wait_says_what_it_waits_for_and_where_it_stands(platform, run_playbook):
    """cilium_status waiting for a Cilium that is not there: a line every interval, with the module's latest
    finding, until it gives up."""
    path = platform["work"] / "status-wait.yml"
    path.write_text(yaml.safe_dump([{"name": "wait", "hosts": CLUSTER, "gather_facts": False, "tasks": [
        {"name": "Wait for a Cilium that is not installed", "cloudnet.cilium_eks.cilium_status": {
            "kubeconfig": platform["box"].kubeconfig, "namespace": "no-cilium-here", "timeout": 7}}]}]))
    result = run_playbook(path, platform["inventory"], platform["env"],
                          extra_vars={"cilium_eks_progress_interval": PROGRESS_INTERVAL})
    assert result.rc == 2, result
    lines = progress_lines(result, "waiting for Cilium to be healthy on every node (namespace no-cilium-here, "
                                   "timeout 7s): agent DaemonSet no-cilium-here/cilium not found")
    assert len(lines) >= 2, result.stderr


def test_site_second_run_changes_nothing(platform, converged, run_playbook):
    before = release(platform)
    second = play(run_playbook, platform, "site.yml")
    assert second.rc == 0, second
    assert second.changed(CLUSTER) == 0, second.stats
    assert release(platform)["version"] == before["version"]
    measured = second.task(MEASURE_TASK, CLUSTER)
    assert measured["passed"] is True and 0.5 <= measured["ratio"] <= 1.05


REPORT_TASK = "Write the verification report"


def ran(result, fragment):
    return any(fragment in name for name in result.task_names())


@pytest.mark.parametrize("tag, runs, skips", [
    ("cilium", [HELM_TASK], [PLAN_TASK, MEASURE_TASK, REPORT_TASK]),
    ("bandwidth", [MEASURE_TASK], [PLAN_TASK, HELM_TASK, REPORT_TASK]),
    ("verify", [REPORT_TASK], [PLAN_TASK, HELM_TASK, MEASURE_TASK]),
    ("cluster", [PLAN_TASK], [HELM_TASK, MEASURE_TASK, REPORT_TASK]),
])
def test_site_tags_run_one_stage(platform, converged, run_playbook, tag, runs, skips):
    """site.yml's stages are tagged (cluster, cilium, bandwidth, verify); the run's checks run whatever the tags."""
    result = run_playbook(PLAYBOOKS / "site.yml", platform["inventory"], platform["env"],
                          extra_vars=platform["vars"], args=["--tags", tag])
    assert result.rc == 0, result
    assert result.changed(CLUSTER) == 0, result.stats
    assert ran(result, "Check the run's choices before touching anything")
    assert [r for r in runs if not ran(result, r)] == [], result.task_names()
    assert [s for s in skips if ran(result, s)] == [], result.task_names()


def test_verify_changes_nothing_and_reports(platform, converged, run_playbook):
    before = {"release": release(platform), "cluster": cluster_state(platform)}
    result = play(run_playbook, platform, "verify.yml")
    assert result.rc == 0, result
    assert result.changed(CLUSTER) == 0, result.stats
    assert release(platform)["version"] == before["release"]["version"]
    assert cluster_state(platform) == before["cluster"]
    measured = result.task(MEASURE_TASK, CLUSTER)
    assert measured["passed"] is True
    report_dir = Path(platform["vars"]["cilium_eks_report_dir"])
    report = (report_dir / "verification.md").read_text()
    assert "**Verdict: PASS**" in report and "eni mode" in report
    assert re.search(r"Written \d{4}-\d\d-\d\d \d\d:\d\d UTC by cloudnet.cilium_eks \d+\.\d+\.\d+", report)
    assert "| Kubernetes | v1.34." in report and "| Node groups | ng-1: 2 x t3.medium |" in report
    assert "for a limit of 10.0 Mbit/s" in report  # rounded, in words people use
    assert "| cilium connectivity test | Not run | not run: cilium_eks_connectivity_test is false" in report
    assert not re.search(r"\b(True|False)\b", report)  # Yes/No, not Python reprs
    junit = ElementTree.parse(report_dir / "verification.junit.xml").getroot()
    cases = {case.get("name"): case for case in junit.iter("testcase")}
    assert sorted(cases) == ["bandwidth-manager", "bandwidth-test", "cilium-status", "connectivity-test"]
    assert junit.get("failures") == "0" and junit.get("skipped") == "1"
    assert cases["connectivity-test"].find("skipped") is not None
    assert cases["bandwidth-test"].find("failure") is None and cases["bandwidth-test"].find("skipped") is None
    # The bandwidth test's namespace is gone again: verify leaves nothing behind.
    names = [ns.metadata.name for ns in kube.core_v1(platform["box"].kubeconfig).list_namespace().items]
    assert TEST_NAMESPACE not in names


def test_verify_of_a_cluster_in_another_mode_reports_fail_then_fails(platform, converged, run_playbook, tmp_path):
    """The report and the JUnit are written before the run fails, so the failure can be pasted and read by CI."""
    result = play(run_playbook, platform, "verify.yml",
                  extra_vars={"cilium_eks_mode": "chaining", "cilium_eks_verify_bandwidth": False,
                              "cilium_eks_report_dir": str(tmp_path)})
    assert result.rc != 0
    assert "Cilium healthy in chaining mode: " in str(result.failures())
    report = (tmp_path / "verification.md").read_text()
    assert "**Verdict: FAIL**" in report and "| Cilium healthy in chaining mode | FAILED |" in report
    assert "| A limited pod's bandwidth measured | Not run | not run: cilium_eks_verify_bandwidth is false |" in report
    junit = ElementTree.parse(tmp_path / "verification.junit.xml").getroot()
    failed = [case.get("name") for case in junit.iter("testcase") if case.find("failure") is not None]
    assert failed == ["cilium-status"] and junit.get("failures") == "1"


def test_verify_in_check_mode_changes_nothing(platform, converged, run_playbook):
    before = release(platform)
    result = play(run_playbook, platform, "verify.yml", check=True)
    assert result.rc == 0, result
    assert result.changed(CLUSTER) == 0, result.stats
    assert release(platform)["version"] == before["version"]
    assert result.task(MEASURE_TASK, CLUSTER).get("skipped") is True


def test_render_matches_what_site_applied_without_aws_or_kubernetes(platform, converged, run_playbook):
    dead = f"http://127.0.0.1:{unlistened_port()}"
    kubeconfig = platform["work"] / "dead.kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "dead",
        "clusters": [{"name": "dead", "cluster": {"server": dead}}],
        "contexts": [{"name": "dead", "context": {"cluster": "dead", "user": "dead"}}],
        "users": [{"name": "dead", "user": {"token": "none"}}]}))
    env = dict(platform["env"], AWS_ENDPOINT_URL=dead, KUBECONFIG=str(kubeconfig))
    out = platform["work"] / "rendered"
    result = play(run_playbook, platform, "render.yml", env=env,
                  extra_vars={"cilium_eks_render_dir": str(out), "cilium_eks_kubeconfig": str(kubeconfig)})
    assert result.rc == 0, result
    assert sorted(p.name for p in out.iterdir()) == ["bandwidth-test.yaml", "cilium-values.yaml",
                                                     "eksctl-cluster.yaml"]

    # Helm values: exactly the release's user-supplied values.
    applied = json.loads(helm(platform, "get", "values", "cilium", "-n", "kube-system", "-o", "json").stdout)
    assert yaml.safe_load((out / "cilium-values.yaml").read_text()) == applied

    # ClusterConfig: what eks_cluster planned with (and would hand to eksctl), and what EKS holds.
    config = yaml.safe_load((out / "eksctl-cluster.yaml").read_text())
    assert config == converged.task(PLAN_TASK, CLUSTER)["config"]
    state = cluster_state(platform)
    assert config["metadata"]["version"] == state["cluster"]["version"]
    assert config["metadata"]["tags"].items() <= state["cluster"]["tags"].items()  # the ownership tag
    for group in config["managedNodeGroups"]:
        actual = state["nodegroups"][group["name"]]
        assert actual["instanceTypes"] == [group["instanceType"]]
        assert actual["scalingConfig"] == {"desiredSize": group["desiredCapacity"], "minSize": group["minSize"],
                                           "maxSize": group["maxSize"]}
        assert [(t["key"], t["value"]) for t in actual["taints"]] == [(t["key"], t["value"]) for t in group["taints"]]

    # Bandwidth test: the objects the test created in the site.yml run (its JSON report names them).
    namespace, server, client = yaml.safe_load_all((out / "bandwidth-test.yaml").read_text())
    measured = converged.task(MEASURE_TASK, CLUSTER)
    assert namespace["metadata"]["name"] == measured["namespace"] == server["metadata"]["namespace"]
    assert server["metadata"]["name"] == measured["server_pod"] and client["metadata"]["name"] == measured["client_pod"]
    assert server["metadata"]["annotations"]["kubernetes.io/egress-bandwidth"] == measured["limit"]
    assert measured["limit_bps"] == 10_000_000
    anti = client["spec"]["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]
    assert anti["labelSelector"]["matchExpressions"][0]["values"] == [server["metadata"]["name"]]
    assert measured["server_node"] != measured["client_node"]
    image = yaml.safe_load((REPO / "roles" / "bandwidth_manager" / "defaults" / "main.yml").read_text())[
        "bandwidth_manager_verify_image"]
    assert {c["image"] for c in server["spec"]["containers"] + client["spec"]["containers"]} == {image}

    # A second render rewrites nothing.
    again = play(run_playbook, platform, "render.yml", env=env,
                 extra_vars={"cilium_eks_render_dir": str(out), "cilium_eks_kubeconfig": str(kubeconfig)})
    assert again.rc == 0 and again.changed(CLUSTER) == 0, again.stats


def test_collection_playbook_writes_under_the_current_directory_for_the_users_group(
        platform, run_playbook, tmp_path):
    """`ansible-playbook cloudnet.cilium_eks.render` from a folder of the user's, with an inventory group of their
    own (cilium_eks_hosts) and an old variable name: the files land under that folder, not in the collection, and
    the old name still works with a deprecation warning."""
    inventory = tmp_path / "inventory"
    (inventory / "group_vars").mkdir(parents=True)
    (inventory / "group_vars" / "platform_clusters.yml").symlink_to(
        REPO / "inventories" / "sandbox" / "group_vars" / "eks_clusters.yml")
    (inventory / "hosts.yml").write_text(yaml.safe_dump({"platform_clusters": {"hosts": {CLUSTER: {
        "eks_cluster_name": CLUSTER, "eks_cluster_region": platform["box"].spec.region}}}}))
    work = tmp_path / "work"
    work.mkdir()
    before = sorted(p.name for p in (REPO / "rendered").iterdir()) if (REPO / "rendered").exists() else []
    result = run_playbook("cloudnet.cilium_eks.render", inventory, platform["env"], cwd=work,
                          extra_vars={"cilium_eks_hosts": "platform_clusters", "cilium_mode": "chaining",
                                      "cilium_eks_kubeconfig": str(tmp_path / "kubeconfig")})
    assert result.rc == 0, result
    rendered = work / "rendered" / CLUSTER
    assert sorted(p.name for p in rendered.iterdir()) == ["bandwidth-test.yaml", "cilium-values.yaml",
                                                          "eksctl-cluster.yaml"]
    assert yaml.safe_load((rendered / "cilium-values.yaml").read_text())["cni"]["chainingMode"] == "aws-cni"
    warning = result.task("Warn about playbook variables read under their old names (renamed with the cilium_eks_ "
                          "prefix)", CLUSTER)["msg"]
    assert "`cilium_mode` is now `cilium_eks_mode`" in warning
    after = sorted(p.name for p in (REPO / "rendered").iterdir()) if (REPO / "rendered").exists() else []
    assert after == before  # nothing written next to the playbooks


def test_site_list_tags_from_the_repository_root():
    listed = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "site.yml", "--list-tags",
                             "-i", "localhost,"], cwd=REPO, capture_output=True, text=True, check=False)
    assert listed.returncode == 0, listed.stderr
    assert "TASK TAGS: [always, bandwidth, cilium, cluster, verify]" in listed.stdout


@pytest.mark.parametrize("confirm", [None, "some-other-cluster"], ids=["no-confirmation", "wrong-name"])
def test_teardown_refuses_without_the_cluster_name(platform, converged, run_playbook, confirm):
    before = {"release": release(platform), "cluster": cluster_state(platform)}
    result = play(run_playbook, platform, "teardown.yml",
                  extra_vars={} if confirm is None else {"cilium_eks_confirm_delete": confirm})
    assert result.rc != 0
    refusal_task = "Require cilium_eks_confirm_delete to name the cluster, before touching anything"
    refusal = result.task(refusal_task, CLUSTER)
    assert refusal["failed"] and "Nothing was deleted" in refusal["msg"]
    assert f"-e cilium_eks_confirm_delete={CLUSTER}" in refusal["msg"]
    assert result.report["plays"][-1]["tasks"][-1]["task"]["name"] == refusal_task  # nothing ran after it
    assert release(platform)["version"] == before["release"]["version"]
    assert cluster_state(platform) == before["cluster"]


def test_teardown_refuses_a_switch_that_is_not_a_boolean(platform, converged, run_playbook):
    """`cilium_eks_teardown_cluster=flase` would be False under `| bool`: refused, naming it, before anything."""
    before = {"release": release(platform), "cluster": cluster_state(platform)}
    result = play(run_playbook, platform, "teardown.yml",
                  extra_vars={"cilium_eks_confirm_delete": CLUSTER, "cilium_eks_teardown_cluster": "flase"})
    assert result.rc != 0
    assert "Invalid `cilium_eks_teardown_cluster` 'flase'" in result.failure_message(CLUSTER)
    assert "Nothing was deleted" in result.failure_message(CLUSTER)
    assert release(platform)["version"] == before["release"]["version"]
    assert cluster_state(platform) == before["cluster"]


def test_teardown_in_check_mode_deletes_nothing(platform, converged, run_playbook):
    before = {"release": release(platform), "cluster": cluster_state(platform)}
    result = play(run_playbook, platform, "teardown.yml", extra_vars={"cilium_eks_confirm_delete": CLUSTER}, check=True)
    assert result.rc == 0, result
    assert result.task("Uninstall the Cilium Helm release", CLUSTER)["changed"] is True
    assert result.task("Delete the EKS cluster (eksctl delete cluster --wait)", CLUSTER)["changed"] is True
    assert release(platform)["version"] == before["release"]["version"]
    assert cluster_state(platform) == before["cluster"]


def aws_node_selector(platform):
    apps = client.AppsV1Api(kube.core_v1(platform["box"].kubeconfig).api_client)
    return apps.read_namespaced_daemon_set("aws-node", "kube-system").spec.template.spec.node_selector or {}


# Chart 1.14+ leaves the Cilium CNI configuration on the nodes after helm uninstall unless cni.uninstall is true
# (roles/cilium_install/tasks/uninstall.yml has the sources).
CNI_UNINSTALL_TASK = "Let the agents remove their CNI configuration when they stop (cni.uninstall=true, same chart)"


def test_teardown_of_cilium_only_gives_the_nodes_back_to_aws_node(platform, converged, run_playbook):
    assert aws_node_selector(platform).get("io.cilium/aws-node-enabled") == "true"  # cilium_eni evicted it
    before = cluster_state(platform)
    result = play(run_playbook, platform, "teardown.yml",
                  extra_vars={"cilium_eks_confirm_delete": CLUSTER, "cilium_eks_teardown_cluster": False})
    assert result.rc == 0, result
    # cni.uninstall=true, the agents restarted to mount it, the release, then aws-node's nodeSelector
    assert result.changed(CLUSTER) == 4, result.stats
    cni_uninstall = result.task(CNI_UNINSTALL_TASK, CLUSTER)
    assert cni_uninstall["changed"] and cni_uninstall["status"]["values"]["cni"]["uninstall"] is True
    assert release(platform) is None
    assert "io.cilium/aws-node-enabled" not in aws_node_selector(platform)
    assert cluster_state(platform) == before


def test_teardown_with_the_cluster_name_deletes_then_changes_nothing(platform, converged, run_playbook):
    result = play(run_playbook, platform, "teardown.yml", extra_vars={"cilium_eks_confirm_delete": CLUSTER})
    assert result.rc == 0, result
    assert result.changed(CLUSTER) == 1, result.stats  # the cluster (the release went in the test above)
    assert result.task("Uninstall the Cilium Helm release", CLUSTER)["changed"] is False
    assert release(platform) is None
    assert cluster_state(platform) is None
    nodes = kube.core_v1(platform["box"].kubeconfig).list_node(
        label_selector=f"alpha.eksctl.io/cluster-name={CLUSTER}").items
    assert nodes == []  # the sandbox removes a node group's nodes with it (eks_sandbox.nodegroups)
    # eksctl's own lines, every interval while it deletes, instead of ASYNC POLL lines without a status
    deleting = progress_lines(result, f"waiting for eksctl to delete EKS cluster {CLUSTER} (timeout ")
    assert any(re.search(r"\(timeout \d+s\): \S", line) for line in deleting), result.stderr[-3000:]
    assert "ASYNC POLL" not in result.stdout

    again = play(run_playbook, platform, "teardown.yml", extra_vars={"cilium_eks_confirm_delete": CLUSTER})
    assert again.rc == 0, again
    assert again.changed(CLUSTER) == 0, again.stats
