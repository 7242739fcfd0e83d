# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""cilium_connectivity_test as usual, with the CLI's latest line about every 30 s while it runs
(plugin_utils/progress.py)."""

from __future__ import annotations

from ansible_collections.cloudnet.cilium_eks.plugins.plugin_utils.progress import ProgressAction


class ActionModule(ProgressAction):

    def waiting_for(self, args):
        if self._task.check_mode:  # the module does not run the test in check mode
            return None
        return "waiting for cilium connectivity test (timeout %ss)" % (args.get("timeout") or 1800)
