"""The engine conformance suite, one mixin per concern over one fixtures base (:mod:`.fixtures`).

``jsengine_ml.conformance.EngineConformance`` is their union; a backend can also take only the
mixins it wants (``class TestArrays(ArrayTests): backend = "myengine"``).
"""
