# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Exception hierarchy shared by the modules of cloudnet.cilium_eks.

Every error carries a human message and structured details; modules turn any
``CiliumEksError`` into ``module.fail_json(**err.to_fail_kwargs())`` (see
``module_base.CiliumEksModule.run``). Pure stdlib: importable without Ansible.
"""

from __future__ import annotations

import re
import shlex
import sys

REDACTED = "********"
TAIL_LINES = 20

# Keys fail_json sets itself or treats specially; details must not shadow them.
_RESERVED_KEYS = frozenset(("msg", "failed", "changed", "exception", "invocation", "warnings", "deprecations"))


def redact(text, secrets):
    """Return ``text`` with every non-empty value of ``secrets`` replaced by ``********``."""
    if not text or not secrets:
        return text
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


def tail(text, lines=TAIL_LINES):
    """Last ``lines`` lines of ``text`` (without a trailing newline)."""
    if not text:
        return ""
    return "\n".join(text.rstrip("\n").splitlines()[-lines:])


def format_argv(argv):
    """Shell-quoted, copy-pasteable rendering of an argv list (display only, never executed)."""
    return " ".join(shlex.quote(str(arg)) for arg in argv)


class CiliumEksError(Exception):
    """Base class. ``msg`` is for humans, ``details`` is merged into the module's failure result."""

    def __init__(self, msg, **details):
        super().__init__(msg)
        self.msg = msg
        self.details = details

    def __str__(self):
        return self.msg

    def to_fail_kwargs(self):
        """Keyword arguments for ``AnsibleModule.fail_json``: ``msg``, ``error_type`` and the non-empty details."""
        kwargs = {"msg": self.msg, "error_type": type(self).__name__}
        for key, value in self.details.items():
            if value is None:
                continue
            kwargs["error_" + key if key in _RESERVED_KEYS else key] = value
        return kwargs


class CommandError(CiliumEksError):
    """An external command exited non-zero or was killed after its timeout.

    ``argv``, ``stdout`` and ``stderr`` must already be redacted by the caller (the runner does it). ``context``
    (what the command was for, why its result is wrong) opens the message; ``details`` join the failure result.
    """

    def __init__(self, argv, rc, stdout="", stderr="", timed_out=False, timeout=None, duration=None, context=None,
                 **details):
        self.argv = list(argv)
        self.rc = rc
        self.stdout_tail = tail(stdout)
        self.stderr_tail = tail(stderr)
        self.timed_out = timed_out
        self.timeout = timeout
        self.duration = duration
        cmd = format_argv(self.argv)
        if timed_out:
            msg = "Command `%s` timed out after %ss and was killed (with its whole process group)" % (cmd, timeout)
        else:
            msg = "Command `%s` failed with exit code %s" % (cmd, rc)
        if context:
            msg = "%s. %s" % (context, msg)
        if self.stderr_tail:
            msg += "\nstderr (last %d lines):\n%s" % (TAIL_LINES, self.stderr_tail)
        elif self.stdout_tail:
            msg += "\nstdout (last %d lines):\n%s" % (TAIL_LINES, self.stdout_tail)
        super().__init__(
            msg, cmd=cmd, argv=self.argv, rc=rc, stdout=self.stdout_tail, stderr=self.stderr_tail,
            timed_out=timed_out, timeout=timeout, duration=duration, **details
        )


class CommandNotFoundError(CiliumEksError):
    """A CLI the collection drives (eksctl, helm, cilium, kubectl) is not installed where we looked."""

    def __init__(self, binary, path=None, option=None):
        self.binary = binary
        self.path = path
        self.option = option or "%s_path" % binary
        if path:
            where = "%s was not found or is not executable at %s" % (binary, path)
        else:
            where = "%s was not found on PATH" % binary
        msg = (
            "%s. Run the `cloudnet.cilium_eks.tools` role, or put %s on PATH / set the `%s` option."
            % (where, binary, self.option)
        )
        super().__init__(msg, binary=binary, path=path, option=self.option)


class ClusterUnreachableError(CiliumEksError):
    """The Kubernetes API server could not be reached or refused our credentials."""

    def __init__(self, server, reason, kubeconfig=None, context=None, advice=None):
        self.server = server
        self.reason = reason
        self.kubeconfig = kubeconfig
        self.context = context
        self.advice = advice
        source = []
        if kubeconfig:
            source.append("kubeconfig %s" % kubeconfig)
        if context:
            source.append("context %s" % context)
        msg = "Kubernetes API server %s is unreachable" % server
        if source:
            msg += " (%s)" % ", ".join(source)
        msg += ": %s" % reason
        if advice:
            msg += ". %s" % advice
        super().__init__(msg, server=server, reason=reason, kubeconfig=kubeconfig, context=context, advice=advice)


_NOT_GIVEN = object()


class ValidationError(CiliumEksError):
    """An input (module option, kubeconfig entry, ...) is invalid. Names the input and what is accepted."""

    def __init__(self, name, problem, accepted=None, value=_NOT_GIVEN):
        self.name = name
        self.problem = problem
        self.value = value
        if isinstance(accepted, (set, frozenset)):
            accepted = sorted(accepted, key=str)
        self.accepted = list(accepted) if isinstance(accepted, (list, tuple)) else accepted
        msg = "Invalid `%s`" % name
        if value is not _NOT_GIVEN:
            msg += " %r" % (value,)
        msg += ": %s" % problem
        if isinstance(self.accepted, list):
            msg += ". Accepted values: %s" % ", ".join(str(a) for a in self.accepted)
        elif self.accepted:
            msg += ". Expected: %s" % self.accepted
        super().__init__(msg, name=name, accepted=self.accepted)

    def renamed(self, names):
        """The same error naming the input as the caller calls it: ``names`` maps the first part of the name
        (``nodegroups`` of ``nodegroups[ng-1].instance_type``) to another (a role variable)."""
        head = re.split(r"[.\[]", self.name, maxsplit=1)[0]
        if head not in (names or {}):
            return self
        return ValidationError(names[head] + self.name[len(head):], self.problem, self.accepted, self.value)


class MissingLibraryError(CiliumEksError):
    """A Python library needed on the managed node is not importable (``missing_required_lib`` style)."""

    def __init__(self, library, pip_name=None, reason=None):
        self.library = library
        pip_name = pip_name or library
        msg = (
            "Failed to import the required Python library (%s) on the Python %s. "
            "Install it with `pip install %s` for that interpreter, or point ansible_python_interpreter "
            "at a Python that has it." % (library, sys.executable, pip_name)
        )
        if reason:
            msg += " Import error: %s" % reason
        super().__init__(msg, library=library, pip_name=pip_name)
