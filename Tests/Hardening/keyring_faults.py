#!/usr/bin/env python3
"""Keyring faults through the real binary: the daemon killed mid-session and started again, and
the collection locked mid-session. Run it inside Tests/Hardening/keyring_session.sh:

    Tests/Hardening/keyring_session.sh --no-activation python3 Tests/Hardening/keyring_faults.py
    Tests/Hardening/keyring_session.sh python3 Tests/Hardening/keyring_faults.py   # with D-Bus activation

One syncwizard process (--secret-store keyring) lives through all of it:
  1. stores an Exchange password and a Google client secret (checked with secret-tool);
  2. gnome-keyring-daemon is killed (SIGKILL): the next store, lookup and delete answer
     keyringUnavailable (no activation) or keyringLocked (the bus starts a fresh daemon, which
     opens the stored keyring locked) within seconds, never a hang; the process keeps serving,
     and nothing is half-written (provider settings unchanged, the profile kept);
  3. the daemon is started again with the same password and XDG_DATA_HOME: the stored keyring
     is unlocked again, the earlier secrets are still there, and the same syncwizard process
     stores, finds and deletes secrets again;
  4. the collection is locked over D-Bus: store, clear, lookup and delete answer keyringLocked;
     a restart unlocks it; nothing was lost.
Standard library only. Prints what it observed; exit status 0 when all passed.
"""

import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from protocol_client import Server, binary_path  # noqa: E402

PASSWORD = os.environ.get("SYNCWIZARD_KEYRING_PASSWORD")
ACTIVATION = os.environ.get("SYNCWIZARD_KEYRING_ACTIVATION") == "1"
# The contract: no reachable Secret Service gives keyringUnavailable "within seconds, never a
# hang"; libsecret's own D-Bus timeout is 25 s, syncwizard's is 10 s.
QUICK = 10.0

# True while the stale-SecretService bug (see phase 3) is not fixed; once the same process
# recovers, the run fails until this is set to False.
STALE_SERVICE_IS_KNOWN = False  # fixed: LibsecretStore disconnects and retries once

problems = []
known = []
observed = {"activation": ACTIVATION}


def check(condition, what):
    if not condition:
        problems.append(what)
        print("FAIL: " + what, flush=True)
    return condition


def run(argv, input_text=None, timeout=15):
    return subprocess.run(argv, input=input_text, capture_output=True, text=True, timeout=timeout)


def owner_pid():
    r = run(["dbus-send", "--session", "--print-reply=literal", "--dest=org.freedesktop.DBus", "/org/freedesktop/DBus",
             "org.freedesktop.DBus.GetConnectionUnixProcessID", "string:org.freedesktop.secrets"])
    parts = r.stdout.split()
    return int(parts[-1]) if r.returncode == 0 and parts else None


def name_has_owner():
    r = run(["dbus-send", "--session", "--print-reply=literal", "--dest=org.freedesktop.DBus", "/org/freedesktop/DBus",
             "org.freedesktop.DBus.NameHasOwner", "string:org.freedesktop.secrets"])
    return "true" in r.stdout


def kill_daemon():
    pid = owner_pid()
    if pid is None:
        return None
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while name_has_owner() and time.monotonic() < deadline:
        time.sleep(0.02)
    return pid


def start_daemon():
    """gnome-keyring-daemon --unlock with the same password and XDG_DATA_HOME."""
    if name_has_owner():
        kill_daemon()  # e.g. one the bus activated, holding the keyring locked
    r = run(["gnome-keyring-daemon", "--unlock", "--components=secrets"], input_text=PASSWORD)
    deadline = time.monotonic() + 10
    while owner_pid() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    return r.returncode, owner_pid()


def collection_locked():
    r = run(["dbus-send", "--session", "--print-reply=literal", "--dest=org.freedesktop.secrets",
             "/org/freedesktop/secrets/collection/login", "org.freedesktop.DBus.Properties.Get",
             "string:org.freedesktop.Secret.Collection", "string:Locked"])
    return "true" in r.stdout if r.returncode == 0 else None


def lock_collection():
    r = run(["dbus-send", "--session", "--print-reply", "--dest=org.freedesktop.secrets", "/org/freedesktop/secrets",
             "org.freedesktop.Secret.Service.Lock", "array:objpath:/org/freedesktop/secrets/collection/login"])
    return r.returncode == 0


def lookup(*attributes):
    r = run(["secret-tool", "lookup"] + list(attributes), timeout=30)
    return r.stdout if r.returncode == 0 else None


def kind_of(reply):
    return ((reply.get("error") or {}).get("data") or {}).get("kind")


def timed(server, method, params, timeout=40):
    started = time.monotonic()
    reply, _ = server.call(method, params, timeout=timeout)
    return reply, time.monotonic() - started


def test_result_kind(reply):
    results = (reply.get("result") or {}).get("results") or [{}]
    return ((results[0].get("error") or {}).get("data") or {}).get("kind")


def main():
    if not PASSWORD or owner_pid() is None:
        print("keyring_faults.py: run me inside Tests/Hardening/keyring_session.sh", file=sys.stderr)
        return 2
    pw1, cs1, cs2, cs3 = ("canary-pw-%d" % os.getpid(), "canary-cs1-%d" % os.getpid(),
                          "canary-cs2-%d" % os.getpid(), "canary-cs3-%d" % os.getpid())
    # EWS is routed to a closed port: a connection test that got past the keyring lookup ends in
    # hostUnreachable, one that did not ends in a keyring kind.
    server = Server(args=["--log-level", "debug", "--connect-to", "mail.contoso.invalid:443:127.0.0.1:9"],
                    secret_store="keyring", binary=binary_path())
    profile = server.call("createProfile", {"name": "Keyring faults"})[0]["result"]["id"]
    server.call("selectCalendarSystem", {"profileId": profile, "system": "exchange"})
    r, _ = server.call("submitExchangeCredentials", {"profileId": profile, "userName": "alice", "domain": "CONTOSO",
                                                     "email": "alice@contoso.invalid", "password": pw1, "autodiscover": False})
    check("result" in r, "storing the Exchange password: %s" % r)
    server.call("overrideEndpoints", {"profileId": profile, "ewsUrl": "https://mail.contoso.invalid/EWS/Exchange.asmx"})
    r, _ = server.call("setProviderSettings", {"system": "google", "clientId": "g-1", "clientSecret": cs1})
    check((r.get("result") or {}).get("hasClientSecret") is True, "storing the client secret: %s" % r)
    check(lookup("profile", "google", "system", "provider", "kind", "clientSecret") == cs1, "secret-tool finds the client secret")
    check(lookup("profile", profile, "system", "exchange", "kind", "password") == pw1, "secret-tool finds the password")
    r, _ = server.call("testConnection", {"profileId": profile, "system": "calendar"}, timeout=40)
    check(test_result_kind(r) == "hostUnreachable", "before the kill the test gets past the keyring: %s" % test_result_kind(r))

    # -- 2. the daemon dies -------------------------------------------------------------------
    killed = kill_daemon()
    print("killed gnome-keyring-daemon %s (SIGKILL)" % killed, flush=True)
    expected = {"keyringLocked", "keyringUnavailable"} if ACTIVATION else {"keyringUnavailable"}
    r, seconds = timed(server, "setProviderSettings", {"system": "google", "clientId": "g-2", "clientSecret": cs2})
    observed["storeAfterKill"] = {"kind": kind_of(r), "seconds": round(seconds, 2)}
    check(kind_of(r) in expected and seconds < QUICK, "store after the kill: %s in %.2f s (expected %s within %s s)" % (
        kind_of(r), seconds, expected, QUICK))
    r, seconds = timed(server, "testConnection", {"profileId": profile, "system": "calendar"})
    observed["lookupAfterKill"] = {"kind": test_result_kind(r), "seconds": round(seconds, 2)}
    check(test_result_kind(r) in expected and seconds < QUICK, "lookup after the kill: %s in %.2f s" % (test_result_kind(r), seconds))
    r, seconds = timed(server, "deleteProfile", {"profileId": profile})
    observed["deleteAfterKill"] = {"kind": kind_of(r), "seconds": round(seconds, 2)}
    check(kind_of(r) in expected and seconds < QUICK, "delete after the kill: %s in %.2f s" % (kind_of(r), seconds))
    observed["activatedDaemon"] = name_has_owner()
    # Still serving, nothing half-written.
    r, seconds = timed(server, "ping", None)
    check(r.get("result") == {} and seconds < 1, "ping while the keyring is gone")
    r, _ = server.call("getProfile", {"profileId": profile})
    check("result" in r, "the profile is kept when its secrets cannot be removed: %s" % r)
    r, _ = server.call("getProviderSettings", {"system": "google"})
    providers = (r.get("result") or {}).get("providers") or []
    check(providers and providers[0].get("clientId") == "g-1",
          "a failed store leaves the provider settings as they were: %s" % providers)

    # -- 3. the daemon comes back ---------------------------------------------------------------
    status, pid = start_daemon()
    observed["restart"] = {"status": status, "pid": pid, "locked": collection_locked()}
    print("restarted gnome-keyring-daemon: %s" % observed["restart"], flush=True)
    check(pid is not None, "the daemon is back on the bus")
    check(collection_locked() is False, "the restarted daemon unlocked the stored keyring with the same password")
    check(lookup("profile", "google", "system", "provider", "kind", "clientSecret") == cs1, "the earlier client secret survived")
    check(lookup("profile", profile, "system", "exchange", "kind", "password") == pw1, "the earlier password survived")
    # The same syncwizard process should use the new daemon. KNOWN FAILURE (bug reported):
    # libsecret keeps its default SecretService (and its session) from the first call; after the
    # daemon restarts every call fails with "The name :1.x was not provided by any .service
    # files" / "The session wrapping the secret does not exist" until syncwizard restarts.
    # secret_service_disconnect() (then one retry) drops the stale proxy; checked with a
    # 20-line C program against libsecret 0.20.5.
    r, seconds = timed(server, "setProviderSettings", {"system": "google", "clientId": "g-2", "clientSecret": cs2})
    observed["sameProcessAfterRestart"] = {"kind": kind_of(r) or "ok", "seconds": round(seconds, 2),
                                           "message": (r.get("error") or {}).get("message")}
    active = server
    if "result" in r:
        if STALE_SERVICE_IS_KNOWN:
            check(False, "the same process stores again after the daemon restart: remove STALE_SERVICE_IS_KNOWN")
    else:
        if STALE_SERVICE_IS_KNOWN:
            known.append("the same syncwizard process cannot use the restarted daemon (stale libsecret SecretService): %s"
                         % (r.get("error") or {}).get("message"))
        else:
            check(False, "the same syncwizard process stores again after the restart: %s" % r)
        # Go on with a new process on the same config directory.
        active = Server(args=["--log-level", "debug", "--connect-to", "mail.contoso.invalid:443:127.0.0.1:9"],
                        secret_store="keyring", binary=binary_path(), config_dir=server.config_dir)
        r, _ = active.call("setProviderSettings", {"system": "google", "clientId": "g-2", "clientSecret": cs2})
        check("result" in r, "a new syncwizard process stores after the restart: %s" % r)
    check(lookup("profile", "google", "system", "provider", "kind", "clientSecret") == cs2, "the new client secret is stored")
    r, _ = active.call("testConnection", {"profileId": profile, "system": "calendar"}, timeout=40)
    observed["lookupAfterRestart"] = test_result_kind(r)
    check(test_result_kind(r) == "hostUnreachable", "the password is found again after the restart: %s" % test_result_kind(r))
    server_after = active

    # -- 4. the collection is locked mid-session ---------------------------------------------------
    check(lock_collection(), "locking the login collection over D-Bus")
    check(collection_locked() is True, "the collection reports Locked")
    locked = {}
    r, locked["store"] = timed(server_after, "setProviderSettings", {"system": "google", "clientId": "g-3", "clientSecret": cs3})
    check(kind_of(r) == "keyringLocked", "store into a locked collection: %s" % kind_of(r))
    r, locked["clear"] = timed(server_after, "setProviderSettings", {"system": "google", "clientId": "g-3", "clientSecret": ""})
    check(kind_of(r) == "keyringLocked", "clear (clientSecret \"\") in a locked collection: %s" % kind_of(r))
    r, locked["lookup"] = timed(server_after, "testConnection", {"profileId": profile, "system": "calendar"})
    check(test_result_kind(r) == "keyringLocked", "lookup in a locked collection is keyringLocked, not a missing secret: %s" % test_result_kind(r))
    r, locked["storePassword"] = timed(server_after, "submitExchangeCredentials", {
        "profileId": profile, "userName": "alice", "domain": "CONTOSO", "email": "alice@contoso.invalid",
        "password": pw1 + "-new", "autodiscover": False})
    check(kind_of(r) == "keyringLocked", "storing a password in a locked collection: %s" % kind_of(r))
    r, locked["signOut"] = timed(server_after, "signOut", {"profileId": profile, "system": "exchange"})
    check(kind_of(r) == "keyringLocked", "signOut in a locked collection: %s" % kind_of(r))
    r, locked["delete"] = timed(server_after, "deleteProfile", {"profileId": profile})
    check(kind_of(r) == "keyringLocked", "deleteProfile in a locked collection: %s" % kind_of(r))
    r, _ = server_after.call("getProfile", {"profileId": profile})
    check("result" in r and r["result"]["calendar"]["exchange"]["hasPassword"] is True,
          "the profile and its hasPassword flag are kept while locked")
    observed["lockedSeconds"] = {k: round(v, 2) for k, v in locked.items()}
    check(all(v < QUICK for v in locked.values()), "every locked answer came quickly: %s" % observed["lockedSeconds"])

    # Unlock by restarting with the password: nothing was lost, everything works again.
    start_daemon()
    if active is not server:
        # The stale-SecretService bug again (this restart replaced the daemon once more).
        server_last = Server(args=["--log-level", "debug"], secret_store="keyring", binary=binary_path(),
                             config_dir=server.config_dir)
    else:
        server_last = server_after
    check(collection_locked() is False, "unlocked again after a restart")
    check(lookup("profile", "google", "system", "provider", "kind", "clientSecret") == cs2, "client secret intact after the lock")
    check(lookup("profile", profile, "system", "exchange", "kind", "password") == pw1, "password intact after the lock")
    r, _ = server_last.call("deleteProfile", {"profileId": profile})
    check(r.get("result") == {"deleted": True}, "deleteProfile after recovery: %s" % r)
    check(lookup("profile", profile, "system", "exchange", "kind", "password") is None, "deleteProfile removed the password")
    r, _ = server_last.call("setProviderSettings", {"system": "google", "clientId": "g-4", "clientSecret": ""})
    check((r.get("result") or {}).get("hasClientSecret") is False, "clearing the client secret after recovery: %s" % r)

    for s in {server, server_after, server_last}:
        s.close_input()
        status = s.wait(20)
        check(status == 0, "exit status %s at end of input" % status)
        check(not s.violations, "stdout is protocol only: %s" % s.violations)
        everything = s.stdout_text() + s.stderr_text()
        for canary in (pw1, cs1, cs2, cs3):
            check(canary not in everything, "a secret appeared on stdout or stderr")

    print("observed: " + json.dumps(observed), flush=True)
    for k in known:
        print("KNOWN FAILURE: " + k)
    if problems:
        print("%d PROBLEMS" % len(problems))
        return 1
    print("all passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
