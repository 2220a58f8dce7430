"""The hostile-bundle table: engine x case x {in-process, isolated}, the error and the time it took.

Runs :func:`jsengine_ml.conformance.hostile_suite.run_hostile_case` (the suite's own code) with
the issue's settings (time limit 2 s, memory limit 256 MiB) and prints a markdown table; a cell is
the exception that ended the case and its time, "no error" for the pass-through cases, "refused"
where the engine cannot enforce the limit the case needs in-process, and FAIL with the reason
when something the suite requires did not hold.

    python benchmarks/hostile_table.py [--backends v8 quickjs duktape] [--time-limit 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

import jsengine_ml
from jsengine_ml.conformance.hostile_suite import CASES, MODES, MiB, run_hostile_case


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="*", default=[b.name for b in jsengine_ml.available_backends()
                                                          if b.available])
    parser.add_argument("--time-limit", type=float, default=2.0)
    parser.add_argument("--memory-limit-mib", type=int, default=256)
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    outcomes = []
    header = "| case | " + " | ".join(f"{b} {m}" for b in args.backends for m in MODES) + " |"
    print(header)
    print("|" + "---|" * (1 + len(args.backends) * len(MODES)))
    failed = False
    for case in CASES:
        cells = []
        for backend in args.backends:
            for mode in MODES:
                o = run_hostile_case(backend, case, mode, time_limit=args.time_limit,
                                     memory_limit=args.memory_limit_mib * MiB)
                outcomes.append(o)
                if o.error == "skip":
                    cells.append("refused (in-process limit not enforceable)")
                    continue
                what = o.error or "no error"
                cells.append(f"{what} {o.seconds:.2f} s" + ("" if o.passed else f" FAIL: {'; '.join(o.problems)}"))
                failed |= not o.passed
        print(f"| {case.name} | " + " | ".join(cells) + " |", flush=True)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump([asdict(o) for o in outcomes], f, indent=2)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
