"""Keep secrets out of logs and traces.

The only secret an OCPP 1.6 frame carries is the AuthorizationKey (the basic-auth
password) in ChangeConfiguration/GetConfiguration; its value is masked wherever
the key's name appears in a frame.
"""

import re

SECRET_KEYS = ("AuthorizationKey",)
MASK = "***"
_VALUE = re.compile(r'("value"\s*:\s*)"(?:[^"\\]|\\.)*"')


def redact_frame(text):
    folded = text.lower()  # configuration keys are CiString50Type: case-insensitive
    for key in SECRET_KEYS:
        if key.lower() in folded:
            return _VALUE.sub(r'\1"' + MASK + '"', text)
    return text
