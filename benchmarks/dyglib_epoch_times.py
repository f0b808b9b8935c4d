"""Runs DyGLib's ``train_link_prediction.py`` unchanged and prints the time
of each of its training epochs.

DyGLib logs no epoch times. This wrapper runs its script (``runpy``, as
``python train_link_prediction.py ...`` would) with ``tqdm.tqdm`` replaced by
a subclass that times the progress bars created in
``train_link_prediction.py`` itself (its training loop; evaluation's bars
are created in ``evaluate_models_utils.py`` and not timed): from the first
batch fetched to the end of the last batch's body (negative sampling,
forward, loss, backward, step and DyGLib's per-batch training metrics),
counting the events of each batch. One line per epoch on stdout::

    dyglib epoch 1 train_seconds 27.123 events 34352 events_per_second 1266.5

Run from DyGLib's checkout, its arguments after ``--``::

    cd DyGLib && python /path/to/benchmarks/dyglib_epoch_times.py -- \\
        --dataset_name uci --model_name TGN --load_best_configs --num_runs 1 \\
        --num_epochs 2 --negative_sample_strategy random --test_interval_epochs 1000 --gpu -1
"""
from __future__ import annotations

import os
import runpy
import sys
import time

import tqdm

SCRIPT = "train_link_prediction.py"


class TimedTqdm(tqdm.tqdm):
    epochs = 0

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._timed = os.path.basename(sys._getframe(1).f_code.co_filename) == SCRIPT

    def __iter__(self):
        if not self._timed:
            yield from super().__iter__()
            return
        events, start = 0, None
        for item in super().__iter__():
            if start is None:
                start = time.perf_counter()
            events += len(item)
            yield item
        seconds = time.perf_counter() - (start if start is not None else time.perf_counter())
        TimedTqdm.epochs += 1
        print(f"dyglib epoch {TimedTqdm.epochs} train_seconds {seconds:.3f} events {events} "
              f"events_per_second {events / max(seconds, 1e-9):.1f}", flush=True)


def main():
    argv = sys.argv[1:]
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not os.path.isfile(SCRIPT):
        sys.exit(f"dyglib_epoch_times.py: run it from DyGLib's checkout (no {SCRIPT} here)")
    tqdm.tqdm = TimedTqdm
    sys.argv = [SCRIPT, *argv]
    sys.path.insert(0, os.getcwd())
    runpy.run_path(SCRIPT, run_name="__main__")


if __name__ == "__main__":
    main()
