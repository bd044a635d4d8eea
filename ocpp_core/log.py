"""Loggers that import `logging` only when the first record is emitted.

`import logging` costs about 1.3 MiB of resident memory, and an engine that
runs quietly never needs it. Use

    from ocpp_core.log import get_logger
    log = get_logger("ocpp.rpc")

instead of logging.getLogger("ocpp.rpc"): the object has the usual debug(),
info(), warning(), error(), exception(), critical() and log() methods, and the
records come from the real logging.getLogger(name), with the caller's file and
line (stacklevel is adjusted), so handlers, levels and pytest's caplog work as
before. Anything else (handlers, setLevel, ...) is on `.logger`.
"""


class LazyLogger:
    __slots__ = ("name", "_logger")

    def __init__(self, name):
        self.name = name
        self._logger = None

    @property
    def logger(self):
        """The logging.Logger itself (imports logging)."""
        logger = self._logger
        if logger is None:
            try:
                import logging
                logger = logging.getLogger(self.name)
            except ImportError:      # MicroPython without micropython-lib's logging
                logger = MiniLogger(self.name)
            self._logger = logger
        return logger

    def isEnabledFor(self, level):
        return self.logger.isEnabledFor(level)

    # One level deeper than a call on the Logger itself: stacklevel + 1 makes
    # the record name our caller, not this module.
    def debug(self, msg, *args, **kwargs):
        kwargs["stacklevel"] = kwargs.get("stacklevel", 1) + 1
        self.logger.debug(msg, *args, **kwargs)

    def info(self, msg, *args, **kwargs):
        kwargs["stacklevel"] = kwargs.get("stacklevel", 1) + 1
        self.logger.info(msg, *args, **kwargs)

    def warning(self, msg, *args, **kwargs):
        kwargs["stacklevel"] = kwargs.get("stacklevel", 1) + 1
        self.logger.warning(msg, *args, **kwargs)

    def error(self, msg, *args, **kwargs):
        kwargs["stacklevel"] = kwargs.get("stacklevel", 1) + 1
        self.logger.error(msg, *args, **kwargs)

    def exception(self, msg, *args, exc_info=True, **kwargs):
        kwargs["stacklevel"] = kwargs.get("stacklevel", 1) + 1
        self.logger.error(msg, *args, exc_info=exc_info, **kwargs)

    def critical(self, msg, *args, **kwargs):
        kwargs["stacklevel"] = kwargs.get("stacklevel", 1) + 1
        self.logger.critical(msg, *args, **kwargs)

    def log(self, level, msg, *args, **kwargs):
        kwargs["stacklevel"] = kwargs.get("stacklevel", 1) + 1
        self.logger.log(level, msg, *args, **kwargs)

    def __repr__(self):
        return "<LazyLogger %s>" % self.name


class MiniLogger:
    """Where `logging` is missing (MicroPython): one line per record on stderr,
    "LEVEL name: message", from MiniLogger.level (WARNING) up. Accepts and
    ignores the keyword arguments of logging (stacklevel, exc_info, ...)."""

    level = 30
    NAMES = {10: "DEBUG", 20: "INFO", 30: "WARNING", 40: "ERROR", 50: "CRITICAL"}

    def __init__(self, name):
        self.name = name

    def isEnabledFor(self, level):
        return level >= MiniLogger.level

    def log(self, level, msg, *args, **kwargs):
        if level < MiniLogger.level:
            return
        if args:
            try:
                msg = msg % args
            except Exception:
                msg = "%s %r" % (msg, args)
        import sys
        print("%s %s: %s" % (MiniLogger.NAMES.get(level, level), self.name, msg),
              file=sys.stderr)

    def debug(self, msg, *args, **kwargs):
        self.log(10, msg, *args)

    def info(self, msg, *args, **kwargs):
        self.log(20, msg, *args)

    def warning(self, msg, *args, **kwargs):
        self.log(30, msg, *args)

    def error(self, msg, *args, **kwargs):
        self.log(40, msg, *args)

    def critical(self, msg, *args, **kwargs):
        self.log(50, msg, *args)


_loggers = {}


def get_logger(name):
    """The LazyLogger for `name` (one per name, like logging.getLogger)."""
    logger = _loggers.get(name)
    if logger is None:
        logger = _loggers[name] = LazyLogger(name)
    return logger
