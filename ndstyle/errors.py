"""Exceptions raised by ndstyle.

Every error a user can cause derives from :class:`NdstyleError`, so the command line can print it
as one line and exit nonzero, while library users can catch the precise type (most also derive
from the matching built-in: ``ValueError``, ``FileNotFoundError``...).
"""

from __future__ import annotations


class NdstyleError(Exception):
    """Base class of every error that ndstyle raises on purpose."""


class ShapeError(NdstyleError, ValueError):
    """A tensor has the wrong number of dimensions or mismatching sizes."""


class OptionError(NdstyleError, ValueError):
    """An option or argument has an invalid value."""


class InputFileError(NdstyleError, ValueError):
    """An input file is missing, unreadable, of an unsupported kind or corrupt."""


class OutputFileError(NdstyleError, OSError):
    """An output file cannot be written as asked (exists, equals an input, no permission...)."""


class WeightsNotFoundError(NdstyleError, FileNotFoundError):
    """A weights file is not present where it was looked for."""


class WeightsIntegrityError(NdstyleError, ValueError):
    """A weights file is corrupt, tampered with, or does not fit the extractor."""


class NonFiniteCostError(NdstyleError, FloatingPointError):
    """The optimisation produced a NaN or infinite cost."""


class InterruptedRun(NdstyleError):
    """A run was interrupted (Ctrl-C); the best result so far may have been saved."""
