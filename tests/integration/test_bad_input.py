"""Bad input is refused before anything changes, with an error naming the input (issue #7).

The cases live in bad_input_cases.yml: every role, every module and playbooks/site.yml's own variables,
each with a working baseline the test supplies and one invalid input the case sets. They all run against
one sandbox, batched to keep the file fast: one ansible-playbook for the roles and modules (one inventory
host per case: a host that fails does not stop the others) and one for site.yml (one host per case too).
The state of moto (EKS, EC2 security groups and their rules, IAM roles, CloudFormation stacks) and of
Kubernetes (every object's resourceVersion, Helm releases included) is taken before and after the matrix
and must be the same.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
CASES = yaml.safe_load(Path(__file__).with_name("bad_input_cases.yml").read_text())
SANDBOX = "bad-input"
REGION = "us-east-1"
NEW_CLUSTER = "bad-input-new"  # what eks_cluster and eksctl_cluster would create if a case got through
UNREACHABLE = "http://127.0.0.1:9"  # discard port: a download that a case should never reach fails at once
FORKS = "8"
# Kinds whose objects change on their own (heartbeats, leader election, events): left out of the snapshot.
CHURNING_KINDS = frozenset(("Lease", "Event"))
# A user's own playbook including several roles, validating all of them first (docs/playbooks.md, "Validate
# everything first"): each role's `validate` entry point, then each role's main entry point.
EMBEDDED_ROLES = ("eks_cluster", "cilium_eni", "bandwidth_manager")
EMBEDDED_PLAYBOOK = [{
    "name": "A user's playbook: every role validated before the first change", "hosts": "eks_clusters",
    "gather_facts": False,
    "tasks": [{"name": f"Validate {role}", "ansible.builtin.include_role": {
        "name": f"cloudnet.cilium_eks.{role}", "tasks_from": "validate"}} for role in EMBEDDED_ROLES]
    + [{"name": f"Run {role}", "ansible.builtin.include_role": {"name": f"cloudnet.cilium_eks.{role}"}}
       for role in EMBEDDED_ROLES],
}]
PLAYBOOKS = ("site", "render", "embedded")


def _by_kind(kind):
    return [case for case in CASES if kind in case]


def test_the_matrix_covers_every_role_module_and_site_yml():
    assert len(CASES) >= 40
    assert len({case["id"] for case in CASES}) == len(CASES), "case ids must be unique"
    roles = {case["role"] for case in _by_kind("role")}
    modules = {case["module"] for case in _by_kind("module")}
    assert roles == {"eks_cluster", "cilium_eni", "cilium_chaining", "bandwidth_manager", "tools"}
    assert modules == {path.stem for path in (REPO_ROOT / "plugins" / "modules").glob("*.py")}
    assert {case["playbook"] for case in _by_kind("playbook")} == set(PLAYBOOKS)


# --- baselines: working inputs each case spoils one of -----------------------------------------------------------

def role_baseline(role, env, scratch, case_id):
    chart, helm, kubeconfig = env["CILIUM_EKS_CHART"], env["CILIUM_EKS_HELM"], env["KUBECONFIG"]
    cilium = {"cluster_name": SANDBOX, "kubeconfig": kubeconfig, "chart_path": chart, "helm_path": helm,
              "helm_timeout": 60, "wait_timeout": 60}
    baselines = {
        "eks_cluster": {"eks_cluster_name": NEW_CLUSTER, "eks_cluster_region": REGION,
                        "eks_cluster_kubeconfig": str(scratch / f"{case_id}.kubeconfig"),
                        "eks_cluster_eksctl_path": env["CILIUM_EKS_EKSCTL"], "eks_cluster_poll_interval": 2,
                        "eks_cluster_node_wait_timeout": 30},
        "cilium_eni": {f"cilium_eni_{key}": value for key, value in cilium.items()},
        "cilium_chaining": {f"cilium_chaining_{key}": value for key, value in cilium.items()},
        "bandwidth_manager": {"bandwidth_manager_kubeconfig": kubeconfig, "bandwidth_manager_chart_path": chart,
                              "bandwidth_manager_helm_path": helm, "bandwidth_manager_rollout_timeout": 60,
                              "bandwidth_manager_verify_tool": "iperf3",
                              "bandwidth_manager_verify_report_dir": str(scratch / case_id)},
        "tools": {"tools_bin_dir": str(scratch / case_id / "bin"), "tools_install": ["helm"],
                  "tools_download_base_urls": {"helm": UNREACHABLE + "/helm"}},
    }
    return baselines[role]


def module_baseline(module, env, scratch, case_id):
    baselines = {
        "eksctl_cluster": {"name": NEW_CLUSTER, "region": REGION, "version": "1.34", "nodegroups": [{"name": "ng-1"}],
                           "eksctl_path": env["CILIUM_EKS_EKSCTL"], "timeout": 60},
        "eksctl_cluster_info": {"name": SANDBOX, "region": REGION},
        "eks_nodeport_access": {"cluster": SANDBOX, "region": REGION},
        "cilium_values": {"mode": "eni", "cluster_name": SANDBOX},
        "cilium_status": {"wait": False, "timeout": 5},
        "cilium_restart_unmanaged": {"timeout": 60},
        "cilium_release_repair": {"helm_path": env["CILIUM_EKS_HELM"], "wait_timeout": 0, "timeout": 60},
        "cluster_lock": {"name": "bad-input-lock", "duration": 60},
        # a release of its own: a case that got through would install a chart nothing else reads
        "cilium_release": {"release_name": "bad-input-release", "release_namespace": "bad-input",
                           "chart_ref": env["CILIUM_EKS_CHART"], "binary_path": env["CILIUM_EKS_HELM"],
                           "kubeconfig": env["KUBECONFIG"], "release_values": {}, "wait": False},
        "cilium_connectivity_test": {"timeout": 60, "junit_file": str(scratch / case_id / "junit.xml")},
        "cilium_bandwidth_test": {"limit": "10M", "tool": "iperf3", "duration": 2, "timeout": 30,
                                  "report_dir": str(scratch / case_id)},
        "cli_tool_info": {"bin_dir": str(scratch), "tools": ["helm"]},
        # GOPROXY=off: a case that got through could not download anything
        "go_build_tool": {"name": "helm", "version": "v3.19.5", "bin_dir": str(scratch), "goproxy": "off",
                          "timeout": 30},
    }
    return baselines[module]


# --- state of the sandbox -----------------------------------------------------------------------------------------

def aws_state(env):
    """EKS clusters and node groups, security groups with their rules, IAM roles, CloudFormation stacks."""
    session = boto3.session.Session(aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                                    aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"], region_name=REGION)

    def client(service):
        return session.client(service, endpoint_url=env["AWS_ENDPOINT_URL"])

    eks = client("eks")
    clusters = {}
    for name in eks.list_clusters()["clusters"]:
        cluster = eks.describe_cluster(name=name)["cluster"]
        nodegroups = {ng: eks.describe_nodegroup(clusterName=name, nodegroupName=ng)["nodegroup"]
                      for ng in eks.list_nodegroups(clusterName=name)["nodegroups"]}
        clusters[name] = {"cluster": cluster, "nodegroups": nodegroups}
    groups = client("ec2").describe_security_groups()["SecurityGroups"]
    return json.loads(json.dumps({
        "eks": clusters,
        "security_groups": sorted(groups, key=lambda group: group["GroupId"]),
        "iam_roles": sorted(role["RoleName"] for role in client("iam").list_roles()["Roles"]),
        "stacks": sorted((stack["StackName"], stack["StackStatus"])
                         for stack in client("cloudformation").describe_stacks()["Stacks"]),
    }, default=str))


def kube_state(kubectl, env):
    """``kind/namespace/name -> resourceVersion`` of every listable object (Helm release Secrets included)."""
    listable = subprocess.run([kubectl, "api-resources", "--verbs=list", "-o", "name"], env=env, check=True,
                              capture_output=True, text=True).stdout.split()
    listable = [resource for resource in listable if resource != "componentstatuses"]  # deprecated, no versions
    items = json.loads(subprocess.run([kubectl, "get", ",".join(listable), "--all-namespaces", "-o", "json"],
                                      env=env, check=True, capture_output=True, text=True).stdout)["items"]
    return {"%s/%s/%s" % (item["kind"], item["metadata"].get("namespace", ""), item["metadata"]["name"]):
            item["metadata"]["resourceVersion"] for item in items if item["kind"] not in CHURNING_KINDS}


def helm_releases(helm, env):
    return subprocess.run([helm, "list", "--all-namespaces", "--all", "-o", "json"], env=env, check=True,
                          capture_output=True, text=True).stdout


def sandbox_state(env, kubectl, helm):
    return {"aws": aws_state(env), "kubernetes": kube_state(kubectl, env), "helm": helm_releases(helm, env)}


# --- running the cases --------------------------------------------------------------------------------------------

def write_inventory(path, group, hosts):
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    path.write_text(yaml.safe_dump({group: {"hosts": hosts, "vars": local}}))
    return path


def case_task(case, env, scratch):
    """The one task a role or module case runs."""
    if "role" in case:
        variables = dict(role_baseline(case["role"], env, scratch, case["id"]), **case["vars"])
        return {"name": f"Run role {case['role']}", "ansible.builtin.include_role": {
            "name": f"cloudnet.cilium_eks.{case['role']}"}, "vars": variables}
    args = dict(module_baseline(case["module"], env, scratch, case["id"]), **case["args"])
    return {"name": f"Run module {case['module']}", f"cloudnet.cilium_eks.{case['module']}": args,
            "check_mode": bool(case.get("check_mode", False))}


def run_role_and_module_cases(run_playbook, env, scratch):
    cases = [case for case in CASES if "playbook" not in case]
    task_dir = scratch / "cases"
    task_dir.mkdir()
    for case in cases:
        (task_dir / f"{case['id']}.yml").write_text(yaml.safe_dump([case_task(case, env, scratch)], sort_keys=False))
    playbook = scratch / "cases.yml"
    playbook.write_text(yaml.safe_dump([{
        "name": "Bad input cases, one host each", "hosts": "cases", "gather_facts": False, "strategy": "free",
        "tasks": [{"name": "Run the case", "ansible.builtin.include_tasks": str(task_dir) + "/{{ inventory_hostname }}.yml"}],
    }], sort_keys=False))
    inventory = write_inventory(scratch / "cases-inventory.yml", "cases", {case["id"]: {} for case in cases})
    return run_playbook(playbook, inventory, env, args=("--forks", FORKS), timeout=600)


def site_baseline(env, scratch, host):
    return {
        "eks_cluster_name": SANDBOX, "eks_cluster_region": REGION, "eks_cluster_version": "1.34",
        "eks_cluster_nodegroups": [{"name": "ng-1", "instance_type": "t3.medium", "desired_size": 2,
                                    "min_size": 2, "max_size": 2}],
        "eks_cluster_eksctl_path": env["CILIUM_EKS_EKSCTL"], "eks_cluster_poll_interval": 2,
        "cilium_eks_kubeconfig": str(scratch / f"{host}.kubeconfig"),
        "cilium_eks_chart_path": env["CILIUM_EKS_CHART"], "cilium_eks_helm_path": env["CILIUM_EKS_HELM"],
        "cilium_eks_report_dir": str(scratch / "reports" / host), "bandwidth_manager_verify_tool": "iperf3",
    }


def playbook_baseline(kind, env, scratch, host):
    """Host variables of a playbook case: site.yml's working inventory (render.yml reads the same), or for the
    embedded playbook the role baselines it includes, on a new cluster."""
    if kind == "embedded":
        variables = {}
        for role in EMBEDDED_ROLES:
            variables.update(role_baseline(role, env, scratch, host))
        return variables
    variables = site_baseline(env, scratch, host)
    if kind == "render":
        variables.update(render_dir=str(scratch / "rendered" / host), cilium_eks_render_dir=str(scratch / "rendered" / host))
    return variables


def run_playbook_cases(run_playbook, env, scratch, kind):
    hosts = {case["id"]: dict(playbook_baseline(kind, env, scratch, case["id"]), **case["vars"])
             for case in _by_kind("playbook") if case["playbook"] == kind}
    inventory = write_inventory(scratch / f"{kind}-inventory.yml", "eks_clusters", hosts)
    playbook = REPO_ROOT / "playbooks" / f"{kind}.yml"
    if kind == "embedded":
        playbook = scratch / "embedded.yml"
        playbook.write_text(yaml.safe_dump(EMBEDDED_PLAYBOOK, sort_keys=False))
    return run_playbook(playbook, inventory, env, args=("--forks", FORKS), timeout=600)


@pytest.fixture(scope="module")
def matrix(sandbox_factory, run_playbook, kubectl, helm, tmp_path_factory):
    """Run every case against one sandbox; returns (state before, state after, {case id: (result, stats)})."""
    box = sandbox_factory(SANDBOX, nodes=2, agent_not_ready_taint=True)
    env = dict(os.environ, **box.env)
    scratch = tmp_path_factory.mktemp("bad-input")
    before = sandbox_state(env, kubectl, helm)
    results = [run_role_and_module_cases(run_playbook, env, scratch)]
    results += [run_playbook_cases(run_playbook, env, scratch, kind) for kind in PLAYBOOKS]
    after = sandbox_state(env, kubectl, helm)
    outcomes = {}
    for result in results:
        for host, stats in result.stats.items():
            outcomes[host] = {"stats": stats, "message": result.failure_message(host)}
    return {"before": before, "after": after, "outcomes": outcomes, "results": results, "scratch": scratch}


def test_nothing_changed_in_aws_or_kubernetes(matrix):
    assert matrix["before"]["aws"] == matrix["after"]["aws"]
    assert matrix["before"]["helm"] == matrix["after"]["helm"]
    before, after = matrix["before"]["kubernetes"], matrix["after"]["kubernetes"]
    changed = sorted(key for key in set(before) | set(after) if before.get(key) != after.get(key))
    assert changed == []


def test_no_tool_was_installed_and_nothing_rendered(matrix):
    assert sorted(str(path) for path in matrix["scratch"].rglob("bin")) == []
    assert sorted(str(path) for path in matrix["scratch"].glob("rendered/*/*")) == []


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_bad_input_is_refused_naming_it(matrix, case):
    outcome = matrix["outcomes"].get(case["id"])
    assert outcome is not None, [result.stderr[-3000:] for result in matrix["results"]]
    assert outcome["stats"]["failures"] == 1, outcome
    assert outcome["stats"]["changed"] == 0, outcome
    assert case["expect"] in outcome["message"], outcome["message"]
