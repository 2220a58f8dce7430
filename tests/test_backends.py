"""Backend selection and the registry: by name, by $JSENGINE_ML_BACKEND, best available, third parties."""

from __future__ import annotations

import subprocess
import sys
import threading
from importlib import metadata

import pytest

import jsengine_ml
from jsengine_ml import BackendUnavailableError, CapabilityError
from jsengine_ml.backends import BUILTIN, ENV_VAR, available_backends, create_engine, get_backend, register_backend
from jsengine_ml.backends.duktape import DuktapeEngine
from jsengine_ml.backends.v8 import V8Engine


def test_available_backends_lists_every_builtin_with_capabilities_or_a_reason() -> None:
    infos = {i.name: i for i in available_backends()}
    assert set(BUILTIN) <= set(infos)
    for info in infos.values():
        if info.available:
            assert info.capabilities is not None and info.capabilities.backend == info.name
            assert info.reason == ""
        else:
            assert info.reason and "pip install" in info.reason


def test_selection_by_name_env_var_and_best_available(monkeypatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    best = get_backend()
    assert best.name == next(i.name for i in available_backends() if i.available)
    monkeypatch.setenv(ENV_VAR, "quickjs")
    assert get_backend().name == "quickjs"
    assert get_backend("duktape").name == "duktape"  # an explicit name wins over the variable
    monkeypatch.setenv(ENV_VAR, "nosuchengine")
    with pytest.raises(BackendUnavailableError, match=r"nosuchengine.*JSENGINE_ML_BACKEND"):
        get_backend()


def test_unknown_backend_names_the_known_ones() -> None:
    with pytest.raises(BackendUnavailableError, match="known backends: v8, quickjs, duktape, spidermonkey"):
        get_backend("rhino")


def test_dukpy_06_is_reported_as_quickjs_ng_not_duktape(monkeypatch) -> None:
    real = metadata.version
    monkeypatch.setattr(metadata, "version", lambda name: "0.6.0" if name == "dukpy" else real(name))
    with pytest.raises(BackendUnavailableError, match=r"QuickJS-NG, not Duktape.*dukpy>=0.5.1,<0.6"):
        DuktapeEngine.check_available()
    info = next(i for i in available_backends() if i.name == "duktape")
    assert not info.available and "QuickJS-NG" in info.reason


def test_a_missing_binding_says_which_pip_command_fixes_it() -> None:
    code = (
        "import sys; sys.modules['py_mini_racer'] = None\n"
        "from jsengine_ml.backends.v8 import V8Engine\n"
        "try:\n    V8Engine.check_available()\nexcept Exception as e:\n    print(type(e).__name__, e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.startswith("BackendUnavailableError") and "pip install 'jsengine-ml[v8]'" in out


def test_third_party_backend_registers_and_is_selectable(monkeypatch: pytest.MonkeyPatch) -> None:
    from jsengine_ml import backends

    monkeypatch.setattr(backends, "_registered", dict(backends._registered))  # gone after this test

    class LoudV8(V8Engine):
        name = "loudv8"

    register_backend("loudv8", LoudV8)
    with create_engine("loudv8") as engine:
        assert isinstance(engine, LoudV8) and engine.eval("6 * 7") == 42
    assert any(i.name == "loudv8" and i.available for i in available_backends())
    with pytest.raises(jsengine_ml.InputError):
        register_backend("bad", object)  # type: ignore[arg-type]


def test_backends_without_limits_refuse_them_instead_of_ignoring_them() -> None:
    with pytest.raises(CapabilityError, match="cannot enforce"):
        create_engine("duktape", time_limit=1.0)


def test_thread_local_engine_gives_one_engine_per_thread() -> None:
    pool = jsengine_ml.ThreadLocalEngine("quickjs", setup=lambda e: e.eval("var hits = 0"))
    seen: dict[str, object] = {}

    def work(name: str) -> None:
        engine = pool.get()
        assert pool.get() is engine
        engine.eval("hits += 1")
        seen[name] = (id(engine), engine.eval("hits"))
        pool.close()

    threads = [threading.Thread(target=work, args=(f"t{i}",)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({engine_id for engine_id, _ in seen.values()}) == 3
    assert all(hits == 1 for _, hits in seen.values()) and pool.created == 3


def test_cli_backends_lists_engines(capsys) -> None:
    from jsengine_ml.cli import main

    assert main(["backends"]) == 0
    out = capsys.readouterr().out
    for name in BUILTIN:
        assert name in out
