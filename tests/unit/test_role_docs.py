# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The role variable reference (scripts/gen_role_docs.py, docs/roles/) and the roles' defaults.

* the checked-in docs are what the argument specs give (fails when a spec changes without regenerating);
* ``--check`` names stale and orphaned pages and exits 1; a write fixes them;
* every option of every entry point appears with its type, requirement, default and choices;
* defaults/main.yml and the argument specs' defaults agree, value and type, in both directions.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil

import pytest
import yaml

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROLES_DIR = os.path.join(REPO_ROOT, "roles")
ROLES = sorted(name for name in os.listdir(ROLES_DIR)
               if os.path.isfile(os.path.join(ROLES_DIR, name, "meta", "argument_specs.yml")))

pytest.importorskip("antsibull_docs_parser", reason="antsibull-docs-parser (requirements-dev.lock) renders the markup")


def _load_generator():
    path = os.path.join(REPO_ROOT, "scripts", "gen_role_docs.py")
    spec = importlib.util.spec_from_file_location("gen_role_docs", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gen = _load_generator()


def _yaml(path):
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def _argument_specs(role):
    return _yaml(os.path.join(ROLES_DIR, role, "meta", "argument_specs.yml"))["argument_specs"]


def _defaults(role):
    path = os.path.join(ROLES_DIR, role, "defaults", "main.yml")
    return (_yaml(path) or {}) if os.path.isfile(path) else {}


def _same(left, right):
    """Equal in value and in type, recursively (``True`` is not ``1``, ``"1.33"`` is not ``1.33``)."""
    if type(left) is not type(right):
        return False
    if isinstance(left, dict):
        return left.keys() == right.keys() and all(_same(left[key], right[key]) for key in left)
    if isinstance(left, list):
        return len(left) == len(right) and all(_same(a, b) for a, b in zip(left, right))
    return left == right


@pytest.fixture()
def repo_copy(tmp_path):
    """The parts of the repository the generator reads and writes, copied to a temporary root."""
    shutil.copytree(ROLES_DIR, tmp_path / "roles")
    shutil.copytree(os.path.join(REPO_ROOT, "docs", "roles"), tmp_path / "docs" / "roles")
    shutil.copy(os.path.join(REPO_ROOT, "README.md"), tmp_path / "README.md")
    return tmp_path


def test_checked_in_role_docs_are_current():
    stale = gen.stale_files(gen.REPO_ROOT)
    assert not stale, "regenerate with: python scripts/gen_role_docs.py (stale: %s)" % ", ".join(map(str, stale))


def test_readme_carries_the_generated_role_table():
    with open(os.path.join(REPO_ROOT, "README.md"), encoding="utf-8") as handle:
        readme = handle.read()
    assert gen.TABLE_START in readme and gen.TABLE_END in readme
    for role in ROLES:
        assert "(docs/roles/%s.md)" % role in readme


def test_check_fails_on_a_changed_spec_and_write_repairs_it(repo_copy, capsys):
    assert gen.main(["--check", "--root", str(repo_copy)]) == 0
    spec_path = repo_copy / "roles" / "tools" / "meta" / "argument_specs.yml"
    spec = yaml.safe_load(spec_path.read_text(encoding="utf-8"))
    spec["argument_specs"]["main"]["options"]["tools_bin_dir"]["default"] = "/opt/bin"
    spec_path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")

    assert gen.main(["--check", "--root", str(repo_copy)]) == 1
    assert "docs/roles/tools.md: out of date" in capsys.readouterr().err
    assert gen.main(["--root", str(repo_copy)]) == 0
    assert '`"/opt/bin"`' in (repo_copy / "docs" / "roles" / "tools.md").read_text(encoding="utf-8")
    assert gen.main(["--check", "--root", str(repo_copy)]) == 0


def test_check_names_a_page_without_a_role_and_write_removes_it(repo_copy, capsys):
    orphan = repo_copy / "docs" / "roles" / "gone.md"
    orphan.write_text("# a role that no longer exists\n", encoding="utf-8")
    assert gen.main(["--check", "--root", str(repo_copy)]) == 1
    assert "docs/roles/gone.md" in capsys.readouterr().err
    gen.main(["--root", str(repo_copy)])
    assert not orphan.exists()


def test_readme_table_is_replaced_only_between_the_markers():
    text = "intro\n%s\nold line\n%s\noutro\n" % (gen.TABLE_START, gen.TABLE_END)
    assert gen.replace_table(text, ["| a |", "| b |"]) == (
        "intro\n%s\n| a |\n| b |\n%s\noutro\n" % (gen.TABLE_START, gen.TABLE_END))
    assert gen.replace_table("no markers\n", ["| a |"]) == "no markers\n"


@pytest.mark.parametrize("role", ROLES)
def test_every_option_of_every_entry_point_is_documented(role):
    page = gen.render_role(role, {"argument_specs": _argument_specs(role)})
    for entry_point, spec in _argument_specs(role).items():
        assert "## Entry point `%s`" % entry_point in page
        for name, option in (spec.get("options") or {}).items():
            rows = [line for line in page.splitlines() if line.startswith("| `%s` |" % name)]
            assert rows, "%s: option %s of %s missing" % (role, name, entry_point)
            cells = [cell.strip() for cell in rows[0].split(" | ")]
            assert cells[1] == gen.type_of(option)
            assert cells[2] == ("yes" if option.get("required") else "no")
            if "default" in option:
                assert yaml.safe_load(cells[3].strip("`").replace("\\|", "|")) == option["default"]
            for choice in option.get("choices") or ():
                assert gen.code_span(json.dumps(choice)) in rows[0]


def test_suboptions_choices_and_markup_are_rendered():
    spec = {"argument_specs": {"main": {
        "short_description": "Demo with C(code) and O(items)",
        "options": {
            "items": {"type": "list", "elements": "dict", "description": "Use V(a|b) with M(cloudnet.cilium_eks.tools).",
                      "options": {"name": {"type": "str", "required": True, "description": "Name."},
                                  "mode": {"type": "str", "choices": ["x", "y"], "default": "x",
                                           "description": "Mode."}}},
            "limits": {"type": "dict", "default": {"cpu": 1}, "description": "Limits.",
                       "options": {"cpu": {"type": "int", "description": "CPUs."}}},
        }}}}
    page = gen.render_role("demo", spec)
    assert "Demo with `code` and `items`" in page
    assert "| `items` | list of dict | no |  | Use `a\\|b` with `cloudnet.cilium_eks.tools`. |" in page
    assert "| `items[].name` | str | yes |  | Name. |" in page
    assert '| `items[].mode` | str | no | `"x"` | Mode. Choices: `"x"`, `"y"`. |' in page
    assert '| `limits` | dict | no | `{"cpu": 1}` | Limits. |' in page
    assert "| `limits.cpu` | int | no |  | CPUs. |" in page


def test_rendering_is_deterministic():
    first = gen.expected_files(gen.REPO_ROOT)
    assert gen.expected_files(gen.REPO_ROOT) == first


@pytest.mark.parametrize("role", ROLES)
def test_argument_spec_defaults_are_the_role_defaults(role):
    defaults = _defaults(role)
    mismatches = []
    for entry_point, spec in _argument_specs(role).items():
        for name, option in (spec.get("options") or {}).items():
            if "default" in option and (name not in defaults or not _same(option["default"], defaults[name])):
                mismatches.append("%s.%s: argument_specs default %r, defaults/main.yml %r"
                                  % (entry_point, name, option["default"], defaults.get(name, "(missing)")))
    assert not mismatches, "\n".join(mismatches)


@pytest.mark.parametrize("role", ROLES)
def test_every_role_default_is_a_documented_option_with_that_default(role):
    options = {}
    for spec in _argument_specs(role).values():
        for name, option in (spec.get("options") or {}).items():
            options.setdefault(name, []).append(option)
    problems = []
    for name, value in _defaults(role).items():
        if name not in options:
            problems.append("%s is in defaults/main.yml but in no entry point's options" % name)
        elif any("default" not in option for option in options[name]):
            problems.append("%s has the default %r in defaults/main.yml but none in argument_specs%s"
                            % (name, value, " (where it is required: the default defeats that)"
                               if any(o.get("required") for o in options[name]) else ""))
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("role", ROLES)
def test_every_option_has_a_type_and_a_description(role):
    missing = ["%s.%s" % (entry_point, name)
               for entry_point, spec in _argument_specs(role).items()
               for name, option in (spec.get("options") or {}).items()
               if not option.get("type") or not option.get("description")]
    assert not missing, "options without type or description: %s" % ", ".join(missing)
