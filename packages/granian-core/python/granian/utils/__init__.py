"""Utilities for apps served by granian (`granian.utils.proxies`: proxy headers)."""
