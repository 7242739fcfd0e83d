"""Scale: ``cilium_status`` against the real ``cilium status`` on clusters of 10 to 1000 kwok nodes.

For each size, a sandbox with that many nodes gets Cilium from the platform's chart (helm, ENI mode, no
Envoy DaemonSet): an agent pod per node, each answering ``kubectl exec`` through the agent replay. Each
repetition times, one after the other, with the peak RSS of each process tree:

* ``cilium_status`` in-process asking every agent (``CiliumStatusChecker.wait`` in a fresh Python process:
  bench/_status_once.py);
* the same with ``sample_agents=25`` (25 agents asked, the others counted through their Ready condition);
* the ``cilium_status`` module with ``sample_agents=25`` (``ansible localhost -m cloudnet.cilium_eks.cilium_status``);
* ``cilium status`` of the real cilium CLI, one pass (its ``--wait`` repeats that pass until it is clean,
  which never happens in the sandbox: the replay does not answer ``cilium-dbg endpoint list``).

Sizes whose predicted duration (from the previous size, linearly) exceeds ``--budget`` seconds are skipped
and reported as such. Usage: ``python bench/scale.py [--sizes 10,100,500,1000] [--repeat N] [--budget S]``.
"""
import json
import sys

import _common as bench

NAME = "bench-scale"
TARGET_SPEEDUP = 2.0
SAMPLE = 25  # sample_agents of the sampled runs


def agents_routed(core, count):
    """Has the agent simulator made the exec routing (a kwok Exec) of every agent pod?"""
    from kubernetes import client

    execs = client.CustomObjectsApi(core.api_client).list_namespaced_custom_object(
        "kwok.x-k8s.io", "v1alpha1", "kube-system", "execs")
    return len(execs.get("items") or []) >= count


def measure(size, repeat, env, kubeconfig, cilium):
    once = [sys.executable, str(bench.REPO_ROOT / "bench" / "_status_once.py"), kubeconfig]
    commands = {
        "cilium_status in-process": once,
        "cilium_status in-process, sample": once + [str(SAMPLE)],
        "cilium_status module, sample": bench.status_module_argv(kubeconfig, timeout=1800, sample_agents=SAMPLE),
        "cilium status (CLI, one pass)": [cilium, "status", "--namespace", "kube-system"],
    }
    figures = {}
    for label, argv in commands.items():
        runs = [bench.run_measured(argv, env=env, check=not label.startswith("cilium status"), timeout=3600)
                for _rep in range(repeat)]
        figures[label] = {"seconds": [r["seconds"] for r in runs], "median_seconds": bench.median(
            [r["seconds"] for r in runs]), "max_rss_mb": max(r["max_rss_mb"] for r in runs), "load": bench.load()}
        if "in-process" in label:
            figures[label]["checker_seconds"] = [json.loads(r["output"].strip().splitlines()[-1])["elapsed"]
                                                 for r in runs]
        print("bench: %d nodes, %s: %s" % (size, label, figures[label]), file=sys.stderr)
    return figures


def main(argv=None):
    ap = bench.parser(__doc__.splitlines()[0], sizes=[10, 100, 500, 1000], repeat=3)
    ap.add_argument("--budget", type=float, default=1800, help="skip a size predicted to take longer (seconds)")
    args = bench.options(ap, argv)
    started_load = bench.load()
    cilium = bench.cilium_cli()
    from kubernetes import client

    results, rows, skipped, last = {}, [], [], None
    for size in args.sizes:
        if last and last[1] * size / last[0] > args.budget:
            skipped.append("%d nodes: predicted %.0fs from %d nodes, over the %.0fs budget"
                           % (size, last[1] * size / last[0], last[0], args.budget))
            continue
        with bench.sandbox("%s-%d" % (NAME, size), nodes=size, taint=False, aws=False, vpc_cni=False) as box:
            env = bench.sandbox_env(box)
            bench.install_cilium(box, env, timeout="30m")
            core = client.CoreV1Api(bench.kube_client(box))
            bench.wait_until(lambda: agents_routed(core, size), "exec routing of %d agents" % size, timeout=1800)
            figures = measure(size, args.repeat, env, box.kubeconfig, cilium)
        results[size] = figures
        ours = figures["cilium_status in-process"]
        sampled = figures["cilium_status in-process, sample"]
        module = figures["cilium_status module, sample"]
        cli = figures["cilium status (CLI, one pass)"]
        rows.append([size, ours["median_seconds"], ours["max_rss_mb"], sampled["median_seconds"],
                     module["median_seconds"], module["max_rss_mb"], cli["median_seconds"], cli["max_rss_mb"],
                     round(cli["median_seconds"] / ours["median_seconds"], 2),
                     round(cli["median_seconds"] / sampled["median_seconds"], 2), ours["load"]])
        last = (size, sum(f["median_seconds"] for f in figures.values()) * args.repeat)
    print(bench.table(["nodes", "every agent s", "MB", "sample %d s" % SAMPLE, "module, sample s", "module MB",
                       "CLI s", "CLI MB", "CLI/every", "CLI/sample", "load"], rows))
    for line in skipped:
        print("skipped: " + line)
    bench.write_results("scale", {"repeat": args.repeat, "target_speedup_at_1000": TARGET_SPEEDUP, "sample_agents": SAMPLE,
                                  "by_nodes": results, "skipped": skipped}, started_load,
                        notes=["cilium status is one pass without --wait (the replay does not answer"
                               " `cilium-dbg endpoint list`, so --wait never settles in the sandbox)",
                               "max_rss_mb: peak RSS of the process tree (wait4), the agent replays excluded"
                               " (they are children of kwok-controller)"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
