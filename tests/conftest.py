"""Shared pytest set-up: the platform tool (tests/platform) importable as ``eks_sandbox``."""
import sys
from pathlib import Path

PLATFORM = Path(__file__).resolve().parent / "platform"
if str(PLATFORM) not in sys.path:
    sys.path.insert(0, str(PLATFORM))
