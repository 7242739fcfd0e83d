#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: cluster_lock
short_description: One run at a time per cluster, with a Kubernetes Lease held by the run changing it
version_added: 0.3.0
description:
  - Takes or gives back a C(coordination.k8s.io/v1) Lease (by default C(kube-system/cloudnet-cilium-eks)) naming the
    run that changes the cluster. The roles of this collection take it before their first change (the Cilium install
    or upgrade, the Bandwidth Manager, the restart of unmanaged pods, the uninstall) and give it back in an
    C(always:) section, so a failure gives it back too.
  - O(state=acquired) creates the Lease, or takes it when it was given back, or renews it when this run holds it
    already. It is re-entrant; a role run inside site.yml, or inside a playbook of your own that took the lock around
    several roles, renews the lock and leaves giving it back to whoever took it; RV(acquired) says which).
  - The run remembers until when the Leases it took or renewed stay valid. Asked again for a lock it holds, valid for at
    least O(duration) more (a role inside site.yml, which takes the lock for its Cilium and Bandwidth Manager stages
    together), the task answers RV(outcome=held) without running the module or calling the API server, since no other
    run can take the lock before then anyway.
  - A Lease held by another run is refused with a message naming that run (user, controller, ansible-playbook pid,
    inventory host), since when it holds it, when it renewed it, and what to do. It is taken over, with a warning,
    when it is stale (not renewed for its C(leaseDurationSeconds)), or at once when the run holding it ran on this
    controller and its process is gone (killed hard, Ctrl-C).
  - O(state=released) deletes the Lease when this run holds it, and leaves it alone otherwise.
  - The holder is this ansible-playbook run (its user, controller, pid and start time), filled in by the module's
    action plugin, with the inventory host that took the lock; every task of the run, for any of its inventory hosts,
    counts as the same holder (several hosts naming one cluster in one run share its lock).
  - Every write carries the Lease's C(resourceVersion), so two runs racing for a free lock cannot both get it.
author:
  - Contributors to the cloudnet.cilium_eks project (@cloudnet)
extends_documentation_fragment:
  - cloudnet.cilium_eks.k8s_auth
  - cloudnet.cilium_eks.attributes.no_diff
attributes:
  check_mode:
    support: full
    description: Reads the Lease and says what it would do (and refuses as it would); writes nothing.
options:
  state:
    description:
      - V(acquired) takes (or renews) the lock for this run; V(released) gives it back if this run holds it.
    type: str
    choices: [acquired, released]
    default: acquired
  name:
    description: Name of the Lease.
    type: str
    default: cloudnet-cilium-eks
  namespace:
    description: Namespace of the Lease.
    type: str
    default: kube-system
  duration:
    description:
      - Seconds the lock stays valid without renewal (C(leaseDurationSeconds)); after it, another run takes it over.
      - Give it longer than the slowest step until the next renewal (for the roles, their helm timeout plus their
        wait timeout); a run that does not renew in time loses the lock to the next one.
    type: int
    default: 900
  holder:
    description:
      - Who holds the lock. Filled in by the action plugin with this run
        (C(user@controller pid <ansible-playbook pid> run <its start> for <inventory host>)); give it only to share
        a lock between runs on purpose.
    type: str
notes:
  - The staleness is measured from the Lease's C(renewTime), written by the clock of the controller that renewed it,
    so the controllers' clocks must agree to well within O(duration).
  - A lock left by a run that is gone can be removed by hand with C(kubectl -n kube-system delete lease
    cloudnet-cilium-eks).
  - C(changed) is true when this task took or gave back the lock (the roles report their lock tasks as not changed,
    the lock being the run's bookkeeping, not a change of the cluster's configuration).
"""

EXAMPLES = r"""
- name: Change the cluster under its lock, given back whatever happens
  block:
    - name: Take the cluster lock for this run
      cloudnet.cilium_eks.cluster_lock:
        kubeconfig: "{{ playbook_dir }}/kubeconfig"
        duration: 1800
      register: my_lock

    - name: Install Cilium (its role renews the lock and leaves it to this play)
      ansible.builtin.include_role:
        name: cloudnet.cilium_eks.cilium_eni
  always:
    - name: Give the cluster lock back
      cloudnet.cilium_eks.cluster_lock:
        kubeconfig: "{{ playbook_dir }}/kubeconfig"
        state: released
      when: my_lock.acquired | default(false)
"""

RETURN = r"""
acquired:
  description: True when this task took the lock (give it back later); false when this run held it already.
  returned: state=acquired
  type: bool
outcome:
  description: V(create), V(take) (a given-back Lease), V(renew) (this run holds it), V(take_over) (stale), or
    V(held) (this run holds it, valid for at least O(duration) more, so nothing is written).
  returned: state=acquired
  type: str
reason:
  description: Why, in words (for a take-over, why the other run's lock was stale).
  returned: state=acquired
  type: str
released:
  description: True when this task gave the lock back.
  returned: state=released
  type: bool
holder:
  description: Who holds the lock after the task (this run's identity, or none after a release).
  returned: always
  type: str
  sample: "ci@runner-7 pid 4242 run 981234 for basic-cilium"
previous_holder:
  description: Who held the lock before (on a take-over, the run that was stale).
  returned: state=acquired
  type: str
lease:
  description: The Lease's spec as the task left it (C(holder), C(acquire_time), C(renew_time), C(duration),
    C(transitions)); on a refusal, as another run holds it; with RV(outcome=held), as this run last wrote it.
  returned: always
  type: dict
  sample: {holder: "ci@runner-7 pid 4242 run 981234 for basic-cilium", acquire_time: "2026-12-06T16:40:01.123456Z",
           renew_time: "2026-12-06T16:42:30.000001Z", duration: 1500, transitions: 0}
"""

from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.cluster_lock import (
    DEFAULT_DURATION,
    LEASE_NAME,
    LEASE_NAMESPACE,
    run_module,
)
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.module_base import CiliumEksModule


def main():
    module = CiliumEksModule(
        argument_spec=dict(
            state=dict(type="str", choices=["acquired", "released"], default="acquired"),
            name=dict(type="str", default=LEASE_NAME),
            namespace=dict(type="str", default=LEASE_NAMESPACE),
            duration=dict(type="int", default=DEFAULT_DURATION),
            holder=dict(type="str"),
        ),
        k8s_auth=True,
        supports_check_mode=True,
    )
    module.run(run_module)


if __name__ == "__main__":
    main()
