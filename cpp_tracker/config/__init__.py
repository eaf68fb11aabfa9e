"""The configuration: YAML -> frozen dataclasses, every problem with its key path."""
