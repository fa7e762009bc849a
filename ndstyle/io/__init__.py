"""File input/output. One module per modality; :mod:`ndstyle.io.atomic` makes writes safe."""

from .atomic import atomic_output, check_output_path

__all__ = ["atomic_output", "check_output_path"]
