"""Print the max abs error of every reference model against its golden outputs (Keras, or
TensorFlow for the graph models), per engine and path: the compiled runtime and tfjs on the
artifacts, and a bundle of each (one-input models). Named inputs and outputs go through ``run()``.

    python scripts/model_report.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from jsengine_ml import available_backends
from jsengine_ml.bundle import write_bundle
from jsengine_ml.conformance.model_suite import reference_models_dir
from jsengine_ml.errors import JSEngineMLError
from jsengine_ml.model import load

PATHS = ("compiled", "tfjs", "bundle-compiled", "bundle-tfjs")


def goldens(folder: Path) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(inputs, outputs) by name; a one-input model's are named "x" and "y"."""
    data = np.load(folder / "golden.npz")
    if "x" in data.files:
        return {"x": data["x"]}, {"y": data["y"]}
    return ({k[2:]: data[k] for k in data.files if k.startswith("x_")},
            {k[2:]: data[k] for k in data.files if k.startswith("y_")})


def max_error(source: Path, backend: str, runtime: str, inputs: dict[str, np.ndarray],
              outputs: dict[str, np.ndarray]) -> str:
    try:
        options = {} if source.suffix == ".js" else {"runtime": runtime}
        with load(source, backend, **options) as model:
            if list(inputs) == ["x"]:
                got = {"y": model.predict(inputs["x"])}
            else:
                got = model.run(inputs)
            return f"{max(float(np.abs(got[k].reshape(v.shape) - v).max()) for k, v in outputs.items()):.1e}"
    except JSEngineMLError as exc:
        return f"n/a ({type(exc).__name__})"


def main() -> None:
    backends = [b.name for b in available_backends() if b.available]
    models = sorted(p for p in reference_models_dir().iterdir() if (p / "golden.npz").exists())
    print(f"{'model':<14} {'backend':<9} " + " ".join(f"{p:>16}" for p in PATHS))
    with tempfile.TemporaryDirectory() as tmp:
        for folder in models:
            inputs, outputs = goldens(folder)
            graph = '"graph-model"' in (folder / "model.json").read_text()
            for backend in backends:
                cells = []
                for path in PATHS:
                    runtime = path.removeprefix("bundle-")
                    if graph and runtime == "compiled":
                        cells.append("n/a (graph)")
                        continue
                    source = folder
                    if path.startswith("bundle-"):
                        if list(inputs) != ["x"] or graph:
                            cells.append("n/a (one input)" if not graph else "n/a (graph)")
                            continue
                        source = Path(tmp) / f"{folder.name}-{runtime}.js"
                        if not source.exists():
                            write_bundle(folder, source, runtime=runtime)
                        runtime = "auto"
                    cells.append(max_error(source, backend, runtime, inputs, outputs))
                print(f"{folder.name:<14} {backend:<9} " + " ".join(f"{c:>16}" for c in cells))


if __name__ == "__main__":
    main()
