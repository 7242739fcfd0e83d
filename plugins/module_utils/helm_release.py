# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""A Helm release left behind by an interrupted run: recognised from ``helm history`` and repaired.

``assess(history, age)`` is pure: it reads the revisions (``helm history -o json``) and says what state the release
is in and what would repair it. ``run_module`` is the ``cilium_release_repair`` module: it waits while a helm run may
still be at work on a pending release, then rolls back or uninstalls what no helm run will finish.

Statuses: helm v3.19.5 pkg/release/status.go (``IsPending``: pending-install, pending-upgrade, pending-rollback).
``helm upgrade`` refuses a release whose last revision is pending ("another operation (install/upgrade/rollback)
is in progress", pkg/action/action.go errPending, checked in pkg/action/upgrade.go prepareUpgrade), and ``helm list``
shows only deployed and failed releases by default, which made an interrupted release look absent.
"""

from __future__ import annotations

import json
import time
from datetime import datetime

from ansible_collections.cloudnet.cilium_eks.plugins.module_utils import inputs
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.cilium_values import helm_cluster_args
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.errors import CiliumEksError
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.waiter import Waiter

PENDING = ("pending-install", "pending-upgrade", "pending-rollback")
RAN = ("deployed", "superseded")  # revisions that were running at some time
POLL = 5


def _ran_before(history):
    """The newest earlier revision that ran (deployed or superseded), or None."""
    return next((entry for entry in reversed(history[:-1]) if entry.get("status") in RAN), None)


def assess(history, age=None, wait=0):
    """State of a release from its revisions (oldest first) and the age in seconds of the last one.

    -> ``{"status", "revision", "interrupted", "action", "to_revision", "reason"}``; ``action`` is ``none``,
    ``wait`` (a helm run may still be at work: the last revision is pending and younger than ``wait`` seconds),
    ``rollback`` (to ``to_revision``) or ``uninstall``.
    """
    if not history:
        return {"status": "none", "revision": None, "interrupted": False, "action": "none", "to_revision": None,
                "reason": "no release"}
    last = history[-1]
    status, earlier = last.get("status"), _ran_before(history)
    state = {"status": status, "revision": last.get("revision"), "interrupted": False, "action": "none",
             "to_revision": None, "reason": "the last revision is %s" % status}
    if status in PENDING and age is not None and age < wait:
        return dict(state, action="wait", reason="a helm run may still be at work on it (updated %ds ago)" % age)
    if status in PENDING or status == "failed" or status == "uninstalling":
        state["interrupted"] = True
        if status == "uninstalling" or earlier is None:
            state.update(action="uninstall", reason="left %s by a helm run that did not finish, and no earlier "
                         "revision ran: uninstalled, the next install starts clean" % status)
        else:
            state.update(action="rollback", to_revision=earlier["revision"],
                         reason="left %s by a helm run that did not finish: rolled back to revision %s (%s), what "
                         "ran before" % (status, earlier["revision"], earlier.get("chart", "?")))
    return state


def parse_time(text):
    """Seconds since the epoch of helm's JSON time (RFC 3339 with nanoseconds, e.g. 2026-12-06T12:00:00.1234Z)."""
    text = str(text or "").strip().replace("Z", "+00:00")
    if "." in text:
        head, rest = text.split(".", 1)
        zone = rest.lstrip("0123456789")
        digits = rest[:len(rest) - len(zone)]
        text = "%s.%s%s" % (head, digits[:6].ljust(6, "0"), zone)
    return datetime.fromisoformat(text).timestamp()


def _history(helm, params):
    result = helm.run(["history", params["release_name"], "--namespace", params["release_namespace"], "--output",
                       "json"] + helm_cluster_args(params), check=False)
    if result.rc != 0:
        if "not found" in (result.stderr or ""):
            return []
        where = "%s/%s" % (params["release_namespace"], params["release_name"])
        raise CiliumEksError("helm history of %s failed: %s" % (where, result.stderr.strip()))
    return sorted(json.loads(result.stdout or "[]"), key=lambda entry: entry["revision"])


def _settled(helm, params, clock=time.time):
    """(history, state, seconds waited) once no helm run may still be at work on a pending last revision (another
    run changing the release now), or once the wait is over."""
    wait = params["wait_timeout"]
    waiter = Waiter(wait, interval=POLL)
    while True:
        history = _history(helm, params)
        age = clock() - parse_time(history[-1].get("updated")) if history else None
        state = assess(history, age, wait)
        if state["action"] != "wait" or waiter.expired:
            return history, assess(history, age, 0), round(waiter.elapsed)
        waiter.pause()


def _repair(helm, params, state):
    name, namespace, seconds = params["release_name"], params["release_namespace"], "%ds" % params["timeout"]
    if state["action"] == "rollback":
        argv = ["rollback", name, str(state["to_revision"])]
    else:
        argv = ["uninstall", name]  # --wait: the chart's namespaces must be gone before an install makes them again
    helm.run(argv + ["--namespace", namespace, "--wait", "--timeout", seconds] + helm_cluster_args(params))


def run_module(module):
    """Entry point of the ``cilium_release_repair`` module."""
    params = module.params
    inputs.helm_release_name(params["release_name"], "release_name")
    inputs.dns_label(params["release_namespace"], "release_namespace")
    inputs.count(params["wait_timeout"], "wait_timeout")
    inputs.timeout(params["timeout"], "timeout")
    helm = module.runner("helm")
    history, state, waited = _settled(helm, params)
    where = "%s/%s" % (params["release_namespace"], params["release_name"])
    result = {"changed": False, "state": state, "waited": waited, "history": [
        {key: entry.get(key) for key in ("revision", "status", "chart", "updated")} for entry in history]}
    if state["action"] == "none":
        result["msg"] = "Release %s: %s; nothing to repair." % (where, state["reason"])
        return result
    result["changed"] = True
    result["msg"] = "Release %s revision %s: %s." % (where, state["revision"], state["reason"])
    if module.check_mode:
        result["msg"] = "check mode, would be: " + result["msg"]
        return result
    _repair(helm, params, state)
    module.warn(result["msg"])
    after = _history(helm, params)
    result["status_after"] = after[-1]["status"] if after else "none"
    return result
