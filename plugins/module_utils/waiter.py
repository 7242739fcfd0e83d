# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Waiting, written once: a deadline, rounds at most every ``interval``, and a pause that a watch can cut short.

::

    waiter = Waiter(timeout=300)
    pods = waiter.until(lambda: running_pods() or None,
                        pause=k8s.wake_on_change("Pod", namespace, resource_version=version))

``until(probe)`` calls ``probe()`` until it returns something truthy (returned) or the time is up (None).
Loops that need each round's result (a progress log, the last status on failure) use ``expired``, ``elapsed`` and
``pause()`` themselves. ``clock`` and ``sleep`` are injectable, so waits are tested without real time. A
``pause(seconds)`` callable (``K8sService.wake_on_change``) may return True early when something changed; the
waiter sleeps whatever is left of the interval otherwise. Pure stdlib.
"""

from __future__ import annotations

import time

POLL_INTERVAL = 0.5  # seconds between two rounds


class Waiter:
    """Deadline arithmetic for one wait of ``timeout`` seconds (see the module docstring)."""

    def __init__(self, timeout, interval=POLL_INTERVAL, clock=time.monotonic, sleep=time.sleep):
        self.timeout = timeout
        self.interval = interval
        self.clock = clock
        self.sleep = sleep
        self.started = clock()

    @property
    def elapsed(self):
        return self.clock() - self.started

    @property
    def remaining(self):
        return max(0.0, self.timeout - self.elapsed)

    @property
    def expired(self):
        return self.elapsed >= self.timeout

    def pause(self, wake=None):
        """Wait until the next round: at most ``interval``, never past the deadline; ``wake`` may end it early."""
        seconds = min(self.interval, self.remaining)
        if wake is not None and seconds > 0.05:
            before = self.clock()
            if wake(seconds):
                return
            seconds -= self.clock() - before
        if seconds > 0:
            self.sleep(seconds)

    def until(self, probe, pause=None):
        """``probe()`` until it returns something truthy (returned), or None once the time is up."""
        while True:
            found = probe()
            if found:
                return found
            if self.expired:
                return None
            self.pause(pause)
