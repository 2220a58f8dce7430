"""Print, per engine: load time and predict time for 10,000 Wine rows, and the max abs error of every
reference model against its Keras golden outputs (artifact, bundle and kernels paths).

    python scripts/model_report.py
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from jsengine_ml import available_backends
from jsengine_ml.bundle import write_bundle
from jsengine_ml.conformance.model_suite import REFERENCE_MODELS, golden, reference_models_dir
from jsengine_ml.errors import ModelError
from jsengine_ml.model import load


def main() -> None:
    backends = [b.name for b in available_backends() if b.available]
    rows = np.random.default_rng(0).standard_normal((10_000, 13)).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        bundles = {m: write_bundle(reference_models_dir() / m, Path(tmp) / f"{m}.js") for m in REFERENCE_MODELS}
        print(f"Wine bundle: {bundles['wine'].stat().st_size:,} bytes")
        print("\nWine, 10,000 rows (median of 5 predicts after one warm-up call)")
        print(f"{'backend':<9} {'path':<9} {'load ms':>8} {'predict ms':>11} {'rows/s':>10}")
        for be in backends:
            for path, source, options in (("artifact", reference_models_dir() / "wine", {}),
                                          ("kernels", reference_models_dir() / "wine", {"runtime": "kernels"}),
                                          ("bundle", bundles["wine"], {})):
                t0 = time.perf_counter()
                model = load(source, be, **options)
                load_s = time.perf_counter() - t0
                times = []
                for _ in range(5):
                    t0 = time.perf_counter()
                    model.predict(rows)
                    times.append(time.perf_counter() - t0)
                model.close()
                p = statistics.median(times)
                print(f"{be:<9} {path:<9} {load_s * 1e3:>8.0f} {p * 1e3:>11.1f} {len(rows) / p:>10,.0f}")
        print("\nMax abs error vs Keras (golden outputs), per model and engine")
        print(f"{'model':<14} {'backend':<9} {'artifact':>9} {'bundle':>9} {'kernels':>9}")
        for name in REFERENCE_MODELS:
            x, y = golden(name)
            for be in backends:
                errs = []
                for source, options in ((reference_models_dir() / name, {}), (bundles[name], {}),
                                        (reference_models_dir() / name, {"runtime": "kernels"})):
                    try:
                        with load(source, be, **options) as model:
                            errs.append(f"{float(np.abs(model.predict(x) - y).max()):.1e}")
                    except ModelError:
                        errs.append("n/a")
                print(f"{name:<14} {be:<9} {errs[0]:>9} {errs[1]:>9} {errs[2]:>9}")


if __name__ == "__main__":
    main()
