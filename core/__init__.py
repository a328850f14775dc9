"""scaleplan core: data storage, scaling laws, fitting, evaluation and planning (no UI)."""

import os as _os

# Small L-BFGS problems: BLAS worker threads only add wake-up latency (tens of ms on a busy
# 2-core machine), so keep BLAS single-threaded unless the user says otherwise.
_os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
_os.environ.setdefault("OMP_NUM_THREADS", "1")

__version__ = "0.1.0"
