# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""One run at a time per cluster: a ``coordination.k8s.io/v1`` Lease in the cluster, held by the run changing it.

Two runs against one cluster used to collide inside helm ("another operation (install/upgrade/rollback) is in
progress") and leave a failed revision. The roles now take the Lease (``kube-system/cloudnet-cilium-eks``) before
their first change and give it back in an ``always:`` section, so the second run stops at once, naming the first.

The Lease's fields (k8s.io/api v0.34.4 coordination/v1/types.go l.58-74): ``holderIdentity``,
``leaseDurationSeconds``, ``acquireTime``, ``renewTime`` (MicroTime, ``RFC3339Micro`` in k8s.io/apimachinery v0.34.4
pkg/apis/meta/v1/micro_time.go l.26) and ``leaseTransitions``. A holder identity names the run:
``user@host pid <ansible-playbook pid> run <its start> for <inventory host>`` (``holder_identity``); the action plugin
of the ``cluster_lock`` module fills it in, so every task of one ansible-playbook run, in any role, is the same holder
(``same_run`` leaves the inventory host out: the hosts of one run share the lock).

``assess(lease, holder, now, alive)`` is the pure rule:

* no Lease, or one with no holder (released) -> ``create`` / ``take``;
* held by this run -> ``renew`` (re-entrant: a role inside site.yml, or inside a user's playbook that took the Lease
  itself, renews it and leaves the release to whoever took it);
* held by another run whose ``renewTime`` + ``leaseDurationSeconds`` lies in the past -> ``take_over`` (stale: the
  rule of client-go's leader election, v0.34.4 tools/leaderelection/leaderelection.go l.467 and ``isLeaseValid``
  l.518-519, which measures from its own observation; a run that is not watching measures from ``renewTime``, so
  the clocks of the two controllers must agree to within the duration);
* held by another run on this very host whose process is gone (pid not running, or running since another time)
  -> ``take_over`` at once: a run killed hard on this controller does not block the next for the whole duration;
* otherwise -> ``refuse``, with who holds it, since when, and what to do.

Within one run, the action plugin remembers the Leases this run took or renewed and until when they stay valid
(``remember``/``still_held``, a fact of the inventory host): a role asking again for a lock the run holds, valid for
at least the duration it asks for, is answered without a module run (``outcome`` ``held``), as a renewal would change
nothing another run can see before that moment; otherwise the module renews it.

``acquire``/``release`` apply it through ``K8sService`` with optimistic concurrency (``resourceVersion`` on every
write): two runs racing for a free Lease cannot both win; the loser reads again and is refused.
"""

from __future__ import annotations

import getpass
import os
import re
import socket
import time
from datetime import datetime, timezone

from ansible_collections.cloudnet.cilium_eks.plugins.module_utils import inputs
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.errors import CiliumEksError, ValidationError
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.k8s_service import K8sApiError, K8sService

LEASE_NAME = "cloudnet-cilium-eks"
LEASE_NAMESPACE = "kube-system"
DEFAULT_DURATION = 900
LOCKS_FACT = "cloudnet_cilium_eks_cluster_locks"  # the action plugin's memory of this run's Leases (per inventory host)
AUTH_KEYS = ("kubeconfig", "context", "host")
HOLDER_RE = re.compile(r"(?P<user>\S*)@(?P<host>\S+) pid (?P<pid>\d+) run (?P<run>\S+)(?: for (?P<target>.*))?")


class LockHeldError(CiliumEksError):
    """Another run holds the cluster's Lease."""


def holder_identity(pid, run, target=None, user=None, host=None):
    """``user@host pid N run S for target``: the identity of one ansible-playbook run (``pid``, started at ``run``)
    working on the inventory host ``target``."""
    try:
        user = user or getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers run with an arbitrary uid)
        user = "uid%d" % os.getuid()
    text = "%s@%s pid %d run %s" % (user, host or socket.gethostname(), int(pid), run)
    return text + (" for %s" % target if target else "")


def parse_holder(text):
    """``{"user", "host", "pid", "run", "target"}`` of a holder identity this collection wrote, else None."""
    found = HOLDER_RE.fullmatch(text or "")
    return dict(found.groupdict(), pid=int(found.group("pid"))) if found else None


def same_run(one, other):
    """Do two holder identities name the same ansible-playbook run? Its inventory hosts (``for ...``) share the
    lock: one run is one holder, whichever of its hosts took the lock."""
    first, second = parse_holder(one), parse_holder(other)
    if first is None or second is None:
        return one == other
    return all(first[key] == second[key] for key in ("user", "host", "pid", "run"))


def process_start(pid):
    """When process ``pid`` started, as Linux counts it (clock ticks since boot, field 22 of /proc/<pid>/stat,
    proc(5)); ``-`` where there is no /proc. Told apart from ``pid`` alone, it names one process, not its number."""
    try:
        with open("/proc/%d/stat" % int(pid)) as stat:
            return stat.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError, ValueError):
        return "-"


def process_alive(pid, run):
    """Is process ``pid``, started at ``run`` (``process_start``), still running on this host?"""
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        pass
    return run == "-" or process_start(pid) in ("-", run)


def format_time(seconds):
    """A MicroTime (RFC3339Micro, UTC) for ``seconds`` since the epoch."""
    return datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text):
    """Seconds since the epoch of a Time or MicroTime (``...Z``, with or without fractions); None when absent."""
    if not text:
        return None
    return datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()


def _holder_gone(holder, alive):
    """True when ``holder`` ran on this host and its process is gone (``alive(pid, run)`` is false)."""
    parsed = parse_holder(holder)
    return bool(parsed and parsed["host"] == socket.gethostname() and not alive(parsed["pid"], parsed["run"]))


def assess(lease, holder, now, alive=process_alive):
    """What ``holder`` may do with ``lease`` (a Lease dict or None) at ``now`` (see the module docstring).

    -> ``{"action", "held_by", "since", "renewed", "duration", "expires_in", "reason"}``; ``action`` is ``create``,
    ``take`` (a released Lease), ``renew``, ``take_over`` or ``refuse``."""
    if lease is None:
        return {"action": "create", "held_by": None, "reason": "no other run holds the lock"}
    spec = lease.get("spec") or {}
    held_by = spec.get("holderIdentity") or None
    duration = int(spec.get("leaseDurationSeconds") or 0)
    renewed = parse_time(spec.get("renewTime")) or parse_time(spec.get("acquireTime"))
    state = {"held_by": held_by, "since": spec.get("acquireTime"), "renewed": spec.get("renewTime"),
             "duration": duration}
    if held_by is None:
        return dict(state, action="take", reason="the lock was released")
    if same_run(held_by, holder):
        return dict(state, action="renew", reason="this run holds the lock already")
    expires_in = (renewed + duration - now) if renewed is not None else 0
    state["expires_in"] = int(expires_in)
    if expires_in <= 0:
        return dict(state, action="take_over", reason="stale: not renewed for %ds, longer than its %ds" % (
            now - renewed if renewed is not None else duration, duration))
    if _holder_gone(held_by, alive):
        return dict(state, action="take_over", reason="its process on this host is gone")
    return dict(state, action="refuse", reason="another run holds the lock")


def lease_key(args):
    """One string naming a Lease of one cluster as the task's arguments reach it: the connection (kubeconfig, context,
    API server) and the Lease's namespace/name. Two spellings of one cluster make two keys: the module then runs."""
    parts = [str(args.get(key) or "") for key in AUTH_KEYS]
    parts += [str(args.get("namespace") or LEASE_NAMESPACE), str(args.get("name") or LEASE_NAME)]
    return "|".join(parts)


def still_held(held, holder, duration, now):
    """Does ``held`` (this run's record of a Lease: ``{"holder", "expires"}``, from ``remember``) show the Lease held by
    the run of ``holder`` and valid for at least ``duration`` seconds from ``now``? Then renewing it would change
    nothing another run can see before that moment."""
    if not held or not same_run(held.get("holder"), holder):
        return False
    return float(held.get("expires") or 0) - now >= int(duration)


def remember(held, key, result, state, duration, started):
    """This run's records (``{key: {"holder", "expires", "lease"}}``) after a ``cluster_lock`` task's ``result``: a taken or
    renewed Lease is valid until ``started`` (before the module wrote ``renewTime``) plus ``duration``; a released one,
    or one the task did not get, is forgotten."""
    held = dict(held or {})
    if state == "acquired" and not result.get("failed") and result.get("holder"):
        held[key] = {"holder": result["holder"], "expires": started + int(duration), "lease": result.get("lease")}
    else:
        held.pop(key, None)
    return held


def refusal(name, namespace, state, now):
    """The message of a refused ``acquire``: who, since when, and what to do."""
    renewed = parse_time(state.get("renewed"))
    return ("Another run is changing this cluster: it holds the lock, Lease %s/%s, held by '%s' since %s (renewed "
            "%ss ago, valid %ss after each renewal). This run changed nothing here. Wait for that run to finish, then run again. If that run "
            "is dead (its controller or process is gone), remove the lock: kubectl -n %s delete lease %s; or wait %ss: "
            "a lock not renewed for %ss is taken over." % (
                namespace, name, state["held_by"], state.get("since") or "?",
                int(now - renewed) if renewed is not None else "?", state["duration"], namespace, name,
                max(int(state.get("expires_in") or 0), 0), state["duration"]))


def lease_body(name, namespace, holder, duration, now, lease=None, taken=True):
    """The Lease to write: a new one, or ``lease`` renewed (``taken`` False) or taken by ``holder``."""
    spec = dict((lease or {}).get("spec") or {})
    stamp = format_time(now)
    spec.update(holderIdentity=holder, leaseDurationSeconds=int(duration), renewTime=stamp)
    if taken:
        spec["acquireTime"] = stamp
        if lease is not None:
            spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + 1
    metadata = {"name": name, "namespace": namespace,
                "labels": {"app.kubernetes.io/managed-by": "cloudnet.cilium_eks"}}
    if lease is not None:
        metadata["resourceVersion"] = (lease.get("metadata") or {}).get("resourceVersion")
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": metadata, "spec": spec}


def _conflict(error):
    return isinstance(error, CiliumEksError) and error.details.get("status_code") == 409


def _summary(lease):
    spec = (lease or {}).get("spec") or {}
    return {"holder": spec.get("holderIdentity"), "acquire_time": spec.get("acquireTime"),
            "renew_time": spec.get("renewTime"), "duration": spec.get("leaseDurationSeconds"),
            "transitions": spec.get("leaseTransitions") or 0}


def acquire(k8s, name, namespace, holder, duration, check_mode=False, clock=time.time, alive=process_alive):
    """Take (or renew) the Lease for ``holder``; ``LockHeldError`` when another run holds it. The result's
    ``acquired`` is true when this call took it (then the caller releases it), false when it renewed its own;
    ``outcome`` is the ``assess`` action taken."""
    for _attempt in range(3):  # a write that loses a race (409) reads again
        lease, now = k8s.get("Lease", name, namespace), clock()
        state = assess(lease, holder, now, alive)
        if state["action"] == "refuse":
            raise LockHeldError(refusal(name, namespace, state, now), holder=state["held_by"],
                                lease=_summary(lease))
        renew = state["action"] == "renew"  # the holder as written by whichever host of this run took it
        body = lease_body(name, namespace, state["held_by"] if renew else holder, duration, now, lease, not renew)
        result = {"changed": not renew, "outcome": state["action"], "reason": state["reason"], "acquired": not renew,
                  "holder": body["spec"]["holderIdentity"], "previous_holder": state["held_by"],
                  "lease": _summary(body)}
        if check_mode:
            return result
        try:
            written = k8s.create("Lease", body, namespace) if lease is None else \
                k8s.replace("Lease", name, body, namespace)
        except K8sApiError as error:
            if _conflict(error):
                continue
            raise
        return dict(result, lease=_summary(written))
    raise LockHeldError("Lease %s/%s changed under this run three times in a row while taking it: another run is "
                        "taking it now. This run changed nothing here; run again in a moment." % (namespace, name))


def release(k8s, name, namespace, holder, check_mode=False):
    """Give the Lease back (delete it) when ``holder`` holds it; otherwise leave it as it is. The result's
    ``released`` says whether this call gave it back."""
    for _attempt in range(3):
        lease = k8s.get("Lease", name, namespace)
        held_by = ((lease or {}).get("spec") or {}).get("holderIdentity") or None
        ours = held_by is not None and same_run(held_by, holder)
        result = {"changed": ours, "released": ours, "holder": held_by, "lease": _summary(lease) if lease else None}
        if not ours or check_mode:
            return result
        try:
            k8s.delete("Lease", name, namespace, resource_version=lease["metadata"]["resourceVersion"])
        except K8sApiError as error:
            if _conflict(error):  # renewed or taken over in between: look again
                continue
            raise
        return dict(result, holder=None)
    raise LockHeldError("Lease %s/%s kept changing while this run gave it back; look at it (kubectl -n %s get lease "
                        "%s -o yaml)." % (namespace, name, namespace, name))


def run_module(module):
    """Entry point of the ``cluster_lock`` module."""
    params = module.params
    inputs.text(params["name"], "name", inputs.DNS1123_SUBDOMAIN, "a DNS-1123 subdomain (lower-case letters, digits, '-' and '.', at most 253 characters)", 253)
    inputs.dns_label(params["namespace"], "namespace")
    inputs.timeout(params["duration"], "duration")
    holder = params["holder"]
    if not holder or not holder.strip() or len(holder) > 1024:
        raise ValidationError("holder", "must name the run holding the lock (1 to 1024 characters); the action "
                              "plugin sets it to this ansible-playbook run", value=holder)
    k8s = K8sService(module.k8s_client())
    where = "Lease %s/%s" % (params["namespace"], params["name"])
    if params["state"] == "released":
        result = release(k8s, params["name"], params["namespace"], holder, module.check_mode)
        if result["holder"] is not None and not result["released"]:
            module.warn("The cluster lock (%s) is held by '%s', not by this run: another run took it over while "
                        "this one worked (it was not renewed in time). Left as it is." % (where, result["holder"]))
        result["msg"] = "%s %s." % (where, "given back" if result["released"] else "not held by this run")
        return result
    result = acquire(k8s, params["name"], params["namespace"], holder, params["duration"], module.check_mode)
    if result["outcome"] == "take_over":
        module.warn("Took the cluster lock (%s) over from '%s' (%s): that run is gone or stopped renewing it; if it "
                    "still runs, it changes this cluster at the same time as this one." % (
                        where, result["previous_holder"], result["reason"]))
    done = {"create": "taken", "take": "taken", "renew": "renewed", "take_over": "taken over"}[result["outcome"]]
    result["msg"] = "%s %s for %ss (%s)." % (where, done, params["duration"], result["reason"])
    return result
