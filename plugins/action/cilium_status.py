# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""cilium_status as usual, with a progress line about every 30 s while it waits (plugin_utils/progress.py)."""

from __future__ import annotations

from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.cloudnet.cilium_eks.plugins.plugin_utils.progress import ProgressAction


class ActionModule(ProgressAction):

    def waiting_for(self, args):
        if not boolean(args.get("wait", True), strict=False):
            return None
        return "waiting for Cilium to be healthy on every node (namespace %s, timeout %ss)" % (
            args.get("namespace") or "kube-system", args.get("timeout") or 300)
