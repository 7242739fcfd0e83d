"""Write CHANGELOG.rst and CHANGELOG.md from changelogs/ with antsibull-changelog (changelogs/config.yaml).

The version of galaxy.yml is the one the changelog describes. While it is not released yet (not in
changelogs/changelog.yaml), the files show it as it would be released: ``antsibull-changelog release`` runs on a
scratch copy of the collection, so no fragment is consumed here. Once it is released (``antsibull-changelog release``
in the repository, which moves the fragments into changelog.yaml), ``antsibull-changelog generate`` does the same.
The output depends only on changelogs/, galaxy.yml and the plugins' short descriptions, so it is deterministic.

    python scripts/gen_changelog.py           # (re)write the files
    python scripts/gen_changelog.py --check   # exit 1 and name the stale files, write nothing
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
OUTPUTS = ("CHANGELOG.rst", "CHANGELOG.md")
COPIED = ("changelogs", "galaxy.yml", "meta", "plugins", "roles")  # what antsibull-changelog and ansible-doc read
# The day a preview is dated in changelog.yaml of the scratch copy; the .rst and .md outputs carry no date.
PREVIEW_DATE = "2000-01-01"


def _tool(name):
    here = Path(sys.executable).parent / name
    return str(here) if here.exists() else name


def render(root):
    """``{output name: text}`` as antsibull-changelog writes them for galaxy.yml's version."""
    root = Path(root)
    version = str(yaml.safe_load((root / "galaxy.yml").read_text())["version"])
    released = (yaml.safe_load((root / "changelogs" / "changelog.yaml").read_text()) or {}).get("releases") or {}
    with tempfile.TemporaryDirectory(prefix="gen-changelog-") as scratch:
        collection = Path(scratch) / "ansible_collections" / "cloudnet" / "cilium_eks"
        collection.mkdir(parents=True)
        for name in COPIED:
            source = root / name
            if source.is_dir():
                shutil.copytree(source, collection / name)
            elif source.exists():
                shutil.copy(source, collection / name)
        # ansible-doc (which antsibull-changelog runs for the plugins' descriptions) finds the scratch copy first,
        # then the dependencies' doc fragments (amazon.aws) where the environment has them.
        paths = [scratch] + [p for p in os.environ.get("ANSIBLE_COLLECTIONS_PATH", "").split(os.pathsep) if p]
        paths.append(str(root / ".collections"))
        env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.pathsep.join(paths),
                   PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
        argv = [_tool("antsibull-changelog")] + (["generate"] if version in released else
                                                 ["release", "--version", version, "--date", PREVIEW_DATE])
        done = subprocess.run(argv, cwd=collection, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit("%s failed (%d): %s" % (" ".join(argv), done.returncode, (done.stderr or done.stdout)[-2000:]))
        return {name: (collection / name).read_text() for name in OUTPUTS}


def stale_files(root):
    return [name for name, text in render(root).items()
            if not (Path(root) / name).exists() or (Path(root) / name).read_text() != text]


def write(root):
    written = []
    for name, text in render(root).items():
        (Path(root) / name).write_text(text)
        written.append(name)
    return written


def main(argv=None):
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import generated_files  # beside this script

    return generated_files.main(__doc__, stale_files, write, "changelogs/", argv)


if __name__ == "__main__":
    sys.exit(main())
