r"""The ``pyg-mspipe`` command group and its entry point: every usage or
configuration error is one line on stderr and exit code 2."""
from __future__ import annotations

import sys

import click

from pyg_mspipe.cli._allocator import keep_freed_memory
from pyg_mspipe.cli.errors import ConfigError
from pyg_mspipe.datasets import DataFormatError

__all__ = ["cli", "main", "USAGE_ERROR"]

#: Exit code of usage and configuration errors (as click and argparse use).
USAGE_ERROR = 2


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="pyg-mspipe", prog_name="pyg-mspipe")
def cli():
    r"""Fast memory-based temporal GNN training for PyTorch Geometric.

    Run `pyg-mspipe train` to train TGN on the bundled CollegeMsg data."""


def _register():
    from pyg_mspipe.cli.bench import bench
    from pyg_mspipe.cli.datasets import datasets
    from pyg_mspipe.cli.train import train

    for command in (train, bench, datasets):
        cli.add_command(command)


_register()


def _one_line(message: str) -> str:
    return " ".join(str(message).split())


def main(argv: list[str] | None = None, prog_name: str = "pyg-mspipe") -> int:
    r"""Runs the command line on :obj:`argv` (default: :obj:`sys.argv[1:]`)
    and exits with its status: :obj:`0` on success, :obj:`2` with one line
    ``pyg-mspipe: error: ...`` on stderr for a usage error, a configuration
    the run cannot use (:class:`ConfigError`), a missing or malformed data
    file; :obj:`1` if interrupted. Anything else is a bug and keeps its
    traceback.

    On glibc it first raises malloc's mmap and trim thresholds, unless the
    environment sets them (``docs/cli.md``, "Memory allocator").

    Args:
        argv (list[str], optional): The arguments. (default: :obj:`None`)
        prog_name (str, optional): Name shown in usage lines.
            (default: :obj:`"pyg-mspipe"`)
    """
    keep_freed_memory()
    try:
        status = cli.main(args=argv, prog_name=prog_name, standalone_mode=False)
    except click.ClickException as exc:  # usage errors, bad option values
        message = exc.format_message()
        if isinstance(exc, click.UsageError) and exc.ctx is not None:
            message += f" (see '{exc.ctx.command_path} --help')"
        _fail(message, exc.exit_code if not isinstance(exc, click.UsageError) else USAGE_ERROR)
    except (ConfigError, DataFormatError, FileNotFoundError, IsADirectoryError) as exc:
        _fail(str(exc), USAGE_ERROR)
    except click.Abort:
        _fail("interrupted", 1)
    sys.exit(status if isinstance(status, int) else 0)


def _fail(message: str, code: int):
    click.echo(f"pyg-mspipe: error: {_one_line(message)}", err=True)
    sys.exit(code)
