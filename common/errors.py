"""User-facing errors: the CLI prints these as one line and exits non-zero."""


class OptreproError(Exception):
    """Base class for errors a user can fix (bad input, missing data, bad config)."""


class ConfigError(OptreproError):
    """Unknown paper/claim/preset, unknown override key, malformed YAML."""


class DataError(OptreproError):
    """A dataset is missing, truncated or corrupt."""
