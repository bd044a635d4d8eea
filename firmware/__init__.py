"""The firmware: wires the hardware abstraction layer to the OCPP engine."""

from ocpp_core import __version__  # noqa: F401 (one version for the whole firmware)
