"""The OCPP 1.6 Security extension (OCA whitepaper "Improved security for
OCPP 1.6-J"), profile name "Security". Not yet in ocpp_core/profiles.py: the
lead registers it once the extension is complete.

- get_log.py: GetLog and LogStatusNotification (LogUploads, cp.log_uploads).
"""

from ocpp_core.security.get_log import GetLog

NAME = "Security"


def operations(cp):
    return [GetLog(cp)]
