"""``python -m exchange`` runs the relay's command line."""

import sys

from exchange.cli import main

sys.exit(main())
