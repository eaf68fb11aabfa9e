"""``python -m cpp_tracker.cli`` runs :func:`cpp_tracker.cli.app.main`."""

from .app import main

raise SystemExit(main())
