"""Array types shared by the package's annotations."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

#: An array of any numeric dtype (engines move float32, int32 and uint8; the dtype is checked at run time).
Array = NDArray[np.generic]
#: Model rows and outputs: float32, two or more dimensions.
Float32Array = NDArray[np.float32]
#: Preprocessing statistics (means and scales), kept in double precision.
Float64Array = NDArray[np.float64]

__all__ = ["Array", "Float32Array", "Float64Array"]
