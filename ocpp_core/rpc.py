"""The OCPP-J request/response engine for one websocket session.

Transport-agnostic and single-threaded: the owner feeds it received text with
receive(), tells it when the link goes up or down, and calls poll() so that
unanswered calls time out. It sends through the `send` function it was given.

- Our CALLs wait in order; only one is outstanding at a time (OCPP-J 4.1.1).
- Incoming CALLs are validated against the catalogue and dispatched to handlers;
  every failure becomes the right CALLERROR and the engine keeps going.
- Responses to our CALLs are validated too; an invalid one fails the call.
- An owner's admission rule (`admission`) is asked before any incoming CALL is
  handled: it may let it through, answer it in the handler's place, or have it
  dropped unanswered (OCPP 1.6 4.2: silence while the BootNotification is Rejected).
- Security events (the 1.6 security whitepaper) go to `security_event(type, techInfo)`
  when the owner set one: InvalidMessages for an unreadable CALL or one that breaks
  its schema; AttemptedReplayAttacks for a CALL whose message id the peer already
  used on this connection (OCPP-J 4.1.3: a CALL's id is unique per sender and
  connection). Such a CALL is not acted on: it is answered with a CALLERROR.
"""

import os
import time

from ocpp_core import errors, framing
from ocpp_core.compat import monotonic as _monotonic
from ocpp_core.catalogue import ACTIONS
from ocpp_core.log import get_logger
from ocpp_core.redact import redact_frame
from ocpp_core.validation import Violation, validate

log = get_logger("ocpp.rpc")   # imports logging on the first record only

CHARGE_POINT = "cp"
CENTRAL_SYSTEM = "cs"
DEFAULT_RESPONSE_TIMEOUT = 30.0
SILENT = "silent"   # an admission answer: drop the CALL, send nothing back
SEEN_IDS = 64       # CALL ids of the peer remembered per connection (replays)


def _violation(spec, payload):
    """(code, description) of the first rule the payload breaks, or None.

    Never raises: should the validator itself fail on some value (e.g. a number
    too large for float arithmetic), that is reported as InternalError instead
    of escaping from receive() and stalling the engine."""
    try:
        validate(spec, payload)
    except Violation as v:
        return v.code, v.description()
    except Exception as e:
        log.exception("validator failed")
        return errors.INTERNAL_ERROR, "payload could not be validated (%s)" % type(e).__name__
    return None


class Reply:
    """A handler's answer, and an action to run once the answer has been sent
    ("answer first, act after": a Reset must not reboot before its CALLRESULT)."""
    __slots__ = ("payload", "then")

    def __init__(self, payload, then=None):
        self.payload = payload
        self.then = then


class Deferred:
    """Returned by a handler that can only answer later (an unlock waits for the
    lock's feedback). resolve() sends the CALLRESULT; the engine never blocks."""

    def __init__(self):
        self._endpoint = None
        self._msg_id = None
        self._action = None
        self._early = None
        self.done = False

    def attach(self, endpoint, msg_id, action):
        """The endpoint that owes the answer to CALL msg_id (called by it)."""
        self._endpoint, self._msg_id, self._action = endpoint, msg_id, action
        if self._early is not None:
            self.resolve(self._early)

    def resolve(self, payload):
        if self.done:
            return
        if self._endpoint is None:
            self._early = payload
            return
        self.done = True
        self._endpoint.send_deferred(self._msg_id, self._action, payload)


class Call:
    """One of our outgoing requests."""
    __slots__ = ("id", "action", "payload", "on_result", "on_error", "timeout", "deadline",
                 "sent_at")

    def __init__(self, msg_id, action, payload, on_result, on_error, timeout):
        self.id = msg_id
        self.action = action
        self.payload = payload
        self.on_result = on_result
        self.on_error = on_error
        self.timeout = timeout
        self.deadline = None
        self.sent_at = None


def _new_id_prefix():
    try:
        return "%06x" % int.from_bytes(os.urandom(3), "big")
    except (AttributeError, NotImplementedError):  # a board without os.urandom
        return "%06x" % (int(time.time() * 1000) & 0xFFFFFF)


class RpcEndpoint:
    def __init__(self, role, send, clock=_monotonic, response_timeout=DEFAULT_RESPONSE_TIMEOUT,
                 trace=None):
        if role not in (CHARGE_POINT, CENTRAL_SYSTEM):
            raise ValueError("role must be 'cp' or 'cs'")
        self.role = role
        self._peer = CENTRAL_SYSTEM if role == CHARGE_POINT else CHARGE_POINT
        self._send = send
        self._clock = clock
        self.response_timeout = response_timeout
        self._trace = trace
        self._handlers = {}
        self._queue = []
        self._outstanding = None
        self._connected = False
        self._prefix = _new_id_prefix()
        self._counter = 0
        self.last_tx = None   # monotonic time of our last frame (for heartbeats)
        # fn(action or None) -> None (handle), SILENT, or a payload answered instead
        self.admission = None
        self.security_event = None      # fn(event_type, tech_info) (security events)
        self._seen_ids = []             # the peer's last CALL ids on this connection

    # --- configuration -------------------------------------------------------
    def on(self, action, handler):
        """Register handler(payload) -> dict | Reply for CALLs the peer sends."""
        entry = ACTIONS.get(action)
        if entry is None:
            raise ValueError("unknown OCPP 1.6 action %r" % action)
        if entry[1] == self.role:
            raise ValueError("%s is sent by the %s, not received" % (action, self.role))
        self._handlers[action] = handler

    def supports(self, action):
        return action in self._handlers

    # --- state -----------------------------------------------------------------
    @property
    def connected(self):
        return self._connected

    @property
    def busy(self):
        return self._outstanding is not None

    @property
    def pending(self):
        """Calls not yet answered: the outstanding one plus those waiting."""
        return len(self._queue) + (1 if self._outstanding else 0)

    def connection_up(self):
        self._connected = True
        self._seen_ids = []
        self._send_next()

    def connection_down(self):
        """Every call not yet answered fails with DISCONNECTED: its owner decides
        whether to send it again (the transaction journal does; a heartbeat doesn't)."""
        self._connected = False
        failed = ([self._outstanding] if self._outstanding else []) + self._queue
        self._outstanding = None
        self._queue = []
        for c in failed:
            self._fail(c, errors.DISCONNECTED, "connection lost before the answer")

    # --- outgoing --------------------------------------------------------------
    def next_id(self):
        self._counter += 1
        return "%s-%d" % (self._prefix, self._counter)

    def call(self, action, payload, on_result=None, on_error=None, timeout=None):
        """Queue a CALL. An invalid payload is our bug: ValueError, nothing sent."""
        entry = ACTIONS.get(action)
        if entry is None or entry[1] == self._peer:
            raise ValueError("%s is not a call the %s sends" % (action, self.role))
        bad = _violation(entry[2], payload)
        if bad is not None:
            raise ValueError("invalid %s request: %s" % (action, bad[1]))
        c = Call(self.next_id(), action, payload, on_result, on_error,
                 self.response_timeout if timeout is None else timeout)
        self._queue.append(c)
        self._send_next()
        return c

    def _send_next(self):
        if not self._connected or self._outstanding is not None or not self._queue:
            return
        c = self._queue.pop(0)
        self._outstanding = c
        now = self._clock()
        c.sent_at = now
        c.deadline = now + c.timeout
        self._transmit(framing.encode_call(c.id, c.action, c.payload))

    def _trace_frame(self, direction, text):
        if self._trace is None:
            return
        try:
            self._trace(direction, redact_frame(text) if isinstance(text, str)
                        else repr(text[:200]))
        except Exception:  # a broken trace hook must not break the session
            log.exception("trace hook failed")

    def _transmit(self, text):
        self.last_tx = self._clock()
        if self._trace is not None:
            self._trace_frame("tx", text)
        try:
            self._send(text)
        except Exception as e:  # the link reports the drop; don't crash the caller
            log.warning("send failed: %s", e)

    # --- time --------------------------------------------------------------------
    def poll(self, now=None):
        """Time out the outstanding call. Returns seconds until its deadline, or None."""
        c = self._outstanding
        if c is None:
            return None
        if now is None:
            now = self._clock()
        if now >= c.deadline:
            self._outstanding = None
            log.warning("%s %s: no answer within %.0f s", c.action, c.id, c.timeout)
            self._fail(c, errors.TIMEOUT, "no answer within %.0f s" % c.timeout)
            self._send_next()
            return self.poll(now)
        return c.deadline - now

    # --- incoming ------------------------------------------------------------------
    def receive(self, text):
        if isinstance(text, (bytes, bytearray)):
            try:  # as text, so that the trace and the log can mask secrets
                text = bytes(text).decode("utf-8")
            except UnicodeError:
                pass  # framing.decode reports it
        if self._trace is not None:
            self._trace_frame("rx", text)
        frame = framing.decode(text)
        if isinstance(frame, framing.BadFrame):
            self._bad_frame(frame, text)
        elif frame.kind == framing.CALL:
            self._handle_call(frame)
        else:
            self._handle_response(frame)

    def _admitted(self, action):
        """None to handle the call; SILENT or a payload from the admission rule."""
        if self.admission is None:
            return None
        try:
            return self.admission(action)
        except Exception:
            log.exception("admission rule failed")
            return None

    def _report(self, event_type, tech_info):
        if self.security_event is not None:
            try:
                self.security_event(event_type, tech_info)
            except Exception:
                log.exception("security event hook failed")

    def _bad_frame(self, bad, text):
        log.warning("dropped a bad frame (%s): %.120r", bad.reason,
                    redact_frame(text) if isinstance(text, str) else text)
        if bad.reply_id is not None:
            self._report("InvalidMessages", "unreadable CALL: %s" % bad.reason)
        if bad.reply_id is not None and self._admitted(None) == SILENT:
            return   # not even a CALLERROR (4.2)
        if bad.reply_id is not None:
            self._transmit(framing.encode_error(bad.reply_id, bad.code, bad.reason))
        elif bad.answer_to is not None and self._outstanding is not None \
                and self._outstanding.id == bad.answer_to:
            c = self._outstanding
            self._outstanding = None
            self._fail(c, errors.FORMATION_VIOLATION, "unreadable answer: " + bad.reason)
            self._send_next()

    def _handle_call(self, frame):
        rule = self._admitted(frame.action)
        if rule == SILENT:
            log.info("%s %s dropped unanswered (the station may not answer now)",
                     frame.action, frame.id)
            return
        if frame.id in self._seen_ids:
            log.warning("%s %s: message id already used on this connection; not acted on",
                        frame.action, frame.id)
            self._report("AttemptedReplayAttacks", "%s with a repeated message id %.40s"
                         % (frame.action, frame.id))
            self._transmit(framing.encode_error(frame.id, errors.GENERIC_ERROR,
                                                "message id already used on this connection"))
            return
        self._seen_ids.append(frame.id)
        if len(self._seen_ids) > SEEN_IDS:
            del self._seen_ids[0]
        code, description, result = self._dispatch(frame.action, frame.payload, rule)
        if code is not None:  # result holds the CALLERROR's details (or None)
            log.info("answered %s %s with %s: %s", frame.action, frame.id, code, description)
            self._transmit(framing.encode_error(frame.id, code, description,
                                                result if type(result) is dict else None))
            return
        if isinstance(result, Deferred):
            result.attach(self, frame.id, frame.action)
            return
        then = None
        if isinstance(result, Reply):
            then = result.then
            result = result.payload
        self._transmit(framing.encode_result(frame.id, result))
        if then is not None:
            try:
                then()
            except Exception:
                log.exception("follow-up of %s failed", frame.action)

    def send_deferred(self, msg_id, action, payload):
        """The late CALLRESULT of a Deferred (validated like any answer)."""
        bad = _violation(ACTIONS[action][3], payload)
        if bad is not None:
            log.error("deferred answer to %s is invalid: %s", action, bad[1])
            self._transmit(framing.encode_error(msg_id, errors.INTERNAL_ERROR,
                                                "%s produced an invalid answer" % action))
            return
        self._transmit(framing.encode_result(msg_id, payload))

    def _dispatch(self, action, payload, instead=None):
        """-> (error_code, description, details or None) or (None, None, result).
        instead: the admission rule's answer, given in the handler's place once
        the payload has been validated."""
        entry = ACTIONS.get(action)
        if entry is None:
            return errors.NOT_IMPLEMENTED, "unknown action %.40r" % (action,), None
        handler = self._handlers.get(action)
        if handler is None:
            return errors.NOT_SUPPORTED, "%s is not supported here" % action, None
        bad = _violation(entry[2], payload)
        if bad is not None:
            self._report("InvalidMessages", "%s: %s" % (action, bad[1]))
            return bad[0], bad[1], None
        if instead is not None:
            log.info("%s refused before it reached its handler", action)
            return None, None, instead
        try:
            result = handler(payload)
        except errors.OcppError as e:
            return e.code, e.description, e.details
        except Exception as e:
            log.exception("handler for %s failed", action)
            return errors.INTERNAL_ERROR, "%s failed: %s" % (action, type(e).__name__), None
        if isinstance(result, Deferred):
            return None, None, result
        answer = result.payload if isinstance(result, Reply) else result
        bad = _violation(entry[3], answer)
        if bad is not None:
            log.error("handler for %s returned an invalid answer: %s", action, bad[1])
            return errors.INTERNAL_ERROR, "%s produced an invalid answer" % action, None
        return None, None, result

    def _handle_response(self, frame):
        c = self._outstanding
        if c is None or c.id != frame.id:
            log.warning("answer to unknown message id %.40r dropped", frame.id)
            return
        self._outstanding = None
        if frame.kind == framing.CALLERROR:
            log.info("%s %s answered with %s: %s", c.action, c.id, frame.code, frame.description)
            self._fail(c, frame.code, frame.description, frame.details)
        else:
            bad = _violation(ACTIONS[c.action][3], frame.payload)
            if bad is not None:
                log.warning("%s %s: invalid answer (%s)", c.action, c.id, bad[1])
                self._fail(c, bad[0], "invalid answer: " + bad[1])
            else:
                if c.on_result is not None:
                    try:
                        c.on_result(frame.payload)
                    except Exception:
                        log.exception("result handler of %s failed", c.action)
        self._send_next()

    def _fail(self, c, code, description, details=None):
        if c.on_error is None:
            return
        try:
            c.on_error(code, description, details or {})
        except Exception:
            log.exception("error handler of %s failed", c.action)
