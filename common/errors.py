"""User-facing errors: the CLI prints these as one line and exits non-zero."""


class OptreproError(Exception):
    """Base class for errors a user can fix (bad input, missing data, bad config)."""


class ConfigError(OptreproError):
    """Unknown paper/claim/preset, unknown override key, malformed YAML."""


class DataError(OptreproError):
    """A dataset is missing, truncated or corrupt."""


class DivergedError(RuntimeError):
    """Numerics broke down inside a method (e.g. eigh of a non-finite preconditioner statistic). Training
    loops record the run as diverged (divergence is a result) instead of crashing the whole claim."""
