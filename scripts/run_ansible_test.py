"""Run ansible-test on this repository from a copy laid out as ansible_collections/cloudnet/cilium_eks.

ansible-test insists that the working directory physically sits at
``.../ansible_collections/<namespace>/<name>``; a symlink does not count. The copy holds the
files git tracks plus the untracked ones it does not ignore (so new files are tested before
they are committed). The copy lives in a temporary folder outside the repository: inside it,
ansible-test would ask this repository's git for the file list and find the copy ignored.
Usage: ``scripts/run_ansible_test.py sanity --python 3.11``.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def collection_files():
    listing = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO_ROOT, check=True, capture_output=True).stdout.decode()
    return [name for name in listing.split("\0") if name and (REPO_ROOT / name).is_file()]


def make_copy(workspace: Path) -> Path:
    copy_root = workspace / "ansible_collections" / "cloudnet" / "cilium_eks"
    for name in collection_files():
        target = copy_root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / name, target)
    # ansible-test finds dependencies (kubernetes.core, amazon.aws) beside the collection.
    deps = REPO_ROOT / ".collections" / "ansible_collections"
    for namespace in ("kubernetes", "amazon", "ansible"):
        link = copy_root.parent.parent / namespace
        if not link.exists() and (deps / namespace).is_dir():
            link.symlink_to(deps / namespace, target_is_directory=True)
    return copy_root


GET_PIP_STAND_IN = """\
# Written by cloudnet.cilium_eks scripts/run_ansible_test.py: a stand-in for get-pip.py, which
# ansible-test downloads from a host this machine may not reach. It installs the requested pip
# from the package index with the pip wheel that Python's ensurepip bundles.
import glob, os, sys
import ensurepip
sys.path.insert(0, glob.glob(os.path.join(os.path.dirname(ensurepip.__file__), "_bundled", "pip-*.whl"))[0])
from pip._internal.cli.main import main
arguments = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
sys.exit(main(["install", "--upgrade", "--force-reinstall"] + arguments))
"""


def ensure_get_pip():
    """ansible-test bootstraps each sanity venv with get-pip.py, cached under ~/.ansible/test/cache."""
    import ansible_test  # pylint: disable=import-outside-toplevel

    pins = Path(ansible_test.__file__).parent / "_internal" / "python_requirements.py"
    cache = Path.home() / ".ansible" / "test" / "cache"
    for version in set(re.findall(r"pip='([0-9.]+)'", pins.read_text())):
        target = cache / f"get_pip_{version.replace('.', '_')}.py"
        if not target.exists():
            cache.mkdir(parents=True, exist_ok=True)
            target.write_text(GET_PIP_STAND_IN)


def main(argv):
    ensure_get_pip()
    with tempfile.TemporaryDirectory(prefix="ansible-test-") as workspace:
        copy_root = make_copy(Path(workspace))
        ansible_test = Path(sys.executable).parent / "ansible-test"
        env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=workspace)
        return subprocess.run([str(ansible_test)] + argv, cwd=copy_root, env=env, check=False).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
