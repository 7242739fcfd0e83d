"""Small Linux namespace helpers for the real-Cilium platform: sockets inside a network namespace,
commands, and finding what is left behind (namespaces, mounts, processes) under a prefix.

A socket belongs to the network namespace of the thread that created it, for its whole life. So a
thread that ``setns``-es into a namespace, creates a socket and returns lets this (host) process listen
on ``127.0.0.1:6443`` *inside a node's namespace* or connect to a pod's ``127.0.0.1:9879``: that is how
the platform bridges the API server into the nodes, serves IMDS there and runs HTTP probes, without
socat or helper processes. Python 3.11 has no ``os.setns``, hence ``ctypes``.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import socket
import subprocess
import threading
from pathlib import Path

CLONE_NEWNET = 0x40000000
NETNS_DIR = Path("/run/netns")  # where `ip netns add` pins namespaces

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


def netns_path(name: str) -> Path:
    return NETNS_DIR / name


def _in_thread(function):
    """Run ``function`` in a fresh thread (whose namespaces can be changed and then dropped)."""
    outcome = {}

    def target():
        try:
            outcome["value"] = function()
        except BaseException as exc:  # noqa: BLE001 - handed back to the caller
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="netns", daemon=True)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _enter(netns: Path) -> None:
    fd = os.open(str(netns), os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            error = ctypes.get_errno()
            raise OSError(error, f"setns({netns}): {os.strerror(error)}")
    finally:
        os.close(fd)


def socket_in(netns: Path, family=socket.AF_INET, kind=socket.SOCK_STREAM) -> socket.socket:
    """A new socket living in the network namespace ``netns`` (a path such as /run/netns/x)."""
    def make():
        _enter(netns)
        return socket.socket(family, kind)
    return _in_thread(make)


def listen_in(netns: Path, address: str, port: int, backlog: int = 128) -> socket.socket:
    """A TCP listener bound to ``address:port`` inside ``netns``."""
    sock = socket_in(netns)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((address, port))
    sock.listen(backlog)
    return sock


def connect_in(netns: Path, address: str, port: int, timeout: float = 5.0) -> socket.socket:
    sock = socket_in(netns)
    sock.settimeout(timeout)
    try:
        sock.connect((address, port))
    except OSError:
        sock.close()
        raise
    return sock


def run(argv, check=True, timeout=60, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=timeout, check=False,
                            **kwargs)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, argv))} failed (exit {result.returncode}): "
                           f"{(result.stderr or result.stdout).strip()}")
    return result


def ip(*args, netns: str | None = None, check=True) -> subprocess.CompletedProcess:
    """``ip [-n netns] args...``"""
    return run(["ip", *(["-n", netns] if netns else []), *args], check=check)


def netns_names(prefix: str = "") -> list:
    """Names of the pinned network namespaces starting with ``prefix``."""
    if not NETNS_DIR.is_dir():
        return []
    return sorted(p.name for p in NETNS_DIR.iterdir() if p.name.startswith(prefix))


def mounts_under(directory: Path) -> list:
    """Mount points at or below ``directory`` in this mount namespace, deepest first."""
    root = str(Path(directory).resolve())
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point == root or point.startswith(root + "/"):
            points.append(point)
    return sorted(set(points), key=lambda p: (-p.count("/"), p))


def unmount_under(directory: Path) -> list:
    """Unmount everything at or below ``directory`` (lazily where busy); returns what was unmounted."""
    done = []
    for point in mounts_under(directory):
        if run(["umount", point], check=False).returncode != 0:
            run(["umount", "-l", point], check=False)
        done.append(point)
    return done


def pids_in_netns(name: str) -> list:
    """Processes whose network namespace is the pinned namespace ``name``."""
    try:
        target = os.stat(netns_path(name))
    except FileNotFoundError:
        return []
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            info = os.stat(proc / "ns" / "net")
        except OSError:
            continue
        if (info.st_dev, info.st_ino) == (target.st_dev, target.st_ino):
            pids.append(int(proc.name))
    return pids
