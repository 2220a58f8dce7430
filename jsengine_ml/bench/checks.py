"""Agreement checks: a contender whose outputs differ from the numpy reference fails the run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .._types import Array

#: Max |difference| allowed between any contender's outputs and the numpy reference's (and between
#: the numpy reference and the Keras golden outputs).
TOLERANCE = 1e-4


class BenchFailure(Exception):
    """The benchmark cannot stand: a contender (or the reference itself) computes something else."""


@dataclass(frozen=True)
class Disagreement:
    workload: str
    contender: str
    against: str
    rows: int
    diff: float

    def __str__(self) -> str:
        return (f"{self.contender} disagrees with {self.against} on {self.workload} "
                f"({self.rows:,} rows): max abs diff {self.diff:.3g} > {TOLERANCE:g}")


def max_abs_diff(got: Any, want: Array) -> float:
    """Max |got − want|; inf when the shapes differ or a value is NaN where the other is not."""
    got = np.asarray(got, dtype=np.float64)
    if got.shape != want.shape:
        try:
            got = got.reshape(want.shape)
        except ValueError:
            return float("inf")
    diff = np.abs(got - want)
    if np.isnan(diff).any():
        return float("inf")
    return float(diff.max()) if diff.size else 0.0


def check(workload: str, contender: str, got: Any, want: Array, against: str = "the numpy reference"
          ) -> tuple[float, Disagreement | None]:
    """(max abs diff, the disagreement if it exceeds :data:`TOLERANCE`)."""
    diff = max_abs_diff(got, want)
    bad = None if diff <= TOLERANCE else Disagreement(workload, contender, against, int(want.shape[0]), diff)
    return diff, bad


def fail_on(disagreements: list[Disagreement]) -> None:
    if disagreements:
        lines = "\n  ".join(str(d) for d in disagreements)
        raise BenchFailure(f"{len(disagreements)} contender output(s) disagree; the run is void:\n  {lines}")
