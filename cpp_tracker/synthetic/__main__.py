"""``python -m cpp_tracker.synthetic`` runs :func:`cpp_tracker.synthetic.scenes.main`."""

from .scenes import main

raise SystemExit(main())
