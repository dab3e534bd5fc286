"""The granian server: a supervisor process that runs worker processes."""

from .supervisor import Server

__all__ = ['Server']
