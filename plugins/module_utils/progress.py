# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The module side of progress reports: where a module stands, as one line, for its action plugin to show.

A module cannot print while it runs; its action plugin (``plugin_utils/progress.py``) can. The action plugin
names a file in ``CILIUM_EKS_PROGRESS_FILE`` (only for a connection on the controller); ``note(line)`` replaces
its content with the module's latest line, which the action plugin reads and shows about every 30 s. Without the
variable, ``note`` does nothing. The runner feeds every output line of the CLIs it runs (eksctl's "waiting for
CloudFormation stack ...", the cilium CLI's test lines) through ``line_writer()``. Pure stdlib.
"""

from __future__ import annotations

import os

PROGRESS_FILE_ENV = "CILIUM_EKS_PROGRESS_FILE"
MAX_LINE = 300  # characters kept of one line


def progress_file():
    """The file named by ``CILIUM_EKS_PROGRESS_FILE``, or None."""
    return os.environ.get(PROGRESS_FILE_ENV) or None


def note(line, path=None):
    """Make ``line`` (one line, cut at ``MAX_LINE``) the latest progress of this module; blank lines are ignored."""
    path = path or progress_file()
    text = " ".join(str(line).split())[:MAX_LINE]
    if not path or not text:
        return
    try:
        with open(path, "w") as stream:
            stream.write(text + "\n")
    except OSError:  # progress is a courtesy: never a reason to fail the module
        pass


def line_writer():
    """An ``on_line(stream, line)`` for ``run_command`` that notes each output line, or None without a file."""
    path = progress_file()
    if not path:
        return None
    return lambda _stream, line: note(line, path)
