"""Install the collections this project needs into .collections/, with only PyPI reachable.

Users with Galaxy access run ``ansible-galaxy collection install -r requirements.yml``.
Here, kubernetes.core and amazon.aws are taken from the ``ansible`` community package on
PyPI (a wheel that carries them), pinned below, and this repository is linked in as
``cloudnet.cilium_eks`` so playbooks and ansible-test find it. Re-running is a no-op.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ANSIBLE_PACKAGE = "ansible==12.3.0"  # carries kubernetes.core 6.2.0 and amazon.aws 10.1.2
WANTED = ("kubernetes/core", "amazon/aws", "ansible/posix")  # ansible.posix: the json callback tests read
REPO_ROOT = Path(__file__).resolve().parent.parent


def cache_dir() -> Path:
    base = os.environ.get("CILIUM_EKS_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "cloudnet-cilium-eks")
    return Path(base) / "pip"


def download_wheel() -> Path:
    target = cache_dir() / ANSIBLE_PACKAGE.replace("==", "-")
    wheels = sorted(target.glob("ansible-*.whl")) if target.is_dir() else []
    if wheels:
        return wheels[0]
    target.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                    "--only-binary", ":all:", "--dest", str(target), ANSIBLE_PACKAGE], check=True)
    return sorted(target.glob("ansible-*.whl"))[0]


def installed_version(dest: Path, name: str):
    manifest = dest / name / "MANIFEST.json"
    if not manifest.is_file():
        return None
    return json.loads(manifest.read_text())["collection_info"]["version"]


def extract(wheel: Path, dest: Path, name: str) -> str:
    prefix = f"ansible_collections/{name}/"
    with zipfile.ZipFile(wheel) as archive:
        manifest = json.loads(archive.read(prefix + "MANIFEST.json"))
        version = manifest["collection_info"]["version"]
        if installed_version(dest, name) == version:
            return f"{name.replace('/', '.')} {version} (already installed)"
        staging = Path(tempfile.mkdtemp(dir=dest))
        for member in archive.namelist():
            if member.startswith(prefix) and not member.endswith("/"):
                archive.extract(member, staging)
        final = dest / name
        if final.exists():
            shutil.rmtree(final)
        final.parent.mkdir(parents=True, exist_ok=True)
        (staging / "ansible_collections" / name).rename(final)
        shutil.rmtree(staging)
    return f"{name.replace('/', '.')} {version}"


def link_self(dest: Path) -> None:
    link = dest / "cloudnet" / "cilium_eks"
    link.parent.mkdir(parents=True, exist_ok=True)
    target = os.path.relpath(REPO_ROOT, link.parent)
    if link.is_symlink() and os.readlink(link) == target:
        return
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(target)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", default=str(REPO_ROOT / ".collections"),
                        help="collections path (default: .collections in the repository)")
    args = parser.parse_args(argv)
    dest = Path(args.dest) / "ansible_collections"
    dest.mkdir(parents=True, exist_ok=True)
    wheel = download_wheel()
    for name in WANTED:
        print("collection:", extract(wheel, dest, name))
    link_self(dest)
    print("collection: cloudnet.cilium_eks (this repository, linked)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
