"""``python -m scaleplan.core.cli``: the same as the ``scaleplan`` command."""

import sys

from scaleplan.core.cli import main

sys.exit(main())
