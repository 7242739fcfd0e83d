# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Versions as this collection reads them: the one ``parse_version`` and what is built on it.

``parse_version("quay.io/cilium/cilium:v1.18.11@sha256:ab..")`` finds the first ``X.Y[.Z]`` in a text and
returns a ``Version`` (a tuple ``(major, minor, patch)``, patch ``None`` when the text had none), or None.
Everything else compares ``Version`` tuples: ``at_least(version, "1.18")``, ``version_matches("1.18", ...)``.
Which Cilium versions the collection supports, and what changes between them, is not here but in
``cilium_table``. Pure stdlib; importable without Ansible.
"""

from __future__ import annotations

import collections
import re

_VERSION_RE = re.compile(r"v?(\d+)\.(\d+)(?:\.(\d+))?")


class Version(collections.namedtuple("Version", "major minor patch")):
    """``(major, minor, patch)``; ``patch`` is None for a bare ``X.Y``."""

    __slots__ = ()

    @property
    def minor_string(self):
        return "%d.%d" % (self.major, self.minor)

    def __str__(self):
        return ".".join(str(part) for part in self if part is not None)


def parse_version(text):
    """The first ``X.Y[.Z]`` in ``text`` (``"v1.18.10"``, ``"1.18"``, an image tag) as a ``Version``; else None."""
    if isinstance(text, Version):
        return text
    if isinstance(text, tuple):
        return Version(*(tuple(text) + (None,) * 3)[:3])
    match = _VERSION_RE.search(str(text or ""))
    if not match:
        return None
    patch = match.group(3)
    return Version(int(match.group(1)), int(match.group(2)), int(patch) if patch is not None else None)


def version_string(version):
    """``Version(1, 18, 10)`` -> ``"1.18.10"``; ``(1, 18, None)`` -> ``"1.18"``; None -> None."""
    version = parse_version(version) if version is not None else None
    return str(version) if version else None


def image_version(image):
    """Version in an image reference's tag: ``quay.io/cilium/cilium:v1.18.11@sha256:ab..`` -> ``"1.18.11"``."""
    if not image:
        return None
    last = image.split("@", 1)[0].rsplit("/", 1)[-1]
    if ":" not in last:
        return None
    return version_string(parse_version(last.split(":", 1)[1]))


def version_matches(expected, actual):
    """``expected`` ``"1.18"`` matches any 1.18 patch; ``"1.18.11"``/``"v1.18.11"`` only that patch."""
    want, have = parse_version(expected), parse_version(actual)
    if not want or not have or want[:2] != have[:2]:
        return False
    return want.patch is None or want.patch == have.patch


def at_least(version, since):
    """Is ``version`` (text or Version) at or above ``since`` (``"1.18"``, ``"1.18.2"``)? A missing patch is 0."""
    have, floor = parse_version(version), parse_version(since)
    if have is None or floor is None:
        raise ValueError("not a version: %r" % (version if have is None else since,))
    return (have.major, have.minor, have.patch or 0) >= (floor.major, floor.minor, floor.patch or 0)
