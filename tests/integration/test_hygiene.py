"""Safety by omission: what a user forgets must not create or change anything billed.

* eks_cluster without eks_cluster_name fails in its argument validation, before any AWS call, naming the variable
  (it used to default to the blog's `basic-cilium`, so a forgotten variable created or converged a real, billed
  cluster of that name: ux-review #10).
* The built tarball holds no development-only file.
"""
import subprocess
import sys
import tarfile
from pathlib import Path

import yaml

from helpers import local_inventory, write_play

REPO = Path(__file__).resolve().parents[2]


def test_eks_cluster_without_a_name_creates_nothing(run_playbook, tmp_path):
    # An endpoint nothing listens on: any AWS call would fail differently (and slowly).
    env = {"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_ACCESS_KEY_ID": "AKIAFAKE", "AWS_SECRET_ACCESS_KEY": "x",
           "AWS_REGION": "us-east-1"}
    play = write_play(tmp_path / "play.yml", role="eks_cluster",
                      variables={"eks_cluster_kubeconfig": str(tmp_path / "kubeconfig")})
    result = run_playbook(play, local_inventory(tmp_path / "inventory.ini"), env)
    assert result.rc != 0
    failures = " ".join(message for _task, message in result.failures())
    assert "eks_cluster_name" in failures and "required" in failures, failures
    assert "basic-cilium" not in result.stdout
    assert not (tmp_path / "kubeconfig").exists()


DEV_ONLY = ("tests/", "extensions/", "docs/site/", "changelogs/fragments/", "requirements-dev.in",
            "requirements-dev.lock", ".ansible-lint", "ansible.cfg", "inventories/sandbox/", "site.yml", "bench/",
            "scripts/", "Makefile", "execution-environment.yml")


def test_the_tarball_ships_no_dev_only_files(tmp_path):
    """ux-review #11: the built collection held tests, molecule scenarios, the Sphinx config, fragments, the dev
    requirements and configuration that cannot run from an installed collection."""
    built = subprocess.run([str(Path(sys.executable).parent / "ansible-galaxy"), "collection", "build", str(REPO),
                            "--output-path", str(tmp_path)], capture_output=True, text=True, check=False)
    assert built.returncode == 0, built.stderr
    with tarfile.open(next(tmp_path.glob("cloudnet-cilium_eks-*.tar.gz"))) as archive:
        names = archive.getnames()
    assert [n for n in names if n.startswith(DEV_ONLY) or n in DEV_ONLY] == []
    for shipped in ("playbooks/site.yml", "meta/runtime.yml", "roles/cilium_eni/tasks/main.yml",
                    "plugins/modules/cilium_status.py", "docs/embedding.md", "inventories/aws.example/hosts.yml",
                    "requirements.txt", "bindep.txt"):
        assert shipped in names


def test_the_changelog_is_generated_from_the_fragments():
    """ux-review #7 (Changelog): the fragments had no CHANGELOG made from them. CHANGELOG.rst and .md are
    antsibull-changelog's output for galaxy.yml's version (scripts/gen_changelog.py); a fragment added without
    `make changelog` fails here."""
    checked = subprocess.run([sys.executable, str(REPO / "scripts" / "gen_changelog.py"), "--check"],
                             capture_output=True, text=True, timeout=300, check=False)
    assert checked.returncode == 0, checked.stderr
    version = yaml.safe_load((REPO / "galaxy.yml").read_text())["version"]
    assert f"v{version}\n" in (REPO / "CHANGELOG.rst").read_text()
