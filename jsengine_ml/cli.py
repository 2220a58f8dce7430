"""The ``jsengine-ml`` command line."""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .errors import JSEngineMLError


def _backends(args: argparse.Namespace) -> int:
    from .backends import available_backends

    for info in available_backends():
        if info.available and info.capabilities:
            c = info.capabilities
            print(f"{info.name:<9} ok    {c.engine} {c.engine_version} via {c.binding}; {c.language}; "
                  f"data path: {c.binary_path}")
        else:
            print(f"{info.name:<9} --    {info.reason}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(args.backend)


def _conformance(args: argparse.Namespace) -> int:
    if importlib.util.find_spec("pytest") is None:
        from .errors import BackendUnavailableError

        raise BackendUnavailableError("the conformance suite runs on pytest, which is not installed. "
                                      "Fix: pip install 'jsengine-ml[conformance]'")
    from .conformance.runner import run_conformance

    return run_conformance(args.backend or None, extra_pytest_args=tuple(args.pytest_args or ()))


def _bundle(args: argparse.Namespace) -> int:
    from .bundle import write_bundle

    out = write_bundle(args.model, args.output, pre=args.pre, post=args.post, runtime=args.runtime)
    print(f"wrote {out} ({out.stat().st_size:,} bytes)")
    return 0


def _export(args: argparse.Namespace) -> int:
    from .export import keras_to_tfjs

    out = keras_to_tfjs(args.model, args.out_dir)
    print(f"wrote {out}")
    return 0


def _install_js(args: argparse.Namespace) -> int:
    from .runtime import install_js

    target = install_js(Path(args.target) if args.target else None, with_dev=args.dev)
    print(f"installed the pinned JavaScript runtime into {target}")
    return 0


def _read_csv(path: str) -> Any:
    """Rows of a CSV of numbers; a first line that is not numbers is taken as a header and skipped."""
    import numpy as np

    from .errors import InputError

    try:
        with open(path, encoding="utf-8") as f:
            lines = [line for line in f.read().splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {path}: {exc.strerror if isinstance(exc, OSError) else exc}") from exc
    if lines and not _is_numeric_row(lines[0]):
        lines = lines[1:]
    if not lines:
        raise InputError(f"{path} holds no rows of numbers")
    rows = []
    for number, line in enumerate(lines, start=1):
        try:
            rows.append([float(v) for v in line.split(",")])
        except ValueError:
            raise InputError(f"{path}: row {number} is not comma-separated numbers: {line[:80]!r}") from None
    if len({len(r) for r in rows}) > 1:
        raise InputError(f"{path}: rows have different numbers of columns ({sorted({len(r) for r in rows})})")
    return np.asarray(rows, dtype=np.float32)


def _is_numeric_row(line: str) -> bool:
    try:
        [float(v) for v in line.split(",")]
    except ValueError:
        return False
    return True


def _predict(args: argparse.Namespace) -> int:
    import numpy as np

    from .model import load

    rows = _read_csv(args.csv)
    with load(args.model, backend=args.backend) as model:
        np.savetxt(sys.stdout, model.predict(rows), delimiter=",", fmt="%.7g")
        sys.stdout.flush()
    return 0


def _bench(args: argparse.Namespace) -> int:
    from .bench.cli import run

    return run(args.quick, args.out, args.backend or None)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jsengine-ml", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("backends", help="list the engines and whether they can be used here")
    p.set_defaults(func=_backends)

    p = sub.add_parser("demo", help="score the Wine model on a stream of rows")
    p.add_argument("--backend", help="engine to use first (default: $JSENGINE_ML_BACKEND or the best available)")
    p.set_defaults(func=_demo)

    p = sub.add_parser("conformance", help="run the engine conformance suite: a table backend x case")
    p.add_argument("--backend", action="append", help="backend to test (repeatable; default: all known)")
    p.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    p.set_defaults(func=_conformance)

    p = sub.add_parser("bundle", help="write a self-contained single-file bundle for a TF.js Layers model")
    p.add_argument("model", help="model.json or its folder")
    p.add_argument("-o", "--output", required=True, help="bundle file to write")
    p.add_argument("--pre", help="JS file defining preprocess(rows)")
    p.add_argument("--post", help="JS file defining postprocess(rows)")
    p.add_argument("--runtime", choices=("auto", "compiled", "tfjs"), default="auto",
                   help="compiled (WebAssembly/ES5 kernels, no tfjs), tfjs, or auto (compiled when it covers "
                        "every layer; default)")
    p.set_defaults(func=_bundle)

    p = sub.add_parser("export", help="export a Keras 3 model (.keras) to TF.js Layers (model.json + shards)")
    p.add_argument("model", help="a .keras file")
    p.add_argument("out_dir", help="folder to write model.json and shards into")
    p.set_defaults(func=_export)

    p = sub.add_parser("install-js", help="npm ci the pinned JavaScript runtime (tfjs 4.22)")
    p.add_argument("--target", help="folder (default: ~/.cache/jsengine-ml/js)")
    p.add_argument("--dev", action="store_true", help="also install dev tools (webpack, for the test fixtures)")
    p.set_defaults(func=_install_js)

    p = sub.add_parser("predict", help="score a CSV of rows with a model; print the outputs as CSV")
    p.add_argument("model")
    p.add_argument("csv")
    p.add_argument("--backend")
    p.set_defaults(func=_predict)

    p = sub.add_parser("bench", help="benchmark engines and runtimes against peers; writes RESULTS.md, "
                                     "results.json and plots (exit 1 if any contender's outputs disagree)")
    from .bench.cli import add_arguments as add_bench_arguments

    add_bench_arguments(p, "bench-out")
    p.set_defaults(func=_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except JSEngineMLError as exc:
        print(f"jsengine-ml: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader went away (`jsengine-ml predict ... | head`): not an error
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
