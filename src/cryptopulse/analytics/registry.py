"""Loading the token registry: the YAML shipped in the package, merged with the user's file."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml

from cryptopulse.domain.tokens import TokenRegistry, check, registry_from_mapping

__all__ = ["load_registry", "shipped_registry_text"]


def shipped_registry_text() -> str:
    """The text of `cryptopulse/data/tokens.yaml` (read from the installed package)."""
    return resources.files("cryptopulse").joinpath("data/tokens.yaml").read_text("utf-8")


def load_registry(path: str | Path | None = None) -> TokenRegistry:
    """The shipped registry, with the tokens and sectors of `path` (if given) replacing or
    adding to it by symbol / sector id. Blocking file I/O: call at start-up."""
    registry = registry_from_mapping(yaml.safe_load(shipped_registry_text()))
    if path is not None:
        text = Path(path).read_text("utf-8")
        registry = registry.merged(registry_from_mapping(yaml.safe_load(text)))
    check(registry)
    return registry
