"""``python -m cpp_tracker.cli`` runs :func:`cpp_tracker.cli.commands.main`."""

from .commands import main

raise SystemExit(main())
