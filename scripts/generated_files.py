"""The command line of the scripts that write generated files (gen_role_docs.py, gen_changelog.py): write them, or
with ``--check`` only name the stale ones and exit 1."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def main(doc, stale_files, write, source, argv=None):
    """``stale_files(root)`` lists the out-of-date files, ``write(root)`` writes them all and lists them; ``source``
    names what they are generated from, ``doc`` is the script's docstring."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 when a file is stale")
    parser.add_argument("--root", type=Path, default=REPO_ROOT, help="collection root (default: this repository)")
    args = parser.parse_args(argv)
    script = "python scripts/%s" % Path(sys.argv[0]).name
    if args.check:
        stale = stale_files(args.root)
        for path in stale:
            print(f"{path}: out of date with {source}; run: {script}", file=sys.stderr)
        return 1 if stale else 0
    for path in write(args.root):
        print(f"wrote {path}")
    return 0
