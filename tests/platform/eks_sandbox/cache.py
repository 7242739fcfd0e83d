"""Where the platform keeps what it builds: outside the repository, keyed by version."""
import os
from pathlib import Path


def cache_root() -> Path:
    """``$CILIUM_EKS_CACHE`` or ``$XDG_CACHE_HOME/cloudnet-cilium-eks`` (default ``~/.cache/...``)."""
    explicit = os.environ.get("CILIUM_EKS_CACHE")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg) / "cloudnet-cilium-eks"


def tool_dir(name: str, version: str) -> Path:
    """Directory holding the binaries of one tool at one version: ``<cache>/tools/<name>-<version>/bin``."""
    return cache_root() / "tools" / f"{name}-{version}" / "bin"


def charts_dir() -> Path:
    """Directory holding Cilium chart tarballs and CRD manifests, one sub-folder per Cilium version."""
    return cache_root() / "cilium"


def state_dir() -> Path:
    """Runtime state of running sandboxes (kwok cluster dirs, moto pid, kubeconfigs).

    ``$CILIUM_EKS_STATE`` puts it elsewhere, so that two checkouts can run sandboxes of the same
    names at once while sharing the built tools of ``cache_root()``."""
    explicit = os.environ.get("CILIUM_EKS_STATE")
    if explicit:
        return Path(explicit)
    return cache_root() / "state"
