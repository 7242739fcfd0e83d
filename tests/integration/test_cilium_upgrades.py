"""Cilium upgrades through cilium_eni: one minor at a time, upgradeCompatibility kept, downgrades and jumps refused.

Cilium's upgrade guide: "The only tested rollback and upgrade path is between consecutive minor releases"
(Documentation/operations/upgrade-warning.rst at v1.20.2 l.16-22), and ``upgradeCompatibility`` "should be set to the
initial Cilium version which was installed in this cluster" (Documentation/operations/upgrade.rst l.157-159). The
agents here are the sandbox's replayed ones (the real-agent platform is not in this branch): they report the version
of their image, which the role's wait and verify phases check after the upgrade.
"""
import pytest
from helpers import cilium_role_vars, helm_json, helm_run, local_inventory, start_sandbox, write_play

from eks_sandbox import charts


def role_play(tmp_path, box, helm, version, **extra):
    variables = cilium_role_vars("cilium_eni", box, helm, version, **extra)
    return (write_play(tmp_path / f"eni-{version}.yml", f"cilium_eni {version}", role="cilium_eni",
                       variables=variables),
            local_inventory(tmp_path / "inventory.ini"))


def history(helm, box):
    return [(r["revision"], r["chart"], r["status"]) for r in helm_json(helm, box.env, "history", "cilium")]


@pytest.fixture(scope="module")
def box(sandbox_factory):
    return start_sandbox(sandbox_factory, "it-cilium-upgrade", nodes=1)


def test_next_minor_upgrade_keeps_the_defaults_of_the_installed_minor(box, helm, run_playbook, tmp_path):
    play, inventory = role_play(tmp_path, box, helm, "1.19.7")
    assert run_playbook(play, inventory, box.env).rc == 0
    assert "upgradeCompatibility" not in helm_json(helm, box.env, "get", "values", "cilium")

    play, inventory = role_play(tmp_path, box, helm, "1.20.2")
    result = run_playbook(play, inventory, box.env)
    assert result.rc == 0, result
    assert [chart for _rev, chart, _status in history(helm, box)] == ["cilium-1.19.7", "cilium-1.20.2"]
    # unset on chart 1.19 means "1.19": pinned so that 1.20's new defaults do not flip on this cluster
    assert helm_json(helm, box.env, "get", "values", "cilium")["upgradeCompatibility"] == "1.19"
    again = run_playbook(play, inventory, box.env)
    assert again.rc == 0 and again.changed("sandbox") == 0, again
    assert len(history(helm, box)) == 2


def test_a_downgrade_is_refused_before_any_change(box, helm, run_playbook, tmp_path):
    before = history(helm, box)
    play, inventory = role_play(tmp_path, box, helm, "1.19.7")
    result = run_playbook(play, inventory, box.env)
    assert result.rc != 0 and result.failed("sandbox") == 1, result
    assert "Invalid `cilium_eni_version` '1.19.7': Cilium 1.20.2 is installed and 1.19.7 is a downgrade" in result.stdout
    assert "helm rollback" in result.stdout
    assert history(helm, box) == before


def test_a_jump_over_minors_is_refused_before_any_change(box, helm, run_playbook, tmp_path):
    helm_run(helm, box.env, "uninstall", "cilium", "-n", "kube-system", "--wait")
    helm_run(helm, box.env, "install", "cilium", str(charts.ensure_chart("1.13.4")), "-n", "kube-system",
             "--set", "eni.enabled=true,ipam.mode=eni,tunnel=disabled,cluster.name=it-cilium-upgrade")
    before = history(helm, box)
    play, inventory = role_play(tmp_path, box, helm, "1.20.2")
    result = run_playbook(play, inventory, box.env)
    assert result.rc != 0 and result.failed("sandbox") == 1, result
    assert "Cilium 1.13.4 -> 1.20.2 skips 1.14, 1.15, 1.16, 1.17, 1.18, 1.19" in result.stdout
    assert history(helm, box) == before
