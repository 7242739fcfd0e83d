"""What the benchmarks in bench/ share: sandboxes, Cilium on them, timed runs, the table and the JSON.

Every benchmark prints a table and writes ``bench/results/<name>.json`` with its figures, the machine
(CPUs, memory, load average before and after) and the versions of the platform, so docs/performance.md
and the README can quote them. Sandboxes come from the local platform (tests/platform/eks_sandbox) and
are always brought down again, also when a benchmark fails.
"""
import argparse
import contextlib
import json
import os
import platform
import random
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"
SANDBOX_INVENTORY = REPO_ROOT / "inventories" / "sandbox"
AGENT_SELECTOR = "k8s-app=cilium"
START_ATTEMPTS = 3  # kwokctl can race on ports with clusters other helpers start at the same moment


def prepare_environment():
    """This process and the ones it starts find the venv, the collections and the platform package."""
    os.environ["PATH"] = os.pathsep.join([str(REPO_ROOT / ".venv" / "bin"), os.environ.get("PATH", "")])
    os.environ.setdefault("ANSIBLE_COLLECTIONS_PATH", str(REPO_ROOT / ".collections"))
    os.environ.setdefault("ANSIBLE_CONFIG", str(REPO_ROOT / "ansible.cfg"))
    paths = [str(REPO_ROOT / "tests" / "platform"), str(REPO_ROOT / ".collections")]
    os.environ["PYTHONPATH"] = os.pathsep.join(
        paths + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p not in paths])
    sys.path[:0] = [p for p in paths if p not in sys.path]


# ------------------------------------------------------------------------------------------ options


def parser(description, sizes, repeat):
    """The options every benchmark takes: --sizes, --repeat, --quick (smallest size, one repetition)."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--sizes", type=lambda text: [int(s) for s in text.split(",") if s.strip()], default=sizes,
                    help="comma-separated sizes (default %s)" % ",".join(str(s) for s in sizes))
    ap.add_argument("--repeat", type=int, default=repeat, help="repetitions per figure; the median is reported"
                    " (default %d)" % repeat)
    ap.add_argument("--quick", action="store_true", help="the smallest size once: checks the benchmark runs")
    return ap


def options(ap, argv=None):
    args = ap.parse_args(argv)
    prepare_environment()
    if args.quick:
        args.sizes, args.repeat = args.sizes[:1], 1
    return args


# ------------------------------------------------------------------------------------------ timing


def median(values):
    return round(statistics.median(values), 2) if values else None


def load():
    """The 1-minute load average, rounded (the CPU is shared: every figure carries it)."""
    return round(os.getloadavg()[0], 2)


def run_measured(argv, env=None, check=True, quiet=True, timeout=None):
    """``{"seconds", "cpu_seconds", "max_rss_mb", "rc", "output"}`` of one command: wall time, the CPU time (user +
    system) and the peak RSS of the process tree (``wait4`` of the child: it and its waited-for descendants). CPU
    time hardly moves with the machine's load, where wall time does."""
    started = time.monotonic()
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(argv, env=env, cwd=REPO_ROOT, stdout=out if quiet else None,
                                stderr=subprocess.STDOUT if quiet else None)
        deadline = started + timeout if timeout else None
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG if deadline else 0)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.02)
        seconds = time.monotonic() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        output = out.read().decode(errors="replace")
    if check and proc.returncode != 0:
        raise RuntimeError("%s exited %s:\n%s" % (shlex.join(str(a) for a in argv), proc.returncode, output[-3000:]))
    return {"seconds": round(seconds, 3), "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 3),
            "max_rss_mb": round(usage.ru_maxrss / 1024, 1), "rc": proc.returncode,
            "output": output}


# ------------------------------------------------------------------------------------------ sandboxes


@contextlib.contextmanager
def sandbox(name, nodes=2, taint=True, aws=True, vpc_cni=True, datapath=False, seed=True, cilium="replay"):
    """A sandbox up for the block (one retry: kwokctl can race on ports with another starting cluster);
    ``seed=False``: an empty one, for the real eksctl to create clusters in; ``cilium="real"``: the chart's Cilium
    pods run for real (docs/real-cilium.md)."""
    from eks_sandbox import cluster
    from eks_sandbox import sandbox as sandboxes

    spec = sandboxes.SandboxSpec(name=name, nodes=nodes, agent_not_ready_taint=taint, aws=aws, vpc_cni=vpc_cni,
                                 seed=seed, cilium=cilium)
    try:
        for attempt in range(1, START_ATTEMPTS + 1):
            try:
                box = sandboxes.up(spec, out=sys.stderr)
                time.sleep(3)  # a component losing a port race exits a moment after it started
                if not cluster.is_running(name):
                    raise RuntimeError("a control-plane component exited: %s" % cluster.describe_components(name))
                break
            except Exception as exc:  # noqa: BLE001 - port races with other starting clusters, slow starts
                if attempt == START_ATTEMPTS:
                    raise
                print("bench: sandbox %s failed to start (%s); retrying" % (name, str(exc).splitlines()[0]),
                      file=sys.stderr)
                sandboxes.down(name, out=sys.stderr)
                time.sleep(random.uniform(1, 5))  # out of step with whoever took the port
        if datapath:
            subprocess.run([sys.executable, "-m", "eks_sandbox", "datapath", "up", "--name", name,
                            "--namespace", "cilium-bandwidth-test"], check=True, cwd=REPO_ROOT, stdout=sys.stderr)
        yield box
    finally:
        sandboxes.down(name, out=sys.stderr)


def sandbox_env(box):
    """os.environ plus what a client of this sandbox needs (KUBECONFIG, moto, helm, chart, eksctl)."""
    return dict(os.environ, **{k: str(v) for k, v in box.env.items()})


def write_inventory(folder, boxes, group_vars_from=SANDBOX_INVENTORY):
    """An inventory like inventories/sandbox (its group_vars) with one host per sandbox.

    Each host gets its own Python wrapper as interpreter, exporting that sandbox's environment (moto
    endpoint, eksctl), so one ``ansible-playbook --forks N`` drives N sandboxes. Returns the hosts
    file, not the folder: as an inventory folder, each wrapper would be tried as an inventory script too."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    group_vars = folder / "group_vars"
    if not group_vars.exists():
        group_vars.symlink_to(Path(group_vars_from) / "group_vars")
    hosts = {}
    for box in boxes:
        name = box.spec.name
        wrapper = folder / ("python-" + name)
        exports = "".join("export %s=%s\n" % (k, shlex.quote(str(v))) for k, v in sorted(box.env.items()))
        wrapper.write_text("#!/bin/sh\n%sexec %s \"$@\"\n" % (exports, shlex.quote(sys.executable)))
        wrapper.chmod(0o700)
        hosts[name] = {"eks_cluster_name": name, "eks_cluster_region": box.spec.region,
                       "ansible_python_interpreter": str(wrapper)}
    (folder / "hosts.yml").write_text(json.dumps({"eks_clusters": {"hosts": hosts}}, indent=2))
    return folder / "hosts.yml"


def site_playbook(inventory, env, extra=(), forks=None, root=REPO_ROOT):
    """argv of ``ansible-playbook playbooks/site.yml`` (of the tree ``root``) on ``inventory``."""
    argv = ["ansible-playbook", "-i", str(inventory), str(Path(root) / "playbooks" / "site.yml")]
    if forks:
        argv += ["--forks", str(forks)]
    for item in extra:
        argv += ["-e", item]
    return argv


def install_cilium(box, env, operator_replicas=1, timeout="10m"):
    """Cilium from the platform's chart with helm (ENI mode, no Envoy DaemonSet), waiting for the rollout."""
    subprocess.run([env["CILIUM_EKS_HELM"], "upgrade", "--install", "cilium", env["CILIUM_EKS_CHART"],
                    "--namespace", "kube-system", "--wait", "--timeout", timeout,
                    "--set", "ipam.mode=eni", "--set", "eni.enabled=true", "--set", "routingMode=native",
                    "--set", "envoy.enabled=false", "--set", "hubble.relay.enabled=false",
                    "--set", "operator.replicas=%d" % operator_replicas],
                   env=env, check=True, cwd=REPO_ROOT, stdout=sys.stderr)
    subprocess.run(["kubectl", "--namespace", "kube-system", "rollout", "status", "daemonset/cilium", "--timeout",
                    timeout], env=env, check=True, cwd=REPO_ROOT, stdout=sys.stderr)


def kube_client(box):
    from kubernetes import config

    return config.new_client_from_config(config_file=box.kubeconfig)


def wait_until(predicate, what, timeout=600, interval=0.5):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("bench: %s not reached in %ss" % (what, timeout))
        time.sleep(interval)


@contextlib.contextmanager
def collection_at(ref):
    """The collection as it was at git ``ref``, installed for ansible-playbook beside this tree's dependencies:
    yields ``(tree, env overrides)``; ``tree`` holds its playbooks and inventories. Nothing of this tree changes."""
    with tempfile.TemporaryDirectory(prefix="bench-baseline-") as scratch:
        tree = Path(scratch) / "tree"
        tree.mkdir()
        archive = subprocess.run(["git", "archive", ref], cwd=REPO_ROOT, check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
        collections = Path(scratch) / "collections" / "ansible_collections"
        (collections / "cloudnet").mkdir(parents=True)
        (collections / "cloudnet" / "cilium_eks").symlink_to(tree)
        for namespace in (REPO_ROOT / ".collections" / "ansible_collections").iterdir():
            if namespace.name != "cloudnet":
                (collections / namespace.name).symlink_to(namespace)
        yield tree, {"ANSIBLE_COLLECTIONS_PATH": str(collections.parent), "ANSIBLE_CONFIG": str(tree / "ansible.cfg")}


def cilium_cli():
    """Path of the real cilium CLI the platform builds."""
    from eks_sandbox import gobuild

    return str(gobuild.ensure("cilium-cli")["cilium"])


def status_module_argv(kubeconfig, timeout=600, expect=None, sample_agents=0):
    """``ansible`` ad hoc running the cilium_status module once, as a playbook task would."""
    args = {"kubeconfig": str(kubeconfig), "timeout": timeout}
    if expect:
        args["expect"] = expect
    if sample_agents:
        args["sample_agents"] = sample_agents
    return ["ansible", "localhost", "-i", "localhost,", "-c", "local", "-m", "cloudnet.cilium_eks.cilium_status",
            "-a", json.dumps(args), "-e", "ansible_python_interpreter=" + sys.executable]


# ------------------------------------------------------------------------------------------ output


def versions():
    from eks_sandbox import versions as pinned

    try:
        ansible_core = subprocess.run(["ansible", "--version"], capture_output=True, text=True, check=False).stdout.split("\n")[0]
    except OSError:
        ansible_core = None
    newest_chart = max(pinned.CILIUM_CHARTS.values(), key=lambda v: tuple(int(p) for p in v.split(".")))
    return {"kubernetes": pinned.KUBERNETES, "etcd": pinned.ETCD, "kwok": pinned.KWOK, "helm": pinned.HELM,
            "cilium_cli": pinned.CILIUM_CLI, "cilium_chart": newest_chart, "ansible": ansible_core,
            "python": platform.python_version()}


def machine():
    mem_kb = next((int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal:")), 0)
    return {"cpus": os.cpu_count(), "memory_gb": round(mem_kb / 1024 / 1024), "kernel": platform.release()}


def table(headers, rows):
    """The rows as an aligned text table (each row a list of cells, None shown as '-')."""
    cells = [[str(h) for h in headers]] + [["-" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row))
             for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def write_results(name, results, started_load, notes=None):
    """Write bench/results/<name>.json (figures, machine, versions, load before/after) and return it."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    data = {"benchmark": name, "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": machine(), "load_before": started_load, "load_after": load(), "versions": versions(),
            "results": results, "notes": notes or []}
    path = RESULTS_DIR / (name + ".json")
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    print("bench: wrote %s (load %s -> %s)" % (path.relative_to(REPO_ROOT), started_load, data["load_after"]))
    return data
