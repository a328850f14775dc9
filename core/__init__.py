"""scaleplan core: data storage, scaling laws, fitting, evaluation and planning (no UI)."""

__version__ = "0.1.0"
