"""miga: reproducible micro-gesture analysis for the MiGA challenge."""

__version__ = "0.1.0"
