"""``python -m adamconf.conformance.cli``: the same as the ``adamconf`` command."""

import sys

from adamconf.conformance.cli import main

sys.exit(main())
