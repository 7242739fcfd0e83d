"""Many clusters: one site.yml run converging 1, 4 and 8 sandbox clusters with ``--forks N``.

For each size N, N fresh sandboxes (2 tainted nodes each, as ``make sandbox``) and an inventory with one
host per sandbox (inventories/sandbox's group_vars; each host's interpreter exports its own sandbox's
environment: moto endpoint, eksctl). Times the first converge and the second (no-op) run of
``ansible-playbook playbooks/site.yml --forks N`` and checks changed=0 on the second. The bandwidth
measurement is off unless ``--verify-bandwidth`` (it needs a real datapath per sandbox). Cost per cluster
(wall time / N) should stay flat. Usage: ``python bench/many_clusters.py [--sizes 1,4,8] [--repeat N]``.
"""
import contextlib
import re
import sys
import tempfile

import _common as bench

NAME = "bench-mc"


def recap(output):
    """host -> (ok, changed, failed) from the PLAY RECAP."""
    return {host: (int(ok), int(changed), int(failed)) for host, ok, changed, failed in re.findall(
        r"^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=\d+\s+failed=(\d+)", output, flags=re.MULTILINE)}


def run_site(inventory, env, size, extra):
    run = bench.run_measured(bench.site_playbook(inventory, env, extra, forks=size), env=env, check=False)
    hosts = recap(run["output"])
    if run["rc"] != 0 or len(hosts) != size or any(failed for _ok, _changed, failed in hosts.values()):
        raise RuntimeError("site.yml on %d clusters failed (rc %s):\n%s" % (size, run["rc"], run["output"][-4000:]))
    return run["seconds"], sum(changed for _ok, changed, _failed in hosts.values())


def one_size(size, verify_bandwidth):
    extra = [] if verify_bandwidth else ["cilium_eks_verify_bandwidth=false"]
    with contextlib.ExitStack() as stack, tempfile.TemporaryDirectory(prefix="bench-mc-") as scratch:
        boxes = [stack.enter_context(bench.sandbox("%s%d-%d" % (NAME, size, i), nodes=2, taint=True,
                                                   datapath=verify_bandwidth)) for i in range(size)]
        env = bench.sandbox_env(boxes[0])
        inventory = bench.write_inventory(scratch, boxes)
        converge, _changed = run_site(inventory, env, size, extra)
        load_converge = bench.load()
        noop, changed = run_site(inventory, env, size, extra)
        if changed:
            raise RuntimeError("the second run on %d clusters reported changed=%d, not 0" % (size, changed))
        return {"converge_seconds": converge, "noop_seconds": noop, "load_after_converge": load_converge,
                "load_after_noop": bench.load()}


def main(argv=None):
    ap = bench.parser(__doc__.splitlines()[0], sizes=[1, 4, 8], repeat=1)
    ap.add_argument("--verify-bandwidth", action="store_true", help="also measure the limited pod's bandwidth")
    args = bench.options(ap, argv)
    started_load = bench.load()
    results, rows, failures = {}, [], []
    for size in args.sizes:
        try:
            runs = [one_size(size, args.verify_bandwidth) for _rep in range(args.repeat)]
        except Exception as exc:  # noqa: BLE001 - report the sizes reached
            failures.append("%d clusters: %s" % (size, str(exc).splitlines()[0]))
            print("bench: %d clusters failed: %s" % (size, exc), file=sys.stderr)
            break
        converge = bench.median([r["converge_seconds"] for r in runs])
        noop = bench.median([r["noop_seconds"] for r in runs])
        results[size] = {"runs": runs, "converge_median_seconds": converge, "noop_median_seconds": noop,
                         "converge_per_cluster_seconds": round(converge / size, 2),
                         "noop_per_cluster_seconds": round(noop / size, 2)}
        rows.append([size, converge, round(converge / size, 1), noop, round(noop / size, 1),
                     runs[-1]["load_after_converge"]])
        save(args, results, failures, started_load)  # kept if a larger size is stopped
    print(bench.table(["clusters (--forks N)", "converge s", "per cluster", "no-op s", "per cluster", "load"], rows))
    for line in failures:
        print("not reached: " + line)
    save(args, results, failures, started_load)
    return 0


def save(args, results, failures, started_load):
    bench.write_results("many_clusters", {"repeat": args.repeat, "verify_bandwidth": args.verify_bandwidth,
                                          "by_clusters": results, "not_reached": failures}, started_load)


if __name__ == "__main__":
    sys.exit(main())
