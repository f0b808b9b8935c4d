r"""Write CollegeMsg in DyGLib's processed format, as its ``uci`` dataset.

DyGLib (``yule-BUAA/DyGLib``) reads ``processed_data/uci/ml_uci.csv``
(columns ``,u,i,ts,label,idx``; node and edge ids from 1), ``ml_uci.npy``
(edge features, row 0 unused) and ``ml_uci_node.npy`` (node features, row 0
unused). CollegeMsg has no features: both are written as zeros, 172 wide,
which is what DyGLib's loader pads feature-less data to anyway. Timestamps
are shifted to start at 0, as ``pyg-mspipe``'s loader does; events keep the
file's order (already chronological).

    python benchmarks/dyglib_uci.py /work/shared/data/CollegeMsg.txt.gz \
        /path/to/DyGLib/processed_data/uci
"""
import argparse
import gzip
from pathlib import Path

import numpy as np
import pandas as pd


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src", help="CollegeMsg.txt(.gz): 'src dst t' per line")
    parser.add_argument("out", help="output folder, e.g. DyGLib/processed_data/uci")
    parser.add_argument("--name", default="uci")
    args = parser.parse_args()
    opener = gzip.open if args.src.endswith(".gz") else open
    with opener(args.src, "rt") as f:
        rows = np.array([[int(x) for x in line.split()[:3]] for line in f if line.strip()])
    u, i, t = rows[:, 0], rows[:, 1], rows[:, 2]
    assert (np.diff(t) >= 0).all(), "events not in time order"
    assert min(u.min(), i.min()) >= 1
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    df = pd.DataFrame({"u": u, "i": i, "ts": (t - t.min()).astype(np.float64),
                       "label": np.zeros(len(u)), "idx": np.arange(1, len(u) + 1)})
    df.to_csv(out / f"ml_{args.name}.csv")
    np.save(out / f"ml_{args.name}.npy", np.zeros((len(u) + 1, 172)))
    np.save(out / f"ml_{args.name}_node.npy", np.zeros((int(max(u.max(), i.max())) + 1, 172)))
    print(f"{len(u)} events, {len(np.union1d(u, i))} nodes -> {out}")


if __name__ == "__main__":
    main()
