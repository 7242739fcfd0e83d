# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The one parse_version and the comparisons built on it."""

from __future__ import annotations

import pytest

from ansible_collections.cloudnet.cilium_eks.plugins.module_utils import versions


@pytest.mark.parametrize("text, parsed", [
    ("v1.18.10", (1, 18, 10)), ("1.18", (1, 18, None)), ("quay.io/cilium/cilium:v1.18.11@sha256:ab", (1, 18, 11)),
    ("1.20.0-pre.1", (1, 20, 0)), ("latest", None), (None, None), ((1, 15), (1, 15, None)),
])
def test_parse_version_finds_the_first_version(text, parsed):
    assert versions.parse_version(text) == parsed


def test_a_version_prints_as_it_was_given():
    assert str(versions.parse_version("v1.18.10")) == "1.18.10" and versions.version_string("1.18") == "1.18"
    assert versions.parse_version("1.18.2").minor_string == "1.18"


@pytest.mark.parametrize("image, version", [
    ("quay.io/cilium/cilium:v1.18.11@sha256:0123abcd", "1.18.11"), ("quay.io/cilium/operator-aws:v1.13.4", "1.13.4"),
    ("localhost:5000/cilium/cilium:1.20.2", "1.20.2"), ("quay.io/cilium/cilium@sha256:0123abcd", None),
    ("quay.io/cilium/cilium:latest", None), ("localhost:5000/cilium/cilium", None), ("", None),
])
def test_image_version(image, version):
    assert versions.image_version(image) == version


@pytest.mark.parametrize("expected, actual, match", [
    ("1.18", "1.18.11", True), ("v1.18.11", "1.18.11", True), ("1.18.10", "1.18.11", False),
    ("1.19", "1.18.11", False), ("1.18", "", False), ("bogus", "1.18.1", False),
])
def test_version_matches(expected, actual, match):
    assert versions.version_matches(expected, actual) is match


def test_at_least_treats_a_missing_patch_as_zero_and_refuses_garbage():
    assert versions.at_least("1.18", "1.18.0") and not versions.at_least("1.17.17", "1.18")
    with pytest.raises(ValueError):
        versions.at_least("latest", "1.18")
