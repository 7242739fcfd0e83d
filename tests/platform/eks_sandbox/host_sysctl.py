"""The one host sysctl real Cilium agents need changed here, leased machine-wide and restored exactly.

A network namespace other than the host's may only pick a TCP congestion control algorithm listed in the
host's ``net.ipv4.tcp_allowed_congestion_control`` (kernel: ``tcp_set_congestion_control`` needs
CAP_NET_ADMIN in the *initial* user namespace otherwise, net/ipv4/tcp_cong.c). Hosts whose default is
``bbr`` list ``reno bbr`` only, and the Cilium agent with the Bandwidth Manager on (not BBR) sets
``net.ipv4.tcp_congestion_control=cubic`` in its node's namespace and cilium-cni does it in each pod's
(v1.20.2 ``pkg/datapath/linux/bandwidth/bandwidth.go``:286, ``plugins/cilium-cni/cmd/cmd.go``:507):
``operation not permitted``, the agent does not start. So ``cubic`` is added to the allowed list while a
real-Cilium sandbox runs.

Several sandboxes (and several ``$CILIUM_EKS_STATE`` folders) share the host, so the change is a lease
under ``/run/cloudnet-cilium-eks``: the first holder records the original value, the last one to
leave writes it back, byte for byte. ``/run`` is a tmpfs: a reboot forgets the lease along with the
change.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
from pathlib import Path

LEASE_DIR = Path("/run/cloudnet-cilium-eks/sysctl")
ALLOWED = Path("/proc/sys/net/ipv4/tcp_allowed_congestion_control")
AVAILABLE = Path("/proc/sys/net/ipv4/tcp_available_congestion_control")
ALGORITHM = "cubic"


@contextlib.contextmanager
def _locked():
    LEASE_DIR.mkdir(parents=True, exist_ok=True)
    with open(LEASE_DIR / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def holder_id(state_dir, sandbox: str) -> str:
    return hashlib.sha256(f"{state_dir}/{sandbox}".encode()).hexdigest()[:16]


def _holders() -> Path:
    return LEASE_DIR / "holders"


def _original() -> Path:
    return LEASE_DIR / "tcp_allowed_congestion_control.original"


def with_algorithm(allowed: str, algorithm: str) -> str:
    names = allowed.split()
    return " ".join(names if algorithm in names else names + [algorithm])


def acquire(holder: str, record: str, algorithm: str = ALGORITHM) -> bool:
    """Take the lease for ``holder`` (``record``: a note on who, e.g. the sandbox folder). False when the
    kernel has no such algorithm (then the agents will fail as on such a node)."""
    if algorithm not in AVAILABLE.read_text().split():
        return False
    with _locked():
        _holders().mkdir(exist_ok=True)
        if not _original().exists():
            _original().write_text(ALLOWED.read_text())
        (_holders() / holder).write_text(record)
        current = ALLOWED.read_text().strip()
        wanted = with_algorithm(current, algorithm)
        if wanted != current:
            ALLOWED.write_text(wanted)
    return True


def release(holder: str) -> bool:
    """Give the lease back; the last holder restores the original value. True when it was restored."""
    if not LEASE_DIR.is_dir():
        return False
    with _locked():
        (_holders() / holder).unlink(missing_ok=True)
        if _holders().is_dir() and any(_holders().iterdir()):
            return False
        if _original().exists():
            ALLOWED.write_text(_original().read_text())
            _original().unlink()
            return True
    return False


def holders() -> list:
    return sorted(p.name for p in _holders().iterdir()) if _holders().is_dir() else []


def lease_state() -> dict:
    """The holders and whether an original value is kept, read together under the lease's lock (another
    sandbox may be taking or giving back the lease at this moment)."""
    with _locked():
        return {"holders": holders(), "original_kept": _original().exists()}
