r"""``python -m pyg_mspipe``: the ``pyg-mspipe`` command line."""
from pyg_mspipe.cli.main import main

if __name__ == "__main__":
    main(prog_name="pyg-mspipe")
