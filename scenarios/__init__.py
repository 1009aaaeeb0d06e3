"""The shipped scenarios: YAML files in this folder, loaded by the fake unless told otherwise.

This package holds data only; `DIRECTORY` is where the files are.
"""

from pathlib import Path

DIRECTORY = Path(__file__).parent

__all__ = ["DIRECTORY"]
