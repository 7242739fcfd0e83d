# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""eksctl_cluster as usual; a delete run in the foreground shows eksctl's latest line about every 30 s
(plugin_utils/progress.py). A create or an adjustment runs with `async` in the eks_cluster role, which reports its
own progress (roles/eks_cluster/tasks/poll.yml); run in the foreground, it shows eksctl's lines too."""

from __future__ import annotations

from ansible_collections.cloudnet.cilium_eks.plugins.plugin_utils.progress import ProgressAction


class ActionModule(ProgressAction):

    def waiting_for(self, args):
        if self._task.check_mode:  # a plan: eksctl changes nothing and waits for nothing
            return None
        verb = "delete" if args.get("state") == "absent" else "create or update"
        timeout = args.get("timeout") or 3600
        return "waiting for eksctl to %s EKS cluster %s (timeout %ss)" % (verb, args.get("name"), timeout)
