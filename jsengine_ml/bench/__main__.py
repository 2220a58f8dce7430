"""``python -m jsengine_ml.bench``: see :mod:`jsengine_ml.bench.cli`."""

import sys

from .cli import main

sys.exit(main())
