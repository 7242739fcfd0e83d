# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The one wait loop, on a fake clock."""

from __future__ import annotations

from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.waiter import Waiter


class FakeTime:
    def __init__(self):
        self.now = 0.0
        self.sleeps = []

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(round(seconds, 3))
        self.now += seconds


def test_until_returns_what_the_probe_found_and_sleeps_in_intervals():
    fake = FakeTime()
    answers = iter([None, None, {"ready": True}])
    waiter = Waiter(10, interval=0.5, clock=fake.clock, sleep=fake.sleep)
    assert waiter.until(lambda: next(answers)) == {"ready": True}
    assert fake.sleeps == [0.5, 0.5]


def test_until_gives_up_at_the_deadline_without_sleeping_past_it():
    fake = FakeTime()
    waiter = Waiter(1.2, interval=0.5, clock=fake.clock, sleep=fake.sleep)
    assert waiter.until(lambda: None) is None
    assert fake.sleeps == [0.5, 0.5, 0.2] and waiter.expired


def test_a_wake_up_ends_the_pause_early_and_a_quiet_watch_leaves_the_rest_to_sleep():
    fake = FakeTime()
    waiter = Waiter(10, interval=2, clock=fake.clock, sleep=fake.sleep)

    def changed(seconds):
        fake.now += 0.3  # something changed 0.3 s into the watch
        return True

    def quiet_for(spent):
        def watch(seconds):
            fake.now += spent
            return False
        return watch

    waiter.pause(changed)
    assert fake.sleeps == [] and fake.now == 0.3
    waiter.pause(quiet_for(1.5))
    assert fake.sleeps == [0.5] and fake.now == 2.3


def test_no_watch_for_a_pause_too_short_to_matter():
    fake = FakeTime()
    waiter = Waiter(0.04, interval=0.5, clock=fake.clock, sleep=fake.sleep)

    def watch(seconds):
        raise AssertionError("watched for %ss" % seconds)

    waiter.pause(watch)
    assert fake.sleeps == [0.04]
