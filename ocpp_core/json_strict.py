"""A strict JSON scanner in plain Python, for ports without json.JSONDecoder
(MicroPython). ocpp_core.framing uses it only there; CPython keeps _json.

scan_once(text, index) -> (value, end) like the scanner of json.JSONDecoder with
framing's settings: RFC 8259 only (no trailing commas, no NaN/Infinity, no
numbers out of float range, no control characters in strings, no lone
surrogates), StopIteration when nothing at `index` starts a value, ValueError
for bad JSON, RuntimeError when arrays/objects nest deeper than MAX_DEPTH (no
recursion: the parser keeps its own stack, so a small C stack cannot overflow).
"""

MAX_DEPTH = 100          # an OCPP 1.6 payload nests 6 levels at most

_WS = " \t\n\r"
_DIGITS = "0123456789"
_HEX = "0123456789abcdefABCDEF"
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n",
            "r": "\r", "t": "\t"}


def _ws(s, i, n):
    while i < n and s[i] in _WS:
        i += 1
    return i


def _hex4(s, i):
    h = s[i:i + 4]
    if len(h) != 4:
        raise ValueError("bad \\u escape")
    for c in h:
        if c not in _HEX:
            raise ValueError("bad \\u escape")
    return int(h, 16)


def _string(s, i):
    """s[i-1] is the opening quote -> (str, index after the closing quote)."""
    chunks = None
    while True:
        q = s.find('"', i)
        if q < 0:
            raise ValueError("unterminated string")
        b = s.find("\\", i, q)
        end = q if b < 0 else b
        chunk = s[i:end]
        if chunk and min(chunk) < " ":
            raise ValueError("control character in string")
        if b < 0:
            if chunks is None:
                return chunk, q + 1
            chunks.append(chunk)
            return "".join(chunks), q + 1
        if chunks is None:
            chunks = []
        chunks.append(chunk)
        e = s[b + 1:b + 2]
        if e == "u":
            code = _hex4(s, b + 2)
            i = b + 6
            if 0xD800 <= code < 0xDC00 and s[i:i + 2] == "\\u":
                low = _hex4(s, i + 2)
                if 0xDC00 <= low < 0xE000:
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                    i += 6
            if 0xD800 <= code < 0xE000:
                raise ValueError("lone surrogate")   # not representable in UTF-8
            chunks.append(chr(code))
        else:
            r = _ESCAPES.get(e)
            if r is None:
                raise ValueError("bad escape")
            chunks.append(r)
            i = b + 2


def _number(s, i, n):
    j = i
    if s[j] == "-":
        j += 1
    if j < n and s[j] == "0":
        j += 1
    elif j < n and s[j] in _DIGITS:
        j += 1
        while j < n and s[j] in _DIGITS:
            j += 1
    else:
        raise ValueError("bad number")
    is_float = False
    if j < n and s[j] == ".":
        j += 1
        if j >= n or s[j] not in _DIGITS:
            raise ValueError("bad number")
        while j < n and s[j] in _DIGITS:
            j += 1
        is_float = True
    if j < n and s[j] in "eE":
        j += 1
        if j < n and s[j] in "+-":
            j += 1
        if j >= n or s[j] not in _DIGITS:
            raise ValueError("bad number")
        while j < n and s[j] in _DIGITS:
            j += 1
        is_float = True
    text = s[i:j]
    if not is_float:
        return int(text), j
    value = float(text)
    if value - value != 0:       # inf (or nan)
        raise ValueError("%s is out of range" % text)
    return value, j


def _key(s, i, n):
    """At the first character of an object key -> (key, index of the value)."""
    if s[i:i + 1] != '"':
        raise ValueError("expecting a property name")
    key, i = _string(s, i + 1)
    i = _ws(s, i, n)
    if s[i:i + 1] != ":":
        raise ValueError("expecting ':'")
    return key, _ws(s, i + 1, n)


def scan_once(s, idx):
    n = len(s)
    stack = []      # open containers, innermost last
    keys = []       # the key being filled in each (None for an array)
    i = idx
    while True:
        # --- one value at i ------------------------------------------------------------
        c = s[i] if i < n else ""
        if c == '"':
            value, i = _string(s, i + 1)
        elif c == "{" or c == "[":
            if len(stack) >= MAX_DEPTH:      # this one would be one level too deep
                raise RuntimeError("JSON nested deeper than %d" % MAX_DEPTH)
            j = _ws(s, i + 1, n)
            close = "}" if c == "{" else "]"
            if s[j:j + 1] == close:
                value, i = ({} if c == "{" else []), j + 1
            else:
                if c == "{":
                    key, i = _key(s, j, n)
                    stack.append({})
                    keys.append(key)
                else:
                    stack.append([])
                    keys.append(None)
                    i = j
                continue
        elif c == "n" and s[i:i + 4] == "null":
            value, i = None, i + 4
        elif c == "t" and s[i:i + 4] == "true":
            value, i = True, i + 4
        elif c == "f" and s[i:i + 5] == "false":
            value, i = False, i + 5
        elif c and c in "-0123456789":
            value, i = _number(s, i, n)
        elif not stack:
            raise StopIteration(i)
        else:
            raise ValueError("expecting a value")
        # --- put it in its container; close the containers that end here ----------------
        while True:
            if not stack:
                return value, i
            top = stack[-1]
            i = _ws(s, i, n)
            c = s[i:i + 1]
            if type(top) is list:
                top.append(value)
                if c == ",":
                    i = _ws(s, i + 1, n)
                    break
                if c != "]":
                    raise ValueError("expecting ',' or ']'")
            else:
                top[keys[-1]] = value
                if c == ",":
                    keys[-1], i = _key(s, _ws(s, i + 1, n), n)
                    break
                if c != "}":
                    raise ValueError("expecting ',' or '}'")
            stack.pop()
            keys.pop()
            value = top
            i += 1
