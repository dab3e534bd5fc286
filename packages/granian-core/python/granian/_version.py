"""The version shared, in lockstep, by every granian distribution."""

__version__ = '0.1.0'
