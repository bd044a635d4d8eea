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
"""

from ocpp_core import errors
from ocpp_core.timestamps import is_rfc3339

_TYPE_WORDS = {"o": "an object", "s": "a string", "i": "an integer", "n": "a number",
               "b": "a boolean", "a": "an array"}


class Violation(Exception):
    def __init__(self, code, path, message):
        Exception.__init__(self, "%s: %s" % (path or "payload", message))
        self.code = code
        self.path = path
        self.message = message

    def description(self):
        return "%s: %s" % (self.path or "payload", self.message)


_URI_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
                       "-._~:/?#[]@!$&'()*+,;=%")
_HEX = "0123456789abcdefABCDEF"


def is_uri(text):
    """RFC 3986 absolute URI, checked lightly: a scheme, ':', then only URI
    characters with well-formed %-escapes (enough to refuse a path or garbage)."""
    colon = text.find(":")
    if colon < 1 or not text[0].isalpha() or not text[0].isascii():
        return False
    for c in text[1:colon]:
        if not (c.isascii() and (c.isalnum() or c in "+-.")):
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
    mantissa, _, exponent = repr(x).partition("e")
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


def validate(spec, payload):
    """Raise Violation for the first rule the payload breaks; return None if valid."""
    _check(spec, payload, "")


def first_violation(spec, payload):
    """The first Violation, or None: for callers that prefer a value to an exception."""
    try:
        _check(spec, payload, "")
    except Violation as v:
        return v
    return None
