# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The cluster lock's pure rules: who may take the Lease when, the holder identity, the Lease written, the refusal.

The writes themselves (create, replace with resourceVersion, delete with a precondition, the 409 of a lost race) run
against the sandbox's real kube-apiserver in tests/integration/test_faults.py."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from ansible_collections.cloudnet.cilium_eks.plugins.module_utils import cluster_lock

NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z
ME = "ci@runner-1 pid 100 run 5000 for basic"
OTHER = "ops@laptop pid 200 run 7000 for basic"


def lease(holder, renewed_ago, duration=600, acquired_ago=None, transitions=0):
    spec = {"holderIdentity": holder, "leaseDurationSeconds": duration, "leaseTransitions": transitions,
            "renewTime": cluster_lock.format_time(NOW - renewed_ago),
            "acquireTime": cluster_lock.format_time(NOW - (renewed_ago if acquired_ago is None else acquired_ago))}
    return {"metadata": {"name": "cloudnet-cilium-eks", "namespace": "kube-system", "resourceVersion": "42"},
            "spec": {k: v for k, v in spec.items() if v is not None}}


def alive(_pid, _run):
    return True


def dead(_pid, _run):
    return False


@pytest.mark.parametrize("found, holder, expected", [
    (None, ME, "create"),
    (lease(None, 10), ME, "take"),                      # given back (holder removed)
    (lease(ME, 10), ME, "renew"),                       # this run: re-entrant
    (lease(ME, 10_000), ME, "renew"),                   # this run, even when late
    (lease(OTHER, 10), ME, "refuse"),
    (lease(OTHER, 599), ME, "refuse"),                  # one second left
    (lease(OTHER, 600), ME, "take_over"),               # renewTime + leaseDurationSeconds reached
    (lease(OTHER, 3600), ME, "take_over"),
    (lease(OTHER, 10, duration=0), ME, "take_over"),    # a Lease without a duration never protects
])
def test_who_may_take_the_lease_when(found, holder, expected):
    assert cluster_lock.assess(found, holder, NOW, alive)["action"] == expected


def test_the_inventory_hosts_of_one_run_are_one_holder():
    same_run_other_host = ME.replace("for basic", "for other-host")
    assert cluster_lock.same_run(ME, same_run_other_host)
    assert cluster_lock.assess(lease(same_run_other_host, 10), ME, NOW, alive)["action"] == "renew"
    assert not cluster_lock.same_run(ME, ME.replace("pid 100", "pid 101"))
    assert not cluster_lock.same_run(ME, ME.replace("run 5000", "run 5001"))  # the same pid, another process
    assert not cluster_lock.same_run(ME, ME.replace("@runner-1", "@runner-2"))
    assert cluster_lock.same_run("someone-else", "someone-else")  # identities of other tools: equal text only
    assert not cluster_lock.same_run("someone-else", ME)


def test_a_lease_without_renew_time_counts_from_its_acquire_time():
    found = lease(OTHER, 10)
    del found["spec"]["renewTime"]
    assert cluster_lock.assess(found, ME, NOW, alive)["action"] == "refuse"
    found["spec"]["acquireTime"] = cluster_lock.format_time(NOW - 601)
    assert cluster_lock.assess(found, ME, NOW, alive)["action"] == "take_over"


def test_a_holder_on_this_host_whose_process_is_gone_is_taken_over_at_once():
    here = "ci@%s pid 12345 run 777 for basic" % socket.gethostname()
    assert cluster_lock.assess(lease(here, 5), ME, NOW, dead)["action"] == "take_over"
    assert "process on this host is gone" in cluster_lock.assess(lease(here, 5), ME, NOW, dead)["reason"]
    assert cluster_lock.assess(lease(here, 5), ME, NOW, alive)["action"] == "refuse"
    # another host's process cannot be looked at from here: only time makes it stale
    elsewhere = "ci@not-%s pid 12345 run 777 for basic" % socket.gethostname()
    assert cluster_lock.assess(lease(elsewhere, 5), ME, NOW, dead)["action"] == "refuse"
    # a holder this collection did not write (another tool's Lease of that name): only time
    assert cluster_lock.assess(lease("kube-controller-manager_abc", 5), ME, NOW, dead)["action"] == "refuse"


def test_the_stale_reason_says_for_how_long():
    state = cluster_lock.assess(lease(OTHER, 700), ME, NOW, alive)
    assert state["reason"] == "stale: not renewed for 700s, longer than its 600s"
    assert state["held_by"] == OTHER


def test_the_holder_identity_names_user_host_pid_run_and_target_and_reads_back():
    text = cluster_lock.holder_identity(4242, "981234", "basic-cilium", user="ci", host="runner-7")
    assert text == "ci@runner-7 pid 4242 run 981234 for basic-cilium"
    assert cluster_lock.parse_holder(text) == {"user": "ci", "host": "runner-7", "pid": 4242, "run": "981234",
                                               "target": "basic-cilium"}
    assert cluster_lock.parse_holder("ci@runner-7 pid 4242 run -")["target"] is None
    assert cluster_lock.parse_holder("kube-controller-manager_1a2b") is None
    assert cluster_lock.parse_holder(None) is None


def test_the_holder_of_this_process_is_alive_and_a_finished_one_is_not():
    me = os.getpid()
    assert cluster_lock.process_alive(me, cluster_lock.process_start(me))
    assert cluster_lock.process_alive(me, "-")
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True, check=True)
    assert not cluster_lock.process_alive(int(finished.stdout), "-")


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="process start times are read from Linux's /proc")
def test_a_reused_pid_is_not_the_holder():
    me = os.getpid()
    assert cluster_lock.process_start(me).isdigit()
    assert not cluster_lock.process_alive(me, str(int(cluster_lock.process_start(me)) + 1))


def test_times_are_written_as_micro_times_and_read_back():
    assert cluster_lock.format_time(NOW + 0.25) == "2027-01-15T08:00:00.250000Z"
    assert cluster_lock.parse_time("2027-01-15T08:00:00.250000Z") == NOW + 0.25
    assert cluster_lock.parse_time("2027-01-15T08:00:00Z") == NOW
    assert cluster_lock.parse_time(None) is None


def test_a_new_lease_is_held_from_now():
    body = cluster_lock.lease_body("cloudnet-cilium-eks", "kube-system", ME, 900, NOW)
    assert body["spec"] == {"holderIdentity": ME, "leaseDurationSeconds": 900,
                            "acquireTime": "2027-01-15T08:00:00.000000Z", "renewTime": "2027-01-15T08:00:00.000000Z"}
    assert "resourceVersion" not in body["metadata"]
    assert body["apiVersion"] == "coordination.k8s.io/v1" and body["kind"] == "Lease"


def test_a_renewal_keeps_the_acquire_time_and_a_take_over_counts_a_transition():
    found = lease(ME, 30, acquired_ago=300, transitions=2)
    renewed = cluster_lock.lease_body("cloudnet-cilium-eks", "kube-system", ME, 900, NOW, found, taken=False)
    assert renewed["spec"]["acquireTime"] == found["spec"]["acquireTime"]
    assert renewed["spec"]["renewTime"] == cluster_lock.format_time(NOW)
    assert renewed["spec"]["leaseTransitions"] == 2
    assert renewed["metadata"]["resourceVersion"] == "42"  # the write fails (409) if the Lease changed meanwhile
    taken = cluster_lock.lease_body("cloudnet-cilium-eks", "kube-system", OTHER, 60, NOW, found, taken=True)
    assert taken["spec"]["holderIdentity"] == OTHER and taken["spec"]["leaseDurationSeconds"] == 60
    assert taken["spec"]["acquireTime"] == cluster_lock.format_time(NOW)
    assert taken["spec"]["leaseTransitions"] == 3


def test_the_refusal_names_the_holder_since_when_and_what_to_do():
    state = cluster_lock.assess(lease(OTHER, 40, acquired_ago=100), ME, NOW, alive)
    message = cluster_lock.refusal("cloudnet-cilium-eks", "kube-system", state, NOW)
    assert "Another run is changing this cluster" in message
    assert "held by '%s' since %s" % (OTHER, cluster_lock.format_time(NOW - 100)) in message
    assert "renewed 40s ago, valid 600s after each renewal" in message
    assert "This run changed nothing here" in message
    assert "kubectl -n kube-system delete lease cloudnet-cilium-eks" in message
    assert "or wait 560s" in message


# ------------------------------------------------------------------- the run's memory of its Leases (action plugin)


def test_a_lease_is_named_by_its_cluster_connection_and_its_name():
    site = {"kubeconfig": "/k/one", "state": "acquired", "duration": 3600}
    role = {"kubeconfig": "/k/one", "duration": 3060, "state": "acquired", "holder": ME}
    assert cluster_lock.lease_key(site) == cluster_lock.lease_key(role)
    assert cluster_lock.lease_key(site) != cluster_lock.lease_key(dict(site, kubeconfig="/k/two"))
    assert cluster_lock.lease_key(site) != cluster_lock.lease_key(dict(site, context="other"))
    assert cluster_lock.lease_key(site) != cluster_lock.lease_key(dict(site, name="another-lock"))
    assert cluster_lock.lease_key(site) == cluster_lock.lease_key(dict(site, namespace="kube-system"))


def test_the_run_remembers_a_lease_it_took_until_it_expires_and_forgets_it_when_given_back():
    taken = {"changed": True, "acquired": True, "outcome": "create", "holder": ME, "lease": {"duration": 3600}}
    held = cluster_lock.remember({}, "k", taken, "acquired", 3600, NOW)
    assert held == {"k": {"holder": ME, "expires": NOW + 3600, "lease": {"duration": 3600}}}
    # a role of the same run (another inventory host of it too) asking for less than what is left: no renewal needed
    assert cluster_lock.still_held(held["k"], ME, 3060, NOW + 500)
    assert cluster_lock.still_held(held["k"], ME.replace("for basic", "for other-host"), 3060, NOW + 540)
    # asking for more than is left, another run, nothing remembered: the module renews (or refuses)
    assert not cluster_lock.still_held(held["k"], ME, 3060, NOW + 541)
    assert not cluster_lock.still_held(held["k"], OTHER, 60, NOW)
    assert not cluster_lock.still_held(None, ME, 60, NOW)
    released = cluster_lock.remember(held, "k", {"changed": True, "released": True, "holder": None}, "released", 900,
                                     NOW + 600)
    assert released == {} and held["k"]["holder"] == ME  # the records are copied, never changed in place


def test_a_refused_take_is_not_remembered():
    held = {"k": {"holder": ME, "expires": NOW + 10}}
    refused = {"failed": True, "msg": "Another run is changing this cluster", "holder": OTHER}
    assert cluster_lock.remember(held, "k", refused, "acquired", 900, NOW) == {}
