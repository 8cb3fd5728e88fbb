"""``python -m platform.report DIR [--out OUT] [--tracking-uri URI] [--experiment NAME] [--split test|val]``:
``platform.report.cli.main``."""

import sys

from platform.report.cli import main

sys.exit(main())
