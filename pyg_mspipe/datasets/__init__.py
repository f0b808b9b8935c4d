r"""Real temporal interaction datasets read from local files (no download)."""
from pyg_mspipe.datasets.college_msg import load_college_msg
from pyg_mspipe.datasets.wikipedia import load_wikipedia

__all__ = ["load_college_msg", "load_wikipedia"]
