"""How the security extension (docs/security.md) is wired into the firmware.

The engine's side is ocpp_core/security/, the certificates' cryptography
firmware/certificates.py, profiles on the wire firmware/link.py; this joins them:

- the certificate store: its slow jobs (key, CSR) on a background thread, their
  results back on the main loop as RUN events; the chain the CSMS presented read
  from the link (built after the store, hence the late-bound link);
- the link's TLS context for profiles 2/3 (asked on the link thread);
- the security log and the signed firmware checks behind the engine's services;
- the installer's SecurityProfile as a floor; an upgrade on trial until the new
  profile has connected, persisted (TRIAL_STORE) so that a restart keeps the way
  back (A05.FR.08/09, TC_083); a FALLBACK event puts the key back;
- AuthorizationKey as the link's Basic auth password (TC_073), a new charge point
  certificate in use at once on profile 3 (TC_074);
- SECURITY events from the link's and the devices' threads to the engine.

firmware/main_loop.py builds one SecurityWiring and keeps the SECURITY, FALLBACK
and RUN entries of its event table, which call the on_* methods here.
"""

import logging
import os

from firmware import certificates
from firmware.events import RUN, Event
from firmware.firmware_signature import FirmwareSignatures
from firmware.link import effective_password, profile_context
from firmware.security_log import SecurityLog
from ocpp_core import security

log = logging.getLogger("firmware")

TRIAL_STORE = "security_trial"   # {"previous": profile} while an upgrade has not connected


class SecurityWiring:
    def __init__(self, cfg, events, link):
        """cfg: the station's settings; events: the main loop's queue; link: fn()
        -> the CsmsLink (built after the store, and it needs tls_context)."""
        self.cfg = cfg
        self._link = link
        self.cp = None
        self.store = None
        self.security_log = None
        self.trial_pending = False     # an upgraded profile has not connected yet
        self.certificates = certificates.CertificateStore(
            os.path.join(cfg.data_dir, "certs"), cfg.charge_point_id,
            key_type=getattr(cfg, "csr_key_type", "rsa2048"),
            run=certificates.background(),
            deliver=lambda fn: events.put(Event(RUN, None, fn)),
            tls_chain=lambda: self.link.tls_chain)

    @property
    def link(self):
        return self._link()

    # --- assembly (firmware/main_loop.py, in this order) ----------------------------
    def attach_events(self, cp, store, transfer_worker, image, clock):
        """The security extension's firmware side of its events and signed
        updates: the security log, the signature checks."""
        self.cp = cp
        self.store = store
        self.security_log = SecurityLog(self.cfg.data_dir, secrets=self.link._secrets)
        security.attach(cp, self.security_log,
                        FirmwareSignatures(transfer_worker, self.cfg.data_dir, image,
                                           clock=clock.now))

    def attach_profile(self):
        """The link's credential from AuthorizationKey; with the Security profile
        registered: the certificate store behind it, the installer's profile as a
        floor, the link on the profile in effect."""
        config = self.cp.config
        self.link.set_password(effective_password(self.cfg.password,
                                                  config.get("AuthorizationKey")))
        self.cp.events.listen("config", self._config_changed)
        services = getattr(self.cp, "security", None)
        if services is None or "SecurityProfile" not in config:
            return     # the link stays as before the extension (security_profile None)
        services.attach(self.certificates, has_password=lambda: bool(effective_password(
            self.cfg.password, config.get("AuthorizationKey"))))
        floor = getattr(self.cfg, "security_profile", 0)
        if floor > config.get("SecurityProfile"):
            config.set("SecurityProfile", floor)
        self.link.set_profile(config.get("SecurityProfile"))
        trial = self.store.load(TRIAL_STORE, None)
        if isinstance(trial, dict) and isinstance(trial.get("previous"), int) and \
                trial["previous"] < config.get("SecurityProfile"):
            # restarted (a Reset after the upgrade: TC_083) before the new profile
            # connected: it may still fall back (A05.FR.08)
            self.link.set_profile(trial["previous"])
            self.link.upgrade(config.get("SecurityProfile"))
            self.trial_pending = True
        self.cp.events.listen("client_certificate", self._client_certificate_changed)

    def tls_context(self, profile):
        """Profile 2/3's TLS context (link thread)."""
        return profile_context(self.certificates, profile,
                               system_cas=getattr(self.cfg, "trust_system_cas", False))

    # --- the main loop's events ---------------------------------------------------------
    def on_security_event(self, event):     # from the link or a device thread
        event_type, tech_info = event.value
        self.cp.events.emit("security_event", event_type, tech_info)

    def on_profile_fallback(self, event):
        self._trial_over()
        tried, previous, reason = event.value
        config = self.cp.config
        if "SecurityProfile" in config and previous is not None:
            config.set("SecurityProfile", previous)     # A05.FR.08
        self.cp.events.emit("security_event", "ReconfigurationOfSecurityParameters",
                            ("security profile %s failed to connect; back to %s: %s"
                             % (tried, previous, reason))[:255])

    def on_run(self, event):     # a certificate store job's result, on the main loop
        event.value()

    def link_up(self):
        """Before the engine hears the link is up."""
        if self.trial_pending and self.link.trial is None:
            self._trial_over()           # the new security profile works (A05.FR.09)

    # --- the engine's notifications ---------------------------------------------------
    def _config_changed(self, key, value):
        if key == "AuthorizationKey":
            log.info("AuthorizationKey changed: reconnecting with the new credentials")
            self.link.set_password(value)
            self.link.reconnect()
        elif key == "SecurityProfile":
            current = self.link.security_profile
            if current is None or value > current:     # not the echo of a fall back
                log.info("security profile %s: reconnecting with it", value)
                self._save_trial(current)
                self.link.upgrade(value)
                self.link.reconnect()

    def _client_certificate_changed(self, what):
        # TC_074: the new certificate is used at once where it is the credential.
        if self.link.security_profile == 3:
            log.info("new charge point certificate: reconnecting with it")
            self.link.reconnect()

    # --- the upgrade's trial --------------------------------------------------------------
    def _save_trial(self, previous):
        """Until the new profile has connected, a restart keeps the way back."""
        self.trial_pending = previous is not None
        try:
            if previous is None:
                self.store.delete(TRIAL_STORE)
            else:
                self.store.save(TRIAL_STORE, {"previous": previous})
        except Exception as e:   # a full or read-only data dir: the upgrade still runs
            log.warning("could not store the security profile trial: %s", type(e).__name__)

    def _trial_over(self):
        self.trial_pending = False
        self._save_trial(None)
