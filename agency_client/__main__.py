"""``python -m agency_client`` runs the ``agency`` command."""

import sys

from agency_client.cli import main

sys.exit(main())
