"""Making a config: init's proposed geometry, its picture, the draw page."""
