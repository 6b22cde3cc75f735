"""photosorter: sort a photo library into categories on the CPU."""

__version__ = "0.1.0"
