"""What the main loop's queue carries: one named event per thing that happened.

    Event(kind, connector, value)     from a device worker, the maintenance
                                      socket, or a stop request
    LinkEvent(kind, value)            from the CSMS link (it has no connector)

Both have .kind, .connector and .value, so that the main loop dispatches them
through one table (kind -> method). They are named tuples: immutable, cheap,
and equal to the plain tuples the tests spell out ("card", None, "04A1B2C3").

    kind            connector        value
    ev              cid              the pilot's new EV state ("A".."F")
    card            None             the idTag of a card presented
    meter           cid              a MeterSample
    lock            cid              the lock's feedback (True = engaged)
    modem           None             a ModemStatus
    fault           cid (0 station)  (errorCode, info): a device failed
    fault_cleared   cid (0 station)  errorCode: it works again
    up              None             the link is connected
    frame           None             a text frame from the CSMS
    down            None             the link is lost; value: why, in words
    maint           None             (request, reply): a tools.diag request
                                     for the engine (firmware/maintenance_handlers.py)
    stop            None             None: end the loop gracefully (SIGTERM)
    transfer        None             a TransferResult: a download or an image check
                                     finished (firmware/transfers.py)
    security        None             (event type, techInfo or None): a security
                                     event from another thread (the link, a
                                     tamper input) for cp.events "security_event"
    fallback        None             (tried, previous, reason): a new security
                                     profile did not connect; the link went back
    run             None             fn: a worker's result to run on the main loop
                                     (the certificate store's CSR)
"""

from collections import namedtuple

EV = "ev"
CARD = "card"
METER = "meter"
LOCK = "lock"
MODEM = "modem"
FAULT = "fault"
FAULT_CLEARED = "fault_cleared"
UP = "up"
FRAME = "frame"
DOWN = "down"
MAINTENANCE = "maint"
STOP = "stop"
TRANSFER = "transfer"
SECURITY = "security"
FALLBACK = "fallback"
RUN = "run"

KINDS = (EV, CARD, METER, LOCK, MODEM, FAULT, FAULT_CLEARED, UP, FRAME, DOWN, MAINTENANCE, STOP,
         TRANSFER, SECURITY, FALLBACK, RUN)


class Event(namedtuple("Event", "kind connector value")):
    __slots__ = ()


class LinkEvent(namedtuple("LinkEvent", "kind value")):
    __slots__ = ()
    connector = None      # the link serves the whole station
