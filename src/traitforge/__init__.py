"""traitforge: trustworthy reward datasets for behavioral traits."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("traitforge")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
