r"""``pyg-mspipe datasets``: the bundled data and the file formats."""
from __future__ import annotations

import click

__all__ = ["datasets"]


@click.command()
def datasets():
    r"""List the bundled datasets and the data file formats."""
    click.echo("bundled datasets:")
    click.echo("  college    SNAP CollegeMsg: 59,835 messages between 1,899 students "
               "(bundled)")
    click.echo("  wikipedia  JODIE Wikipedia edits (the project's shared data file, "
               "$PYG_MSPIPE_DATA)")
