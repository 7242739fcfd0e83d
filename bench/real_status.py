"""``cilium_status`` against the real ``cilium status --wait`` on the same real Cilium agents (2 and 3 nodes).

Each size is a real-Cilium sandbox (``SandboxSpec(cilium="real")``: the chart's agents and operator run for
real, tests/platform/eks_sandbox/node_runtime.py) with the Cilium 1.20.2 chart in ENI mode. Two situations, each
repeated, one tool after the other:

* **settled**: every agent Ready; the time to confirm it: the ``cilium_status`` module (``ansible localhost -m
  cloudnet.cilium_eks.cilium_status``, as a playbook task runs it) against ``cilium status --wait``;
* **after a restart**: each tool starts right after its own ``kubectl rollout restart ds/cilium``; the time until
  it reports the agents healthy again (both wait for the new agents: the module's timeout and the CLI's
  ``--wait-duration`` are 5 minutes).

Prints a table with the medians and the ratio (module / CLI: below 1 means the module is faster), and writes
bench/results/real_status.json. Usage:
``python bench/real_status.py [--sizes 2,3] [--repeat N]``.
"""
import subprocess
import sys

import _common as bench

NAME = "bench-real"
WAIT = "5m"


def restart(env):
    subprocess.run(["kubectl", "--namespace", "kube-system", "rollout", "restart", "daemonset/cilium"], env=env,
                   check=True, cwd=bench.REPO_ROOT, stdout=subprocess.DEVNULL)


def settle(env):
    subprocess.run(["kubectl", "--namespace", "kube-system", "rollout", "status", "daemonset/cilium", "--timeout",
                    WAIT], env=env, check=True, cwd=bench.REPO_ROOT, stdout=subprocess.DEVNULL)


def measure(repeat, env, kubeconfig, cilium):
    commands = {"cilium_status module": bench.status_module_argv(kubeconfig, timeout=300),
                "cilium status --wait (CLI)": [cilium, "status", "--wait", "--wait-duration", WAIT,
                                               "--namespace", "kube-system"]}
    figures = {}
    for situation in ("settled", "after a restart"):
        for label, argv in commands.items():
            runs = []
            for _rep in range(repeat):
                settle(env)
                if situation == "after a restart":
                    restart(env)
                runs.append(bench.run_measured(argv, env=env, timeout=600))
            figures[(situation, label)] = {
                "seconds": [r["seconds"] for r in runs], "median_seconds": bench.median([r["seconds"] for r in runs]),
                "max_rss_mb": max(r["max_rss_mb"] for r in runs), "load": bench.load()}
            print("bench: %s, %s: %s" % (situation, label, figures[(situation, label)]), file=sys.stderr)
    return figures


def main(argv=None):
    ap = bench.parser(__doc__.splitlines()[0], sizes=[2, 3], repeat=3)
    args = bench.options(ap, argv)
    started_load = bench.load()
    cilium = bench.cilium_cli()
    results, rows = {}, []
    for size in args.sizes:
        with bench.sandbox("%s-%d" % (NAME, size), nodes=size, cilium="real") as box:
            env = bench.sandbox_env(box)
            bench.install_cilium(box, env, timeout="10m")
            figures = measure(args.repeat, env, box.kubeconfig, cilium)
        results[size] = {"%s / %s" % key: value for key, value in figures.items()}
        for situation in ("settled", "after a restart"):
            ours, cli = figures[(situation, "cilium_status module")], figures[(situation, "cilium status --wait (CLI)")]
            rows.append([size, situation, ours["median_seconds"], cli["median_seconds"],
                         round(ours["median_seconds"] / cli["median_seconds"], 2), ours["load"]])
    print(bench.table(["nodes", "situation", "module s", "CLI --wait s", "module/CLI", "load"], rows))
    bench.write_results("real_status", {"repeat": args.repeat, "cilium": "real 1.20.2 agents and operator",
                                        "by_nodes": results, "rows": rows}, started_load,
                        notes=["real agents: the node runtime runs the chart's pods (docs/real-cilium.md)",
                               "module: ansible ad hoc of cloudnet.cilium_eks.cilium_status, as a playbook task",
                               "max_rss_mb is not a measure of the tools here: a forked child starts with the"
                               " benchmark's own peak RSS (Linux keeps maxrss across fork and exec), so both"
                               " columns show the benchmark process; no memory figure is claimed"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
