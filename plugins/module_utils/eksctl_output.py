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


def parse_failures(text):
    """What an eksctl failure says: failed resources, stacks named, the final error, cleanup hint."""
    resources, stacks, errors = [], [], []
    cleanup = None
    for entry in parse_log(text):
        message = entry["message"]
        for match in _STACK_RE.finditer(message):
            if match.group("stack") not in stacks:
                stacks.append(match.group("stack"))
        failure = _FAILURE_RE.match(message)
        if failure and failure.group("status").endswith("FAILED"):
            reason = failure.group("reason")
            if reason and len(reason) > 1 and reason[0] == reason[-1] == '"':
                reason = reason[1:-1]
            resources.append({"resource_type": failure.group("type"), "logical_id": failure.group("logical"),
                              "status": failure.group("status"), "reason": reason})
        elif entry["level"] in ("error", "fatal"):
            errors.append(message)
        if "to cleanup resources, run" in message:
            found = re.search(r"'([^']+)'", message)
            cleanup = found.group(1) if found else message
    return {"failed_resources": resources, "stacks": stacks, "errors": errors, "cleanup_hint": cleanup}


def failed_stack_events(events, limit=10):
    """The ``*_FAILED`` events of a DescribeStackEvents answer, oldest first, most useful fields only."""
    failed = [e for e in events or [] if str(e.get("ResourceStatus", "")).endswith("FAILED")]
    failed = sorted(failed, key=lambda e: str(e.get("Timestamp", "")))
    return [{"stack": e.get("StackName"), "logical_id": e.get("LogicalResourceId"),
             "resource_type": e.get("ResourceType"), "status": e.get("ResourceStatus"),
             "reason": e.get("ResourceStatusReason"), "timestamp": str(e.get("Timestamp", ""))}
            for e in failed[:limit]]
