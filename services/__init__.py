"""hfbus runtime: consumers, the HuggingFace client, the publisher-side client and the CLI."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("hfbus")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"
