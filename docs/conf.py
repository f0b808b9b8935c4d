"""Sphinx configuration: `pip install -e ".[docs]"`, then
`sphinx-build -b html docs docs/_build/html`."""
project = "pyg-mspipe"
author = "pyg-mspipe developers"
extensions = ["myst_parser", "sphinx.ext.autodoc", "sphinx.ext.napoleon",
              "sphinx.ext.viewcode"]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build"]
html_theme = "furo"
autodoc_member_order = "bysource"
napoleon_google_docstring = True
# "Attributes:" sections as field lists: a NamedTuple's fields are already
# documented by autodoc, and a second description of each would be a
# duplicate object.
napoleon_use_ivar = True
