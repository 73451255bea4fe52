"""``python -m affectseq`` runs the command line."""

import sys

from affectseq.cli import main

sys.exit(main())
