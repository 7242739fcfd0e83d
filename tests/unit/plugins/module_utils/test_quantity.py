# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Quantities read as k8s.io/apimachinery resource.ParseQuantity + Value(), then Cilium's GetBytesPerSec."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.errors import ValidationError
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.quantity import (
    QuantityError,
    bytes_per_sec,
    enforced_bps,
    format_decimal_si,
    parse_bandwidth,
    parse_quantity,
    quantity_value,
)

# (text, Value()) pairs; the expected values are what ParseQuantity(text).Value() returns in Go.
VALID = [
    ("10M", 10_000_000),
    ("1G", 1_000_000_000),
    ("500k", 500_000),
    ("100Mi", 104_857_600),
    ("1Ki", 1024),
    ("1.5M", 1_500_000),
    ("0.5G", 500_000_000),
    ("1e6", 1_000_000),
    ("1E6", 1_000_000),
    ("2e+3", 2000),
    ("1E", 10 ** 18),          # E alone is the exa suffix, not an exponent
    ("+10M", 10_000_000),
    ("010M", 10_000_000),      # leading zeros are skipped
    ("1.M", 1_000_000),        # "we currently allow 1.G" (apimachinery comment)
    (".5M", 500_000),
    ("1500m", 2),              # 1.5 rounded up by Value()
    ("1m", 1),
    ("12345", 12345),
    ("-1k", -1000),
    ("0", 0),
]

# The second line: cases of apimachinery's own invalid-quantity table.
INVALID = ["", "10 M", "10K", "10Mb", "10Mbit", "1e", "0x10", "ten", "1.2.3", "10MM", "1Kib", " 10M", "1e1.5",
           "1.1.M", "1+1.0M", "0.1mi", "0.1am", "aoeu", ".5i", "1i", "-3.01i", "-3.01e-"]


@pytest.mark.parametrize("text,value", VALID)
def test_valid_quantities(text, value):
    assert quantity_value(text) == value


@pytest.mark.parametrize("text", INVALID)
def test_invalid_quantities_are_rejected(text):
    with pytest.raises(QuantityError):
        parse_quantity(text)


def test_exact_decimal_value():
    assert parse_quantity("1.5Mi") == Decimal(1572864)
    assert parse_quantity("250m") == Decimal("0.25")


@pytest.mark.parametrize("text,bits", [("10M", 10_000_000), ("1G", 10 ** 9), ("500k", 500_000),
                                       ("100Mi", 104_857_600), ("1k", 1000), ("1P", 10 ** 15)])
def test_parse_bandwidth_in_range(text, bits):
    assert parse_bandwidth(text) == bits


@pytest.mark.parametrize("text,fragment", [
    ("999", "unreasonably small"),
    ("0", "meaning no limit at all"),
    ("M", "meaning no limit at all"),  # ParseQuantity reads a bare suffix as 0
    ("-10M", "unreasonably small"),
    ("2P", "unreasonably large"),
    ("1Ei", "unreasonably large"),
    ("10 Mbit", "not a Kubernetes quantity"),
    ("10K", "not a Kubernetes quantity"),
])
def test_parse_bandwidth_rejections_name_the_option(text, fragment):
    with pytest.raises(ValidationError) as info:
        parse_bandwidth(text, "limit")
    assert "Invalid `limit`" in str(info.value) and repr(text) in str(info.value)
    assert fragment in str(info.value)


def test_cilium_byte_conversion_truncates():
    assert bytes_per_sec(10_000_000) == 1_250_000
    assert enforced_bps(1001) == 1000  # 125 bytes/s: what the map holds and prints
    assert enforced_bps(104_857_600) == 104_857_600


@pytest.mark.parametrize("value,text", [(10_000_000, "10M"), (1_500_000, "1500k"), (104_857_600, "104857600"),
                                        (0, "0"), (5 * 10 ** 9, "5G")])
def test_format_decimal_si(value, text):
    assert format_decimal_si(value) == text
