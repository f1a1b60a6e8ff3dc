#!/usr/bin/env python3
"""Runs every example front end in Examples/ end to end against a real syncwizard and the fakes.

    Tests/Examples/test_examples.py --bin PATH/TO/syncwizard [TEST ...]

shell-*    Examples/shell/connect-exchange.sh, its output checked
python-*   Examples/python/wizard.py in a pseudo-terminal (pexpect): a person's answers typed at
           its prompts, the test's browser (browser.sh) playing the SuperOffice sign-in
emacs      Examples/emacs/syncwizard-example.el in emacs --batch
Each test has a fresh configuration directory; the fakes are started once. Their files are
removed at the end unless SYNCWIZARD_KEEP_TEST_FILES is set. Ends with the line
'N passed, N failed'; exit status 1 when any failed.
"""
import argparse
import os
import pathlib
import re
import shlex
import subprocess
import sys
import tempfile
import time
import traceback

import pexpect

from fakes import EWS, ROOT, Fakes

EXAMPLES = ROOT / "Examples"
BROWSER = ROOT / "Tests" / "Examples" / "browser.sh"


def environment(ctx, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCWIZARD")}
    env.update(SYNCWIZARD=ctx.binary, SYNCWIZARD_CONFIG_DIR=tempfile.mkdtemp(prefix="config-", dir=ctx.fakes.directory))
    env.update(extra)
    return env


def check(output, *patterns):
    for pattern in patterns:
        if not re.search(pattern, output, re.M):
            raise AssertionError(f"output lacks {pattern!r}:\n{output}")


def run(command, env, timeout=120):
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise AssertionError(f"{shlex.join(map(str, command))} exited {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}")
    return done.stdout


# ---- shell ----------------------------------------------------------------------------------------

def shell(ctx, email, **extra):
    env = environment(ctx, EXCHANGE_EMAIL=email, EXCHANGE_USER="alice", EXCHANGE_DOMAIN="CONTOSO",
                      EXCHANGE_PASSWORD="Passw0rd!", **extra)
    return run(["bash", EXAMPLES / "shell" / "connect-exchange.sh", *ctx.fakes.syncwizard_args()], env)


def test_shell_autodiscover(ctx):
    out = shell(ctx, "alice@contoso.test")
    check(out, r"^  \.\.\. ",                       # progress notifications shown
          rf"^found EWS {re.escape(EWS)} \(autodiscover\)$",
          r"^  ok   ewsCalendar: ", r"^  ok   offlineAddressBook: ",
          r"^Not done yet:$", r"^  superOffice: .*\[providerNotConfigured\]$")


def test_shell_override(ctx):
    out = shell(ctx, "alice@branch.contoso.test", EXCHANGE_EWS_URL=EWS)
    check(out, r"^error: ", r"^hint: .*overrideEndpoints", r"^  tried ",
          rf"^using EWS {re.escape(EWS)} \(override\)$", r"^  ok   ewsCalendar: ",
          r"^  superOffice: .*\[providerNotConfigured\]$")


# ---- python -------------------------------------------------------------------------------------

def wizard(ctx, env):
    child = pexpect.spawn(sys.executable, [str(EXAMPLES / "python" / "wizard.py"), *ctx.fakes.syncwizard_args()],
                          env=env, encoding="utf-8", timeout=60, dimensions=(40, 160))
    child.logfile_read = ctx.log
    return child


def answer(child, prompt, text):
    child.expect_exact(prompt)
    child.sendline(text)


def super_office_provider(child):
    child.expect_exact("Next: SuperOffice has no client id yet")
    answer(child, "SuperOffice client id: ", "syncwizard-superoffice")
    answer(child, "SuperOffice client secret (Enter for none): ", "so-application-token")
    answer(child, "SuperOffice environment (sod/stage/online) [online]: ", "")
    child.expect_exact("Next: Sign in with SuperOffice")
    child.expect_exact("Sign in with SuperOffice in your browser:")


def super_office_test(child):
    child.expect_exact("Signed in as admin@contoso.test.")
    child.expect_exact("Testing SuperOffice...")
    child.expect(r"ok   tenantState: .*\n.*ok   currentPrincipal: ")
    answer(child, "Calendar system (exchange/microsoft365/google) [exchange]: ", "")


def calendar_test_and_next(child):
    child.expect_exact("Testing the calendar...")
    child.expect_exact("ok   ewsCalendar: ")
    child.expect_exact("Both systems are connected. Next step: selectUsers")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, f"wizard exited {child.exitstatus}"


def test_python_pasted_sign_in_and_autodiscover(ctx):
    """SuperOffice: the browser 'runs elsewhere', the address it landed on is pasted
    (completeSignIn). Exchange: a wrong password first (error and hint shown), then Autodiscover."""
    landed = ctx.fakes.directory / "landed"
    env = environment(ctx, SYNCWIZARD_BROWSER=f"bash {BROWSER}", **ctx.fakes.browser_env("landing", landed))
    child = wizard(ctx, env)
    answer(child, "Name of the new profile [Head office]: ", "Head office")
    super_office_provider(child)
    child.expect_exact("Address (or just wait): ")
    deadline = time.monotonic() + 30
    while not landed.exists():
        assert time.monotonic() < deadline, "the test browser wrote no address"
        time.sleep(0.1)
    assert landed.read_text().startswith("http://127.0.0.1:"), landed.read_text()
    child.sendline(landed.read_text())
    super_office_test(child)
    answer(child, "E-mail address: ", "alice@contoso.test")
    answer(child, "User name (as in Outlook on the web, without DOMAIN\\): ", "alice")
    answer(child, "Windows domain (Enter for none): ", "CONTOSO")
    answer(child, "Password: ", "wrong password")
    child.expect_exact("Looking for your Exchange server (Autodiscover)...")
    child.expect(r"  ! .*\r\n    Hint: .*domain")                     # invalidCredentials, message + hint
    answer(child, "User name [alice]: ", "")
    answer(child, "Windows domain [CONTOSO]: ", "")
    answer(child, "Password: ", "Passw0rd!")
    child.expect(r"\[#+\.*\] ")                                        # the progress bar
    child.expect_exact(f"Found {EWS}")
    calendar_test_and_next(child)


def test_python_loopback_sign_in_and_override(ctx):
    """SuperOffice: the browser returns to syncwizard's loopback listener (awaitSignIn).
    Exchange: Autodiscover fails (error, hint, attempts shown), a bad then a good EWS URL."""
    env = environment(ctx, SYNCWIZARD_BROWSER=f"bash {BROWSER}", **ctx.fakes.browser_env("follow"))
    child = wizard(ctx, env)
    answer(child, "Name of the new profile [Head office]: ", "Branch")
    super_office_provider(child)
    super_office_test(child)
    answer(child, "E-mail address: ", "alice@branch.contoso.test")
    answer(child, "User name (as in Outlook on the web, without DOMAIN\\): ", "alice")
    answer(child, "Windows domain (Enter for none): ", "CONTOSO")
    answer(child, "Password: ", "Passw0rd!")
    child.expect(r"  ! .*\r\n    Hint: .*overrideEndpoints")           # autodiscoverFailed
    child.expect_exact("    tried ")
    answer(child, "EWS URL, e.g. https://mail.contoso.com/EWS/Exchange.asmx: ", "http://mail.contoso.test/EWS/Exchange.asmx")
    child.expect_exact("  ! ")                                         # endpointInvalid: not https
    answer(child, "EWS URL, e.g. https://mail.contoso.com/EWS/Exchange.asmx: ", EWS)
    calendar_test_and_next(child)


# ---- emacs --------------------------------------------------------------------------------------

def test_emacs(ctx):
    out = run(["emacs", "-Q", "--batch", "-l", EXAMPLES / "emacs" / "syncwizard-example.el", "--secret-store", "memory"],
              environment(ctx))
    check(out, r"^Connected to syncwizard ", r"^Created profile Emacs example \([0-9a-f-]{36}\)$",
          r"^SuperOffice: notConfigured, calendar \(exchange\): notConfigured$",
          r"^Cannot move on yet \(stepIncomplete\):$",
          r"^  superOffice: .* \[providerNotConfigured\]$", r"^  calendar: .* \[credentialsRequired\]$",
          r"^syncwizard exited with status 0$")


class Context:
    pass


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", required=True)
    parser.add_argument("tests", nargs="*")
    options = parser.parse_args()
    tests = {name[5:].replace("_", "-"): f for name, f in globals().items() if name.startswith("test_")}
    chosen = options.tests or list(tests)
    ctx = Context()
    ctx.binary = str(pathlib.Path(options.bin).resolve())
    passed = failed = 0
    with Fakes() as ctx.fakes:
        for name in chosen:
            ctx.log = open(ctx.fakes.directory / f"{name}.log", "w")
            started = time.monotonic()
            try:
                tests[name](ctx)
                passed += 1
                print(f"ok   {name} ({time.monotonic() - started:.1f} s)", flush=True)
            except Exception:
                failed += 1
                ctx.log.close()
                print(f"FAIL {name} ({time.monotonic() - started:.1f} s)\n{traceback.format_exc()}", flush=True)
                print(f"terminal of {name}:\n{(ctx.fakes.directory / f'{name}.log').read_text()[-4000:]}")
    print(f"examples: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
