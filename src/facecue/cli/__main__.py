"""``python -m facecue.cli``: the same as the ``facecue`` command."""

import sys

from facecue.cli import main

sys.exit(main())
