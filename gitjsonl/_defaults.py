"""The sizes and names gitjsonl defaults to, in a module that imports nothing.

``_config`` re-exports them (the home of configuration); they live here so that
the command line's parser (``_cli``) can show them without importing what
``_config`` needs (tenacity, the pacing), which ``gitjsonl --help`` must not pay for.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_API_URL",
    "DEFAULT_LOG_PATH",
    "DEFAULT_MAX_RECORD_BYTES",
    "DEFAULT_SEGMENT_BYTES",
    "MiB",
]

MiB = 1024 * 1024

DEFAULT_API_URL = "https://api.github.com"

#: Where the service gitjsonl replaces kept its log (as ``data/interactions.jsonl``).
DEFAULT_LOG_PATH = "data/interactions"

#: 1 MiB: every segment stays readable through the Contents API.
DEFAULT_SEGMENT_BYTES = MiB

#: The largest record ``append`` accepts by default (uploaded base64, a third larger).
DEFAULT_MAX_RECORD_BYTES = 4 * MiB
