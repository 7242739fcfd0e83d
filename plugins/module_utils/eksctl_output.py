# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""What eksctl prints: its ``[ℹ]/[✔]/[!]/[✖]`` log lines, its failures, and CloudFormation's failed events. Pure.

Tested on recorded real eksctl outputs (``tests/recordings/eksctl``).
"""

from __future__ import annotations

import re

LEVELS = {"ℹ": "info", "✔": "success", "!": "warning", "✖": "error", "▶": "debug"}
_LOG_RE = re.compile(r"^(?:(?P<ts>\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}\S*)\s+)?\[(?P<icon>[ℹ✔!✖▶]|)\]\s+(?P<msg>.*)$")
_FAILURE_RE = re.compile(r"^(?P<type>[A-Za-z0-9]+::[A-Za-z0-9]+::[A-Za-z0-9]+)/(?P<logical>[A-Za-z0-9]+):\s+"
                         r"(?P<status>[A-Z_]+)(?:\s+[–-]\s+(?P<reason>.*))?$")
_STACK_RE = re.compile(r"(?:CloudFormation )?stack \"(?P<stack>eksctl-[^\"]+)\"")


def parse_log(text):
    """eksctl log lines -> ``[{"level", "message", "timestamp"}]``; other lines get level ``output``."""
    entries = []
    for raw in (text or "").splitlines():
        line = raw.rstrip()
        if not line:
            continue
        match = _LOG_RE.match(line)
        if match:
            entries.append({"level": LEVELS.get(match.group("icon"), "info"), "message": match.group("msg").strip(),
                            "timestamp": match.group("ts")})
        elif line.startswith("Error: "):
            entries.append({"level": "fatal", "message": line[len("Error: "):].strip(), "timestamp": None})
        else:
            entries.append({"level": "output", "message": line.strip(), "timestamp": None})
    return entries


# eksctl's wrap-up lines, which say that something failed but not what: the waiters' own words
# (eksctl pkg/cfn/waiter/stack.go, aws-sdk-go-v2's waiter), the stack status it saw
# (pkg/cfn/manager/waiters.go TroubleshootStackFailureCause), and the command's final ``Error:``.
GENERIC_ERRORS = (
    re.compile(r"^ResourceNotReady: failed waiting for successful resource state$"),
    re.compile(r"^waiter state transitioned to Failure$"),
    re.compile(r"^unexpected status \"[A-Z_]+\" while waiting for CloudFormation stack "),
    re.compile(r"^failed to (create|delete) (cluster|nodegroups?)\b"),
    re.compile(r"^\d+ error\(s\) occurred"),
)


def go_unquote(text):
    """A reason eksctl printed with Go's ``%#v``: outer quotes dropped, ``\\"`` and ``\\\\`` unescaped."""
    if text and len(text) > 1 and text[0] == text[-1] == '"':
        text = text[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return text


def is_generic(message):
    return any(pattern.match(message) for pattern in GENERIC_ERRORS)


def parse_failures(text):
    """What an eksctl failure says: failed resources, stacks named, its error lines, cleanup hint, and ``cause``.

    ``errors`` are the ``[✖]`` lines then the ``Error:`` line, in order. ``cause`` is what to show the user: the
    failed resources eksctl printed, else its first ``[✖]`` line that is not a wrap-up (``GENERIC_ERRORS``), else
    the last error line (then only generic), else None.
    """
    resources, stacks, errors = [], [], []
    cleanup = None
    for entry in parse_log(text):
        message = entry["message"]
        for match in _STACK_RE.finditer(message):
            if match.group("stack") not in stacks:
                stacks.append(match.group("stack"))
        failure = _FAILURE_RE.match(message)
        if failure and failure.group("status").endswith("FAILED"):
            resources.append({"resource_type": failure.group("type"), "logical_id": failure.group("logical"),
                              "status": failure.group("status"), "reason": go_unquote(failure.group("reason"))})
        elif entry["level"] in ("error", "fatal"):
            errors.append(message)
        if "to cleanup resources, run" in message:
            found = re.search(r"'([^']+)'", message)
            cleanup = found.group(1) if found else message
    specific = [e for e in errors if not is_generic(e)]
    if resources:
        cause = "; ".join(describe_failure(r) for r in resources)
    else:
        cause = specific[0] if specific else (errors[-1] if errors else None)
    return {"failed_resources": resources, "stacks": stacks, "errors": errors, "cleanup_hint": cleanup,
            "cause": cause}


def describe_failure(failure):
    """``AWS::EKS::Cluster/ControlPlane: CREATE_FAILED - <reason>`` for a failed resource (``stack`` first if known)."""
    where = "%s %s" % (failure["stack"], failure["resource_type"]) if failure.get("stack") else failure["resource_type"]
    text = "%s/%s: %s" % (where, failure["logical_id"], failure["status"])
    return "%s - %s" % (text, failure["reason"]) if failure.get("reason") else text


def failed_stack_events(events, limit=10):
    """The ``*_FAILED`` events of a DescribeStackEvents answer, oldest first, most useful fields only."""
    failed = [e for e in events or [] if str(e.get("ResourceStatus", "")).endswith("FAILED")]
    failed = sorted(failed, key=lambda e: str(e.get("Timestamp", "")))
    return [{"stack": e.get("StackName"), "logical_id": e.get("LogicalResourceId"),
             "resource_type": e.get("ResourceType"), "status": e.get("ResourceStatus"),
             "reason": e.get("ResourceStatusReason"), "timestamp": str(e.get("Timestamp", ""))}
            for e in failed[:limit]]
