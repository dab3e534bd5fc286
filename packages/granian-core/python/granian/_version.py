"""The version shared, in lockstep, by every granian distribution (written by tools/dist.py set-version)."""

__version__ = '0.1.0'


def require_same_core(distribution: str, version: str) -> None:
    """Refuse to import `distribution` (at `version`) next to a granian-core of another version.

    The distributions pin each other exactly; this catches installs that bypassed the pins.
    """
    if version != __version__:
        raise ImportError(
            f'{distribution} {version} needs granian-core {version}, but granian-core {__version__} is installed; '
            f'install matching versions: pip install "granian-core=={version}"'
        )
