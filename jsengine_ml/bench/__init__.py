"""``jsengine-ml bench``: jsengine-ml's engines and runtimes against the usual alternatives.

Same weights, same rows, outputs checked against the numpy reference (a disagreement fails the
run). Modules, one concern each:

* :mod:`~jsengine_ml.bench.settings` – full vs ``--quick`` sizes and budgets;
* :mod:`~jsengine_ml.bench.workloads` – the reference models, their rows, the numpy contender;
* :mod:`~jsengine_ml.bench.contenders` – engines × runtimes, bundles, numpy, onnxruntime, tfjs in
  Node, the loopback HTTP service (:mod:`~jsengine_ml.bench.http_service`), the JSON data path;
* :mod:`~jsengine_ml.bench.onnx` – the ONNX graph builder and the 1-thread onnxruntime session;
* :mod:`~jsengine_ml.bench.checks` – agreement checks and :class:`BenchFailure`;
* :mod:`~jsengine_ml.bench.measure` – timing, latency, memory probes in fresh processes;
* :mod:`~jsengine_ml.bench.throughput`, :mod:`~jsengine_ml.bench.split`,
  :mod:`~jsengine_ml.bench.datapath`, :mod:`~jsengine_ml.bench.streaming` – the measurements;
* :mod:`~jsengine_ml.bench.targets`, :mod:`~jsengine_ml.bench.report`,
  :mod:`~jsengine_ml.bench.plots`, :mod:`~jsengine_ml.bench.machine` – the outputs;
* :mod:`~jsengine_ml.bench.runner` – :func:`run_bench`; :mod:`~jsengine_ml.bench.cli` – ``python -m``.
"""

from __future__ import annotations

from typing import Any

from .checks import TOLERANCE, BenchFailure
from .workloads import REF_DIR, WORKLOADS, NumpyReference

__all__ = ["REF_DIR", "SECTIONS", "TOLERANCE", "WORKLOADS", "BenchFailure", "NumpyReference", "main", "run_bench"]


def run_bench(quick: bool, out_dir: Any, backends: list[str] | None = None, **kwargs: Any) -> int:
    """See :func:`jsengine_ml.bench.runner.run_bench`."""
    from .runner import run_bench as run

    return run(quick, out_dir, backends, **kwargs)


def main(argv: list[str] | None = None) -> int:
    from .cli import main as cli_main

    return cli_main(argv)


def __getattr__(name: str) -> Any:
    if name == "SECTIONS":
        from .report import SECTIONS

        return SECTIONS
    raise AttributeError(name)
