"""benchkit's own version and the version of its hook API (both re-exported by ``benchkit``)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("benchkit")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

#: Version of the hook API. It grows when hooks or ``register`` keywords are added; a change
#: that breaks existing plugins bumps the major part.
API_VERSION = "1.2"
