# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""cilium_release: kubernetes.core.helm with a diff of the release's values and progress lines while helm waits.

kubernetes.core.helm diffs only through the helm-diff plugin (and warns on every ``--diff`` run without it); its
answer is the release's rendered objects. The roles know the values before (the release's user-supplied values,
read by cilium_values / helm_info) and after (the rendered values): this plugin passes every option but
``installed_values`` to the kubernetes.core.helm module, with the task's module_defaults for that module, runs it
without Ansible's diff flag (no helm-diff warning), and returns its result plus ``diff``: the two value sets as YAML.
While helm waits (``wait`` or ``atomic``), a line about every 30 s says so (plugin_utils/progress.py).

The module runs on the target directly: kubernetes.core's own action plugin for helm only copies controller files
(templated values files, a controller kubeconfig for a remote target), which the collection's roles do not use.
"""

from __future__ import annotations

import yaml

from ansible.module_utils.parsing.convert_bool import boolean
from ansible.parsing.yaml.dumper import AnsibleDumper

from ansible_collections.cloudnet.cilium_eks.plugins.plugin_utils.progress import ProgressAction

HELM_MODULE = "kubernetes.core.helm"
# kubernetes.core.helm warns on every run with a release and no helm-diff plugin (plugins/modules/helm.py at 6.2.0,
# l.1116-1119) that its default check "can fail to report changes in certain cases": values files and --set values
# it cannot compare. Given only release_values, the default check compares exactly what the roles change (the user
# values, chart name-version and appVersion: default_check, l.835-856), so the warning is dropped then.
HELM_DIFF_WARNING = "The default idempotency check can fail to report changes in certain cases."

try:  # ansible-core 2.19+
    from ansible.executor.module_common import _apply_action_arg_defaults
    get_action_args_with_defaults = None
except ImportError:  # ansible-core 2.16-2.18
    from ansible.executor.module_common import get_action_args_with_defaults
    _apply_action_arg_defaults = None


def values_yaml(values):
    """Values as the block YAML helm users read (keys sorted); '' for none."""
    if not values:
        return ""
    # AnsibleDumper: task arguments are ansible-core's tagged str/dict types (2.19), which safe_dump refuses.
    return yaml.dump(values, Dumper=AnsibleDumper, default_flow_style=False, sort_keys=True)


def values_diff(installed_values, values, release, chart):
    """Ansible's diff (before/after with headers) from the release's user-supplied values to ``values``."""
    return {
        "before": values_yaml(installed_values),
        "after": values_yaml(values),
        "before_header": ("%s: user-supplied values (helm get values)" % release if installed_values is not None
                          else "%s: no release" % release),
        "after_header": "%s: values to install (chart %s)" % (release, chart),
    }


def warning_text(warning):
    """A module warning's text: a string, or (ansible-core 2.19) a WarningSummary with its event's msg."""
    return getattr(getattr(warning, "event", None), "msg", None) or str(warning)


class ActionModule(ProgressAction):

    def waiting_for(self, args):
        if self._task.check_mode or not (boolean(args.get("wait", False), strict=False)
                                         or boolean(args.get("atomic", False), strict=False)):
            return None
        verb = "uninstall" if args.get("release_state", args.get("state")) == "absent" else "upgrade --install"
        return "waiting for helm %s of release %s/%s (timeout %s)" % (
            verb, args.get("release_namespace"), args.get("release_name"), args.get("timeout") or "5m0s")

    def run(self, tmp=None, task_vars=None):
        result = super(ProgressAction, self).run(tmp, task_vars)  # ActionBase.run: checks, no module yet
        del tmp
        args = dict(self._task.args)
        installed_values = args.pop("installed_values", None)
        args = self.with_module_defaults(args)
        show_diff = self._task.diff
        self._task.diff = False  # no helm-diff: the diff is the values' (below)
        try:
            result.update(self.execute_with_progress(task_vars, module_name=HELM_MODULE, module_args=args))
        finally:
            self._task.diff = show_diff
            self._remove_tmp_path(self._connection._shell.tmpdir)
        if not args.get("values_files") and not args.get("set_values"):
            result["warnings"] = [warning for warning in result.get("warnings") or []
                                  if not warning_text(warning).startswith(HELM_DIFF_WARNING)]
        if result.get("changed") and show_diff:
            chart = " ".join(str(part) for part in (args.get("chart_ref"), args.get("chart_version")) if part)
            result["diff"] = values_diff(installed_values, args.get("release_values") or {},
                                         "%s/%s" % (args.get("release_namespace"), args.get("release_name")), chart)
        return result

    def with_module_defaults(self, args):
        """``args`` plus the task's module_defaults for kubernetes.core.helm (group/kubernetes.core.helm or its name),
        as ansible.builtin.gather_facts applies them to the module it runs."""
        if _apply_action_arg_defaults is not None:
            return _apply_action_arg_defaults(HELM_MODULE, self._task, args, self._templar)
        return get_action_args_with_defaults(HELM_MODULE, args, self._task.module_defaults, self._templar,
                                             action_groups=self._task._parent._play._action_groups)
