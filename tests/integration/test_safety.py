"""Secrets stay out of the output, files get the modes the docs promise, downloads are checksum-verified.

* A playbook that touches AWS (the eks_cluster role, eksctl_cluster_info, amazon.aws modules through the
  NodePort/ICMP rules) and Kubernetes (cilium_status, kubernetes.core.k8s_info with a kubeconfig holding
  inline credentials) runs with -vvv and recognisable fake AWS credentials: neither the secret key, nor the
  session token, nor anything of the kubeconfig's client-key-data, client-certificate-data or token may
  appear in its output. The kubeconfig the role writes is 0600.
* The JUnit report of cilium_connectivity_test is 0644 (as documented) even under a umask of 077.
* The tools role with a pinned digest (tools_checksums) against a release server on 127.0.0.1: a wrong
  digest fails and installs nothing, the right one installs. (test_tools_role.py covers the published
  checksum files; this covers the pinned digests.)
"""
import base64
import json
import os
import stat
import sys
from pathlib import Path

import pytest
import yaml
from fake_releases import VERSIONS, publish, serving, sha256
from helpers import PlaybookResult, local_inventory

SANDBOX = "bad-safety"
REGION = "us-east-1"
FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "AKIAFAKESAFETYCHECK1",
    "AWS_SECRET_ACCESS_KEY": "fakeSecretKey-MUST-NOT-LEAK-0123456789abcdefABCDEF",
    "AWS_SESSION_TOKEN": "fakeSessionToken-MUST-NOT-LEAK-" + "Zm9vYmFy" * 8,
}
FAKE_TOKEN = "fake-bearer-token-MUST-NOT-LEAK-0123456789"
HOST = "localhost"
RECORDING = Path(__file__).resolve().parents[1] / "recordings" / "cilium" / "1.17.4" / "connectivity-test-success.txt"
# RECORDING REPLAY, not the cilium CLI: writes the JUnit file it is asked for with the process umask, as the
# CLI does (os.Create), then prints a recorded successful report.
JUNIT_REPLAY = """#!{python}
import sys

args = sys.argv[1:]
with open(args[args.index("--junit-file") + 1], "w", encoding="utf-8") as handle:
    handle.write('<testsuites name="connectivity test"></testsuites>\\n')
with open({recording!r}, encoding="utf-8") as handle:
    sys.stdout.write(handle.read())
"""


def inline_kubeconfig(source_path, dest):
    """The sandbox kubeconfig with its certificates and key inlined (``*-data``), plus an unused token user."""
    config = yaml.safe_load(open(source_path, encoding="utf-8"))

    def inline(section, key):
        path = section.pop(key)
        section[key + "-data"] = base64.b64encode(open(path, "rb").read()).decode()

    inline(config["clusters"][0]["cluster"], "certificate-authority")
    inline(config["users"][0]["user"], "client-certificate")
    inline(config["users"][0]["user"], "client-key")
    config["users"].append({"name": "unused-token-user", "user": {"token": FAKE_TOKEN}})
    dest.write_text(yaml.safe_dump(config))
    dest.chmod(0o600)
    return config


def secrets_of(kubeconfig):
    """Every string that must not be printed: the fake AWS secrets, the kubeconfig's credentials both
    base64-encoded and decoded, and each line of the PEM key body."""
    user = kubeconfig["users"][0]["user"]
    secrets = [FAKE_AWS["AWS_SECRET_ACCESS_KEY"], FAKE_AWS["AWS_SESSION_TOKEN"], FAKE_TOKEN]
    for key in ("client-key-data", "client-certificate-data"):
        secrets.append(user[key])
        pem = base64.b64decode(user[key]).decode()
        secrets += [line for line in pem.splitlines() if line and not line.startswith("-----") and len(line) > 16]
    return secrets


@pytest.fixture(scope="module")
def box(sandbox_factory):
    return sandbox_factory(SANDBOX, nodes=2, agent_not_ready_taint=True)


@pytest.fixture(scope="module")
def verbose_run(box, run_playbook, tmp_path_factory):
    work = tmp_path_factory.mktemp("safety")
    inline = work / "inline.kubeconfig"
    kubeconfig = inline_kubeconfig(box.kubeconfig, inline)
    written = work / "kube" / "eks.kubeconfig"
    env = dict(os.environ, **box.env)
    env.update(FAKE_AWS)
    role_vars = {
        "eks_cluster_name": SANDBOX, "eks_cluster_region": REGION, "eks_cluster_version": "1.34",
        "eks_cluster_nodegroups": [{"name": "ng-1", "instance_type": "t3.medium", "desired_size": 2,
                                    "min_size": 2, "max_size": 2}],
        "eks_cluster_eksctl_path": env["CILIUM_EKS_EKSCTL"], "eks_cluster_kubeconfig": str(written),
        "eks_cluster_open_nodeport_icmp": True, "eks_cluster_poll_interval": 2, "eks_cluster_node_wait_timeout": 120,
    }
    playbook = work / "verbose.yml"
    tasks = [
        {"name": "Converge the sandbox's cluster", "ansible.builtin.include_role": {
            "name": "cloudnet.cilium_eks.eks_cluster"}, "vars": role_vars},
        {"name": "Read the cluster and its stacks", "cloudnet.cilium_eks.eksctl_cluster_info": {
            "name": SANDBOX, "region": REGION, "stacks": True}},
        {"name": "Read the nodes with the inline kubeconfig", "kubernetes.core.k8s_info": {
            "kind": "Node", "kubeconfig": str(inline)}, "register": "nodes"},
        {"name": "Read Cilium's status with the inline kubeconfig (not installed: fails)",
         "cloudnet.cilium_eks.cilium_status": {"kubeconfig": str(inline), "wait": False},
         "register": "cilium", "failed_when": False},
    ]
    play = {"name": "Touch AWS and Kubernetes", "hosts": HOST, "gather_facts": False, "tasks": tasks}
    playbook.write_text(yaml.safe_dump([play], sort_keys=False))
    result = run_playbook(playbook, local_inventory(work / "inventory.ini", hosts=[HOST]), env, args=("-vvv",))
    return {"result": result, "kubeconfig": kubeconfig, "inline": inline, "written": written}


def task_result(stdout, name):
    """``name``'s result in the json callback's report, which -vvv output precedes on stdout."""
    report, _end = json.JSONDecoder().raw_decode(stdout[stdout.index("\n{") + 1:])
    return PlaybookResult(0, report=report).task(name, HOST)


def test_verbose_run_did_touch_aws_and_kubernetes(verbose_run):
    result = verbose_run["result"]
    assert result.rc == 0, result
    output = result.stdout + result.stderr
    assert "ESTABLISH LOCAL CONNECTION" in output  # -vvv is on
    assert str(verbose_run["inline"]) in output  # module arguments are shown
    nodes = task_result(result.stdout, "Read the nodes with the inline kubeconfig")
    assert len(nodes["resources"]) == 2
    cluster = task_result(result.stdout, "Read the cluster and its stacks")
    assert cluster["exists"] and "stacks" in cluster  # it asked CloudFormation too
    status = task_result(result.stdout, "Read Cilium's status with the inline kubeconfig (not installed: fails)")
    assert "cilium" in status["msg"].lower()  # it reached the cluster and found no Cilium


def test_no_secret_in_verbose_output(verbose_run):
    output = verbose_run["result"].stdout + verbose_run["result"].stderr
    leaked = [secret[:12] + "..." for secret in secrets_of(verbose_run["kubeconfig"]) if secret in output]
    assert leaked == []


def test_written_kubeconfig_is_0600(verbose_run):
    written = verbose_run["written"]
    assert written.is_file()
    assert stat.S_IMODE(written.stat().st_mode) == 0o600


def test_junit_report_is_0644_whatever_the_umask(box, run_playbook, tmp_path):
    replay = tmp_path / "cilium"
    replay.write_text(JUNIT_REPLAY.format(python=sys.executable, recording=str(RECORDING)))
    replay.chmod(0o755)
    junit = tmp_path / "reports" / "connectivity.xml"
    playbook = tmp_path / "connectivity.yml"
    playbook.write_text(yaml.safe_dump([{"name": "Connectivity test", "hosts": HOST, "gather_facts": False, "tasks": [
        {"name": "connectivity test", "cloudnet.cilium_eks.cilium_connectivity_test": {
            "kubeconfig": box.kubeconfig, "cilium_path": str(replay), "junit_file": str(junit), "timeout": 120}}]}]))
    previous = os.umask(0o077)
    try:
        result = run_playbook(playbook, local_inventory(tmp_path / "inventory.ini", hosts=[HOST]), dict(os.environ, **box.env))
    finally:
        os.umask(previous)
    assert result.rc == 0, result
    assert result.task_results("connectivity test")[0][HOST]["junit_file"] == str(junit)
    assert stat.S_IMODE(junit.stat().st_mode) == 0o644


# --- downloads with a pinned digest -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def release(tmp_path_factory):
    """(published archive bytes, base URL) of helm on a release server on 127.0.0.1."""
    root = tmp_path_factory.mktemp("releases")
    publish(root, "helm", VERSIONS["helm"])
    archive = sorted((root / "helm").glob("helm-*.tar.gz"))[0].read_bytes()
    with serving(root) as base:
        yield archive, f"{base}/helm"


def run_tools(run_playbook, tmp_path, base_url, digest):
    playbook = tmp_path / "tools.yml"
    playbook.write_text("- name: Install helm\n  hosts: all\n  gather_facts: false\n  roles:\n"
                        "    - cloudnet.cilium_eks.tools\n")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    env = dict(os.environ, TMPDIR=str(scratch))
    extra = {"tools_bin_dir": str(tmp_path / "bin"), "tools_install": ["helm"],
             "tools_download_base_urls": {"helm": base_url}, "tools_checksums": {"helm": f"sha256:{digest}"}}
    return run_playbook(playbook, local_inventory(tmp_path / "inventory.ini", hosts=[HOST]), env, extra_vars=extra)


def test_pinned_digest_mismatch_installs_nothing(release, run_playbook, tmp_path):
    archive, base_url = release
    wrong = sha256(archive + b"tampered")
    result = run_tools(run_playbook, tmp_path, base_url, wrong)
    assert result.rc != 0
    assert "checksum" in (result.stdout + result.stderr).lower(), result
    assert not (tmp_path / "bin" / "helm").exists()
    assert sorted(p.name for p in (tmp_path / "scratch").iterdir()) == []  # the download was removed too


def test_pinned_digest_match_installs(release, run_playbook, tmp_path):
    archive, base_url = release
    result = run_tools(run_playbook, tmp_path, base_url, sha256(archive))
    assert result.rc == 0, result
    helm = tmp_path / "bin" / "helm"
    assert helm.is_file() and stat.S_IMODE(helm.stat().st_mode) == 0o755
