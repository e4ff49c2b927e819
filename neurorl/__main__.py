"""``python -m neurorl ...``: the ``neurorl`` command (``neurorl.experiment.cli.main``), for an
environment whose scripts directory is not on ``PATH``."""

import sys

from neurorl.experiment.cli import main

if __name__ == "__main__":
    sys.exit(main())
