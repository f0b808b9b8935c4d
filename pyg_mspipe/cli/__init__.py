r"""The ``pyg-mspipe`` command line: ``train``, ``bench`` and ``datasets``
(see ``docs/cli.md``). Built on :mod:`click`; :func:`main` is the console
script."""
from pyg_mspipe.cli.errors import ConfigError
from pyg_mspipe.cli.main import cli, main

__all__ = ["cli", "main", "ConfigError"]
