# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Kubernetes quantities (``10M``, ``1G``, ``500k``, ``100Mi``) as Kubernetes and Cilium read them.

* ``parse_quantity`` is a port of ``k8s.io/apimachinery/pkg/api/resource`` ``ParseQuantity``
  (``parseQuantityString`` + the suffixer): optional sign, digits, optional ``.`` and digits, then a
  suffix: binary ``Ki Mi Gi Ti Pi Ei``, decimal ``n u m "" k M G T P E`` or an exponent ``e3``/``E-2``.
  Anything else (``10 M``, ``10K``, ``10Mb``, ``1e``, ``0x10``) is rejected as Kubernetes does.
* ``quantity_value`` is ``Quantity.Value()``: the value rounded UP to an integer.
* Cilium reads a bandwidth annotation with ``bandwidth.GetBytesPerSec``:
  ``uint64(ParseQuantity(s).Value() / 8)`` (``pkg/bandwidth``, same in 1.13 .. 1.20); 0 bytes/s means
  "no limit" in its ``cilium_throttle`` map. Cilium itself checks no range; the Kubernetes range for
  bandwidth annotations (``pkg/util/bandwidth`` ``validateBandwidthIsReasonable``: 1k .. 1P bit/s,
  also used by the bandwidth CNI plugin) is applied on top by ``parse_bandwidth``, so a value Cilium
  would silently turn into "unlimited" (under 8 bit/s) or wrap (negative) is refused.

Pure stdlib; importable without Ansible.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal

from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.errors import ValidationError

_DIGITS = "0123456789"
_SUFFIX_CHARS = "eEinumkKMGTP"
BINARY_SUFFIXES = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
DECIMAL_SUFFIXES = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}

MIN_BANDWIDTH_BPS = 1000  # resource.MustParse("1k")
MAX_BANDWIDTH_BPS = 10 ** 15  # resource.MustParse("1P")
ACCEPTED_FORM = (
    "a Kubernetes quantity: a number with an optional suffix, decimal (k, M, G, T, P, E: 10M = 10,000,000 "
    "bit/s) or binary (Ki, Mi, Gi, Ti, Pi, Ei: 100Mi = 104,857,600 bit/s), e.g. 10M, 1G, 500k, 100Mi"
)


class QuantityError(ValueError):
    """The text is not a Kubernetes quantity (``resource.ErrFormatWrong`` / ``ErrSuffix``)."""


def _split(text):
    """``parseQuantityString``: (positive, num, denom, suffix); raises QuantityError like ErrFormatWrong."""
    positive = True
    pos = 0
    end = len(text)
    if pos < end and text[0] in "+-":
        positive = text[0] == "+"
        pos += 1
    while pos < end and text[pos] == "0":  # leading zeros
        pos += 1
    if pos >= end:
        return positive, "0", "", ""
    start = pos
    while pos < end and text[pos] in _DIGITS:
        pos += 1
    num = text[start:pos] or "0"
    denom = ""
    if pos < end and text[pos] == ".":
        pos += 1
        start = pos
        while pos < end and text[pos] in _DIGITS:
            pos += 1
        denom = text[start:pos]
    suffix_start = pos
    while pos < end and text[pos] in _SUFFIX_CHARS:
        pos += 1
    if pos < end and text[pos] in "+-":
        pos += 1
    while pos < end and text[pos] in _DIGITS:
        pos += 1
    if pos < end:
        raise QuantityError("quantities must match the regular expression "
                            "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")
    return positive, num, denom, text[suffix_start:end]


def _scale(suffix):
    """(base, exponent) of a suffix per the quantity suffixer; QuantityError for an unknown suffix."""
    if suffix in DECIMAL_SUFFIXES:
        return 10, DECIMAL_SUFFIXES[suffix]
    if suffix in BINARY_SUFFIXES:
        return 2, BINARY_SUFFIXES[suffix]
    if len(suffix) > 1 and suffix[0] in "eE":
        digits = suffix[1:]
        sign = 1
        if digits[:1] in ("+", "-"):
            sign = -1 if digits[0] == "-" else 1
            digits = digits[1:]
        if digits and all(c in _DIGITS for c in digits):
            return 10, sign * int(digits)
    raise QuantityError("unable to parse quantity's suffix %r" % suffix)


def parse_quantity(text):
    """Exact value of a quantity as a ``Decimal``; QuantityError if Kubernetes would refuse it."""
    if not isinstance(text, str):
        raise QuantityError("a quantity is a string, got %s" % type(text).__name__)
    if not text:
        raise QuantityError("quantities must match the regular expression "
                            "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")
    positive, num, denom, suffix = _split(text)
    base, exponent = _scale(suffix)
    value = Decimal("%s.%s" % (num, denom or "0")) * (Decimal(base) ** exponent)
    return value if positive else -value


def quantity_value(text):
    """``Quantity.Value()``: the value rounded up to an integer."""
    return int(parse_quantity(text).to_integral_value(rounding=ROUND_CEILING))


def parse_bandwidth(text, name="limit"):
    """Bits per second of a bandwidth annotation value; ValidationError naming ``name`` otherwise."""
    try:
        bits = quantity_value(str(text).strip() if text is not None else "")
    except QuantityError as exc:
        raise ValidationError(name, "%s: not %s" % (exc, ACCEPTED_FORM), value=text)
    if bits < MIN_BANDWIDTH_BPS:
        raise ValidationError(
            name, "%d bit/s is unreasonably small (< 1kbit, the Kubernetes bandwidth range; Cilium would store "
                  "%d bytes/s%s)" % (bits, max(bits, 0) // 8, ", meaning no limit at all" if bits < 8 else ""),
            value=text)
    if bits > MAX_BANDWIDTH_BPS:
        raise ValidationError(name, "%d bit/s is unreasonably large (> 1Pbit, the Kubernetes bandwidth range)"
                              % bits, value=text)
    return bits


def bytes_per_sec(bits):
    """Cilium's ``GetBytesPerSec``: integer division by 8."""
    return bits // 8


def enforced_bps(bits):
    """Bit rate Cilium really enforces (and prints in ``bpf bandwidth list``): whole bytes/s times 8."""
    return bytes_per_sec(bits) * 8


def format_decimal_si(value):
    """``resource.NewQuantity(value, DecimalSI).String()`` for a non-negative integer: 10000000 -> ``10M``."""
    value = int(value)
    exponent = 0
    units = {0: "", 3: "k", 6: "M", 9: "G", 12: "T", 15: "P", 18: "E"}
    while value and value % 1000 == 0 and exponent < 18:
        value //= 1000
        exponent += 3
    return "%d%s" % (value, units[exponent])
