"""Environment the HF side of snaparc reads, read once at import.

The hub cache root follows huggingface_hub's own rules (`huggingface_hub.constants`):
`HF_HUB_CACHE`, else the legacy `HUGGINGFACE_HUB_CACHE`, else `$HF_HOME/hub`, where
`HF_HOME` defaults to `$XDG_CACHE_HOME/huggingface`, else `~/.cache/huggingface`.
`~` and `$VARS` are expanded as the hub does. Nothing else in snaparc reads these
variables; `hub_cache_from_env` is the pure rule, `HF_HUB_CACHE` its value for this
process.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path


def _expand(value: str) -> str:
    return os.path.expandvars(os.path.expanduser(value))


def hf_home_from_env(env: Mapping[str, str]) -> Path:
    """`HF_HOME`, else `$XDG_CACHE_HOME/huggingface`, else `~/.cache/huggingface`."""
    xdg = env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(_expand(env.get("HF_HOME") or os.path.join(xdg, "huggingface")))


def hub_cache_from_env(env: Mapping[str, str]) -> Path:
    """The hub cache root the Hugging Face libraries would use with environment `env`."""
    explicit = env.get("HF_HUB_CACHE") or env.get("HUGGINGFACE_HUB_CACHE")
    if explicit:
        return Path(_expand(explicit))
    return hf_home_from_env(env) / "hub"


HF_HOME: Path = hf_home_from_env(os.environ)
HF_HUB_CACHE: Path = hub_cache_from_env(os.environ)
