#!/usr/bin/env python3
"""A terminal wizard for syncwizard's Configure Systems step.

    python3 wizard.py [syncwizard options...]      e.g. python3 wizard.py --secret-store memory

It asks syncwizard what blocks the step (getWizardState) and deals with the first blocker until
none is left: SuperOffice and calendar provider settings, browser sign-ins, Exchange credentials
(with an override when Autodiscover fails), connection tests; then nextStep. SYNCWIZARD names the
binary (default: syncwizard on PATH); SYNCWIZARD_BROWSER a command to open sign-in URLs with
(default: the desktop browser through the webbrowser module).
"""
import asyncio
import getpass
import os
import shlex
import shutil
import subprocess
import sys
import webbrowser

from syncwizard_client import Client, RpcError
from syncwizard_types import Blocker, EndpointsResult, SignInStarted, TestConnectionResult, WizardState

SYSTEM_NAMES = {"superOffice": "SuperOffice", "microsoft365": "Microsoft 365", "exchange": "Exchange",
                "google": "Google"}


# ---- the terminal -------------------------------------------------------------------------------

async def ask(prompt: str, default: str = "") -> str:
    """input() that lets the event loop run meanwhile (syncwizard's messages keep arriving)."""
    shown = f"{prompt} [{default}]: " if default else f"{prompt}: "
    print(shown, end="", flush=True)
    loop = asyncio.get_running_loop()
    line = loop.create_future()
    loop.add_reader(sys.stdin.fileno(), lambda: line.done() or line.set_result(sys.stdin.readline()))
    try:
        text = await line
    finally:
        loop.remove_reader(sys.stdin.fileno())
    if not text:
        raise EOFError
    return text.strip() or default


async def ask_secret(prompt: str) -> str:
    return await asyncio.to_thread(getpass.getpass, f"{prompt}: ")


async def choose(prompt: str, options: list[str], default: str = "") -> str:
    while (answer := await ask(f"{prompt} ({'/'.join(options)})", default)) not in options:
        print(f"  Please type one of: {', '.join(options)}")
    return answer


def show_error(error: RpcError) -> None:
    print(f"\n  ! {error.message}")
    if error.hint:
        print(f"    Hint: {error.hint}")


class ProgressBar:
    """Draws progress notifications ({requestId, stage, message, percent?}) on one line."""

    def __init__(self, title: str):
        self.title, self.seen, self.percent = title, 0, None
        print(f"{title}...")

    def __call__(self, params: dict) -> None:
        self.seen += 1
        self.percent = params.get("percent", self.percent)   # a step without an estimate keeps the last
        width = 24
        if self.percent is not None:
            filled, label = width * self.percent // 100, f"{self.percent:3d}%"
        else:   # no estimate yet: a bar that moves with every step
            filled, label = self.seen % (width + 1), "    "
        line = f"  [{'#' * filled}{'.' * (width - filled)}] {label} {params['message']}"
        columns = shutil.get_terminal_size().columns
        print("\r" + line[:columns - 1].ljust(columns - 1), end="", flush=True)

    def done(self) -> None:
        if self.seen:
            print()


async def long_call(client: Client, title: str, method: str, params: dict):
    bar = ProgressBar(title)
    try:
        return await client.request(method, params, on_progress=bar)
    finally:
        bar.done()


# ---- the steps ----------------------------------------------------------------------------------

async def pick_profile(client: Client) -> str:
    profiles = (await client.request("listProfiles"))["profiles"]
    for number, profile in enumerate(profiles, 1):
        print(f"  {number}. {profile['name']} (created {profile['createdAt'][:10]})")
    if profiles:
        answer = await ask("Use which profile? (number, or Enter for a new one)")
        if answer.isdigit() and 1 <= int(answer) <= len(profiles):
            return profiles[int(answer) - 1]["id"]
    name = await ask("Name of the new profile", "Head office")
    return (await client.request("createProfile", {"name": name}))["id"]


async def configure_provider(client: Client, system: str) -> None:
    name = SYSTEM_NAMES[system]
    params = {"system": system, "clientId": await ask(f"{name} client id")}
    if secret := await ask_secret(f"{name} client secret (Enter for none)"):
        params["clientSecret"] = secret
    if system == "superOffice":
        params["environment"] = await choose("SuperOffice environment", ["sod", "stage", "online"], "online")
    if system == "microsoft365":
        params["tenant"] = await ask("Microsoft tenant", "organizations")
    await client.request("setProviderSettings", params)


def open_browser(url: str) -> None:
    if command := os.environ.get("SYNCWIZARD_BROWSER"):
        subprocess.Popen(shlex.split(command) + [url], stdout=subprocess.DEVNULL)
    elif not webbrowser.open(url):
        print("  (No browser could be opened here: open the address above yourself.)")


async def sign_in(client: Client, profile_id: str, system: str) -> None:
    started: SignInStarted = await client.request("startSignIn", {"profileId": profile_id, "system": system})
    print(f"Sign in with {SYSTEM_NAMES[system]} in your browser:\n  {started['authorizationUrl']}")
    open_browser(started["authorizationUrl"])
    print("If that browser runs on another machine, paste the address it ended on here.")
    # Whichever comes first: the browser returns to syncwizard's loopback listener (awaitSignIn
    # answers), or the person pastes the address (completeSignIn).
    waiting = asyncio.create_task(client.request("awaitSignIn", {"signInId": started["signInId"]}))
    while True:
        pasted = asyncio.create_task(ask("Address (or just wait)"))
        done, _ = await asyncio.wait({waiting, pasted}, return_when=asyncio.FIRST_COMPLETED)
        if waiting in done:
            pasted.cancel()
            print()
            completed = waiting.result()   # raises RpcError when the sign-in failed
            break
        try:
            completed = await client.request("completeSignIn", {"signInId": started["signInId"],
                                                                "redirectUrl": pasted.result()})
            break
        except RpcError as error:
            if error.kind != "invalidParams":   # the sign-in failed (awaitSignIn answers the same)
                await asyncio.gather(waiting, return_exceptions=True)
                raise
            show_error(error)   # not the address of this sign-in: ask again
    account = completed["account"]
    who = account.get("userName") or account.get("userPrincipalName") or account.get("email")
    print(f"Signed in as {who}.")


async def connect_exchange(client: Client, profile_id: str, blocker: Blocker) -> None:
    if blocker["kind"] == "endpointsRequired":
        await override_endpoints(client, profile_id)
        return
    params = {"profileId": profile_id, "email": await ask("E-mail address"),
              "userName": await ask("User name (as in Outlook on the web, without DOMAIN\\)"),
              "domain": await ask("Windows domain (Enter for none)"),
              "password": await ask_secret("Password")}
    while True:
        try:
            result: EndpointsResult = await long_call(client, "Looking for your Exchange server (Autodiscover)",
                                                      "submitExchangeCredentials", params)
            print(f"Found {result['ewsUrl']}")
            return
        except RpcError as error:
            show_error(error)
            if error.kind == "autodiscoverFailed":
                for attempt in error.data.get("attempts", []):
                    print(f"    tried {attempt['method']} {attempt['url']}: {attempt['outcome']}")
                await override_endpoints(client, profile_id)
                return
            if error.kind == "redirectNeedsConfirmation" and \
                    await choose(f"Allow Autodiscover to continue at {error.data['host']}?", ["y", "n"]) == "y":
                params["allowRedirectHosts"] = params.get("allowRedirectHosts", []) + [error.data["host"]]
            elif error.kind == "certificateUntrusted" and \
                    await choose(f"Trust {error.data['subject']} (SHA-256 {error.data['sha256']})?", ["y", "n"]) == "y":
                await client.request("trustCertificate", {"profileId": profile_id, "host": error.data["host"],
                                                          "sha256": error.data["sha256"]})
            elif error.kind == "invalidCredentials":
                params["userName"] = await ask("User name", params["userName"])
                params["domain"] = await ask("Windows domain", params["domain"])
                params["password"] = await ask_secret("Password")
            else:
                raise


async def override_endpoints(client: Client, profile_id: str) -> None:
    while True:
        url = await ask("EWS URL, e.g. https://mail.contoso.com/EWS/Exchange.asmx")
        try:
            await client.request("overrideEndpoints", {"profileId": profile_id, "ewsUrl": url})
            return
        except RpcError as error:
            if error.kind != "endpointInvalid":
                raise
            show_error(error)


async def test_connection(client: Client, profile_id: str, side: str) -> None:
    name = "SuperOffice" if side == "superOffice" else "the calendar"
    tested: TestConnectionResult = await long_call(client, f"Testing {name}", "testConnection",
                                                   {"profileId": profile_id, "system": side})
    for result in tested["results"]:
        for check in result["checks"]:
            print(f"  {'ok  ' if check['ok'] else 'FAIL'} {check['name']}: {check['message']}")
        if "error" in result:
            show_error(RpcError(result["error"]))


async def handle(client: Client, profile_id: str, state: WizardState, blocker: Blocker) -> None:
    side, kind = blocker["system"], blocker["kind"]
    system = "superOffice" if side == "superOffice" else state["calendar"].get("system")
    if kind == "systemNotSelected":
        chosen = await choose("Calendar system", ["exchange", "microsoft365", "google"], "exchange")
        await client.request("selectCalendarSystem", {"profileId": profile_id, "system": chosen})
    elif kind == "providerNotConfigured":
        await configure_provider(client, system)
    elif kind == "signInRequired":
        await sign_in(client, profile_id, system)
    elif kind in ("credentialsRequired", "endpointsRequired"):
        await connect_exchange(client, profile_id, blocker)
    elif kind == "connectionNotTested":
        await test_connection(client, profile_id, side)
    elif kind == "connectionTestFailed":
        again = await choose("Test again, or enter the settings again?", ["test", "settings"], "test")
        if again == "test":
            await test_connection(client, profile_id, side)
        elif system == "exchange":
            await connect_exchange(client, profile_id, {"system": side, "kind": "credentialsRequired", "message": ""})
        else:
            await sign_in(client, profile_id, system)


async def wizard(client: Client) -> None:
    profile_id = await pick_profile(client)
    while True:
        state: WizardState = await client.request("getWizardState", {"profileId": profile_id})
        calendar = SYSTEM_NAMES.get(state["calendar"].get("system"), "calendar")
        print(f"\nSuperOffice: {state['superOffice']['status']}    {calendar}: {state['calendar']['status']}")
        if not state["blockers"]:
            break
        blocker = state["blockers"][0]
        print(f"Next: {blocker['message']}")
        try:
            await handle(client, profile_id, state, blocker)
        except RpcError as error:
            show_error(error)
            if await choose("Try again?", ["y", "n"], "y") == "n":
                return
    step = await client.request("nextStep", {"profileId": profile_id})
    print(f"Both systems are connected. Next step: {step['step']}")


async def main() -> int:
    command = [os.environ.get("SYNCWIZARD", "syncwizard")] + sys.argv[1:]
    client = await Client.start(command)
    try:
        await wizard(client)
    except (EOFError, KeyboardInterrupt):
        print("\nStopped.")
    finally:
        await client.close()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(asyncio.run(main()))
    except KeyboardInterrupt:
        sys.exit(130)
