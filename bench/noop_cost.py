"""No-op cost: a second site.yml run on a converged cluster against the read-only commands an operator runs.

On one sandbox (2 tainted nodes, real datapath, site.yml converged once), each repetition times:

* ``ansible-playbook playbooks/site.yml`` again (changed=0 is checked) with the bandwidth measurement
  and the connectivity test off (``cilium_eks_verify_bandwidth=false``; the connectivity test is off
  by default); ``cilium_status`` stays, it is part of the same assurance;
* the raw commands giving the same assurance, one after the other: ``eksctl get cluster`` (the real
  eksctl), ``helm status cilium``, ``kubectl rollout status ds/cilium`` and ``cilium status``
  (the real cilium CLI; one pass, as ``--wait`` does on a healthy cluster).

Prints the medians and their ratio (target: at most 1.5). ``--profile`` adds the ten slowest tasks of
the last no-op run (ansible.posix.profile_tasks). Usage: ``python bench/noop_cost.py [--repeat N]``.
"""
import re
import sys
import tempfile

import _common as bench

NAME = "bench-noop"
TARGET_RATIO = 1.5


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


def main(argv=None):
    ap = bench.parser(__doc__.splitlines()[0], sizes=[2], repeat=5)
    ap.add_argument("--profile", action="store_true", help="profile the last no-op run's tasks")
    args = bench.options(ap, argv)
    started_load = bench.load()
    cilium = bench.cilium_cli()
    with bench.sandbox(NAME, nodes=args.sizes[0], taint=True, datapath=True) as box, \
            tempfile.TemporaryDirectory(prefix="bench-noop-") as scratch:
        env = bench.sandbox_env(box)
        inventory = bench.write_inventory(scratch, [box])
        converge = bench.run_measured(bench.site_playbook(inventory, env), env=env)
        print("bench: converged once in %.1fs (load %s)" % (converge["seconds"], bench.load()), file=sys.stderr)
        commands = raw_commands(env, NAME, box.spec.region, cilium)
        runs = {"site.yml (no-op)": []}
        runs.update({label: [] for label in commands})
        runs["raw commands (sum)"] = []
        loads, profile = [], None
        for rep in range(args.repeat):
            last = rep == args.repeat - 1
            play_env = dict(env, ANSIBLE_CALLBACKS_ENABLED="ansible.posix.profile_tasks") \
                if args.profile and last else env
            noop = bench.run_measured(bench.site_playbook(inventory, play_env, ["cilium_eks_verify_bandwidth=false"]),
                                      env=play_env)
            changed = changed_count(noop["output"], NAME)
            if changed != 0:
                raise RuntimeError("the second site.yml run reported changed=%s, not 0" % changed)
            runs["site.yml (no-op)"].append(noop["seconds"])
            total = 0.0
            for label, command in commands.items():
                result = bench.run_measured(command, env=env, check=label != "cilium status")
                runs[label].append(result["seconds"])
                total += result["seconds"]
            runs["raw commands (sum)"].append(round(total, 3))
            loads.append(bench.load())
            if args.profile and last:
                profile = slowest_tasks(noop["output"])
    medians = {label: bench.median(values) for label, values in runs.items()}
    ratio = round(medians["site.yml (no-op)"] / medians["raw commands (sum)"], 2)
    rows = [[label, medians[label], min(values), max(values)] for label, values in runs.items()]
    print(bench.table(["what (repeat %d)" % args.repeat, "median s", "min s", "max s"], rows))
    print("ratio site.yml no-op / raw commands: %.2f (target <= %.1f: %s); load during runs %s"
          % (ratio, TARGET_RATIO, "met" if ratio <= TARGET_RATIO else "MISSED", loads))
    if profile:
        print(bench.table(["slowest tasks of the last no-op run", "s"], profile))
    bench.write_results("noop_cost", {
        "repeat": args.repeat, "nodes": args.sizes[0], "converge_seconds": converge["seconds"],
        "runs_seconds": runs, "median_seconds": medians, "ratio": ratio, "target_ratio": TARGET_RATIO,
        "load_per_repetition": loads, "slowest_tasks": profile,
    }, started_load, notes=["cilium status is one pass without --wait: the sandbox's agent replay does not answer"
                            " `cilium-dbg endpoint list`, so --wait never settles there"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
