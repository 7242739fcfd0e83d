# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Action plugin of ``cluster_lock``: names this ansible-playbook run as the lock's holder, then runs the module.

Action plugins run in a worker process that ansible-playbook forks for each task, so the worker's parent is the
ansible-playbook process of the run: every task of one run, in site.yml or in a user's playbook, in any role, gets
the same holder (and renews the Lease instead of being refused by it); another run, on this controller or another,
gets another one.
"""

from __future__ import annotations

import os

from ansible.plugins.action import ActionBase

from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.cluster_lock import holder_identity, process_start


class ActionModule(ActionBase):
    """Fill in ``holder`` (unless given) and run the ``cluster_lock`` module."""

    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        if not args.get("holder"):
            run_pid = os.getppid()
            args["holder"] = holder_identity(run_pid, process_start(run_pid), task_vars.get("inventory_hostname"))
        result.update(self._execute_module(module_name="cloudnet.cilium_eks.cluster_lock", module_args=args,
                                           task_vars=task_vars))
        return result
