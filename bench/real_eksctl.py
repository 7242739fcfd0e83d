"""The eks_cluster role against the bare eksctl commands it wraps, both on the real eksctl, same run.

On one empty sandbox (``up --empty``), one after the other:

* the role: create a cluster (2 x t3.medium, tainted, as inventories/sandbox), run it again (no-op,
  changed=0 is checked), delete it with ``eksctl_cluster state=absent``;
* bare eksctl on a second cluster, from the ClusterConfig the role renders (its check-mode plan):
  ``eksctl create cluster -f``, then what an operator runs to see that nothing needs doing
  (``get cluster``, ``get nodegroup``, ``utils write-kubeconfig``), then ``delete cluster --wait``.

A real ``create cluster`` waits at least 150 s by itself (30 s before its first stack poll, 6 API
server probes 20 s apart), so one repetition is the default. Usage: ``python bench/real_eksctl.py
[--repeat N]``.
"""
import json
import sys
import tempfile
from pathlib import Path

import yaml

import _common as bench

NAME = "bench-eksctl"
REGION = "us-east-1"
NODEGROUPS = [{"name": "ng-1", "instance_type": "t3.medium", "desired_size": 2, "min_size": 2, "max_size": 2}]


def play(folder, name, content):
    path = Path(folder) / f"{name}.yml"
    path.write_text(yaml.safe_dump([{"name": name, "hosts": "localhost", "gather_facts": False, **content}]))
    return path


def playbook(path, inventory, env, check=False):
    argv = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory), str(path)]
    return argv + (["--check"] if check else [])


def role_play(folder, env, cluster):
    variables = {"eks_cluster_name": cluster, "eks_cluster_region": REGION, "eks_cluster_version": "1.34",
                 "eks_cluster_eksctl_path": env["CILIUM_EKS_EKSCTL"], "eks_cluster_nodegroups": NODEGROUPS,
                 "eks_cluster_kubeconfig": str(Path(folder) / f"{cluster}.kubeconfig")}
    return play(folder, f"role-{cluster}", {"roles": [{"role": "cloudnet.cilium_eks.eks_cluster",
                                                       "vars": variables}]})


def delete_play(folder, env, cluster):
    return play(folder, f"delete-{cluster}", {"tasks": [{"cloudnet.cilium_eks.eksctl_cluster": {
        "name": cluster, "region": REGION, "state": "absent", "eksctl_path": env["CILIUM_EKS_EKSCTL"]}}]})


def rendered_config(folder, inventory, env, cluster):
    """The ClusterConfig the role would hand to eksctl (from its check-mode plan, JSON callback)."""
    result = bench.run_measured(playbook(role_play(folder, env, cluster), inventory, env, check=True),
                                env=dict(env, ANSIBLE_STDOUT_CALLBACK="ansible.posix.json"))
    report = json.loads(result["output"][result["output"].index("{"):])
    for task in report["plays"][0]["tasks"]:
        if task["task"]["name"].endswith("Plan the changes (read-only; the whole run in check mode)"):
            path = Path(folder) / f"{cluster}.yaml"
            path.write_text(yaml.safe_dump(task["hosts"]["localhost"]["config"]))
            return path
    raise RuntimeError("no plan in the check-mode run")


def changed(output):
    for line in output.splitlines():
        if line.startswith("localhost") and "changed=" in line:
            return int(line.split("changed=")[1].split()[0])
    return None


def role_runs(folder, inventory, env):
    cluster = NAME + "-role"
    create = bench.run_measured(playbook(role_play(folder, env, cluster), inventory, env), env=env)
    noop = bench.run_measured(playbook(role_play(folder, env, cluster), inventory, env), env=env)
    if changed(noop["output"]) != 0:
        raise RuntimeError("the role's second run reported changed=%s" % changed(noop["output"]))
    delete = bench.run_measured(playbook(delete_play(folder, env, cluster), inventory, env), env=env)
    return {"create": create["seconds"], "no-op": noop["seconds"], "delete": delete["seconds"]}


def bare_runs(folder, inventory, env):
    cluster = NAME + "-bare"
    config = rendered_config(folder, inventory, env, cluster)
    eksctl = env["CILIUM_EKS_EKSCTL"]
    create = bench.run_measured([eksctl, "create", "cluster", "-f", str(config), "--write-kubeconfig=false"], env=env)
    noop = 0.0
    for args in (["get", "cluster", "--name", cluster, "--region", REGION, "-o", "json"],
                 ["get", "nodegroup", "--cluster", cluster, "--region", REGION, "-o", "json"],
                 ["utils", "write-kubeconfig", "--cluster", cluster, "--region", REGION,
                  "--kubeconfig", str(Path(folder) / f"{cluster}.kubeconfig")]):
        noop += bench.run_measured([eksctl, *args], env=env)["seconds"]
    delete = bench.run_measured([eksctl, "delete", "cluster", "--name", cluster, "--region", REGION, "--wait"],
                                env=env)
    return {"create": create["seconds"], "no-op": round(noop, 3), "delete": delete["seconds"]}


def main(argv=None):
    ap = bench.parser(__doc__.splitlines()[0], sizes=[2], repeat=1)
    args = bench.options(ap, argv)
    started_load = bench.load()
    runs = {"role": [], "bare eksctl": []}
    with bench.sandbox(NAME, nodes=0, aws=True, seed=False) as box, \
            tempfile.TemporaryDirectory(prefix="bench-eksctl-") as scratch:
        env = bench.sandbox_env(box)
        inventory = Path(scratch) / "inventory.ini"
        inventory.write_text("localhost ansible_connection=local ansible_python_interpreter=%s\n" % sys.executable)
        for _repetition in range(args.repeat):
            runs["role"].append(role_runs(scratch, inventory, env))
            runs["bare eksctl"].append(bare_runs(scratch, inventory, env))
    figures = {who: {step: bench.median([r[step] for r in rows]) for step in ("create", "no-op", "delete")}
               for who, rows in runs.items()}
    rows = [[step, figures["role"][step], figures["bare eksctl"][step],
             round(figures["role"][step] / figures["bare eksctl"][step], 2)] for step in ("create", "no-op", "delete")]
    print(bench.table(["step (s, median)", "eks_cluster role", "bare eksctl", "ratio"], rows))
    from eks_sandbox import versions

    bench.write_results("real_eksctl", {"figures": figures, "runs": runs, "repeat": args.repeat}, started_load,
                        notes=["real eksctl %s on an empty sandbox; bare no-op = get cluster + get nodegroup + utils "
                               "write-kubeconfig" % versions.EKSCTL])


if __name__ == "__main__":
    main()
