r"""Option types of the command line."""
from __future__ import annotations

import click
import torch

__all__ = ["DeviceType", "DEVICE", "MetricList"]


class DeviceType(click.ParamType):
    r"""A torch device this machine has: :obj:`"cpu"`, :obj:`"cuda"`,
    :obj:`"cuda:1"`, ..."""
    name = "device"

    def convert(self, value, param, ctx):
        if isinstance(value, torch.device):
            return str(value)
        try:
            device = torch.device(value)
        except (RuntimeError, ValueError):
            self.fail(f"'{value}' is not a torch device (e.g. cpu, cuda, cuda:1)", param, ctx)
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if device.type == "cuda" and (device.index or 0) >= count:
            self.fail(f"'{value}': " + (f"this machine has {count} CUDA device(s)" if count
                                        else "CUDA is not available on this machine"),
                      param, ctx)
        if device.type not in ("cpu", "cuda"):
            self.fail(f"'{value}': only cpu and cuda devices are supported", param, ctx)
        return str(device)


DEVICE = DeviceType()


class MetricList(click.ParamType):
    r"""Comma-separated evaluation metrics: :obj:`ap`, :obj:`auc`,
    :obj:`mrr`, :obj:`hits@k`."""
    name = "metrics"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        names = tuple(name.strip().lower() for name in str(value).split(","))
        for name in names:
            if name in ("ap", "auc", "mrr"):
                continue
            k = name[5:] if name.startswith("hits@") else ""
            if not (k.isdigit() and int(k) >= 1):
                self.fail(f"unknown metric '{name}' (use ap, auc, mrr or hits@K)", param, ctx)
        if len(set(names)) != len(names):
            self.fail(f"'{value}' names a metric twice", param, ctx)
        return names
