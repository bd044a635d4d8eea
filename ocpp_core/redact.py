"""Keep secrets out of logs, traces and the technician's output.

Three jobs, one rule each (the firmware and tools.diag both call them):

    redact_frame(text)               an OCPP frame without the AuthorizationKey's value
    mask_url_userinfo(text)          every URL in text without its user information
    mask_secrets(text, secrets)      text without any of the given secret strings

The only secret an OCPP 1.6 frame carries is the AuthorizationKey (the basic-auth
password) in ChangeConfiguration/GetConfiguration; its value is masked wherever
the key's name appears in a frame.

Every `"value": "<string>"` member of such a frame is masked. A hand-written
scan, not `re`: that module alone costs about 1 MiB of resident memory. It
matches what the regular expression ("value"\\s*:\\s*)"(?:[^"\\\\]|\\\\.)*" would:
Unicode whitespace around the colon, and in the string any character but '"'
and '\\', or '\\' followed by any character but a newline.
"""

SECRET_KEYS = ("AuthorizationKey",)
MASK = "***"
_NAME = '"value"'


def _masked_end(text, start):
    """If a '"value": "..."' member starts at `start` (at its name), return
    (index of the string's opening quote, index just past its closing quote);
    else None."""
    n = len(text)
    i = start + len(_NAME)
    while i < n and text[i].isspace():
        i += 1
    if i >= n or text[i] != ":":
        return None
    i += 1
    while i < n and text[i].isspace():
        i += 1
    if i >= n or text[i] != '"':
        return None
    quote = i
    i += 1
    while i < n:
        c = text[i]
        if c == '"':
            return quote, i + 1
        if c == "\\":
            if i + 1 >= n or text[i + 1] == "\n":
                return None
            i += 2
        else:
            i += 1
    return None


def _mask_decoded(node, found):
    """Mask every "value" member of a decoded frame; found[0] is set when a
    secret key's name appears in it (in any capitalisation)."""
    if isinstance(node, dict):
        return dict((k, MASK if k == "value" and isinstance(v, str) else _mask_decoded(v, found))
                    for k, v in node.items())
    if isinstance(node, list):
        return [_mask_decoded(v, found) for v in node]
    if isinstance(node, str) and node.lower() in _FOLDED_KEYS:
        found[0] = True
    return node


_FOLDED_KEYS = tuple(k.lower() for k in SECRET_KEYS)


def _redact_escaped(text):
    """A frame with backslash-u escapes may spell the key (or "value") in disguise:
    decide on the decoded frame. An unreadable one is not shown at all."""
    from ocpp_core.framing import dumps, loads
    try:
        decoded = loads(text)
    except Exception:
        return "<a frame with escapes that could not be read; not shown>"
    found = [False]
    masked = _mask_decoded(decoded, found)
    return dumps(masked) if found[0] else text


_KEY_BEGIN = "-----BEGIN "
_KEY_MARK = "PRIVATE KEY-----"
_KEY_END = "-----END "
KEY_MASK = "<private key not shown>"


def _key_end(text, mark):
    """Index just past the "-----END ... PRIVATE KEY-----" line closing the key
    block whose BEGIN line ends at `mark`; len(text) when none does."""
    end = text.find(_KEY_END, mark)
    while end >= 0:
        label = end + len(_KEY_END)
        close = text.find("-----", label)
        if close < 0:
            break
        if text[label:close + 5].endswith(_KEY_MARK):
            return close + 5
        end = text.find(_KEY_END, label)
    return len(text)


def mask_private_keys(text, mask=KEY_MASK):
    """text with every PEM private key block ("-----BEGIN ... PRIVATE KEY-----"
    to its "-----END ... PRIVATE KEY-----" line) replaced by mask. No OCPP message
    carries one (the whitepaper's A02.FR.05 keeps keys on the station); this is
    the net under it, for frames, log lines, tool output and diagnostics bundles
    alike. An unterminated block is masked to the end of the text."""
    if not isinstance(text, str) or _KEY_MARK not in text:
        return text
    out = []
    done = 0
    mark = text.find(_KEY_MARK)
    while mark >= 0:
        begin = text.rfind(_KEY_BEGIN, done, mark)
        if begin < 0 or "-----" in text[begin + len(_KEY_BEGIN):mark]:
            mark = text.find(_KEY_MARK, mark + 1)
            continue
        out.append(text[done:begin])
        out.append(mask)
        done = _key_end(text, mark + len(_KEY_MARK))
        mark = text.find(_KEY_MARK, done)
    out.append(text[done:])
    return "".join(out)


def redact_frame(text):
    if _KEY_MARK in text:
        text = mask_private_keys(text)
    if "\\u" in text:
        return _redact_escaped(text)
    folded = text.lower()  # configuration keys are CiString50Type: case-insensitive
    for key in _FOLDED_KEYS:
        if key in folded:
            break
    else:
        return text
    out = []
    done = 0    # text[:done] is in `out`
    pos = text.find(_NAME)
    while pos >= 0:
        found = _masked_end(text, pos)
        if found is None:
            pos = text.find(_NAME, pos + 1)
            continue
        quote, end = found
        out.append(text[done:quote])
        out.append('"' + MASK + '"')
        done = end
        pos = text.find(_NAME, end)
    if not out:
        return text
    out.append(text[done:])
    return "".join(out)


# --- free text: URLs and known secrets --------------------------------------------------

SHORTEST_SECRET = 4     # a shorter one cannot be told from ordinary text


def mask_url_userinfo(text, mask=MASK):
    """text with the user information (user:password@) of every URL in it
    replaced by mask: "wss://cp:pw@host/ocpp" -> "wss://***@host/ocpp". A URL's
    authority runs from "://" to the next "/" or white space; everything up to
    its last "@" is masked, whatever characters it holds."""
    if not isinstance(text, str) or "@" not in text:
        return text
    out = []
    done = 0    # text[:done] is in `out`
    start = text.find("://")
    while start >= 0:
        begin = start + 3
        end = begin
        while end < len(text) and text[end] != "/" and not text[end].isspace():
            end += 1
        at = text.rfind("@", begin, end)
        if at >= 0:
            out.append(text[done:begin])
            out.append(mask)
            done = at
        start = text.find("://", end)
    out.append(text[done:])
    return "".join(out)


def mask_secrets(text, secrets, mask=MASK, shortest=SHORTEST_SECRET):
    """text with every secret of at least `shortest` characters replaced by
    mask; the longest first, so that a secret holding another is masked whole."""
    text = str(text)
    for secret in sorted(set(s for s in secrets if s), key=len, reverse=True):
        if len(secret) >= shortest:
            text = text.replace(secret, mask)
    return text
