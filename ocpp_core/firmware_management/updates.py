"""UpdateFirmware and its FirmwareStatusNotifications (OCPP 1.6 Edition 2,
sections 4.5 and 5.19, the UpdateFirmware.req fields and the FirmwareStatus
enumeration): the FirmwareUpdates service (cp.firmware) and the UpdateFirmware
operation.

The engine downloads and installs nothing itself: it asks the firmware through
a TransferInterface (cp.firmware.transfers), whose calls return at once; the
firmware reports back with cp.firmware.transfer_done(op, ok, detail) from the
main loop's thread.

One update at a time, persisted in the store as "firmware_update":
    {"location", "retrieve_date" (epoch s), "attempts", "interval",
     "phase": "waiting" | "downloading" | "downloaded" | "installing" | "activating",
     "since" (epoch s the phase "downloaded" began), "version" (once known)}
written before each step, so a restart resumes it: a waiting update still
waits for its retrieveDate; an interrupted download or check starts again
(Downloading is sent again); "activating" (the firmware restarts into the new
release) is settled after the next BootNotification.

Readings chosen where the specification leaves room:
- UpdateFirmware.req retries, "how many times Charge Point must try to
  download the firmware before giving up": the number of attempts, at least
  one (retries 0 = one attempt); absent ("left to Charge Point"):
  DEFAULT_ATTEMPTS. retryInterval absent: DEFAULT_RETRY_INTERVAL s.
- 5.19 "SHOULD start retrieving the firmware as soon as possible after
  retrieve-date": at the first tick at or after it, once the registration is
  Accepted (4.2: nothing else may be sent before).
- 4.5 / FirmwareStatus: Downloading when the download starts, then Downloaded
  or DownloadFailed; Installing when the installation starts, then Installed
  or InstallationFailed. Idle only in a triggered notification (4.5 "SHALL
  only send the status Idle after receipt of a TriggerMessage ... when it is
  not busy downloading/installing firmware"): the status for a TriggerMessage
  is the last one sent while an update is under way, Idle while none is (also
  while one waits for its retrieveDate, and once one has ended).
- A new UpdateFirmware replaces an update that has not started installing; one
  that arrives while installing is logged and ignored (the .conf is empty:
  there is no way to refuse it).
- 5.19 "RECOMMENDED to wait until Charging Session has ended ... before
  commencing installation" and "to set connectors that are not in use to
  UNAVAILABLE while the Charge Point waits": the installation restarts the
  station, so once downloaded it waits while a transaction runs, every
  connector not in a transaction is Unavailable (and no session starts) from
  Downloaded until the restart, for at most max_wait s
  (MAX_WAIT_FOR_TRANSACTIONS, 24 h); then the transactions are stopped with
  reason Reboot (the installation reboots the station) and it proceeds.
- Installed is sent by the new release, after its BootNotification is
  Accepted and its StatusNotifications, when it runs the version the image
  announced; otherwise (the firmware rolled back, or could not switch)
  InstallationFailed. An image the firmware refuses (corrupt, truncated, other
  architecture) is InstallationFailed after Installing (the check is the first
  step of the installation) and changes nothing.
- A notification made while the link is down is queued by the endpoint like
  any CALL (not journaled: it may be lost with the connection).
- Installed raises the security event FirmwareUpdated (critical, journaled).

A signed update (SignedUpdateFirmware, ocpp_core/security/signed_update.py)
runs the same steps; its dict also holds "signed": {"request_id", "certificate",
"signature", "install_date"}, its statuses go out as
SignedFirmwareStatusNotification with the requestId, and between Downloaded
and the installation the phase "verifying" checks the image's signature
through cp.firmware.signatures (SignatureVerified, or InvalidSignature and the
end of the update).
"""

from ocpp_core.log import get_logger
from ocpp_core.rpc import Reply
from ocpp_core.timestamps import parse_rfc3339

log = get_logger("ocpp.firmware")

STORE_NAME = "firmware_update"
DEFAULT_ATTEMPTS = 3
DEFAULT_RETRY_INTERVAL = 60         # s
MAX_WAIT_FOR_TRANSACTIONS = 24 * 3600.0   # s an installation waits for transactions to end
FAR = 3600.0

DOWNLOADING = "Downloading"
DOWNLOADED = "Downloaded"
DOWNLOAD_FAILED = "DownloadFailed"
INSTALLING = "Installing"
INSTALLED = "Installed"
INSTALLATION_FAILED = "InstallationFailed"
IDLE = "Idle"

# phase -> the status a TriggerMessage reports meanwhile
_TRIGGERED = {"waiting": IDLE, "downloading": DOWNLOADING, "downloaded": DOWNLOADED,
              "installing": INSTALLING, "activating": INSTALLING, "verifying": DOWNLOADED}


class TransferInterface:
    """What the engine asks of the firmware for Firmware Management. Every
    method returns at once; each result comes back through
    cp.firmware.transfer_done(op, ok, detail) on the engine's thread."""

    def download(self, location, attempts, interval):
        """Fetch location (up to `attempts` tries, `interval` s apart) -> op "download"."""
        raise NotImplementedError

    def install(self):
        """Check the downloaded image and stage it -> op "install"; detail on success:
        the image's manifest (a dict with "version")."""
        raise NotImplementedError

    def activate(self, version):
        """Restart into the staged release `version` (may not return); a failure
        -> op "activate" with ok False."""
        raise NotImplementedError


class FirmwareUpdates:
    def __init__(self, cp, transfers=None, max_wait=MAX_WAIT_FOR_TRANSACTIONS):
        self.cp = cp
        self.transfers = None
        self.signatures = None      # a signed update's checks (ocpp_core/security)
        self.max_wait = max_wait
        self.update = None          # the persisted dict above, or None
        self._started = False       # this run has asked the firmware for the current phase
        self._running_version = None    # firmwareVersion of an accepted BootNotification
        self._load()
        if transfers is not None:
            self.attach(transfers)

    def attach(self, transfers):
        """The firmware's TransferInterface. Without one no update can run (the
        engine alone, as in most tests): nothing is ticked, and TriggerMessage
        finds no listener and reports Idle."""
        self.transfers = transfers
        self.cp.events.listen("firmware_status", self.status)

    # --- state ---------------------------------------------------------------------------------
    def _load(self):
        saved = self.cp.store.load(STORE_NAME, None)
        if isinstance(saved, dict) and saved.get("phase") in _TRIGGERED and \
                isinstance(saved.get("location"), str):
            self.update = saved
        elif saved is not None:
            log.warning("firmware update state unreadable; no update pending")
            self._save(None)

    def _save(self, update):
        self.update = update
        try:
            self.cp.store.save(STORE_NAME, update)
        except OSError as e:        # a failing data dir, reported by the store
            log.warning("firmware update state not saved: %s", e)

    def _phase(self, phase, **fields):
        update = dict(self.update)
        update["phase"] = phase
        update.update(fields)
        self._save(update)

    def status(self):
        """What a triggered FirmwareStatusNotification reports now."""
        return IDLE if self.update is None else _TRIGGERED[self.update["phase"]]

    def holds_connectors(self):
        """True from the download's end to the restart into the new release (a
        downloaded update waits there for transactions to end): the connectors
        not in a transaction are Unavailable meanwhile and no session starts.
        The new release, settling its activation, is not held."""
        phase = self.update["phase"] if self.update is not None else None
        signed = self.update.get("signed") if self.update is not None else None
        if phase == "downloaded" and signed and (signed.get("install_date") or 0) > \
                self.cp.clock.now():
            return False            # InstallScheduled: held from its installDateTime on
        return phase in ("downloaded", "installing") or (phase == "activating" and self._started)

    def refusal(self):
        """Why no session may start now, or None."""
        return "a firmware update is being installed" if self.holds_connectors() else None

    # --- UpdateFirmware -------------------------------------------------------------------------
    def installing(self):
        return self.update is not None and self.update["phase"] in ("installing", "activating")

    def request(self, location, retrieve_date, retries=None, retry_interval=None, signed=None):
        if self.installing():
            log.warning("UpdateFirmware ignored: an installation is under way")
            return
        if self.update is not None:
            log.info("UpdateFirmware replaces the pending update")
        self._started = False
        update = {"location": location, "retrieve_date": retrieve_date,
                  "attempts": max(1, DEFAULT_ATTEMPTS if retries is None else retries),
                  "interval": DEFAULT_RETRY_INTERVAL if retry_interval is None
                  else retry_interval,
                  "phase": "waiting"}
        if signed is not None:
            update["signed"] = signed
        self._save(update)
        self.cp.refresh()

    def _notify(self, status, update=None):
        signed = (update or self.update or {}).get("signed")
        log.info("firmware update: %s", status)
        if signed is None:
            self.cp.rpc.call("FirmwareStatusNotification", {"status": status})
        else:
            self.cp.rpc.call("SignedFirmwareStatusNotification",
                             {"status": status, "requestId": signed["request_id"]})

    # --- time ---------------------------------------------------------------------------------
    def tick(self, now):
        """Start what is due; seconds until the next check."""
        u = self.update
        if u is None or self.transfers is None:
            return None
        if not self.cp.online:
            return None     # nothing starts (and no notification goes) before Accepted
        phase = u["phase"]
        if phase == "waiting":
            due = u["retrieve_date"] - self.cp.clock.now()
            if due > 0:
                return min(due, FAR)
            self._start_download()
        elif phase == "downloading" and not self._started:
            self._start_download()          # interrupted by a restart: again from the start
        elif phase == "verifying" and not self._started:
            self._start_verify()            # interrupted by a restart: checked again
        elif phase == "downloaded":
            return self._maybe_install()
        elif phase == "installing" and not self._started:
            self._start_install()
        elif phase == "activating" and not self._started and self._running_version is not None:
            self._settle()              # the restart into the new release (or a rollback)
        else:
            return None
        return 0.0      # something changed after this tick's StatusNotifications: tick again

    def _start_download(self):
        u = self.update
        self._phase("downloading")
        self._started = True
        self._notify(DOWNLOADING)
        self.transfers.download(u["location"], u["attempts"], u["interval"])

    def _start_verify(self):
        self._phase("verifying")
        self._started = True
        signed = self.update["signed"]
        self.signatures.verify(signed["certificate"], signed["signature"])

    def _maybe_install(self):
        signed = self.update.get("signed")
        due = signed.get("install_date") if signed else None
        if due is not None and due > self.cp.clock.now():
            if not signed.get("scheduled"):
                self._phase("downloaded", signed=dict(signed, scheduled=True))
                self._notify("InstallScheduled")
            return min(FAR, due - self.cp.clock.now())
        running = [c for c in self.cp.connectors.values() if c.in_transaction]
        if running:
            waited = self.cp.clock.now() - self.update.get("since", self.cp.clock.now())
            if waited < self.max_wait:
                return min(FAR, self.max_wait - waited)
            log.warning("firmware update: waited %d s for transactions to end; stopping them",
                        waited)
            self.cp.transactions.stop_all("Reboot")
        self._start_install()
        return 0.0

    def _start_install(self):
        self._phase("installing")
        self._started = True
        self._notify(INSTALLING)
        self.cp.refresh()
        self.transfers.install()

    # --- results from the firmware ------------------------------------------------------------
    def transfer_done(self, op, ok, detail):
        u = self.update
        if u is None:
            return
        if op == "download" and u["phase"] == "downloading":
            if ok:
                self._phase("downloaded", since=self.cp.clock.now())
                self._started = False
                self._notify(DOWNLOADED)
                if "signed" in u:
                    self._start_verify()    # the signature first: nothing held for a bad one
                    return
                self.cp.refresh()       # connectors not in a transaction: Unavailable
                self._maybe_install()
            else:
                log.warning("firmware download failed: %s", detail)
                self._end(DOWNLOAD_FAILED)
        elif op == "signature" and u["phase"] == "verifying":
            if ok:
                self._phase("downloaded", since=self.cp.clock.now())
                self._started = False
                self._notify("SignatureVerified")
                self.cp.refresh()
                self._maybe_install()
            else:
                log.warning("firmware signature refused: %s", detail)
                self._end("InvalidSignature")
                self.cp.events.emit("security_event", "InvalidFirmwareSignature", detail)
        elif op == "install" and u["phase"] == "installing":
            if ok:
                version = detail.get("version") if isinstance(detail, dict) else None
                self._phase("activating", version=version)
                self._started = True
                log.info("firmware %s staged; restarting into it", version)
                if "signed" in u:
                    self._notify("InstallRebooting")
                self.transfers.activate(version)
            else:
                log.warning("firmware installation failed: %s", detail)
                self._end(INSTALLATION_FAILED)
        elif op == "activate" and u["phase"] == "activating" and not ok:
            log.warning("firmware activation failed: %s", detail)
            self._end(INSTALLATION_FAILED)

    def boot_accepted(self, running_version):
        """BootNotification Accepted, running running_version: an activation
        is settled at the next tick (after the boot's StatusNotifications)."""
        self._running_version = running_version

    def _settle(self):
        u = self.update
        if self._running_version == u.get("version"):
            self._end(INSTALLED)
            self.cp.events.emit("security_event", "FirmwareUpdated",
                                "firmware %s installed" % self._running_version)
        else:
            log.warning("firmware update: running %s, not %s: installation failed",
                        self._running_version, u.get("version"))
            self._end(INSTALLATION_FAILED)

    def _end(self, status):
        update = self.update
        self._save(None)
        self._started = False
        self._notify(status, update)
        self.cp.refresh()


class UpdateFirmware:
    """UpdateFirmware (5.19): answered at once (the .conf is empty); the
    download waits for retrieveDate."""
    action = "UpdateFirmware"

    def __init__(self, cp):
        self.cp = cp

    def handle(self, payload):
        when = parse_rfc3339(payload["retrieveDate"])
        return Reply({}, then=lambda: self.cp.firmware.request(
            payload["location"], when, payload.get("retries"), payload.get("retryInterval")))
