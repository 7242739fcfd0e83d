# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""cilium_bandwidth_test as usual, with the test's latest step (pods starting, measuring) about every 30 s
(plugin_utils/progress.py)."""

from __future__ import annotations

from ansible_collections.cloudnet.cilium_eks.plugins.plugin_utils.progress import ProgressAction


class ActionModule(ProgressAction):

    def waiting_for(self, args):
        if self._task.check_mode:  # the module only checks its inputs in check mode
            return None
        return "waiting for the bandwidth test (limit %s, %s)" % (args.get("limit") or "10M", args.get("tool") or "netperf")
