"""Data-set errors: one base class, each message naming the file and the problem."""


class DatasetError(Exception):
    """Base class for every data-set problem."""


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """The files are in none of the places searched and could not be downloaded."""


class DatasetFormatError(DatasetError, ValueError):
    """A file is not a valid IDX file, or images and labels do not fit together."""


class DatasetChecksumError(DatasetError):
    """A file's SHA-256 does not match the pinned sum."""
