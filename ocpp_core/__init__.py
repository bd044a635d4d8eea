"""ocpp_core: a dependency-free OCPP 1.6-J charge point engine.

Standard library only, so it can move to MicroPython: framing, validation of
every message against the official schemas, and (growing) the charge point's
behaviour. It knows nothing about GPIO, SPI, Modbus or serial ports.
"""

__version__ = "0.1.0"
