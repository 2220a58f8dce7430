"""Build the WebAssembly kernel set: jsengine_ml/compiled/wasm/*.c -> jsengine_ml/compiled/kernels*.wasm.

    python scripts/build_wasm.py          # regenerate wasm/abi.h, rebuild both modules
    python scripts/build_wasm.py --check  # rebuild in a temporary directory; exit 1 if abi.h or
                                          # a module differs from the committed files

Two modules from the same sources, with the same exports and ABI:

* ``kernels.wasm``: 128-bit SIMD (every engine with WebAssembly SIMD);
* ``kernels_relaxed.wasm``: the same plus relaxed SIMD (``-mrelaxed-simd -DJSML_RELAXED_SIMD``):
  the micro-kernels' multiply-adds are ``f32x4.relaxed_madd`` (one FMA on x64 CPUs with FMA3). An
  executor uses it where ``WebAssembly.validate`` accepts it (V8 >= 11.4), else ``kernels.wasm``.

The compiler is the clang inside the PyPI ``ziglang`` package, pinned to one version so that the
committed module is reproducible byte for byte (``--strip-all`` keeps file names out of it).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMPILED = ROOT / "jsengine_ml" / "compiled"
SOURCE_DIR = COMPILED / "wasm"
HEADER = SOURCE_DIR / "abi.h"
OUTPUT = COMPILED / "kernels.wasm"
OUTPUT_RELAXED = COMPILED / "kernels_relaxed.wasm"
MAIN_SOURCE = "kernels.c"

ZIGLANG_VERSION = "0.17.1"

CFLAGS = (
    "--target=wasm32-freestanding",
    "-O3",
    "-msimd128",
    "-mbulk-memory",
    "-nostdlib",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-Wl,--no-entry",
    "-Wl,--import-memory",
    "-Wl,--strip-all",
    "-Wl,-z,stack-size=65536",
    "-Wl,--export=__heap_base",
)

#: module -> the flags it adds to CFLAGS.
MODULES: dict[Path, tuple[str, ...]] = {
    OUTPUT: (),
    OUTPUT_RELAXED: ("-mrelaxed-simd", "-DJSML_RELAXED_SIMD"),
}

sys.path.insert(0, str(ROOT))


def abi_header() -> str:
    from jsengine_ml.compiled import abi

    return abi.header()


def check_ziglang() -> None:
    try:
        version = importlib.metadata.version("ziglang")
    except importlib.metadata.PackageNotFoundError:
        version = None
    if version != ZIGLANG_VERSION:
        found = "is not installed" if version is None else f"is version {version}"
        sys.exit(
            f"build_wasm: the PyPI package ziglang {found}; the kernels are built with exactly "
            f'{ZIGLANG_VERSION}: pip install "ziglang=={ZIGLANG_VERSION}"'
        )


def compile_module(source_dir: Path, output: Path, extra: tuple[str, ...] = ()) -> None:
    """Compile ``source_dir/kernels.c`` (with the headers next to it) into ``output``."""
    cmd = [sys.executable, "-m", "ziglang", "cc", *CFLAGS, *extra, "-o", str(output), str(source_dir / MAIN_SOURCE)]
    result = subprocess.run(cmd, cwd=source_dir, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"build_wasm: compilation failed ({' '.join(cmd)}):\n{result.stdout}{result.stderr}")


def build() -> None:
    check_ziglang()
    HEADER.write_text(abi_header(), encoding="utf-8", newline="\n")
    print(f"wrote {HEADER.relative_to(ROOT)}")
    for output, extra in MODULES.items():
        compile_module(SOURCE_DIR, output, extra)
        output.chmod(0o644)  # the linker marks its output executable
        print(f"wrote {output.relative_to(ROOT)} ({output.stat().st_size} bytes)")


def check() -> int:
    check_ziglang()
    problems = []
    header = abi_header()
    if not HEADER.exists() or HEADER.read_text(encoding="utf-8") != header:
        problems.append(f"{HEADER.relative_to(ROOT)} is not what jsengine_ml/compiled/abi.py generates")
    with tempfile.TemporaryDirectory(prefix="jsml-wasm-") as tmp:
        tmp_dir = Path(tmp)
        for path in SOURCE_DIR.iterdir():
            if path.suffix in (".c", ".h") and path.name != HEADER.name:
                shutil.copy2(path, tmp_dir / path.name)
        (tmp_dir / HEADER.name).write_text(header, encoding="utf-8", newline="\n")
        for output, extra in MODULES.items():
            built = tmp_dir / output.name
            compile_module(tmp_dir, built, extra)
            fresh = built.read_bytes()
            if not output.exists():
                problems.append(f"{output.relative_to(ROOT)} is missing")
            elif output.read_bytes() != fresh:
                problems.append(
                    f"{output.relative_to(ROOT)} ({output.stat().st_size} bytes) differs from a fresh build of "
                    f"{SOURCE_DIR.relative_to(ROOT)} ({len(fresh)} bytes)"
                )
    if problems:
        print("build_wasm --check failed:", file=sys.stderr)
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        print("run `python scripts/build_wasm.py` and commit the results", file=sys.stderr)
        return 1
    names = ", ".join(str(output.relative_to(ROOT)) for output in MODULES)
    print(f"build_wasm --check: {HEADER.relative_to(ROOT)}, {names} are up to date")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="verify the committed abi.h and modules")
    args = parser.parse_args(argv)
    if args.check:
        return check()
    build()
    return 0


if __name__ == "__main__":
    sys.exit(main())
