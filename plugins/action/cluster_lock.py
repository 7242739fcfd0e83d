# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Action plugin of ``cluster_lock``: names this ansible-playbook run as the lock's holder, then runs the module.

Action plugins run in a worker process that ansible-playbook forks for each task, so the worker's parent is the
ansible-playbook process of the run: every task of one run, in site.yml or in a user's playbook, in any role, gets
the same holder (and renews the Lease instead of being refused by it); another run, on this controller or another,
gets another one.

The run remembers the Leases it took or renewed, and until when they stay valid, in a fact of the inventory host
(``cluster_lock.LOCKS_FACT``): asked again for a lock it holds for at least the duration asked for (a role inside
site.yml, which took the lock for the whole Cilium and Bandwidth Manager stages), it answers ``outcome: held``
without running the module (no Kubernetes client, no API call); the Lease as the run last wrote it already keeps
every other run out until then.
"""

from __future__ import annotations

import os
import time

from ansible.plugins.action import ActionBase

from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.cluster_lock import (
    DEFAULT_DURATION,
    LEASE_NAME,
    LEASE_NAMESPACE,
    LOCKS_FACT,
    holder_identity,
    lease_key,
    process_start,
    remember,
    still_held,
)


class ActionModule(ActionBase):
    """Fill in ``holder`` (unless given) and run the ``cluster_lock`` module, unless the run holds the lock already."""

    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        if not args.get("holder"):
            run_pid = os.getppid()
            args["holder"] = holder_identity(run_pid, process_start(run_pid), task_vars.get("inventory_hostname"))
        state, duration = args.get("state") or "acquired", int(args.get("duration") or DEFAULT_DURATION)
        key, started = lease_key(args), time.time()
        held = (task_vars.get("ansible_facts") or {}).get(LOCKS_FACT) or {}
        if state == "acquired" and still_held(held.get(key), args["holder"], duration, started):
            return dict(result, **self._held_answer(args, held[key], started))
        result.update(self._execute_module(module_name="cloudnet.cilium_eks.cluster_lock", module_args=args,
                                           task_vars=task_vars))
        if not self._play_context.check_mode:
            result["ansible_facts"] = {LOCKS_FACT: remember(held, key, result, state, duration, started)}
        return result

    @staticmethod
    def _held_answer(args, record, now):
        """The task's result when the run holds the lock, valid long enough: nothing written, nothing to give back."""
        valid = int(float(record["expires"]) - now)
        where = "Lease %s/%s" % (args.get("namespace") or LEASE_NAMESPACE, args.get("name") or LEASE_NAME)
        reason = "this run holds the lock already, valid %ss more (at least the %ss asked for)" % (
            valid, args.get("duration") or DEFAULT_DURATION)
        return {"changed": False, "acquired": False, "outcome": "held", "reason": reason, "holder": record["holder"],
                "previous_holder": record["holder"], "lease": record.get("lease"),
                "msg": "%s held by this run, valid %ss more: not renewed." % (where, valid)}
