"""What a technician should check when a check of the running station fails,
in plain words: (device or situation) -> hint. Used by tools/diag/checks.py."""

HINTS = {
    "meter": "The energy meter does not answer: check its supply, the RS-485 A/B wiring "
             "and termination, its Modbus address and baud rate.",
    "meter-stale": "The meter gives no readings: check the meter's supply and RS-485 "
                   "wiring; restart the firmware if the meter is fine.",
    "rfid": "The card reader does not answer: check its cable to the controller (SPI), "
            "its connector and its 3.3 V supply.",
    "modem": "The LTE modem does not answer or has no usable signal: check the antenna and "
             "its cable, the SIM card, and the modem's USB/serial connection.",
    "modem-network": "The modem is not registered on a network: check the SIM (PIN, data "
                     "plan, APN) and the coverage here.",
    "contactor": "The contactor does not follow its command: check the coil supply and its "
                 "driver relay, and the wiring of the auxiliary (mirror) contact.",
    "contactor-welded": "The contactor stays closed when commanded open (welded contacts): "
                        "take the charger out of service and replace the contactor.",
    "contactor-open": "The contactor does not close: check the coil supply and its driver "
                      "relay, the coil itself, and the mirror contact wiring.",
    "lock": "The cable lock does not confirm: check for an obstruction in the socket, the "
            "actuator's wiring and its feedback switch.",
    "pilot": "The control pilot does not work or the EV signals an error: check the pilot "
             "wiring and the pilot board; try another EV or a test adapter.",
    "link": "The station is not connected to its central system: check the network (SIM, "
            "cable, Wi-Fi), the CSMS URL and the password; run the `csms` check.",
    "registration": "The central system has not accepted this station yet: check that the "
                    "charge point id is registered at the CSMS.",
    "clock": "The time is unknown (no CSMS time, no NTP): timestamps will be corrected once "
             "the central system answers; check the connection.",
    "main_loop": "The firmware's main loop does not answer: see the firmware log; restart "
                 "the service if it stays so.",
    "storage": "The data dir (SD card) cannot be written: free space in it (old logs, "
               "setaside/), or replace a worn-out card (read-only, I/O errors); the station "
               "charges online meanwhile and catches up when the card recovers.",
    "journal": "Some transaction messages were refused by the central system and set aside: "
               "export them with `journal --export` and send them to the operator.",
}
