# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Commands are argv lists, never shell strings: a scan of the Python code and of the Ansible tasks.

Python (plugins/, scripts/, tests/platform/): no ``shell=True``, no ``os.system``/``os.popen``, no
``subprocess`` call and no ``run_command`` given one string as the command. Tasks (roles/, playbooks/):
no ``shell``/``raw``/``script`` module, and ``command`` only with ``argv:`` (no free form, no ``cmd:``).
The scanners are checked on samples of each forbidden form first, so a scan that finds nothing means
something.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
PYTHON_TREES = ("plugins", "scripts", "tests/platform")
TASK_TREES = ("roles", "playbooks")

SUBPROCESS_CALLS = frozenset(("run", "call", "check_call", "check_output", "Popen", "getoutput", "getstatusoutput"))
COMMAND_RUNNERS = frozenset(("run_command",))  # AnsibleModule.run_command and the collection's runner
SHELL_MODULES = frozenset(("shell", "raw", "script", "ansible.builtin.shell", "ansible.builtin.raw",
                           "ansible.builtin.script", "ansible.legacy.shell", "ansible.legacy.raw"))
COMMAND_MODULES = frozenset(("command", "ansible.builtin.command", "ansible.legacy.command"))


def _dotted(node):
    """``os.system`` for an Attribute chain, ``system`` for a Name, else ''."""
    if isinstance(node, ast.Attribute):
        parent = _dotted(node.value)
        return "%s.%s" % (parent, node.attr) if parent else node.attr
    if isinstance(node, ast.Name):
        return node.id
    return ""


def _is_string(node):
    """An expression that is text, not a list: a literal, an f-string, a concatenation or % of them."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str)
    if isinstance(node, ast.JoinedStr):
        return True
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mod)):
        return _is_string(node.left)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("format", "join"):
        return _is_string(node.func.value)
    return False


def python_violations(source, filename="<sample>"):
    """``["file:line: what"]`` for every shell-string command in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func)
        where = "%s:%d" % (filename, node.lineno)
        for keyword in node.keywords:
            if keyword.arg == "shell" and not (isinstance(keyword.value, ast.Constant) and keyword.value.value is False):
                found.append("%s: %s(shell=...)" % (where, name))
        if name in ("os.system", "os.popen", "system", "popen"):
            found.append("%s: %s()" % (where, name))
        last = name.rsplit(".", 1)[-1]
        command = node.args[0] if node.args else next(
            (k.value for k in node.keywords if k.arg in ("args", "argv", "cmd")), None)
        string_command = command is not None and _is_string(command)
        if string_command and last in SUBPROCESS_CALLS and (name.startswith("subprocess.") or last == "Popen"):
            found.append("%s: %s() with a string command" % (where, name))
        if string_command and last in COMMAND_RUNNERS:
            found.append("%s: %s() with a string command" % (where, name))
    return found


def _task_violations(node, where):
    found = []
    if isinstance(node, list):
        for item in node:
            found += _task_violations(item, where)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key in SHELL_MODULES:
                found.append("%s: %s (use ansible.builtin.command with argv)" % (where, key))
            elif key in COMMAND_MODULES and (not isinstance(value, dict) or "cmd" in value or "argv" not in value):
                found.append("%s: %s without argv (a string command)" % (where, key))
            else:
                found += _task_violations(value, where)
    return found


def task_violations(text, filename="<sample>"):
    """Shell modules and string commands in an Ansible YAML file (tasks, plays, blocks, handlers)."""
    found = []
    for document in yaml.safe_load_all(text):
        found += _task_violations(document, filename)
    return found


def _files(trees, suffixes):
    for tree in trees:
        for path in sorted((REPO_ROOT / tree).rglob("*")):
            if path.suffix in suffixes and path.is_file() and "__pycache__" not in path.parts:
                yield path


@pytest.mark.parametrize("source", [
    "import subprocess\nsubprocess.run('ls -l', shell=True)\n",
    "import subprocess\nsubprocess.check_output('helm version')\n",
    "import subprocess\nsubprocess.Popen(f'kubectl get {kind}')\n",
    "import subprocess\nsubprocess.call('eksctl ' + args)\n",
    "from subprocess import Popen\nPopen(['ls'], shell=True)\n",
    "import os\nos.system('rm -rf x')\n",
    "import os\nos.popen('ls').read()\n",
    "module.run_command('helm list -A')\n",
    "module.run_command('helm %s' % verb)\n",
])
def test_the_python_scan_finds_each_forbidden_form(source):
    assert python_violations(source)


def test_the_python_scan_accepts_argv_lists():
    source = ("import subprocess\nsubprocess.run(['helm', 'list'], check=True)\n"
              "subprocess.run(argv, shell=False)\nmodule.run_command([binary, '--version'])\n")
    assert python_violations(source) == []


@pytest.mark.parametrize("text", [
    "- name: x\n  ansible.builtin.shell: helm list\n",
    "- name: x\n  ansible.builtin.command: helm list\n",
    "- name: x\n  ansible.builtin.command:\n    cmd: helm list\n",
    "- name: x\n  command: helm list\n",
    "- name: x\n  block:\n    - name: y\n      ansible.builtin.raw: uptime\n",
    "- hosts: all\n  tasks:\n    - name: y\n      ansible.legacy.shell: uptime\n",
])
def test_the_task_scan_finds_each_forbidden_form(text):
    assert task_violations(text)


def test_the_task_scan_accepts_argv():
    text = "- name: x\n  ansible.builtin.command:\n    argv: [helm, list]\n  changed_when: false\n"
    assert task_violations(text) == []


def test_no_shell_string_command_in_python():
    files = list(_files(PYTHON_TREES, (".py",)))
    assert len(files) > 20  # the trees are there
    found = [v for path in files for v in python_violations(path.read_text(), str(path.relative_to(REPO_ROOT)))]
    assert found == []


def test_no_shell_module_or_string_command_in_tasks():
    files = list(_files(TASK_TREES, (".yml", ".yaml")))
    assert any("tasks" in path.parts for path in files)
    found = [v for path in files for v in task_violations(path.read_text(), str(path.relative_to(REPO_ROOT)))]
    assert found == []


def _shell_scripts():
    for tree in ("scripts", ".ci", "tests/platform"):
        for path in sorted((REPO_ROOT / tree).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                with open(path, "rb") as handle:
                    first = handle.readline()
                if first.startswith(b"#!") and first.rstrip().split(b"/")[-1].split()[-1] in (b"sh", b"bash"):
                    yield path


def test_shell_scripts_pass_shellcheck():
    shellcheck = shutil.which("shellcheck")
    if not shellcheck:
        pytest.skip("shellcheck is not installed (scripts/install_debs.sh installs it)")
    scripts = [str(path) for path in _shell_scripts()]
    assert len(scripts) >= 2  # scripts/install_debs.sh and the eksctl shim at least
    result = subprocess.run([shellcheck, "--format=gcc"] + scripts, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
