"""Start the release the releases directory says (firmware/releases.py).

`python -m firmware` calls enter() once its configuration is read (and its
maintenance socket shows no other firmware on the data dir): when
releases/current is not the code running now, the process re-executes itself
(os.execve, same PID, same arguments) into it:

    python <this file> ARGS...      PI_OCPP_RELEASE = the release's folder

Run as a file, this module (standard library only) puts the release's folder
first on sys.path (ahead of the venv's installed or editable copy) and runs its
`firmware` package as __main__. The working directory is kept, so relative
paths in ARGS (--data-dir, --config) still mean the same; a later restart
(`python -m firmware` again, firmware/cli.py) decides again from there.

A release on trial whose start raises is rolled back here, by the code that
was known to work, and the old release started instead; a crash this cannot catch (kill, power cut) is counted by the next
start's decision (a second unconfirmed start is a rollback).

PI_OCPP_RELEASE tells the started release that the decision is made (its trial
start counted): it does not decide again, so no exec loop. enter() removes it
from the environment, so that a later restart (Reset, activation) decides anew.
"""

import os
import runpy
import sys
import threading
import traceback

if __package__:
    from firmware import releases
else:       # run as a file: firmware/ is sys.path[0], the package not importable yet
    import releases

MARK_ENV = "PI_OCPP_RELEASE"
CHECKOUT_ENV = "PI_OCPP_CHECKOUT"   # where to go back to when no release is left


def _exec(target, argv, log=None):
    """Replace this process with the firmware of the folder target, started by
    this file (the code that decided), or the target's own when this file is
    gone (a rolled back release removed)."""
    launcher = os.path.abspath(__file__)
    if not os.path.isfile(launcher):
        launcher = os.path.join(target, "firmware", "launcher.py")
    env = dict(os.environ)
    env[MARK_ENV] = target
    if CHECKOUT_ENV not in env and releases.running_version() is None:
        env[CHECKOUT_ENV] = releases.code_root()    # started from a checkout: remember it
    sys.stdout.flush()
    sys.stderr.flush()
    if log is not None:
        import logging
        logging.shutdown()
    os.execve(sys.executable, [sys.executable, launcher] + list(argv), env)


def enter(root, argv, log, before_exec=None):
    """Run the release the decision picks: returns here when it is this code
    (with what happened: None, "trial" or a rollback line), else execs."""
    marked = os.environ.pop(MARK_ENV, None)
    here = os.path.realpath(releases.code_root())
    running = releases.running_version()    # before a rollback may remove its folder
    store = releases.Releases(root)
    if marked is not None:      # the process that exec'd this one decided
        if os.path.realpath(marked) != here:
            log.error("asked to run %s but the code loaded is %s (sys.path): running it",
                      marked, here)
        else:
            _prune(store, log)
        return None
    try:
        version, event = store.decide()
    except OSError as e:
        log.error("releases directory %s unusable (%s): running %s", root, e, here)
        return None
    if event:
        log.warning("firmware releases: %s", event)
    if version is None:
        checkout = os.environ.get(CHECKOUT_ENV)
        if running is not None and checkout and os.path.realpath(checkout) != here:
            log.info("no release installed: starting the checkout %s", checkout)
            if before_exec is not None:
                before_exec()
            _exec(checkout, argv, log)
        target = here
    else:
        target = os.path.realpath(store.path(version))
    if target != here:
        log.info("starting release %s (%s)", version, target)
        if before_exec is not None:
            before_exec()
        _exec(target, argv, log)
    _prune(store, log)
    return event


def _prune(store, log):
    """Remove releases neither current nor previous (a rolled back one): only
    from the code that runs now, which is one of those (or the checkout)."""
    try:
        if os.path.isdir(store.root):
            store.prune()
    except OSError as e:
        log.warning("old releases not removed: %s", e)


class TrialWatch:
    """A release on trial: confirmed at its first BootNotification Accepted,
    restarted (kind "firmware", the next start rolls back) when that has not
    happened within `seconds` (monotonic: the Pi's clock may jump at boot)."""

    def __init__(self, root, version, seconds, restart, log):
        self.releases = releases.Releases(root)
        self.version = version
        self.log = log
        self.restart = restart
        self.done = False
        self.timer = threading.Timer(seconds, self._expired)
        self.timer.daemon = True
        self.seconds = seconds

    def start(self):
        self.log.warning("release %s on trial: it must reach BootNotification Accepted "
                         "within %d s", self.version, self.seconds)
        self.timer.start()

    def registration(self, status):
        """From the main loop after every batch of events (its thread)."""
        if self.done or status != "Accepted":
            return
        self.done = True
        self.timer.cancel()
        try:
            if self.releases.confirm(self.version):
                self.log.info("release %s confirmed (BootNotification Accepted)", self.version)
        except OSError as e:
            self.log.error("release %s not confirmed: %s", self.version, e)

    def _expired(self):
        if not self.done:
            self.done = True
            self.log.error("release %s did not reach BootNotification Accepted within %d s: "
                           "restarting to roll back", self.version, self.seconds)
            self.restart("firmware")

    def stop(self):
        self.timer.cancel()


def watch_trial(root, seconds, restart, log):
    """A TrialWatch when the running release is on trial, else None."""
    version = releases.running_version()
    if version is None:
        return None
    try:
        if not releases.Releases(root).on_trial(version):
            return None
    except OSError:
        return None
    watch = TrialWatch(root, version, seconds, restart, log)
    watch.start()
    return watch


def _bootstrap(argv):
    """Run as a file: start the release PI_OCPP_RELEASE names; roll it back
    if it is on trial and its start raises."""
    target = os.environ[MARK_ENV]
    sys.path[0] = target            # the release's packages before the venv's
    try:
        runpy.run_module("firmware", run_name="__main__", alter_sys=True)
    except SystemExit:
        raise
    except Exception:
        traceback.print_exc()
        version = releases.release_version(target)
        store = releases.Releases(os.path.dirname(target))
        if version is None or not store.on_trial(version):
            raise
        back = store.rollback()
        print("firmware: release %s failed to start; rolled back to %s"
              % (version, back or "the checkout"), file=sys.stderr)
        os.environ.pop(MARK_ENV, None)
        if back is not None:
            _exec(os.path.realpath(store.path(back)), argv)
        checkout = os.environ.get(CHECKOUT_ENV)
        if checkout:
            _exec(checkout, argv)
        raise


if __name__ == "__main__":
    _bootstrap(sys.argv[1:])
