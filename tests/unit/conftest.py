# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Make ``ansible_collections.cloudnet.cilium_eks`` importable when running plain pytest.

``ansible-test units`` already runs from ``.../ansible_collections/cloudnet/cilium_eks``; in a plain
checkout we create ``<repo>/.pytest_collections/ansible_collections/cloudnet/cilium_eks -> ../../..``
(a relative symlink, git-ignored by a ``.gitignore`` inside ``.pytest_collections``) and put
``.pytest_collections`` first on ``sys.path``.
"""

from __future__ import annotations

import os
import sys

NAMESPACE, NAME = "cloudnet", "cilium_eks"
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _collections_root():
    parts = REPO_ROOT.split(os.sep)
    if parts[-3:] == ["ansible_collections", NAMESPACE, NAME]:
        return os.sep.join(parts[:-3])  # already laid out as a collection (ansible-test, ansible-galaxy install)

    root = os.path.join(REPO_ROOT, ".pytest_collections")
    namespace_dir = os.path.join(root, "ansible_collections", NAMESPACE)
    link = os.path.join(namespace_dir, NAME)
    os.makedirs(namespace_dir, exist_ok=True)
    ignore_file = os.path.join(root, ".gitignore")
    if not os.path.exists(ignore_file):
        with open(ignore_file, "w") as handle:
            handle.write("# created by tests/unit/conftest.py\n*\n")
    target = os.path.join("..", "..", "..")
    if os.path.islink(link) and os.readlink(link) != target:
        os.unlink(link)
    if not os.path.lexists(link):
        try:
            os.symlink(target, link)
        except FileExistsError:  # another pytest-xdist worker was faster
            pass
    return root


_ROOT = _collections_root()
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)
