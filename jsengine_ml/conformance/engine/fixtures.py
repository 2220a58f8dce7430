"""The fixtures every engine-suite mixin stands on, and the helpers they share.

An implementation supplies the engine class (``backend = "<name>"``, or an overridden
``engine_class`` fixture); the mixins take ``engine``, ``engine_factory`` and ``caps`` from here.
What a backend cannot do comes from its :class:`~jsengine_ml.engine.Capabilities` (a case that needs
it skips, naming the capability: see :func:`require`); the few bugs of a binding are the backend's
``known_bugs`` (strict xfails with the exception type they raise).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import pytest

from ...backends import get_backend
from ...engine import Capabilities, Engine, KnownBug
from ...errors import BackendUnavailableError, WrongThreadError

MiB = 1024 * 1024
#: The ``engine_factory`` fixture: creates engines of the class under test (kwargs as for Engine).
EngineFactory = Callable[..., Engine]
#: The transform() every array case uses: the input as it came, with its shape.
IDENTITY = "function (a, shape) { return {data: a, shape: shape}; }"
#: How a skip for something the backend's Capabilities say it cannot do begins (the test run's skip
#: policy allows these, and only these, in CI: see tests/conftest.py).
CAPABILITY_SKIP = "capability "


def require(caps: Capabilities, field: str, ok: bool, why: str) -> None:
    """Skip the calling case unless ``ok``, naming the capability ``field`` and its value."""
    if not ok:
        pytest.skip(f"{CAPABILITY_SKIP}{field} is {getattr(caps, field)!r}: {why}")


def assert_usable(engine: Engine) -> None:
    """The engine still evaluates (after an error, a limit, a refused call)."""
    assert engine.eval("[1, 2].concat([3]).length") == 3


class EngineFixtures:
    """The plug points: set ``backend`` (a registry name) or override the ``engine_class`` fixture."""

    #: Registry name of the backend under test (or override the ``engine_class`` fixture).
    backend: ClassVar[str | None] = None

    @pytest.fixture
    def engine_class(self) -> type[Engine]:
        """The Engine subclass under test; skipped with the backend's reason when unavailable."""
        if not self.backend:
            pytest.fail(f"{type(self).__name__}: set `backend = '<name>'` or override the engine_class fixture")
        try:
            return get_backend(self.backend)
        except BackendUnavailableError as exc:
            pytest.skip(f"backend {self.backend!r} unavailable: {exc}")

    @pytest.fixture
    def _available_class(self, engine_class: type[Engine]) -> type[Engine]:
        try:
            engine_class.check_available()
        except BackendUnavailableError as exc:
            pytest.skip(f"{engine_class.__name__} unavailable: {exc}")
        return engine_class

    @pytest.fixture(autouse=True)
    def _known_bugs(self, request: pytest.FixtureRequest, _available_class: type[Engine]) -> None:
        """Run the cases named in the backend's ``known_bugs`` as strict xfails of the declared type."""
        bug = known_bug(_available_class, getattr(request.node, "originalname", request.node.name))
        if bug is not None:
            request.applymarker(pytest.mark.xfail(reason=f"{_available_class.name}: {bug.reason}",
                                                  raises=bug.raises, strict=True))

    @pytest.fixture
    def engine_factory(self, _available_class: type[Engine]) -> Iterator[EngineFactory]:
        """Create engines of the class under test (kwargs as for Engine); all closed at teardown."""
        created: list[Engine] = []

        def make(**options: Any) -> Engine:
            engine = _available_class(**options)
            created.append(engine)
            return engine

        yield make
        for engine in created:
            try:
                engine.close()
            except WrongThreadError:  # pragma: no cover - a case left an engine on another thread
                pass

    @pytest.fixture
    def engine(self, engine_factory: EngineFactory) -> Engine:
        """A default engine (no limits)."""
        return engine_factory()

    @pytest.fixture
    def caps(self, _available_class: type[Engine]) -> Capabilities:
        return _available_class.capabilities()


def known_bug(engine_class: type[Engine], test: str) -> KnownBug | None:
    """The backend's declared bug for the suite case named ``test`` (its function name), if any."""
    return next((bug for bug in engine_class.known_bugs if bug.test == test), None)
