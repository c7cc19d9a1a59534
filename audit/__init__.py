"""audit: decide whether a claimed benchmark gain is real."""

__version__ = "0.1.0"
