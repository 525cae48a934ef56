"""python -m bench.memory_fit DIR/results.csv ...: fit nstyle/memory.py's memory model to measured peaks.

For each (backend, device kind, model, precision) with at least two sizes that ran, a least-squares line through
(megapixels, peak_mem_mb); prints the MEMORY_MODELS entries to paste, with the worst relative residual.
"""
import sys

import numpy as np

from nstyle.backends.base import parse_device
from bench import usage


def with_precision(frame):
    """frame with its precision column filled: rows from before the bench had --precision ran float32."""
    return frame.assign(precision=frame["precision"].fillna("float32") if "precision" in frame else "float32")


def fit(frame):
    """{(backend, device kind, model, precision): (base MiB, MiB per megapixel, worst |residual| / measured)}."""
    ok = with_precision(frame[(frame["status"] == "ok") & frame["peak_mem_mb"].notna()])
    ok = ok.assign(kind=[parse_device(device)[0] for device in ok["device"]], megapixels=ok["pixels"] / 1e6)
    models = {}
    for key, group in ok.groupby(["backend", "kind", "model", "precision"]):
        if group["megapixels"].nunique() < 2:
            continue
        per_megapixel, base = np.polyfit(group["megapixels"], group["peak_mem_mb"], 1)
        predicted = base + per_megapixel * group["megapixels"]
        worst = float(np.max(np.abs(predicted - group["peak_mem_mb"]) / group["peak_mem_mb"]))
        models[key] = (float(base), float(per_megapixel), worst)
    return models


def main(argv=None):
    import pandas as pd
    parser = usage.Parser(prog="python -m bench.memory_fit", description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", help="results.csv files written by python -m bench")
    args = parser.parse_args(argv)
    models = fit(pd.concat([pd.read_csv(path) for path in args.results], ignore_index=True))
    if not models:
        print("no (backend, device, model, precision) with two or more sizes that ran", file=sys.stderr)
        return 1
    for (backend, kind, model, precision), (base, per_megapixel, worst) in sorted(models.items()):
        print(f'    ("{backend}", "{kind}", "{model}", "{precision}"): MemoryModel(base_mb={base:.0f}, '
              f'per_megapixel_mb={per_megapixel:.0f}),  # worst residual {worst:.1%}')
    return 0


if __name__ == "__main__":
    sys.exit(main())
