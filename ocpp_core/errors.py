"""OCPP-J 1.6 CALLERROR codes (section 4.2.3) and the engine's exception for them."""

NOT_IMPLEMENTED = "NotImplemented"            # action not known
NOT_SUPPORTED = "NotSupported"                # action known, not supported here
INTERNAL_ERROR = "InternalError"              # our own failure while handling
PROTOCOL_ERROR = "ProtocolError"              # payload (or frame) incomplete
SECURITY_ERROR = "SecurityError"
FORMATION_VIOLATION = "FormationViolation"    # syntactically wrong, or not the PDU's shape
PROPERTY_CONSTRAINT_VIOLATION = "PropertyConstraintViolation"  # a field's value is not allowed
OCCURENCE_CONSTRAINT_VIOLATION = "OccurenceConstraintViolation"  # [sic] as spelled in 1.6
TYPE_CONSTRAINT_VIOLATION = "TypeConstraintViolation"  # a field has the wrong JSON type
GENERIC_ERROR = "GenericError"

CALL_ERROR_CODES = (
    NOT_IMPLEMENTED, NOT_SUPPORTED, INTERNAL_ERROR, PROTOCOL_ERROR, SECURITY_ERROR,
    FORMATION_VIOLATION, PROPERTY_CONSTRAINT_VIOLATION, OCCURENCE_CONSTRAINT_VIOLATION,
    TYPE_CONSTRAINT_VIOLATION, GENERIC_ERROR,
)

# Not on the wire: how a call of ours can end without the peer's CALLERROR.
TIMEOUT = "Timeout"
DISCONNECTED = "Disconnected"


class OcppError(Exception):
    """Raised by a handler (or the validator) to answer a CALL with a CALLERROR."""

    def __init__(self, code, description="", details=None):
        super().__init__("%s: %s" % (code, description))   # MicroPython: no Exception.__init__
        self.code = code
        self.description = description
        self.details = details if details is not None else {}
