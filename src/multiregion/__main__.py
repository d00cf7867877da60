"""``python -m multiregion`` runs the ``multiregion`` command."""

from multiregion.cli import main

raise SystemExit(main())
