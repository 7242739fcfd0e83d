"""Readiness latency: how long after the last Cilium agent pod turns Ready does ``cilium_status`` return?

On a sandbox with N nodes and Cilium installed from the platform's chart, each repetition:

1. marks every agent pod not Ready (``Ready``/``ContainersReady`` conditions False, through the pod
   status, as a failing readiness probe does; kwok leaves them so) and waits until the DaemonSet counts
   0 ready;
2. starts ``cilium_status``, either in-process (``CiliumStatusChecker.wait`` of plugins/module_utils, in a
   thread) or as the module (``ansible localhost -m cloudnet.cilium_eks.cilium_status``, a process), and
   lets it take its first look: until it has exec'd into every agent and no exec is running any more (the
   agent replays are seen in /proc), then ``--settle`` seconds more; it keeps waiting, no agent is Ready;
3. marks the agents Ready again and records when the API server accepted the last one;
4. records when ``cilium_status`` returned (thread joined / process exited): the latency is the difference.

Target: under 1 s median. Usage: ``python bench/readiness_latency.py [--sizes 2,10] [--repeat N]``.
"""
import os
import sys
import threading
import time
from pathlib import Path

import _common as bench

NAME = "bench-ready"
TARGET_SECONDS = 1.0
MODES = ("in-process", "module")


def agent_pods(core):
    return core.list_namespaced_pod("kube-system", label_selector=bench.AGENT_SELECTOR).items


def replays_running(pod_names):
    """Names of the agent pods whose replay (the process answering an exec into them) runs right now."""
    wanted = {("CILIUM_REPLAY_POD=kube-system/" + name).encode(): name for name in pod_names}
    running = set()
    for proc in Path("/proc").iterdir():
        try:
            environ = (proc / "environ").read_bytes().split(b"\0") if proc.name.isdigit() else []
        except OSError:
            continue
        running.update(wanted[item] for item in environ if item in wanted)
    return running


def first_look_done(runner, pod_names, timeout=60):
    """Wait until every agent was exec'd into at least once and no exec runs (a checker that asks only Ready
    agents never does: then ``timeout`` seconds). The runner must still be waiting."""
    seen = set()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not runner.done():
        running = replays_running(pod_names)
        seen |= running
        if seen >= set(pod_names) and not running:
            return
        time.sleep(0.02)


def daemonset_ready(apps):
    return apps.read_namespaced_daemon_set_status("cilium", "kube-system").status.number_ready or 0


class InProcess:
    """``CiliumStatusChecker.wait`` in a thread; ``finished`` is when it returned."""

    def __init__(self, api_client):
        from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.cilium_status import CiliumStatusChecker

        self.checker = CiliumStatusChecker(api_client)
        self.finished, self.status, self.error = None, None, None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            self.status = self.checker.wait(timeout=300)
        except Exception as exc:  # noqa: BLE001 - reported by the benchmark
            self.error = exc
        self.finished = time.monotonic()

    def done(self):
        return not self.thread.is_alive()

    def join(self):
        self.thread.join(330)
        if self.error or not (self.status or {}).get("healthy"):
            raise RuntimeError("cilium_status (in-process) did not report healthy: %s" % self.error)
        return self.finished


def descendants(pid):
    """PIDs of the processes below ``pid`` (from /proc/<pid>/task/*/children)."""
    found, todo = [], [pid]
    while todo:
        try:
            tasks = list(Path("/proc/%d/task" % todo.pop()).glob("*/children"))
        except OSError:  # the process is gone
            continue
        for task in tasks:
            try:
                children = [int(c) for c in task.read_text().split()]
            except OSError:
                continue
            found += children
            todo += children
    return found


class Module:
    """The cilium_status module through ``ansible`` ad hoc, in a process. ``finished``: when the module's own
    process (AnsiballZ_cilium_status) exited, watched every 10 ms; ``exited``: when ansible exited."""

    def __init__(self, kubeconfig, env):
        import subprocess

        self.proc = subprocess.Popen(bench.status_module_argv(kubeconfig, timeout=300), env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=bench.REPO_ROOT)
        self.finished, self.exited, self._module_pids = None, None, set()
        self.watcher = threading.Thread(target=self._watch_module, daemon=True)
        self.watcher.start()

    def _watch_module(self):
        while self.proc.poll() is None:
            for pid in descendants(self.proc.pid):
                try:
                    if b"AnsiballZ_cilium_status" in Path("/proc/%d/cmdline" % pid).read_bytes():
                        self._module_pids.add(pid)
                except OSError:
                    continue
            if self._module_pids and not any(Path("/proc/%d" % pid).exists() for pid in self._module_pids):
                self.finished = time.monotonic()
                return
            time.sleep(0.01)

    def done(self):
        return self.proc.poll() is not None

    def join(self):
        _pid, status = os.waitpid(self.proc.pid, 0)
        self.exited = time.monotonic()
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        self.watcher.join()
        output = self.proc.stdout.read().decode(errors="replace")
        if self.proc.returncode != 0:
            raise RuntimeError("cilium_status (module) failed:\n" + output[-3000:])
        return self.finished or self.exited


def one_latency(mode, box, env, core, apps, api_client, settle):
    from eks_sandbox import kube  # importable once _common has set the paths up
    pods = [p.metadata.name for p in agent_pods(core)]
    for name in pods:
        kube.set_pod_ready(core, "kube-system", name, False)
    bench.wait_until(lambda: daemonset_ready(apps) == 0, "DaemonSet counting 0 ready agents", timeout=60, interval=0.1)
    runner = InProcess(api_client) if mode == "in-process" else Module(box.kubeconfig, env)
    first_look_done(runner, pods)
    time.sleep(settle)
    if runner.done():
        raise RuntimeError("cilium_status returned before the agents were Ready again")
    for name in pods:
        kube.set_pod_ready(core, "kube-system", name, True)
    ready_at = time.monotonic()
    finished = runner.join()
    exited = getattr(runner, "exited", None)
    return round(finished - ready_at, 3), round(exited - ready_at, 3) if exited else None


def main(argv=None):
    ap = bench.parser(__doc__.splitlines()[0], sizes=[2, 10], repeat=5)
    ap.add_argument("--settle", type=float, default=2.0,
                    help="seconds between cilium_status's first look and the agents turning Ready (default 2)")
    args = bench.options(ap, argv)
    started_load = bench.load()
    from kubernetes import client

    results, rows = {}, []
    for size in args.sizes:
        with bench.sandbox("%s-%d" % (NAME, size), nodes=size, taint=False, aws=False, vpc_cni=False) as box:
            env = bench.sandbox_env(box)
            bench.install_cilium(box, env)
            api_client = bench.kube_client(box)
            core, apps = client.CoreV1Api(api_client), client.AppsV1Api(api_client)
            InProcess(api_client).join()  # healthy once (agent exec routing in place) before measuring
            results[size] = {}
            for mode in MODES:
                latencies, exits, loads = [], [], []
                for _rep in range(args.repeat):
                    latency, exited = one_latency(mode, box, env, core, apps, api_client, args.settle)
                    latencies.append(latency)
                    exits.append(exited)
                    loads.append(bench.load())
                results[size][mode] = {"latencies_seconds": latencies, "median_seconds": bench.median(latencies),
                                       "ansible_exit_seconds": exits if mode == "module" else None, "load": loads}
                rows.append([size, mode, bench.median(latencies), min(latencies), max(latencies),
                             bench.median(exits) if mode == "module" else None, max(loads)])
                print("bench: %d agents, %s: %s (ansible exit %s; load %s)" % (size, mode, latencies, exits, loads),
                      file=sys.stderr)
    print(bench.table(["agents", "cilium_status", "median s", "min s", "max s", "ansible exit s", "max load"], rows))
    print("target: median under %.1f s after the last agent turned Ready" % TARGET_SECONDS)
    bench.write_results("readiness_latency", {"repeat": args.repeat, "target_seconds": TARGET_SECONDS,
                                              "by_agents": results}, started_load,
                        notes=["module: until the module's process (AnsiballZ_cilium_status) exited, watched every"
                               " 10 ms; 'ansible exit': until the ansible command exited (its result printed)"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
