"""What the engine knows of the station it runs: its hardware feature set, and
the small interface through which it commands the hardware.

The defaults are the reference station KL4311-C (one connector, fixed cable,
one RFID reader, an energy meter that measures what an SDM630 does).
"""

# What the engine knows itself (the pilot's offer), whatever the meter measures.
ENGINE_MEASURANDS = ("Current.Offered", "Power.Offered")
# Measurands a typical Modbus energy meter (Eastron SDM630 class) provides,
# plus those the engine knows.
DEFAULT_METER_MEASURANDS = (
    "Energy.Active.Import.Register",
    "Power.Active.Import",
    "Current.Import",
    "Voltage",
    "Frequency",
) + ENGINE_MEASURANDS


LOCK_TIMEOUT = 5.0      # s; a cable lock that has not reported its new position by then failed


class StationProfile:
    def __init__(self, number_of_connectors=1, fixed_cable=True, phases=3,
                 max_current_a=32.0, nominal_voltage_v=230.0,
                 meter_measurands=DEFAULT_METER_MEASURANDS):
        if number_of_connectors < 1:
            raise ValueError("a station has at least one connector")
        self.number_of_connectors = number_of_connectors
        self.fixed_cable = fixed_cable
        self.phases = phases
        self.max_current_a = max_current_a
        self.nominal_voltage_v = nominal_voltage_v
        # meter_measurands: what the configured meter delivers (the HAL's
        # meter_measurands()); ChangeConfiguration refuses any other measurand.
        self.meter_measurands = tuple(meter_measurands) + tuple(
            m for m in ENGINE_MEASURANDS if m not in meter_measurands)

    @property
    def has_lock(self):
        """A socket outlet has a cable lock; a fixed cable has none to release."""
        return not self.fixed_cable

    def connector_ids(self):
        return range(1, self.number_of_connectors + 1)


class StationInterface:
    """Commands from the engine to the hardware. The firmware binds this to the
    HAL; tests bind it to a recorder. Every method returns at once: results
    come back to the engine as events (e.g. lock feedback)."""

    def set_contactor(self, connector_id, closed):
        raise NotImplementedError

    def set_lock(self, connector_id, locked):
        raise NotImplementedError

    def set_offered_current(self, connector_id, amps):
        """0 = not offering (PWM off); otherwise the current limit signalled to the EV."""
        raise NotImplementedError

    def restart(self, kind):
        """Restart the station after a Reset ("Soft" or "Hard"); may not return."""
        raise NotImplementedError
