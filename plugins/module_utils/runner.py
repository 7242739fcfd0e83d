# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The one way this collection runs external CLIs (eksctl, helm, cilium, kubectl when unavoidable).

* argv lists only, never a shell; a ``str`` command raises ``TypeError``.
* The binary comes from an explicit path or from ``PATH``; if absent -> ``CommandNotFoundError``.
* Each command runs in its own process group; on timeout the whole group gets SIGTERM, then
  SIGKILL after a short grace, so helpers it spawned (plugins, ``aws eks get-token``...) die too.
* If the module itself is interrupted while the command runs (SIGINT, or the SIGTERM of a killed
  ansible-playbook), the command's process group is killed before the module exits: no eksctl or
  helm is left working on the cluster with nobody waiting for it.
* ``env`` is merged over ``os.environ`` (a ``None`` value removes a variable).
* ``redact`` values are replaced by ``********`` in the returned argv, in errors and in the lines
  given to ``on_line``. ``stdout``/``stderr`` in the result are left intact because callers parse
  them: a module returning them should also register its secrets as no_log values.
* ``on_line(stream, line)`` is called for every output line while the command runs
  (``stream`` is ``"stdout"`` or ``"stderr"``), e.g. to log progress of a 20-minute eksctl run.
  ``CommandRunner.run`` without ``on_line`` notes each line as the module's progress (``progress.note``), which
  the module's action plugin shows every ~30 s when it asked for it; otherwise nothing happens.

Pure stdlib, POSIX only; importable without Ansible.
"""

from __future__ import annotations

import collections
import os
import select
import selectors
import shutil
import signal
import subprocess
import threading
import time

from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.errors import (
    CiliumEksError,
    CommandError,
    CommandNotFoundError,
    format_argv,
    redact as redact_text,
)
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils import progress

KILL_GRACE = 5.0  # seconds between SIGTERM and SIGKILL of a timed-out process group
_DRAIN = 2.0  # seconds we keep reading after the command exited while a leftover child holds the pipes
_POLL = 0.5
_UNSET = object()


class CommandResult(collections.namedtuple("CommandResult", "argv rc stdout stderr duration")):
    """Outcome of one command: redacted ``argv`` (list), ``rc``, decoded ``stdout``/``stderr``, ``duration`` (s)."""

    __slots__ = ()

    @property
    def ok(self):
        return self.rc == 0

    def to_dict(self):
        """Plain dict, e.g. to return from a module."""
        return {
            "argv": list(self.argv),
            "rc": self.rc,
            "stdout": self.stdout,
            "stderr": self.stderr,
            "duration": round(self.duration, 3),
        }


def resolve_binary(name, path=None, option=None):
    """Absolute path of ``name``: ``path`` if given (must be an executable file), else looked up on PATH.

    ``option`` names the module option that sets the path (default ``<name>_path``), for the error message.
    """
    if path:
        path = os.path.abspath(os.path.expanduser(path))
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
        raise CommandNotFoundError(name, path=path, option=option)
    found = shutil.which(name)
    if not found:
        raise CommandNotFoundError(os.path.basename(name), option=option)
    return os.path.abspath(found)


def _check_argv(argv):
    if isinstance(argv, (str, bytes)):
        raise TypeError(
            "commands must be argv lists such as ['helm', 'version'], not a string: %r "
            "(this collection never runs a shell)" % (argv,)
        )
    if not isinstance(argv, (list, tuple)):
        raise TypeError("argv must be a list or tuple, got %s" % type(argv).__name__)
    checked = []
    for arg in argv:
        if isinstance(arg, bool) or not isinstance(arg, (str, int, os.PathLike)):
            raise TypeError("argv elements must be str, int or path-like, got %r" % (arg,))
        checked.append(os.fspath(arg) if isinstance(arg, os.PathLike) else str(arg))
    return checked


def _merged_env(env):
    merged = dict(os.environ)
    for key, value in (env or {}).items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = str(value)
    return merged


def _kill_group(proc, grace):
    """SIGTERM the process group, give the leader ``grace`` seconds, then SIGKILL whatever is left."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _exit_on_sigterm(signum, _frame):
    raise SystemExit(128 + signum)  # unwinds through run_command's clean-up, unlike the default action


def _trap_sigterm():
    """Make SIGTERM unwind the stack while a command runs; the previous handler, or None if left alone
    (not the main thread, or someone else already handles SIGTERM)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    previous = signal.getsignal(signal.SIGTERM)
    if previous is not signal.SIG_DFL:
        return None
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    return previous


class _LineSplitter:
    """Turns the chunks read from one pipe into redacted lines for ``on_line``."""

    def __init__(self, stream, on_line, secrets):
        self.stream = stream
        self.on_line = on_line
        self.secrets = secrets
        self.pending = b""

    def feed(self, data):
        lines = (self.pending + data).split(b"\n")
        self.pending = lines.pop()
        for line in lines:
            self._emit(line)

    def close(self):
        if self.pending:
            self._emit(self.pending)
            self.pending = b""

    def _emit(self, raw):
        line = raw.decode("utf-8", "replace").rstrip("\r")
        self.on_line(self.stream, redact_text(line, self.secrets))


def run_command(argv, check=True, timeout=None, env=None, redact=(), stdin=None, cwd=None, on_line=None,
                option=None, kill_grace=KILL_GRACE):
    """Run ``argv`` (list; ``argv[0]`` a name looked up on PATH or a path) and return a ``CommandResult``.

    ``check``: raise ``CommandError`` on a non-zero exit code (a timeout always raises).
    ``timeout``: seconds (``None``: no limit). ``stdin``: ``str``/``bytes`` fed to the command
    (otherwise stdin is ``/dev/null``). ``option``: module option naming the binary path, for errors.
    """
    argv = _check_argv(argv)
    if not argv:
        raise TypeError("argv must not be empty")
    secrets = [str(s) for s in (redact or ()) if s not in (None, "")]
    name = os.path.basename(argv[0])
    argv[0] = resolve_binary(name, path=argv[0] if os.sep in argv[0] else None, option=option)
    shown_argv = [redact_text(arg, secrets) for arg in argv]
    if isinstance(stdin, str):
        stdin = stdin.encode("utf-8")

    previous_sigterm = _trap_sigterm()
    try:
        return _run(argv, shown_argv, secrets, check, timeout, env, stdin, cwd, on_line, kill_grace)
    finally:
        if previous_sigterm is not None:
            signal.signal(signal.SIGTERM, previous_sigterm)


def _start(argv, shown_argv, secrets, stdin, cwd, env):
    """The command started in a process group of its own (so a timeout can kill its whole tree)."""
    try:
        return subprocess.Popen(
            argv,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            env=_merged_env(env),
            start_new_session=True,
            close_fds=True,
        )
    except OSError as exc:  # e.g. exec format error, missing cwd
        raise CiliumEksError(
            "Could not start `%s`: %s" % (format_argv(shown_argv), redact_text(str(exc), secrets)),
            cmd=format_argv(shown_argv), argv=shown_argv, cwd=cwd,
        ) from exc


class _Pipes:
    """Feeds a running command's stdin and reads its stdout and stderr (streamed to ``splitters``)."""

    def __init__(self, proc, stdin, splitters):
        self.proc = proc
        self.stdin = stdin
        self.stdin_offset = 0
        self.splitters = splitters
        self.output = {"stdout": [], "stderr": []}
        self.sel = selectors.DefaultSelector()

    def open(self):
        self.sel.register(self.proc.stdout, selectors.EVENT_READ, "stdout")
        self.sel.register(self.proc.stderr, selectors.EVENT_READ, "stderr")
        if self.stdin is not None:
            if self.stdin:
                self.sel.register(self.proc.stdin, selectors.EVENT_WRITE, "stdin")
            else:
                self.proc.stdin.close()

    def pump(self, deadline):
        """Until the pipes close (or the command exited and a leftover child keeps them open); True when
        ``deadline`` passed first."""
        drain_until = None
        while self.sel.get_map():
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                return True
            if drain_until is None and self.proc.poll() is not None:
                drain_until = now + _DRAIN
            if drain_until is not None and now >= drain_until:
                return False  # the command exited; a leftover child keeps the pipes open: stop waiting for it
            for key, _events in self.sel.select(_POLL if deadline is None else min(_POLL, deadline - now)):
                if key.data == "stdin":
                    self._write(key)
                else:
                    self._read(key)
        return False

    def _write(self, key):
        try:
            self.stdin_offset += os.write(key.fd, self.stdin[self.stdin_offset:self.stdin_offset + select.PIPE_BUF])
        except BrokenPipeError:
            self.stdin_offset = len(self.stdin)
        if self.stdin_offset >= len(self.stdin):
            self.sel.unregister(key.fileobj)
            key.fileobj.close()

    def _read(self, key):
        data = os.read(key.fd, 65536)
        if not data:
            self.sel.unregister(key.fileobj)
            key.fileobj.close()
            if key.data in self.splitters:
                self.splitters[key.data].close()
            return
        self.output[key.data].append(data)
        if key.data in self.splitters:
            self.splitters[key.data].feed(data)

    def close(self, finished):
        for key in list(self.sel.get_map().values()):
            key.fileobj.close()
        self.sel.close()
        for splitter in self.splitters.values():
            if finished:
                splitter.close()

    def text(self, name):
        return b"".join(self.output[name]).decode("utf-8", "replace")


def _run(argv, shown_argv, secrets, check, timeout, env, stdin, cwd, on_line, kill_grace):
    start = time.monotonic()
    deadline = None if timeout is None else start + timeout
    proc = _start(argv, shown_argv, secrets, stdin, cwd, env)
    splitters = {name: _LineSplitter(name, on_line, secrets) for name in ("stdout", "stderr")} if on_line else {}
    pipes = _Pipes(proc, stdin, splitters)
    finished = False
    try:
        pipes.open()
        timed_out = pipes.pump(deadline)
        if not timed_out:
            try:
                proc.wait(timeout=None if deadline is None else max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:  # closed its pipes but kept running
                timed_out = True
        if timed_out:
            _kill_group(proc, kill_grace)
        rc = proc.wait()
        finished = True
    finally:
        if not finished:  # on_line raised, or we were interrupted (SIGINT/SIGTERM): leave no command behind
            _kill_group(proc, 0)
            proc.wait()
        pipes.close(finished)

    result = CommandResult(
        argv=shown_argv,
        rc=rc,
        stdout=pipes.text("stdout"),
        stderr=pipes.text("stderr"),
        duration=time.monotonic() - start,
    )
    if timed_out or (check and rc != 0):
        raise CommandError(
            shown_argv, rc,
            stdout=redact_text(result.stdout, secrets),
            stderr=redact_text(result.stderr, secrets),
            timed_out=timed_out, timeout=timeout, duration=round(result.duration, 3),
        )
    return result


class CommandRunner:
    """A binary bound to its defaults: ``CommandRunner("helm", path=params["helm_path"], timeout=300).run(["version"])``.

    The binary is resolved lazily on first use (so building a runner never fails). ``run`` takes
    the arguments after the binary and the keyword arguments of ``run_command``; its ``env`` is
    merged over the runner's, its ``redact`` added to the runner's.
    """

    def __init__(self, binary, path=None, option=None, timeout=None, env=None, redact=(), cwd=None):
        self.binary = binary
        self.path = path
        self.option = option or "%s_path" % binary
        self.timeout = timeout
        self.env = dict(env or {})
        self.redact = list(redact or ())
        self.cwd = cwd
        self._executable = None

    @property
    def executable(self):
        """Absolute path of the binary (``CommandNotFoundError`` if it is missing)."""
        if self._executable is None:
            self._executable = resolve_binary(self.binary, path=self.path, option=self.option)
        return self._executable

    def run(self, args, check=True, timeout=_UNSET, env=None, redact=(), stdin=None, cwd=None, on_line=None):
        """Run ``[binary] + args``; see ``run_command``. ``timeout`` defaults to the runner's."""
        args = _check_argv(args)
        merged_env = dict(self.env)
        merged_env.update(env or {})
        return run_command(
            [self.executable] + args,
            check=check,
            timeout=self.timeout if timeout is _UNSET else timeout,
            env=merged_env,
            redact=self.redact + list(redact or ()),
            stdin=stdin,
            cwd=cwd if cwd is not None else self.cwd,
            on_line=on_line or progress.line_writer(),
            option=self.option,
        )
