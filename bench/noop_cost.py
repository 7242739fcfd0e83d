"""No-op cost: a second site.yml run on a converged cluster against the read-only commands an operator runs.

On one sandbox (2 tainted nodes, real datapath, site.yml converged once), each repetition times:

* ``ansible-playbook playbooks/site.yml`` again (changed=0 is checked) with the bandwidth measurement
  and the connectivity test off (``cilium_eks_verify_bandwidth=false``; the connectivity test is off
  by default); ``cilium_status`` stays, it is part of the same assurance;
* with ``--baseline REF``, the same no-op run of the collection as it was at git ``REF`` (``git archive``
  into a scratch folder, beside this tree's dependencies), on the same sandbox, in the same repetition: the
  "before" of a change and its "after" under the same load;
* (after the converge, each no-op play runs once unmeasured: two trees may disagree on a file they write);
* the raw commands giving the same assurance, one after the other: ``eksctl get cluster`` (the real
  eksctl), ``helm status cilium``, ``kubectl rollout status ds/cilium`` and ``cilium status``
  (the real cilium CLI; one pass, as ``--wait`` does on a healthy cluster).

Prints the medians and the ratios no-op / raw commands of wall time (the target: 4 this round, 1.5 in the
long run) and of CPU time (user + system of the process trees, which the machine's load moves much less).
``--profile`` adds the ten slowest tasks of the last no-op run (ansible.posix.profile_tasks).
Usage: ``python bench/noop_cost.py [--repeat N] [--baseline main] [--profile]``.
"""
import contextlib
import re
import sys
import tempfile

import _common as bench

NAME = "bench-noop"
TARGET_RATIO = 4.0  # this round (issue 16); the long-run target is 1.5
LONG_RUN_TARGET = 1.5
NOOP = ["cilium_eks_verify_bandwidth=false"]


def raw_commands(env, name, region, cilium):
    return {
        "eksctl get cluster": [env["CILIUM_EKS_EKSCTL"], "get", "cluster", "--name", name, "--region", region,
                               "-o", "json"],
        "helm status cilium": [env["CILIUM_EKS_HELM"], "status", "cilium", "--namespace", "kube-system"],
        "kubectl rollout status ds/cilium": ["kubectl", "--namespace", "kube-system", "rollout", "status",
                                             "daemonset/cilium", "--timeout", "60s"],
        "cilium status": [cilium, "status", "--namespace", "kube-system"],
    }


def slowest_tasks(output, count=10):
    """(task, seconds) of the profile_tasks recap, slowest first."""
    found = re.findall(r"^(.+?) -{2,} (\d+\.\d+)s$", output, flags=re.MULTILINE)
    return [(task.strip(), float(seconds)) for task, seconds in found][:count]


def changed_count(output, host):
    match = re.search(r"^%s\s+: ok=\d+\s+changed=(\d+)" % re.escape(host), output, flags=re.MULTILINE)
    return int(match.group(1)) if match else None


def noop_run(argv, env, what):
    """One no-op site.yml run; it must change nothing."""
    result = bench.run_measured(argv, env=env)
    changed = changed_count(result["output"], NAME)
    if changed != 0:
        raise RuntimeError("the no-op site.yml run of %s reported changed=%s, not 0:\n%s"
                           % (what, changed, result["output"][-3000:]))
    return result


def repetition(plays, commands, env, runs, profile):
    """One repetition: every no-op play (in the given order), then the raw commands."""
    outputs = {}
    for label, (argv, play_env) in plays:
        play_env = dict(play_env, ANSIBLE_CALLBACKS_ENABLED="ansible.posix.profile_tasks") if profile else play_env
        result = noop_run(argv, play_env, label)
        runs[label].append((result["seconds"], result["cpu_seconds"]))
        outputs[label] = result["output"]
    total = [0.0, 0.0]
    for label, command in commands.items():
        result = bench.run_measured(command, env=env, check=label != "cilium status")
        runs[label].append((result["seconds"], result["cpu_seconds"]))
        total = [total[0] + result["seconds"], total[1] + result["cpu_seconds"]]
    runs["raw commands (sum)"].append((round(total[0], 3), round(total[1], 3)))
    return outputs


def report(runs, repeat, loads):
    medians = {label: (bench.median([v[0] for v in values]), bench.median([v[1] for v in values]))
               for label, values in runs.items()}
    raw = medians["raw commands (sum)"]
    rows = [[label, wall, min(v[0] for v in runs[label]), max(v[0] for v in runs[label]), cpu]
            for label, (wall, cpu) in medians.items()]
    print(bench.table(["what (repeat %d)" % repeat, "median s", "min s", "max s", "median CPU s"], rows))
    ratios = {}
    for label in (label for label in runs if label.startswith("site.yml")):
        wall, cpu = medians[label]
        ratios[label] = {"wall": round(wall / raw[0], 2), "cpu": round(cpu / raw[1], 2)}
        print("ratio %s / raw commands: %.2f wall (target <= %.1f this round: %s; <= %.1f long run: %s), %.2f CPU"
              % (label, ratios[label]["wall"], TARGET_RATIO, "met" if ratios[label]["wall"] <= TARGET_RATIO
                 else "MISSED", LONG_RUN_TARGET, "met" if ratios[label]["wall"] <= LONG_RUN_TARGET else "missed",
                 ratios[label]["cpu"]))
    print("load during runs %s" % loads)
    return medians, ratios


def main(argv=None):
    ap = bench.parser(__doc__.splitlines()[0], sizes=[2], repeat=5)
    ap.add_argument("--profile", action="store_true", help="profile the last no-op run's tasks")
    ap.add_argument("--baseline", metavar="REF", help="also time the no-op run of the collection at git REF")
    args = bench.options(ap, argv)
    started_load = bench.load()
    cilium = bench.cilium_cli()
    with bench.sandbox(NAME, nodes=args.sizes[0], taint=True, datapath=True) as box, \
            tempfile.TemporaryDirectory(prefix="bench-noop-") as scratch, \
            (bench.collection_at(args.baseline) if args.baseline else contextlib.nullcontext((None, None))) \
            as (baseline_tree, baseline_env):
        env = bench.sandbox_env(box)
        inventory = bench.write_inventory(scratch + "/this", [box])
        converge = bench.run_measured(bench.site_playbook(inventory, env), env=env)
        print("bench: converged once in %.1fs (load %s)" % (converge["seconds"], bench.load()), file=sys.stderr)
        plays = [("site.yml no-op (this tree)", (bench.site_playbook(inventory, env, NOOP), env))]
        if baseline_tree:
            old_inventory = bench.write_inventory(scratch + "/baseline", [box], baseline_tree / "inventories" / "sandbox")
            plays.append(("site.yml no-op (%s)" % args.baseline, (bench.site_playbook(
                old_inventory, env, NOOP, root=baseline_tree), dict(env, **baseline_env))))
        for label, (argv, play_env) in plays:  # one unmeasured run each: the trees may differ in what they write
            bench.run_measured(argv, env=play_env)
        commands = raw_commands(env, NAME, box.spec.region, cilium)
        runs = {label: [] for label, _play in plays}
        runs.update({label: [] for label in commands})
        runs["raw commands (sum)"] = []
        loads, profile = [], None
        for rep in range(args.repeat):
            last = rep == args.repeat - 1
            order = plays if rep % 2 == 0 else list(reversed(plays))  # neither always runs first
            outputs = repetition(order, commands, env, runs, args.profile and last)
            loads.append(bench.load())
            if args.profile and last:
                profile = {label: slowest_tasks(output) for label, output in outputs.items()}
    medians, ratios = report(runs, args.repeat, loads)
    for label, tasks in (profile or {}).items():
        print(bench.table(["slowest tasks, last run of %s" % label, "s"], tasks))
    bench.write_results("noop_cost", {
        "repeat": args.repeat, "nodes": args.sizes[0], "baseline": args.baseline,
        "converge_seconds": converge["seconds"], "runs_seconds_and_cpu": runs, "median_seconds_and_cpu": medians,
        "ratios": ratios, "target_ratio": TARGET_RATIO, "long_run_target_ratio": LONG_RUN_TARGET,
        "load_per_repetition": loads, "slowest_tasks": profile,
    }, started_load, notes=["cilium status is one pass without --wait: the sandbox's agent replay does not answer"
                            " `cilium-dbg endpoint list`, so --wait never settles there",
                            "runs: (wall seconds, CPU seconds of the process tree) per repetition"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
