# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Progress lines while a long module runs: one line about every 30 s, from the controller, no task headers.

A module cannot print while it runs (Ansible reads its result when it exits), and an ``async`` + poll loop in
YAML costs several task headers per poll. So the action plugins of the modules that wait (``cilium_status`` with
``wait``, ``cilium_connectivity_test``, ``eksctl_cluster`` without ``async``, ``cilium_release``'s helm) run the
module as usual while a thread of the worker shows, every ``interval`` seconds::

    cilium-eks-sandbox: 30s waiting for Cilium to be healthy on every node (timeout 600s): 1/2 agents ready ...

The part after the colon is the module's latest line (``module_utils/progress.py``: the file named in
``CILIUM_EKS_PROGRESS_FILE``), when the connection runs the module on the controller; otherwise the line says
what is awaited and for how long. The lines go to stderr, as eksctl's own progress does, so a stdout callback that
writes one document (ansible.posix.json) stays parseable. The interval is the variable
``cilium_eks_progress_interval`` (default 30, as eksctl's "waiting for CloudFormation stack" lines; 0: no lines).
Nothing runs when the module ends before the first interval: a run with nothing to wait for prints nothing more.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
import time

from ansible.plugins.action import ActionBase
from ansible.utils.display import Display
from ansible.utils.vars import merge_hash

from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.progress import PROGRESS_FILE_ENV

DEFAULT_INTERVAL = 30
INTERVAL_VARIABLE = "cilium_eks_progress_interval"

display = Display()


def latest_line(path):
    """The module's latest progress line in ``path`` ('' when there is none yet)."""
    if not path:
        return ""
    try:
        with open(path) as stream:
            return stream.read().strip()
    except OSError:
        return ""


def progress_line(host, elapsed, waiting_for, latest=""):
    """``"<host>: 30s <waiting_for>: <latest>"``."""
    return "%s: %ds %s%s" % (host, int(elapsed), waiting_for, (": " + latest) if latest else "")


class ProgressTicker:
    """A thread showing ``progress_line`` every ``interval`` seconds until ``stop()``; ``show`` and ``clock`` are
    injectable for tests."""

    def __init__(self, host, waiting_for, interval, path=None, show=None, clock=time.monotonic):
        self.host = host
        self.waiting_for = waiting_for
        self.interval = interval
        self.path = path
        self.show = show or (lambda line: display.display(line, stderr=True))
        self.clock = clock
        self.started = clock()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._tick, name="cilium-eks-progress", daemon=True)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stopped.set()
        self._thread.join(5)

    def line(self):
        return progress_line(self.host, self.clock() - self.started, self.waiting_for, latest_line(self.path))

    def _tick(self):
        while not self._stopped.wait(self.interval):
            self.show(self.line())


class ProgressAction(ActionBase):
    """The generic action (ansible.builtin.normal) plus progress lines while the module waits.

    Subclasses say what the module waits for with ``waiting_for(args)`` (None: it does not wait, no lines)."""

    _supports_check_mode = True
    _supports_async = True

    def waiting_for(self, args):  # pragma: no cover - overridden
        return None

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        wrap_async = self._task.async_val and not self._connection.has_native_async
        module_result = self.execute_with_progress(task_vars, wrap_async=wrap_async)
        result = merge_hash(result, module_result)
        if not wrap_async:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        return result

    def execute_with_progress(self, task_vars, module_name=None, module_args=None, wrap_async=False):
        """``_execute_module`` with progress lines, unless it runs in the background (``async``), or the module does
        not wait, or the interval is 0."""
        args = self._task.args if module_args is None else module_args
        waiting_for = None if wrap_async else self.waiting_for(args)
        interval = self.progress_interval(task_vars)
        if not waiting_for or interval <= 0:
            return self._execute_module(module_name=module_name, module_args=module_args, task_vars=task_vars,
                                        wrap_async=wrap_async)
        with self._progress_file() as path:
            ticker = ProgressTicker((task_vars or {}).get("inventory_hostname", "?"), waiting_for, interval,
                                    path).start()
            try:
                return self._execute_module(module_name=module_name, module_args=module_args, task_vars=task_vars)
            finally:
                ticker.stop()

    def progress_interval(self, task_vars):
        value = self._templar.template((task_vars or {}).get(INTERVAL_VARIABLE, DEFAULT_INTERVAL))
        try:
            return max(0, int(value))
        except (TypeError, ValueError):
            return DEFAULT_INTERVAL

    @contextlib.contextmanager
    def _progress_file(self):
        """A file the module writes its latest line to, named in its environment, when the module runs on the
        controller (connection local); otherwise None (the lines then say only what is awaited)."""
        if getattr(self._connection, "transport", None) != "local":
            yield None
            return
        handle, path = tempfile.mkstemp(prefix="cilium-eks-progress-")
        os.close(handle)
        environment = self._task.environment
        self._task.environment = (list(environment) if isinstance(environment, list) else
                                  [environment] if environment else []) + [{PROGRESS_FILE_ENV: path}]
        try:
            yield path
        finally:
            self._task.environment = environment
            os.unlink(path)
