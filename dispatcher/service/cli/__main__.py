"""``python -m dispatcher.service.cli``: the same as the ``loa`` command."""

import sys

from dispatcher.service.cli import main

sys.exit(main())
