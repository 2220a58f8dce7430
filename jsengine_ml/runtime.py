"""Locating and installing the pinned JavaScript runtime (tfjs 4.22 from the npm registry).

tfjs is never vendored: ``jsengine_ml/js/package.json`` and its lockfile pin it, and
``jsengine-ml install-js`` (``npm ci``) installs it. Lookup order: ``$JSENGINE_ML_JS_HOME``, the
package's own ``js/`` folder (a source checkout), then the user cache (``~/.cache/jsengine-ml/js``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from importlib import resources as importlib_resources
from pathlib import Path

from .errors import ModelError

TFJS_VERSION = "4.22.0"
ENV_VAR = "JSENGINE_ML_JS_HOME"
INSTALL_HINT = "run `jsengine-ml install-js` (npm ci of the pinned lockfile; needs node and npm)"


def package_js_dir() -> Path:
    return Path(str(importlib_resources.files("jsengine_ml").joinpath("js")))


def user_js_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "jsengine-ml" / "js"


def candidate_dirs() -> list[Path]:
    dirs = [Path(os.environ[ENV_VAR])] if os.environ.get(ENV_VAR) else []
    return [*dirs, package_js_dir(), user_js_dir()]


def tfjs_dist(es_version: int) -> Path:
    """Path of the tfjs 4.22 build for an engine of this ECMAScript level.

    ``tf.es2017.min.js`` for ES2017+ engines, the ES5 ``tf.min.js`` (with core-js) otherwise.
    """
    name = "tf.es2017.min.js" if es_version >= 2017 else "tf.min.js"
    looked = []
    for base in candidate_dirs():
        package = base / "node_modules" / "@tensorflow" / "tfjs"
        dist = package / "dist" / name
        looked.append(str(dist))
        if dist.is_file():
            version = json.loads((package / "package.json").read_text(encoding="utf-8")).get("version")
            if version != TFJS_VERSION:
                raise ModelError(f"{package} holds tfjs {version}, jsengine-ml needs {TFJS_VERSION}: {INSTALL_HINT}")
            return dist
    raise ModelError(f"tfjs {TFJS_VERSION} is not installed (looked at {', '.join(looked)}): {INSTALL_HINT}")


def install_js(target: Path | None = None, *, with_dev: bool = False) -> Path:
    """``npm ci`` the pinned JavaScript runtime into ``target`` (default: the user cache); return it."""
    target = target or user_js_dir()
    npm = shutil.which("npm")
    if npm is None:
        raise ModelError("npm is not on PATH: install Node.js 18+ with npm, then run `jsengine-ml install-js`")
    target.mkdir(parents=True, exist_ok=True)
    source = package_js_dir()
    if target.resolve() != source.resolve():
        for name in ("package.json", "package-lock.json"):
            shutil.copyfile(source / name, target / name)
    command = [npm, "ci", "--no-audit", "--no-fund"] + ([] if with_dev else ["--omit=dev"])
    subprocess.run(command, cwd=target, check=True)
    return target
