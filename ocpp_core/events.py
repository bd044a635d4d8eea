"""The engine's one way of telling the outside world (and its own services)
that something happened: listeners by topic.

    cp.events.listen("config", fn)        fn(key, value) after a change took effect
    cp.events.listen("fault", fn)         fn(connector_id, error_code, info, "raised"|"cleared")
    cp.events.listen("vendor:<vendorId>", fn)   fn(messageId, data) -> DataTransfer answer
    cp.events.listen("card_refused", fn)  fn(id_tag, why): a card presented starts nothing

emit() tells every listener; a listener that raises is logged and the others
still hear it. ask() returns the first listener's answer (None without one).
hold() collects emissions until release(): a ChangeConfiguration is answered
before its effects run (a new password must not drop the link before the
answer has left).
"""

from ocpp_core.log import get_logger

log = get_logger("ocpp.events")


class Events:
    def __init__(self):
        self._listeners = {}    # topic -> [fn, ...]
        self._held = None       # [(topic, args), ...] while held

    def listen(self, topic, fn):
        self._listeners.setdefault(topic, []).append(fn)

    def emit(self, topic, *args):
        if self._held is not None:
            self._held.append((topic, args))
            return
        for fn in self._listeners.get(topic, ()):
            try:
                fn(*args)
            except Exception:
                log.exception("listener of %s failed", topic)

    def ask(self, topic, *args):
        for fn in self._listeners.get(topic, ()):
            return fn(*args)
        return None

    def hold(self):
        """Collect emissions from now on; returns release(), which tells them."""
        self._held = []

        def release():
            held, self._held = self._held or [], None
            for topic, args in held:
                self.emit(topic, *args)
        return release
