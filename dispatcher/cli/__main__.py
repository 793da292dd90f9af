"""``python -m dispatcher.cli``: the same as the ``loa`` command."""

import sys

from dispatcher.cli import main

sys.exit(main())
