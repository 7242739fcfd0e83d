# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import os
import stat
import sys
import textwrap
import time

import pytest

from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.errors import (
    CiliumEksError,
    CommandError,
    CommandNotFoundError,
)
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.runner import (
    CommandResult,
    CommandRunner,
    resolve_binary,
    run_command,
)

PY = sys.executable


def py(code):
    return [PY, "-c", textwrap.dedent(code)]


def _gone(pid):
    """True once ``pid`` no longer runs (a zombie nobody reaped counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        with open("/proc/%d/stat" % pid) as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True


def _wait_gone(pid, seconds=5.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if _gone(pid):
            return True
        time.sleep(0.05)
    return False


def test_success_returns_result():
    result = run_command(py("import sys; print('out'); print('err', file=sys.stderr)"))
    assert isinstance(result, CommandResult)
    assert result.rc == 0 and result.ok
    assert result.stdout == "out\n"
    assert result.stderr == "err\n"
    assert result.argv[0] == os.path.abspath(PY)
    assert result.duration >= 0
    assert result.to_dict()["argv"] == result.argv


def test_nonzero_exit_raises_with_stderr_tail():
    code = """
        import sys
        for i in range(50):
            print("line %d" % i, file=sys.stderr)
        sys.exit(3)
    """
    with pytest.raises(CommandError) as info:
        run_command(py(code))
    err = info.value
    assert err.rc == 3
    assert not err.timed_out
    assert err.stderr_tail.splitlines() == ["line %d" % i for i in range(30, 50)]
    assert "exit code 3" in str(err)
    assert "line 49" in str(err) and "line 29" not in str(err)
    kwargs = err.to_fail_kwargs()
    assert kwargs["rc"] == 3
    assert kwargs["error_type"] == "CommandError"
    assert kwargs["argv"][0] == os.path.abspath(PY)
    assert kwargs["msg"] == str(err)


def test_stdout_tail_used_when_stderr_empty():
    with pytest.raises(CommandError) as info:
        run_command(py("import sys; print('Error: only on stdout'); sys.exit(1)"))
    assert "Error: only on stdout" in str(info.value)


def test_check_false_returns_failure():
    result = run_command(py("import sys; sys.exit(7)"), check=False)
    assert result.rc == 7 and not result.ok


def test_timeout_kills_process_group_including_child(tmp_path):
    pid_file = tmp_path / "child.pid"
    code = """
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        with open(sys.argv[1], "w") as handle:
            handle.write(str(child.pid))
        print("started", flush=True)
        time.sleep(60)
    """
    start = time.monotonic()
    with pytest.raises(CommandError) as info:
        run_command(py(code) + [str(pid_file)], timeout=1.5)
    elapsed = time.monotonic() - start
    err = info.value
    assert err.timed_out
    assert err.timeout == 1.5
    assert "timed out after 1.5s" in str(err)
    assert err.to_fail_kwargs()["timed_out"] is True
    assert elapsed < 10
    child_pid = int(pid_file.read_text())
    assert _wait_gone(child_pid), "child %d survived the timeout" % child_pid


def test_timeout_escalates_to_sigkill():
    code = """
        import signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("ready", flush=True)
        time.sleep(60)
    """
    start = time.monotonic()
    with pytest.raises(CommandError) as info:
        run_command(py(code), timeout=1, kill_grace=0.5)
    assert info.value.timed_out
    assert info.value.rc == -9
    assert time.monotonic() - start < 10


def test_timeout_not_hit_by_fast_command():
    assert run_command(py("print('quick')"), timeout=30).stdout == "quick\n"


def test_env_merged_over_os_environ(monkeypatch):
    monkeypatch.setenv("CILIUM_EKS_TEST_INHERITED", "from-parent")
    monkeypatch.setenv("CILIUM_EKS_TEST_REMOVED", "should-vanish")
    code = """
        import json, os
        print(json.dumps({k: os.environ.get(k) for k in
              ["CILIUM_EKS_TEST_INHERITED", "CILIUM_EKS_TEST_EXTRA", "CILIUM_EKS_TEST_REMOVED", "PATH"]}))
    """
    result = run_command(py(code), env={"CILIUM_EKS_TEST_EXTRA": 42, "CILIUM_EKS_TEST_REMOVED": None})
    import json

    seen = json.loads(result.stdout)
    assert seen["CILIUM_EKS_TEST_INHERITED"] == "from-parent"
    assert seen["CILIUM_EKS_TEST_EXTRA"] == "42"
    assert seen["CILIUM_EKS_TEST_REMOVED"] is None
    assert seen["PATH"] == os.environ["PATH"]
    assert "CILIUM_EKS_TEST_EXTRA" not in os.environ


def test_secrets_redacted_in_argv_and_errors():
    secret = "s3cr3t-token-value"
    code = "import sys; print('stdout has ' + sys.argv[1]); print('bad token ' + sys.argv[1], file=sys.stderr); sys.exit(2)"
    with pytest.raises(CommandError) as info:
        run_command([PY, "-c", code, secret], redact=[secret])
    err = info.value
    kwargs = err.to_fail_kwargs()
    flat = repr(kwargs) + str(err) + repr(err.argv)
    assert secret not in flat
    assert "********" in kwargs["cmd"]
    assert kwargs["argv"][-1] == "********"
    assert "bad token ********" in kwargs["stderr"]


def test_secrets_redacted_in_result_argv_and_lines_but_not_output():
    secret = "hunter2hunter2"
    lines = []
    result = run_command([PY, "-c", "import sys; print(sys.argv[1])", "--token=" + secret],
                         redact=[secret], on_line=lambda stream, line: lines.append(line))
    assert result.argv[-1] == "--token=********"
    assert lines == ["--token=********"]
    assert result.stdout == "--token=" + secret + "\n"  # callers parse output; modules must mark secrets no_log


def test_string_command_rejected():
    with pytest.raises(TypeError, match="not a string"):
        run_command("helm version")
    with pytest.raises(TypeError):
        CommandRunner("helm").run("version")


def test_bad_argv_element_rejected():
    with pytest.raises(TypeError):
        run_command([PY, "-c", "pass", None])


def test_missing_binary_on_path(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(CommandNotFoundError) as info:
        run_command(["eksctl", "version"])
    msg = str(info.value)
    assert "eksctl was not found on PATH" in msg
    assert "cloudnet.cilium_eks.tools" in msg
    assert "eksctl_path" in msg
    assert info.value.to_fail_kwargs()["binary"] == "eksctl"


def test_missing_binary_explicit_path(tmp_path):
    missing = str(tmp_path / "bin" / "helm")
    runner = CommandRunner("helm", path=missing)
    with pytest.raises(CommandNotFoundError) as info:
        runner.run(["version"])
    assert missing in str(info.value)
    assert "`helm_path`" in str(info.value)


def test_non_executable_path_rejected(tmp_path):
    plain = tmp_path / "cilium"
    plain.write_text("not a program")
    with pytest.raises(CommandNotFoundError):
        resolve_binary("cilium", path=str(plain), option="cilium_cli_path")


def _fake_cli(directory, name):
    path = directory / name
    path.write_text("#!%s\nimport sys\nprint(' '.join(sys.argv[1:]))\n" % PY)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_runner_resolves_from_path_and_explicit_path(monkeypatch, tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = _fake_cli(bindir, "helm")
    monkeypatch.setenv("PATH", str(bindir) + os.pathsep + os.environ["PATH"])
    assert CommandRunner("helm").run(["version", "--short"]).stdout == "version --short\n"
    other = tmp_path / "elsewhere"
    other.mkdir()
    explicit = _fake_cli(other, "helm")
    runner = CommandRunner("helm", path=str(explicit))
    assert runner.executable == str(explicit)
    assert resolve_binary("helm") == str(fake)


def test_runner_defaults_and_overrides(monkeypatch, tmp_path):
    runner = CommandRunner(PY, env={"A": "1", "B": "1"}, redact=["topsecret"], timeout=30)
    code = "import os, sys; print(os.environ['A'] + os.environ['B'] + sys.argv[1])"
    result = runner.run(["-c", code, "topsecret"], env={"B": "2"})
    assert result.stdout == "12topsecret\n"
    assert result.argv[-1] == "********"
    with pytest.raises(CommandError) as info:
        runner.run(["-c", "import time; time.sleep(30)"], timeout=0.5)
    assert info.value.timed_out


def test_stdin_and_cwd(tmp_path):
    data = "x" * 200000 + "\nend"
    code = "import os, sys; d = sys.stdin.read(); print(len(d), d[-3:], os.getcwd())"
    result = run_command(py(code), stdin=data, cwd=str(tmp_path))
    size, tail, cwd = result.stdout.split()
    assert int(size) == len(data) and tail == "end"
    assert os.path.realpath(cwd) == os.path.realpath(str(tmp_path))


def test_stdin_is_devnull_by_default():
    assert run_command(py("import sys; print(repr(sys.stdin.read()))")).stdout == "''\n"


def test_on_line_streams_in_order_while_running():
    code = """
        import sys, time
        print("one", flush=True)
        time.sleep(0.3)
        print("two", file=sys.stderr, flush=True)
        time.sleep(0.3)
        sys.stdout.write("three\\r\\nfour-without-newline")
    """
    seen = []
    start = time.monotonic()
    run_command(py(code), on_line=lambda stream, line: seen.append((stream, line, time.monotonic() - start)))
    assert [(s, line) for s, line, _t in seen] == [
        ("stdout", "one"), ("stderr", "two"), ("stdout", "three"), ("stdout", "four-without-newline"),
    ]
    # "one" arrived while the command was still running, not after it ended.
    assert seen[0][2] < seen[-1][2] - 0.4


def test_on_line_exception_kills_command(tmp_path):
    pid_file = tmp_path / "pid"
    code = """
        import os, sys, time
        open(sys.argv[1], "w").write(str(os.getpid()))
        print("hello", flush=True)
        time.sleep(60)
    """

    def boom(stream, line):
        raise RuntimeError("callback failed")

    with pytest.raises(RuntimeError):
        run_command(py(code) + [str(pid_file)], on_line=boom)
    assert _wait_gone(int(pid_file.read_text()))


def test_unstartable_binary_is_reported(tmp_path):
    bogus = tmp_path / "eksctl"
    bogus.write_bytes(b"\x00\x01\x02 not an executable format")
    bogus.chmod(0o755)
    with pytest.raises(CiliumEksError) as info:
        run_command([str(bogus), "version"])
    assert "Could not start" in str(info.value)


@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
def test_interrupted_caller_kills_the_command_group(tmp_path, signame):
    """A module interrupted while its command runs (Ctrl-C, ansible-playbook killed) takes the command along."""
    import signal
    import subprocess

    pid_file = tmp_path / "pid"
    # The caller sets the dispositions a module started from a terminal has, whatever this pytest inherited:
    # a pytest started in the background by a non-interactive shell ignores SIGINT, and the child would too.
    caller = """
        import signal, sys
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.runner import run_command
        run_command([sys.executable, "-c", "import os, sys, time; open(sys.argv[1], 'w').write(str(os.getpid())); "
                     "time.sleep(60)", sys.argv[1]])
    """
    proc = subprocess.Popen(py(caller) + [str(pid_file)], env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    deadline = time.monotonic() + 20
    while not (pid_file.exists() and pid_file.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    command_pid = int(pid_file.read_text())
    proc.send_signal(getattr(signal, signame))
    assert proc.wait(timeout=10) != 0
    assert _wait_gone(command_pid), "the command %d survived the %s of its caller" % (command_pid, signame)
