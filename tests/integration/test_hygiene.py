"""Safety by omission: what a user forgets must not create or change anything billed.

* eks_cluster without eks_cluster_name fails in its argument validation, before any AWS call, naming the variable
  (it used to default to the blog's `basic-cilium`, so a forgotten variable created or converged a real, billed
  cluster of that name: ux-review #10).
"""
from helpers import local_inventory, write_play


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
