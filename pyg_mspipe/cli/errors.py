r"""The command line's error for bad configurations."""
from __future__ import annotations

__all__ = ["ConfigError"]


class ConfigError(ValueError):
    r"""A configuration the command line cannot run (options that do not go
    together, data the library refuses): reported as one line on stderr with
    exit code 2, like a usage error."""
