"""jsengine-ml: score TensorFlow.js models and JavaScript bundles inside an embedded JS engine."""

from __future__ import annotations

from .backends import available_backends, create_engine, get_backend, register_backend
from .engine import Capabilities, Engine, JSFunction
from .errors import (
    BackendUnavailableError,
    CapabilityError,
    EngineClosedError,
    EngineCrashedError,
    InputError,
    JSEngineMLError,
    JSError,
    JSMemoryLimitError,
    JSSyntaxError,
    JSTimeoutError,
    ModelError,
    ResourceError,
    ShimError,
    WrongThreadError,
)
from .model import DenseMatrixModel, IModel, ModelMetadata, load
from .threads import ThreadLocalEngine

__version__ = "0.1.0"

__all__ = [
    "BackendUnavailableError",
    "Capabilities",
    "CapabilityError",
    "DenseMatrixModel",
    "Engine",
    "EngineClosedError",
    "EngineCrashedError",
    "IModel",
    "InputError",
    "JSEngineMLError",
    "JSError",
    "JSFunction",
    "JSMemoryLimitError",
    "JSSyntaxError",
    "JSTimeoutError",
    "ModelError",
    "ModelMetadata",
    "ResourceError",
    "ShimError",
    "ThreadLocalEngine",
    "WrongThreadError",
    "available_backends",
    "create_engine",
    "get_backend",
    "load",
    "register_backend",
]
