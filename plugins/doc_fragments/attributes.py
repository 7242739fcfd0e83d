# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The ``attributes`` modules share: ``read_only`` (reads only) and ``no_diff`` (changes, but nothing to diff)."""

from __future__ import annotations


class ModuleDocFragment:
    # Modules that only read: check mode is the same run, and there is nothing to diff.
    READ_ONLY = r"""
attributes:
  check_mode:
    support: full
    description: Reads only, so it runs the same in check mode.
  diff_mode:
    support: none
    description: Reads only; there is no state to diff.
"""

    # Not used alone; the fragments are READ_ONLY and NO_DIFF.
    DOCUMENTATION = r"""
options: {}
"""

    # Modules that change something without a state worth a diff (their result says what changed); each documents
    # its own check_mode.
    NO_DIFF = r"""
attributes:
  diff_mode:
    support: none
    description: There is no state to diff; the result says what was done.
"""
