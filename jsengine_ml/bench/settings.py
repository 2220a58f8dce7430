"""Run sizes of ``jsengine-ml bench``: the full run and the ``--quick`` smoke run (CI, tests)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    """How much to measure. Every budget is wall time on the machine running the benchmark."""

    quick: bool
    #: Batch sizes of the throughput tables and plots.
    sizes: tuple[int, ...]
    #: Timed runs per cell (fewer once ``cell_budget_s`` is spent).
    repeats: int
    cell_budget_s: float
    #: A cell whose single run is estimated (from the previous batch size) above this is skipped.
    max_cell_s: float
    #: With one measured batch size only, a cell estimated above the limit gets a single timing probe at
    #: this many rows first (a line through two points estimates slow, per-call-bound contenders better).
    probe_rows: int | None
    #: Rows every contender's outputs are checked on before timing (besides every timed batch).
    check_rows: int
    lat_samples: int
    lat_budget_s: float
    #: Batch-1 latency samples taken even past the budget (slow contenders).
    lat_min_samples: int
    #: Workloads that also get the bundle contenders (None: all).
    bundle_workloads: tuple[str, ...] | None
    #: Backends (the first N) that get the tfjs bundle contender (None: all).
    tfjs_bundle_backends: int | None
    #: Load every tfjs model of a backend into one engine (tfjs evaluated once) instead of one each.
    share_tfjs_engine: bool
    #: Wine models on V8 (compiled) loaded in the load/RSS probe process.
    mem_models: int
    #: Models per probe for the other load/RSS probes (0: only the V8 compiled Wine probe).
    mem_other_models: int
    #: Workloads of the other load/RSS probes.
    mem_workloads: tuple[str, ...]
    http_requests: int
    http_clients: int
    transfer_rows: int
    transfer_rows_large: int
    transfer_repeats: int
    mb_records: int
    mb_threads: int
    #: (max_batch, max_delay_s) of the micro-batching runs.
    mb_configs: tuple[tuple[int, float], ...]
    #: Backends the micro-batching and hot-swap sections run on (None: all).
    stream_backends: int | None
    hotswap_swaps: int
    #: Backends (the first N) that also swap tfjs bundles (a slow load) in the hot-swap section.
    hotswap_bundle_backends: int
    #: Minimum wall time of one in-engine loop of the "where V8's time goes" kernel timing.
    split_loop_s: float

    @classmethod
    def for_run(cls, quick: bool) -> Settings:
        return cls.smoke() if quick else cls.full()

    @classmethod
    def full(cls) -> Settings:
        return cls(
            quick=False, sizes=(1, 64, 1000, 10000), repeats=7, cell_budget_s=0.75, max_cell_s=12.0,
            probe_rows=8, check_rows=64, lat_samples=1000, lat_budget_s=0.5, lat_min_samples=10,
            bundle_workloads=None, tfjs_bundle_backends=None, share_tfjs_engine=False,
            mem_models=20, mem_other_models=2, mem_workloads=("wine", "digits_cnn"),
            http_requests=2000, http_clients=8,
            transfer_rows=10000, transfer_rows_large=100_000, transfer_repeats=9,
            mb_records=60000, mb_threads=32, mb_configs=((256, 0.002), (4096, 0.005)), stream_backends=None,
            hotswap_bundle_backends=1,
            hotswap_swaps=10, split_loop_s=0.2,
        )

    @classmethod
    def smoke(cls) -> Settings:
        return cls(
            quick=True, sizes=(1, 64, 1000), repeats=3, cell_budget_s=0.08, max_cell_s=0.4,
            probe_rows=8, check_rows=8, lat_samples=40, lat_budget_s=0.06, lat_min_samples=3,
            bundle_workloads=("wine",), tfjs_bundle_backends=1, share_tfjs_engine=True,
            mem_models=8, mem_other_models=0, mem_workloads=("wine",),
            http_requests=150, http_clients=4,
            transfer_rows=1000, transfer_rows_large=10_000, transfer_repeats=3,
            mb_records=3000, mb_threads=8, mb_configs=((256, 0.002),), stream_backends=1,
            hotswap_bundle_backends=0,
            hotswap_swaps=3, split_loop_s=0.03,
        )
