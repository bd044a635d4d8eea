"""Validation of OCPP payloads against the compact specs in catalogue.py.

A spec node is a tuple whose first item names its JSON type:
  ("o", {name: node}, required_names)   object; every 1.6 object is closed
  ("s", max_length, enum_or_None, format)   format: None, "date-time" or "uri"
  ("i",)                                integer (draft-04: no floats, no booleans)
  ("n", multiple_of)                    number; multiple_of 0 means none
  ("b",)                                boolean
  ("a", item_node, min_items)

How a failed rule maps to a CALLERROR code (OCPP-J 1.6 section 4.2.3):
  payload not an object, unknown field ......... FormationViolation
  missing required field, too few array items .. OccurenceConstraintViolation
  wrong JSON type ............................... TypeConstraintViolation
  enum, maxLength, multipleOf, date-time, uri ... PropertyConstraintViolation

Two walkers share these rules. The fast one is compiled once per spec (on first
use) into a small tree of closures that only answers valid / not valid, with no
field paths and no messages; object fields that need a single test (a type,
a maxLength, an enum) are checked inline, without a call each. Only when it
says "not valid" (or trips over a value, e.g. an unhashable one) does _check,
the reference walker, go over the payload again to find the first broken rule
and name its path. So a valid payload costs one fast pass, and every Violation
is exactly what _check reports.
"""

from ocpp_core import errors
from ocpp_core.compat import float_repr as _float_repr
from ocpp_core.timestamps import is_rfc3339

_TYPE_WORDS = {"o": "an object", "s": "a string", "i": "an integer", "n": "a number",
               "b": "a boolean", "a": "an array"}


class Violation(Exception):
    def __init__(self, code, path, message):
        super().__init__("%s: %s" % (path or "payload", message))   # MicroPython: no Exception.__init__
        self.code = code
        self.path = path
        self.message = message

    def description(self):
        return "%s: %s" % (self.path or "payload", self.message)


_URI_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
                       "-._~:/?#[]@!$&'()*+,;=%")
_HEX = "0123456789abcdefABCDEF"
_ALPHA = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_SCHEME_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+-.")


def is_uri(text):
    """RFC 3986 absolute URI, checked lightly: a scheme, ':', then only URI
    characters with well-formed %-escapes (enough to refuse a path or garbage)."""
    colon = text.find(":")
    if colon < 1 or text[0] not in _ALPHA:     # sets, not str.isascii: MicroPython has none
        return False
    for c in text[1:colon]:
        if c not in _SCHEME_CHARS:
            return False
    i, n = colon + 1, len(text)
    while i < n:
        c = text[i]
        if c not in _URI_CHARS:
            return False
        if c == "%":
            if i + 2 >= n or text[i + 1] not in _HEX or text[i + 2] not in _HEX:
                return False
            i += 2
        i += 1
    return True


def _join(path, name):
    return path + "." + name if path else name


def _decimal_parts(x):
    """int or float -> (m, e), x == m * 10**e exactly, for the decimal repr(x)
    spells: the shortest that round-trips, i.e. what json.dumps writes."""
    if type(x) is int:
        return x, 0
    mantissa, _, exponent = _float_repr(x).partition("e")   # repr on CPython
    whole, _, fraction = mantissa.partition(".")
    return int(whole + fraction), (int(exponent) if exponent else 0) - len(fraction)


def _is_multiple(value, step):
    # Exact decimal arithmetic on the number as JSON spells it, as the `ocpp`
    # package does with Decimal: 0.3 is a multiple of 0.1 (float division says
    # 2.9999999999999996), 6.300000000001 and 1e-12 are not (a tolerance on the
    # float quotient would let them through).
    try:
        vm, ve = _decimal_parts(value)
        sm, se = _decimal_parts(step)
    except ValueError:  # inf or nan: not a JSON number
        return False
    if ve >= se:
        return vm * 10 ** (ve - se) % sm == 0
    return vm % (sm * 10 ** (se - ve)) == 0


def _check(node, value, path):
    kind = node[0]
    t = type(value)
    if kind == "o":
        if t is not dict:
            if not path:
                raise Violation(errors.FORMATION_VIOLATION, path, "payload must be a JSON object")
            raise Violation(errors.TYPE_CONSTRAINT_VIOLATION, path, "must be an object")
        props = node[1]
        for name in value:
            if name not in props:
                raise Violation(errors.FORMATION_VIOLATION, _join(path, name), "unknown field")
        for name in node[2]:
            if name not in value:
                raise Violation(errors.OCCURENCE_CONSTRAINT_VIOLATION, _join(path, name),
                                "required field missing")
        for name, item in value.items():
            _check(props[name], item, _join(path, name))
    elif kind == "s":
        if t is not str:
            raise Violation(errors.TYPE_CONSTRAINT_VIOLATION, path, "must be a string")
        if node[1] and len(value) > node[1]:
            raise Violation(errors.PROPERTY_CONSTRAINT_VIOLATION, path,
                            "longer than %d characters" % node[1])
        if node[2] is not None and value not in node[2]:
            raise Violation(errors.PROPERTY_CONSTRAINT_VIOLATION, path,
                            "%r is not an allowed value" % (value[:60],))
        fmt = node[3]
        if fmt is not None:
            if fmt == "date-time":
                if not is_rfc3339(value):
                    raise Violation(errors.PROPERTY_CONSTRAINT_VIOLATION, path,
                                    "not an RFC 3339 date-time")
            elif not is_uri(value):
                raise Violation(errors.PROPERTY_CONSTRAINT_VIOLATION, path,
                                "not an absolute URI")
    elif kind == "i":
        if t is not int:
            raise Violation(errors.TYPE_CONSTRAINT_VIOLATION, path, "must be an integer")
    elif kind == "n":
        if t is not int and t is not float:
            raise Violation(errors.TYPE_CONSTRAINT_VIOLATION, path, "must be a number")
        if node[1] and not _is_multiple(value, node[1]):
            raise Violation(errors.PROPERTY_CONSTRAINT_VIOLATION, path,
                            "must be a multiple of %s" % node[1])
    elif kind == "b":
        if t is not bool:
            raise Violation(errors.TYPE_CONSTRAINT_VIOLATION, path, "must be a boolean")
    elif kind == "a":
        if t is not list:
            raise Violation(errors.TYPE_CONSTRAINT_VIOLATION, path, "must be an array")
        if len(value) < node[2]:
            raise Violation(errors.OCCURENCE_CONSTRAINT_VIOLATION, path,
                            "needs at least %d item(s)" % node[2])
        item = node[1]
        for i, v in enumerate(value):
            _check(item, v, "%s[%d]" % (path, i))
    else:  # a catalogue bug, not bad input
        raise ValueError("unknown spec node %r" % (kind,))


# --- the fast walker ------------------------------------------------------------------
#
# A compiled check is a function value -> truthy if valid. On invalid input it
# returns something falsy or raises: either way _check then decides. It must
# never accept what _check refuses.
#
# Inside an object, each field's test is a pair (code, argument), checked inline:
#   _STRING, n        a string of at most n characters (n = _NO_LIMIT: any)
#   _ENUM, values     a string among the frozenset `values`
#   _TYPE, t          exactly of type t (int, bool)
#   _CALL, check      a compiled check: objects, arrays, formats, numbers

_STRING, _ENUM, _TYPE, _CALL = 1, 2, 3, 4
_NO_LIMIT = 1 << 62


def _is_date_time(value):
    return type(value) is str and is_rfc3339(value)


def _is_uri_string(value):
    return type(value) is str and is_uri(value)


def _is_number(value):
    return type(value) is int or type(value) is float


def _number_check(step):
    if not step:
        return _is_number
    sm, se = _decimal_parts(step)
    if se >= 0:
        return lambda value: _is_number(value) and _is_multiple(value, step)
    digits = -se

    def check(value):
        # _is_multiple, with the step's decimal parts worked out once and, for
        # a float with at most `digits` decimals (as JSON usually spells a
        # limit), no exponent arithmetic.
        t = type(value)
        if t is int:
            return value * 10 ** digits % sm == 0
        if t is not float:
            return False
        text = repr(value)
        dot = text.find(".")
        if dot > 0 and "e" not in text and len(text) - dot - 1 <= digits:
            fraction = text[dot + 1:]
            return int(text[:dot] + fraction + "0" * (digits - len(fraction))) % sm == 0
        return _is_multiple(value, step)
    return check


def _test_of(node):
    """The (code, argument) test of a spec node."""
    kind = node[0]
    if kind == "s":
        max_length, enum, fmt = node[1], node[2], node[3]
        if fmt is None:
            if enum is None:
                return _STRING, max_length or _NO_LIMIT
            if not max_length or max(len(e) for e in enum) <= max_length:
                return _ENUM, frozenset(enum)
        elif enum is None and not max_length:
            return _CALL, _is_date_time if fmt == "date-time" else _is_uri_string
        # not in OCPP 1.6 (enum and maxLength, or format and more): the reference
        return _CALL, lambda value: _check(node, value, "") is None
    if kind == "i":
        return _TYPE, int
    if kind == "b":
        return _TYPE, bool
    if kind == "n":
        return _CALL, _number_check(node[1])
    if kind == "o":
        return _CALL, _object_check(node[1], node[2])
    if kind == "a":
        return _CALL, _array_check(node[1], node[2])
    raise ValueError("unknown spec node %r" % (kind,))


def _as_function(test):
    """A (code, argument) test as one function."""
    code, arg = test
    if code == _STRING:
        return lambda value: type(value) is str and len(value) <= arg
    if code == _ENUM:
        return lambda value: type(value) is str and value in arg
    if code == _TYPE:
        return lambda value: type(value) is arg
    return arg


def _object_check(props, required):
    tests = {name: _test_of(node) for name, node in props.items()}
    required = tuple(required)
    if not tests and not required:   # Heartbeat.req, ClearCache.req, ...
        return lambda value: type(value) is dict and not value

    def check(value):
        if type(value) is not dict:
            return False
        for name in required:
            if name not in value:
                return False
        for name, item in value.items():
            code, arg = tests[name]          # KeyError: an unknown field
            if code == _ENUM:
                if type(item) is not str or item not in arg:
                    return False
            elif code == _STRING:
                if type(item) is not str or len(item) > arg:
                    return False
            elif code == _TYPE:
                if type(item) is not arg:
                    return False
            elif not arg(item):
                return False
        return True
    return check


def _array_check(item_node, min_items):
    code, arg = _test_of(item_node)
    if code == _STRING:
        def check(value):
            if type(value) is not list or len(value) < min_items:
                return False
            for item in value:
                if type(item) is not str or len(item) > arg:
                    return False
            return True
        return check
    test = _as_function((code, arg))

    def check(value):
        if type(value) is not list or len(value) < min_items:
            return False
        for item in value:
            if not test(item):
                return False
        return True
    return check


_compiled = {}   # id(spec) -> (spec, check); holding spec keeps its id unique
_MAX_COMPILED = 512   # the catalogue has 56 specs; this only guards against a caller
                      # that builds a new spec for every call


def _fast_check(spec):
    entry = _compiled.get(id(spec))
    if entry is None or entry[0] is not spec:
        if len(_compiled) >= _MAX_COMPILED:
            _compiled.clear()
        try:
            check = _as_function(_test_of(spec))
        except Exception:  # a malformed spec: let _check report it, as before
            check = None
        entry = _compiled[id(spec)] = (spec, check)
    return entry[1]


def validate(spec, payload):
    """Raise Violation for the first rule the payload breaks; return None if valid."""
    entry = _compiled.get(id(spec))
    check = entry[1] if entry is not None and entry[0] is spec else _fast_check(spec)
    if check is not None:
        try:
            if check(payload):
                return None
        except Exception:
            pass
    _check(spec, payload, "")


def first_violation(spec, payload):
    """The first Violation, or None: for callers that prefer a value to an exception."""
    try:
        validate(spec, payload)
    except Violation as v:
        return v
    return None
