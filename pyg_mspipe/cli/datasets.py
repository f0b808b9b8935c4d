r"""``pyg-mspipe datasets``: the bundled data and the file formats."""
from __future__ import annotations

import click

from pyg_mspipe.datasets import FORMATS, bundled_datasets
from pyg_mspipe.engine.data import PROJECT_DATA, find_data_file

__all__ = ["datasets"]


@click.command()
def datasets():
    r"""List the bundled datasets and the data file formats."""
    click.echo("bundled datasets (--data NAME):")
    for name, description in bundled_datasets():
        click.echo(f"  {name:<12} {description}")
    click.echo("project data files (--data NAME; $PYG_MSPIPE_DATA, shared/data or "
               "../shared/data):")
    for name, (file_name, _, _) in PROJECT_DATA.items():
        where = find_data_file(file_name)
        click.echo(f"  {name:<12} {file_name} ({where or 'not found here'})")
    click.echo("other data (--data SPEC):")
    click.echo("  synthetic:events=E,nodes=N[,seed=S,alpha=A,msg_dim=D]  seeded stream with "
               "power-law node activity")
    click.echo("  jodie:<name>  PyG's JODIEDataset (reddit, wikipedia, mooc, lastfm; "
               "downloads into --data-root)")
    click.echo("  tgb:<dir>     a TGB link dataset (tgbl-wiki, ...) in the folder TGB downloaded "
               "it to: its split, negatives and Evaluator (pip install 'pyg-mspipe[tgb]')")
    click.echo("  PATH          an event file, gzip or not, in one of the formats below")
    click.echo("file formats (--format NAME; detected if not given):")
    for name, description in FORMATS.items():
        click.echo(f"  {name:<6} {description}")
