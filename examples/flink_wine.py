"""A local PyFlink job scoring the Wine stream with jsengine-ml, swapping to model v2 mid-stream.

    python examples/flink_wine.py [--backend v8|quickjs|duktape] [--repeat 10] [--window 54]

The raw rows (stream.npz) are standardized with preprocess.json inside the operator, scored in
micro-batches by ``HotScoringFunction``; model v1 and, later, v2 (a perturbed copy written by
``jsengine_ml.testing.write_wine_variant``) arrive on a broadcast stream of update events. The
driver prints the accuracy per window of records and the versions that scored them.
In production the two ``from_collection`` sources are Kafka topics (see docs/flink.md).
"""

from __future__ import annotations

import argparse
import collections
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from pyflink.common import Configuration, Types
from pyflink.datastream import StreamExecutionEnvironment

from jsengine_ml.flink import MODEL_STATE, REJECTED, HotScoringFunction, ModelUpdate, configure_env
from jsengine_ml.testing import WINE_DIR, write_wine_variant


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", default="v8")
    ap.add_argument("--repeat", type=int, default=10, help="replay the 54-row stream this many times")
    ap.add_argument("--window", type=int, default=54, help="records per accuracy window")
    ap.add_argument("--parallelism", type=int, default=2)
    ap.add_argument("--swap-after", type=float, default=1.5, help="seconds before v2 is announced")
    args = ap.parse_args()

    stream = np.load(WINE_DIR / "stream.npz")
    x_raw, labels = stream["x_raw"], stream["y"]
    rows = np.tile(x_raw, (args.repeat, 1))
    truth = np.tile(labels, args.repeat)
    v2 = write_wine_variant(Path(tempfile.mkdtemp(prefix="wine-v2-")) / "v2", seed=2)

    env = configure_env(StreamExecutionEnvironment.get_execution_environment(), parallelism=args.parallelism)
    conf = Configuration()
    conf.set_string("python.fn-execution.bundle.size", "1")  # emit each event as soon as it is made (demo)
    env.configure(conf)

    def pace(s: str) -> str:  # a stand-in for a live source: ~100 records/s per instance
        time.sleep(0.01)
        return s

    def delayed(e: str) -> str:
        delay, value = json.loads(e)
        time.sleep(delay)
        return value

    data = env.from_collection([f"{i}," + ",".join(map(repr, r)) for i, r in enumerate(rows.tolist())],
                               type_info=Types.STRING()).map(pace, Types.STRING())
    events = [
        (0.0, ModelUpdate("v1", str(WINE_DIR)).to_json()),
        (args.swap_after, ModelUpdate("v2", str(v2)).to_json()),
    ]
    updates = env.from_collection([json.dumps(e) for e in events], type_info=Types.STRING()) \
        .map(delayed, Types.STRING()).set_parallelism(1)
    scored = (data.key_by(lambda s: int(s.split(",", 1)[0]) % 64, key_type=Types.INT())
              .connect(updates.broadcast(MODEL_STATE))
              .process(HotScoringFunction(backend=args.backend, batch_size=16, max_delay_ms=100,
                                          preprocess=str(WINE_DIR / "preprocess.json")), Types.STRING()))
    out = scored.union(scored.get_side_output(REJECTED).map(lambda r: "rejected," + r, Types.STRING()))

    t0 = time.time()
    window: list[tuple[bool, str]] = []
    total = collections.Counter()
    n = 0
    for line in out.execute_and_collect():
        if line.startswith("rejected,"):
            print("REJECTED:", line)
            continue
        key, version, cls = line.split(",")
        window.append((int(cls) == truth[int(key)], version))
        total[version] += 1
        n += 1
        if len(window) == args.window:
            acc = sum(ok for ok, _ in window) / len(window)
            by = dict(collections.Counter(v for _, v in window))
            print(f"records {n - len(window):5d}-{n - 1:5d}  accuracy {acc:.3f}  versions {by}")
            window = []
    if window:
        print(f"records {n - len(window):5d}-{n - 1:5d}  accuracy {sum(ok for ok, _ in window) / len(window):.3f}")
    print(f"{n} records in {time.time() - t0:.1f} s; by version {dict(total)}")


if __name__ == "__main__":
    main()
