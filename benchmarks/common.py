"""Shared helpers of the benchmark scripts."""
from __future__ import annotations

import platform

import torch

from pyg_mspipe.datasets import load_college_msg, load_wikipedia


def load_dataset(name: str):
    """Wikipedia with seeded random 172-dim features, or the bundled
    CollegeMsg with seeded random 16-dim features."""
    if name == "wikipedia":
        return load_wikipedia(msg_dim=172, features="random", seed=0)
    if name == "college":
        return load_college_msg(msg_dim=16, features="random", seed=0)
    raise ValueError(name)


def platform_line(device: torch.device) -> str:
    dev = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
    return (f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
            f"device {device} ({dev or platform.machine()})")
