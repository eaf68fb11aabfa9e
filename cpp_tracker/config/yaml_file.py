"""A config file read as YAML into its mapping, before any validation.

For callers that use the file's contents as written, even when they do not validate:
``cpp-tracker draw --config`` starts its page from the file's geometry and shows the
problems on the page. :func:`cpp_tracker.config.settings.load_config` reads and validates in
one go, with its own sentences for a missing or malformed file.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from ..errors import ConfigError

__all__ = ["read_config_mapping"]


def read_config_mapping(path: str | Path, *, otherwise: str) -> dict:
    """The top-level mapping of the YAML file at ``path``, not validated.

    Raises :class:`~cpp_tracker.errors.ConfigError` (naming the file) when the file is
    missing, cannot be read or parsed as YAML, or holds something other than a mapping;
    ``otherwise`` is the way out the message offers (e.g. ``"draw without --config"``).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        raw = yaml.safe_load(text)
    except FileNotFoundError:
        raise ConfigError(str(path), "file not found; check the path given to "
                          "--config") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(str(path), f"cannot be read as YAML ({e}); fix it or "
                          f"{otherwise}") from None
    except yaml.YAMLError as e:
        tabs = " (it contains tabs: indent with spaces, not tabs)" if "\t" in text else ""
        raise ConfigError(str(path), f"cannot be read as YAML ({e}){tabs}; fix it or "
                          f"{otherwise}") from None
    if not isinstance(raw, dict):
        raise ConfigError(str(path), "is not a YAML mapping with an 'arenas' list; "
                          f"{otherwise}")
    return raw
