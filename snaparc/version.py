"""The package version, in a module of its own so every layer can name it
without importing the package face (which loads the API on first use)."""

__version__ = "0.1.0"
