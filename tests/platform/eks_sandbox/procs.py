"""Process control for fault injection: find what a playbook runs, and crash and restart control-plane parts.

* ``descendants(root, *words)``: the processes under ``root`` whose command line holds every word. Ansible runs
  each module in a session of its own, so a playbook's process group does not reach them; they are found
  through their parents (``/proc/<pid>/stat``).
* ``restart_api_server(name, kubeconfig, downtime)``: SIGKILL the sandbox's kube-apiserver (a crashed control
  plane), start it again after ``downtime`` seconds with its recorded command line, environment and working
  directory, and restart the controller manager and the scheduler if they exited meanwhile (they do when they
  cannot renew their leader lease, as on a real control plane where the kubelet restarts them).

Linux only (``/proc``); used by tests/integration/test_faults.py.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from eks_sandbox import cluster, kube

CONTROL_PLANE = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")


def parent(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as stat:
        return int(stat.read().rsplit(")", 1)[1].split()[1])


def descendants(root: int, *words: str) -> list:
    """Pids of the processes under ``root`` whose command line holds every one of ``words``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
            pid = int(entry.name)
            if not all(any(word in arg for arg in argv) for word in words):
                continue
            while pid > 1 and pid != root:
                pid = parent(pid)
        except (OSError, ValueError, IndexError):
            continue
        if pid == root:
            found.append(int(entry.name))
    return found


def component_command(name: str, component: str) -> tuple:
    """``(argv, env, cwd)`` of a running component of the sandbox's kwok cluster, read from /proc."""
    proc_dir = Path(f"/proc/{cluster.component_pids(name)[component]}")
    argv = proc_dir.joinpath("cmdline").read_bytes().split(b"\0")[:-1]
    env = dict(item.split(b"=", 1) for item in proc_dir.joinpath("environ").read_bytes().split(b"\0") if b"=" in item)
    return argv, env, os.readlink(proc_dir / "cwd")


def spawn_component(name: str, component: str, command: tuple) -> int:
    """Start a component again with its recorded command; its pid file is updated so ``sandbox.down`` stops it."""
    argv, env, cwd = command
    with open(cluster.cluster_dir(name) / "logs" / f"{component}.log", "ab") as log:
        started = subprocess.Popen(argv, cwd=cwd, env=env, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
    (cluster.cluster_dir(name) / "pids" / f"{component}.pid").write_text(str(started.pid))
    return started.pid


def _answers(api) -> bool:
    try:
        api.resources.get(api_version="v1", kind="Namespace").get(name="kube-system")
        return True
    except Exception:  # noqa: BLE001 - still starting
        return False


def restart_api_server(name: str, kubeconfig, downtime: float):
    """Crash the sandbox's API server and bring it back after ``downtime`` s (see the module docstring); returns
    a dynamic client of the API server that answers again."""
    commands = {c: component_command(name, c) for c in CONTROL_PLANE}
    pid = cluster.component_pids(name)["kube-apiserver"]
    os.kill(pid, signal.SIGKILL)
    kube.wait_for(lambda: not cluster.alive(pid), "kube-apiserver exit", timeout=10)
    time.sleep(downtime)
    spawn_component(name, "kube-apiserver", commands.pop("kube-apiserver"))
    back = kube.dynamic_client(kubeconfig)
    kube.wait_for(lambda: _answers(back), "API server back", timeout=60)
    time.sleep(2)
    for component, command in commands.items():
        if not cluster.alive(cluster.component_pids(name)[component]):
            spawn_component(name, component, command)
    return back
