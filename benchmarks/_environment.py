"""One line saying what a benchmark ran on: timings and fitted values depend on it."""

from __future__ import annotations

import os
import platform


def describe() -> str:
    """Python, NumPy, SciPy and CPU: e.g. ``python 3.11.2, numpy 2.4.6, scipy 1.17.1; 2 cores (...)``.

    The versions matter beyond speed: in flat valleys of the objective, where L-BFGS-B stops
    depends on the last bits of NumPy's and BLAS's sums (see ``sweep_objectives.py``).
    """
    import numpy
    import scipy

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), cpu)
    except OSError:
        pass
    return (
        f"python {platform.python_version()}, numpy {numpy.__version__}, scipy {scipy.__version__}; "
        f"{os.cpu_count()} cores ({cpu})"
    )
