# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""THE input checker of the collection: one set of rules for the modules (Python) and the roles and playbooks
(through the ``input_problems`` and ``strict_bool`` filters). Pure; no I/O except ``os.path.isdir`` for paths.

Rules of thumb, each applied everywhere:

- Patterns are full matches (``re.fullmatch``). Python's ``re.match(r"^...$")`` accepts a trailing newline
  (``$`` matches before a final ``\\n``); Go's ``regexp`` ``^...$``, which the upstream rules below are written
  in, does not. So ``"basic-cilium\\n"`` is refused here as upstream refuses it.
- Booleans are booleans: a real bool, or one of the words Ansible itself converts (``BOOL_WORDS``). Anything else
  (``enabled``, ``sometimes``) is refused; Jinja's ``| bool`` would read it as false.
- Numbers are integers: not a bool, not ``"25%"``, not ``"1h"``; a timeout is at least 1 second.
- Every value is checked before the first change, and the message names the input, the value and what is accepted.

A role's rules are a table ``{variable: rule}`` (``roles/<role>/vars/main.yml`` ``__<role>_inputs``) where a rule
is a name from ``RULES`` or ``{rule: <name>, <option>: ...}`` (``min``, ``max``, ``choices``).
"""

from __future__ import annotations

import ipaddress
import os
import re

from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.errors import ValidationError

# ansible-core 2.19 lib/ansible/module_utils/parsing/convert_bool.py BOOLEANS_TRUE / BOOLEANS_FALSE: the words
# modules (type: bool) and role argument specs accept. Strings compared lower-case, as convert_bool does.
BOOL_TRUE = ("y", "yes", "on", "1", "true", "t")
BOOL_FALSE = ("n", "no", "off", "0", "false", "f")
BOOL_WORDS = "true/false, yes/no, on/off, y/n, t/f, 1/0"

# k8s.io/apimachinery v0.34.4 pkg/util/validation/validation.go (the version the sandbox's kube-apiserver runs):
# qualifiedNameFmt / IsQualifiedName (label and taint keys, prefix = DNS-1123 subdomain <= 253, name <= 63),
# labelValueFmt / IsValidLabelValue (label and taint values, <= 63), dns1123LabelFmt (namespaces, <= 63).
QUALIFIED_NAME = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
DNS1123_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_SUBDOMAIN = DNS1123_LABEL + r"(\." + DNS1123_LABEL + r")*"
# helm v3.19.5 pkg/chartutil/validate_name.go: validName, maxReleaseNameLen = 53.
HELM_RELEASE_NAME_MAX = 53
# AWS tag restrictions (docs.aws.amazon.com/eks/latest/userguide/eks-using-tags.html "Tag restrictions", and
# the EKS API reference TagResource): key 1-128 characters, value 0-256, the prefix "aws:" is reserved for AWS
# (any case) and cannot be set.
TAG_KEY_MAX, TAG_VALUE_MAX, TAG_RESERVED_PREFIX = 128, 256, "aws:"
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")  # k8s.io/api core/v1 TaintEffect


def full_match(pattern, value):
    """True when the whole of ``value`` (a string) matches ``pattern``; False for any non-string."""
    return isinstance(value, str) and re.fullmatch(pattern, value) is not None


def strict_bool(value, name):
    """``value`` as a bool when it is one or one of Ansible's boolean words; ValidationError otherwise."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in BOOL_TRUE + BOOL_FALSE:
        return value.strip().lower() in BOOL_TRUE
    raise ValidationError(name, "not a boolean (a word Ansible does not read as one would silently mean false)",
                          accepted=BOOL_WORDS, value=value)


def integer(value, name, minimum=None, maximum=None):
    """``value`` as an int (an int, or a string of digits); no bool, no "25%", no "1h"."""
    if isinstance(value, bool) or not (isinstance(value, int) or full_match(r"[+-]?[0-9]+", value)):
        raise ValidationError(name, "not a whole number", accepted=_range_text(minimum, maximum), value=value)
    number = int(value)
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        raise ValidationError(name, "out of range", accepted=_range_text(minimum, maximum), value=value)
    return number


def _range_text(minimum, maximum):
    if minimum is not None and maximum is not None:
        return "a whole number from %d to %d" % (minimum, maximum)
    if minimum is not None:
        return "a whole number >= %d" % minimum
    return "a whole number"


def timeout(value, name, minimum=1):
    """Seconds: a whole number, at least ``minimum`` (1: zero or a negative timeout means nothing)."""
    if isinstance(value, bool) or not (isinstance(value, int) or full_match(r"[+-]?[0-9]+", value)) \
            or int(value) < minimum:
        raise ValidationError(name, "must be a whole number of seconds, at least %d" % minimum, value=value)
    return int(value)


def count(value, name):
    """A number of things where 0 means "all" (sample sizes): a whole number >= 0, never a percentage."""
    return integer(value, name, minimum=0)


def port(value, name):
    return integer(value, name, minimum=1, maximum=65535)


def text(value, name, pattern, what, max_length=None):
    """A string that fully matches ``pattern`` and is at most ``max_length`` long; ``what`` says what is accepted."""
    if not full_match(pattern, value) or (max_length is not None and len(value) > max_length):
        raise ValidationError(name, "not %s" % what.split(" (")[0], accepted=what, value=value)
    return value


def dns_label(value, name):
    return text(value, name, DNS1123_LABEL, "a DNS-1123 label (lower-case letters, digits and '-', starting and "
                "ending with a letter or digit, at most 63 characters)", 63)


def helm_release_name(value, name):
    return text(value, name, DNS1123_SUBDOMAIN, "a Helm release name (lower-case letters, digits, '-' and '.', "
                "at most %d characters)" % HELM_RELEASE_NAME_MAX, HELM_RELEASE_NAME_MAX)


def label_key(value, name):
    """A Kubernetes label or taint key: [prefix/]name (IsQualifiedName)."""
    if isinstance(value, str):
        prefix, slash, last = value.rpartition("/")
        prefix_ok = not slash or (full_match(DNS1123_SUBDOMAIN, prefix) and len(prefix) <= 253)
        if prefix_ok and full_match(QUALIFIED_NAME, last) and len(last) <= 63:
            return value
    raise ValidationError(name, "not a valid Kubernetes label key", accepted="[DNS subdomain/]name: the name has letters, "
                          "digits, '-', '_' and '.', starts and ends with a letter or digit, at most 63 characters",
                          value=value)


def label_value(value, name):
    """A Kubernetes label or taint value: empty, or a qualified name of at most 63 characters (IsValidLabelValue)."""
    if value == "":
        return value
    return text(value, name, QUALIFIED_NAME, "a Kubernetes label value (empty, or letters, digits, '-', '_' and "
                "'.', starting and ending with a letter or digit, at most 63 characters)", 63)


def labels(value, name):
    if not isinstance(value, dict):
        raise ValidationError(name, "labels are a mapping of key to value", value=value)
    for key, item in value.items():
        label_key(key, name)
        label_value(item if isinstance(item, str) else str(item), "%s[%s]" % (name, key))
    return {str(key): str(item) for key, item in value.items()}


def taint(value, name):
    """One node taint {key, value (optional), effect}: eksctl v0.225.0 pkg/utils/taints/taints.go Validate."""
    if not isinstance(value, dict) or not value.get("key"):
        raise ValidationError(name, "a taint is a mapping with key, value (optional) and effect",
                              accepted="{key: node.cilium.io/agent-not-ready, value: 'true', effect: NoExecute}",
                              value=value)
    unknown = sorted(set(value) - {"key", "value", "effect"})
    if unknown:
        raise ValidationError(name, "unknown taint field(s) %s" % ", ".join(unknown), accepted=["key", "value", "effect"])
    label_key(value["key"], name + ".key")
    if value.get("value") not in (None, ""):
        label_value(str(value["value"]) if not isinstance(value["value"], str) else value["value"], name + ".value")
    if value.get("effect") not in TAINT_EFFECTS:
        raise ValidationError(name + ".effect", "not a taint effect", accepted=list(TAINT_EFFECTS),
                              value=value.get("effect"))
    return value


def aws_tags(value, name):
    """AWS resource tags: keys 1-128 characters without the reserved ``aws:`` prefix, values 0-256 characters."""
    if not isinstance(value, dict):
        raise ValidationError(name, "tags are a mapping of key to value", value=value)
    for key, item in value.items():
        key = str(key)
        if not 1 <= len(key) <= TAG_KEY_MAX or key.lower().startswith(TAG_RESERVED_PREFIX):
            raise ValidationError(name, "not a tag key you may set (AWS reserves the prefix 'aws:')",
                                  accepted="1 to %d characters, not starting with aws:" % TAG_KEY_MAX, value=key)
        if len(str(item)) > TAG_VALUE_MAX:
            raise ValidationError("%s[%s]" % (name, key), "a tag value is at most %d characters" % TAG_VALUE_MAX,
                                  value=item)
    return value


def cidr(value, name, version=None):
    """An IP network in CIDR notation whose host bits are zero (``10.0.0.0/16``, not ``10.0.0.1/16``)."""
    what = "an IP%s CIDR with its host bits zero, e.g. 10.0.0.0/16" % ("v%d" % version if version else "")
    try:
        network = ipaddress.ip_network(value, strict=True) if isinstance(value, str) and "/" in value else None
    except ValueError:
        network = None
    if network is None or (version and network.version != version):
        raise ValidationError(name, "not a CIDR block", accepted=what, value=value)
    return value


def cidrs(value, name, version=None):
    if not isinstance(value, list):
        raise ValidationError(name, "a list of CIDRs", value=value)
    return [cidr(item, "%s[%d]" % (name, index), version) for index, item in enumerate(value)]


def source_cidrs(value, name, source, source_name, version=None):
    """CIDRs that only one choice of a source variable uses: with ``source == "cidrs"`` a non-empty list of CIDRs,
    with any other source empty (a list given there would be silently ignored). ``source_name`` names the source
    variable in the message (``eks_cluster_nodeport_icmp_source``)."""
    if source == "cidrs" and not value:
        raise ValidationError(name, "is empty but `%s` is cidrs: list the IPv4 CIDRs to allow (e.g. 203.0.113.7/32)"
                              % source_name, value=value)
    if source != "cidrs" and value:
        raise ValidationError(name, "is given but `%s` is %s, which does not use it: set `%s: cidrs` to open from "
                              "these CIDRs (the cluster VPC's CIDR is no longer a source: it changes nothing)"
                              % (source_name, source, source_name), value=value)
    return cidrs(value or [], name, version)


def file_path(value, name):
    """A file this collection writes or reads (kubeconfig, JUnit report): a non-empty path, not a directory."""
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(name, "no path given", accepted="a file path", value=value)
    if os.path.isdir(os.path.expanduser(value)) or value.endswith("/"):
        raise ValidationError(name, "is a directory, where a file is expected",
                              accepted="a file path (e.g. %s)" % os.path.join(value.rstrip("/") or "/", "file"),
                              value=value)
    return value


def dir_path(value, name):
    """A directory this collection writes into: a non-empty path that is not an existing file."""
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(name, "no path given", accepted="a directory path", value=value)
    if os.path.isfile(os.path.expanduser(value)):
        raise ValidationError(name, "is a file, where a directory is expected", accepted="a directory path",
                              value=value)
    return value


def choice(value, name, choices):
    if value not in choices:
        raise ValidationError(name, "not one of the accepted values", accepted=list(choices), value=value)
    return value


RULES = {
    "bool": strict_bool, "int": integer, "timeout": timeout, "count": count, "port": port, "dns_label": dns_label,
    "helm_release_name": helm_release_name, "label_key": label_key, "label_value": label_value, "labels": labels,
    "aws_tags": aws_tags, "cidr": cidr, "cidrs": cidrs, "source_cidrs": source_cidrs, "file_path": file_path,
    "dir_path": dir_path,
    "choice": choice,
}


def check(value, name, rule):
    """Apply one rule (a name from RULES, or ``{rule: name, option: ...}``) to ``value``; raises ValidationError."""
    options = dict(rule) if isinstance(rule, dict) else {"rule": rule}
    check_one = RULES.get(options.pop("rule", None))
    if check_one is None:
        raise ValueError("unknown input rule %r for %s; known: %s" % (rule, name, ", ".join(sorted(RULES))))
    if options.pop("optional", False) and value in (None, ""):
        return value
    for short, full in (("min", "minimum"), ("max", "maximum")):
        if short in options:
            options[full] = options.pop(short)
    return check_one(value, name, **options)


def problems(rules, values):
    """Messages for every input of ``values`` its rule in ``rules`` refuses (``[]`` when all pass)."""
    found = []
    for name, rule in rules.items():
        try:
            check(values.get(name), name, rule)
        except ValidationError as err:
            found.append(err.msg if err.msg.endswith(".") else err.msg + ".")
    return found
