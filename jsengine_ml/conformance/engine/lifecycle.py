"""close(), the context manager, and eval_file()."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ...engine import Engine
from ...errors import (
    EngineClosedError,
    JSError,
)
from .fixtures import EngineFactory, EngineFixtures


class LifecycleTests(EngineFixtures):
    """close(), the context manager, and eval_file()."""

    # ================================================================== lifecycle
    def test_close_is_idempotent(self, engine_factory: EngineFactory) -> None:
        engine = engine_factory()
        engine.close()
        engine.close()
        assert engine.closed

    def test_context_manager_closes(self, engine_factory: EngineFactory) -> None:
        with engine_factory() as engine:
            assert engine.eval("1 + 1") == 2
        assert engine.closed

    @pytest.mark.parametrize("method", [
        "eval", "eval_file", "function", "call", "put_array", "get_array", "transform", "settle", "run_timers",
        "add_resource", "load_bundle", "installed_shims",
    ])
    def test_methods_after_close_raise_engine_closed_error(
        self, engine_factory: EngineFactory, tmp_path: Path, method: str
    ) -> None:
        engine = engine_factory()
        engine.close()
        script = tmp_path / "s.js"
        script.write_text("1", encoding="utf-8")
        calls: dict[str, Callable[[], Any]] = {
            "eval": lambda: engine.eval("1"),
            "eval_file": lambda: engine.eval_file(script),
            "function": lambda: engine.function("f"),
            "call": lambda: engine.call("f"),
            "put_array": lambda: engine.put_array("x", np.zeros(1, np.float32)),
            "get_array": lambda: engine.get_array("x"),
            "transform": lambda: engine.transform("f", np.zeros(1, np.float32)),
            "settle": lambda: engine.settle("1"),
            "run_timers": lambda: engine.run_timers(),
            "add_resource": lambda: engine.add_resource("a", b""),
            "load_bundle": lambda: engine.load_bundle("var a;"),
            "installed_shims": lambda: engine.installed_shims(),
        }
        with pytest.raises(EngineClosedError):
            calls[method]()

    def test_eval_file_names_the_file_in_errors(self, engine: Engine, tmp_path: Path) -> None:
        path = tmp_path / "from_disk.js"
        path.write_text("var fromDisk = 5;\nfunction boom() { throw new Error('disk'); }\n", encoding="utf-8")
        engine.eval_file(path)
        assert engine.eval("fromDisk") == 5
        path2 = tmp_path / "boom_now.js"
        path2.write_text("\nthrow new Error('now');\n", encoding="utf-8")
        with pytest.raises(JSError) as info:
            engine.eval_file(path2)
        assert "boom_now.js" in info.value.js_stack

