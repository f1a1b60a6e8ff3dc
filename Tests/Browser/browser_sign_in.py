"""Plays "Sign in with SuperOffice" in a real headless Chromium (selenium + chromedriver).

Driven by Tests/EndToEndTests/BrowserSignInTests.swift, which starts the fake identity provider
(Tests/Fixtures/oauth/fake_idp.py) and syncwizard, calls startSignIn and hands this script the
authorization URL. This script:

1. starts a CONNECT proxy (connect_proxy.py) that tunnels the fake's host names to
   127.0.0.1:FAKE_PORT, so the browser reaches https://online.superoffice.com/... on the fake;
2. makes Chromium trust exactly the fake's leaf certificates: it fetches each leaf over TLS,
   verifies it against the fake's test CA (--ca-file), and passes the base64 SHA-256 of its
   SubjectPublicKeyInfo in --ignore-certificate-errors-spki-list (which Chromium honours only
   with --user-data-dir, given here). --trust insecure passes --ignore-certificate-errors
   instead; --trust none passes neither (a negative control: Chromium must show "Privacy error");
3. opens the URL in headless Chromium, which follows the fake's 302 to syncwizard's loopback
   listener (http://127.0.0.1:PORT/?code=...&state=..., straight, not through the proxy);
4. waits for the page, takes a PNG screenshot (--screenshot), and writes a JSON report (--report)
   with what the page says and every network request the tab made (from the DevTools Network
   events chromedriver records in its performance log) plus the proxy's log.

The test asserts on the report; this script judges nothing except that it could do its job
(exit 0: report written; exit 2: no browser, selenium missing, or the browser failed; the
reason is in the report's "error" and on stderr).

    python3 browser_sign_in.py --url URL --fake-port N --ca-file CA.pem --host online.superoffice.com \
        --expect-prefix http://127.0.0.1:PORT --screenshot OUT.png --report OUT.json

Needs: apt-get install --no-install-recommends chromium chromium-driver;
pip install selenium cryptography.
"""

import argparse
import base64
import hashlib
import json
import os
import shutil
import signal
import socket
import ssl
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from connect_proxy import ConnectProxy  # noqa: E402

DEFAULT_CHROMIUM = "/usr/bin/chromium"
DEFAULT_CHROMEDRIVER = "/usr/bin/chromedriver"


def leaf_spki_sha256(port, host, ca_file):
    """base64(SHA-256(SubjectPublicKeyInfo)) of the leaf the fake serves for `host`, after
    checking that the chain and host name verify against the test CA."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    context = ssl.create_default_context(cafile=ca_file)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname=host) as tls:
            der = tls.getpeercert(binary_form=True)
    spki = x509.load_der_x509_certificate(der).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(spki).digest()).decode("ascii")


# Collected in the page: every attribute that can make the browser load something, every
# url(...) in inline styles, and the Resource Timing entries (what the page actually fetched).
PAGE_PROBE = r"""
const refs = [];
for (const el of document.querySelectorAll('*')) {
  for (const a of ['src', 'href', 'srcset', 'poster', 'data', 'action', 'formaction', 'background', 'manifest', 'ping']) {
    if (el.hasAttribute(a)) refs.push({tag: el.tagName.toLowerCase(), attribute: a, value: el.getAttribute(a)});
  }
}
for (const el of document.querySelectorAll('style,[style]')) {
  const css = el.tagName.toLowerCase() === 'style' ? el.textContent : el.getAttribute('style');
  for (const m of css.matchAll(/url\(|@import/gi)) refs.push({tag: el.tagName.toLowerCase(), attribute: 'css', value: m[0]});
}
return {
  title: document.title,
  text: document.body ? document.body.innerText : '',
  heading: (document.querySelector('h1') || {}).textContent || null,
  readyState: document.readyState,
  scripts: document.scripts.length,
  references: refs,
  resources: performance.getEntriesByType('resource').map(e => e.name),
  navigation: performance.getEntriesByType('navigation').map(e => ({name: e.name, type: e.type})),
};
"""


def network_requests(driver):
    """The tab's requests, from the DevTools Network events in chromedriver's performance log."""
    requests = {}
    order = []
    for entry in driver.get_log("performance"):
        try:
            message = json.loads(entry["message"])["message"]
        except (KeyError, ValueError):
            continue
        method = message.get("method", "")
        params = message.get("params", {})
        if method == "Network.requestWillBeSent":
            rid = params.get("requestId")
            if "redirectResponse" in params and rid in requests:
                # The same requestId continues after a redirect: close the hop before it.
                hop = requests.pop(rid)
                redirect = params["redirectResponse"]
                hop.update(status=redirect.get("status"), remoteIPAddress=redirect.get("remoteIPAddress"),
                           remotePort=redirect.get("remotePort"), location=(redirect.get("headers") or {}).get("location")
                           or (redirect.get("headers") or {}).get("Location"))
                requests[rid + "#" + str(len(order))] = hop
            request = params.get("request", {})
            hop = {"requestId": rid, "url": request.get("url"), "method": request.get("method"),
                   "type": params.get("type"), "initiator": (params.get("initiator") or {}).get("type"),
                   "wallTime": params.get("wallTime")}
            requests[rid] = hop
            order.append(hop)
        elif method == "Network.responseReceived":
            hop = requests.get(params.get("requestId"))
            if hop is not None:
                response = params.get("response", {})
                hop.update(status=response.get("status"), remoteIPAddress=response.get("remoteIPAddress"),
                           remotePort=response.get("remotePort"), protocol=response.get("protocol"),
                           securityState=response.get("securityState"),
                           contentSecurityPolicy=(response.get("headers") or {}).get("content-security-policy")
                           or (response.get("headers") or {}).get("Content-Security-Policy"))
        elif method == "Network.loadingFailed":
            hop = requests.get(params.get("requestId"))
            if hop is not None:
                hop.update(failed=params.get("errorText"), blockedReason=params.get("blockedReason"))
    return order


def run(args, report):
    chromium = args.chromium or os.environ.get("SYNCWIZARD_CHROMIUM") or DEFAULT_CHROMIUM
    chromedriver = args.chromedriver or os.environ.get("SYNCWIZARD_CHROMEDRIVER") or DEFAULT_CHROMEDRIVER
    for what, path, package in (("chromium", chromium, "chromium"), ("chromedriver", chromedriver, "chromium-driver")):
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            raise SetupError(f"{what} not found at {path}: apt-get install --no-install-recommends {package}")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError as error:
        raise SetupError(f"selenium is missing ({error}): python3 -m pip install selenium")

    started = time.monotonic()
    hosts = args.host or ["online.superoffice.com"]
    if args.trust == "insecure":
        report["certificateTrust"] = "ignore-certificate-errors"
        trust_flags = ["--ignore-certificate-errors"]
    elif args.trust == "none":
        # A negative control: the browser must refuse the fake's certificate.
        report["certificateTrust"] = "none"
        trust_flags = []
    else:
        pins = {host: leaf_spki_sha256(args.fake_port, host, args.ca_file) for host in hosts}
        report["certificateTrust"] = "ignore-certificate-errors-spki-list"
        report["spki"] = pins
        trust_flags = ["--ignore-certificate-errors-spki-list=" + ",".join(sorted(set(pins.values())))]

    proxy = ConnectProxy(args.fake_port, hosts=hosts).start()
    profile = tempfile.mkdtemp(prefix="syncwizard-chromium.")
    driver = None
    try:
        options = webdriver.ChromeOptions()
        options.binary_location = chromium
        flags = [
            "--headless=new", "--disable-gpu", "--disable-dev-shm-usage",
            "--user-data-dir=" + profile,
            "--proxy-server=http://127.0.0.1:%d" % proxy.port,
            "--window-size=%s" % args.window_size,
            "--lang=en-US", "--no-first-run", "--no-default-browser-check",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-extensions", "--disable-default-apps", "--disable-client-side-phishing-detection",
            "--metrics-recording-only", "--password-store=basic", "--use-mock-keychain",
        ] + trust_flags
        if os.geteuid() == 0:
            flags.append("--no-sandbox")  # Chromium refuses to run as root with its sandbox
        for flag in flags:
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
        options.add_experimental_option("perfLoggingPrefs", {"enableNetwork": True, "enablePage": False})
        report["chromiumFlags"] = flags
        service = Service(executable_path=chromedriver, log_output=args.chromedriver_log or os.devnull)
        driver = webdriver.Chrome(service=service, options=options)
        report["browserVersion"] = driver.capabilities.get("browserVersion")
        report["browserStartSeconds"] = round(time.monotonic() - started, 2)
        driver.set_page_load_timeout(args.timeout)
        # Start from an empty tab and drop what the start page logged, so "requests" is exactly
        # what opening the authorization URL caused.
        driver.get("about:blank")
        driver.get_log("performance")

        opened = time.monotonic()
        driver.get(args.url)
        # get() returns once the page the redirects end on has loaded; a little grace for a
        # redirect that comes later. Elsewhere (e.g. an interstitial for a certificate error,
        # which keeps the URL) the tab's content is still reported.
        deadline = time.monotonic() + args.grace
        landed = None
        while landed is None:
            url = driver.current_url
            if url.startswith(args.expect_prefix) and driver.execute_script("return document.readyState") == "complete":
                landed = True
            elif url.startswith("chrome-error:") or time.monotonic() > deadline:
                landed = False
            else:
                time.sleep(0.05)
        report["landed"] = landed
        report["navigationSeconds"] = round(time.monotonic() - opened, 2)
        # Give anything the page might load after "complete" (it should load nothing) time to show.
        time.sleep(args.settle)

        report["url"] = driver.current_url
        report["page"] = driver.execute_script(PAGE_PROBE)
        report["html"] = driver.page_source
        os.makedirs(os.path.dirname(os.path.abspath(args.screenshot)), exist_ok=True)
        if not driver.save_screenshot(args.screenshot):
            raise SetupError("could not save the screenshot to " + args.screenshot)
        report["screenshot"] = os.path.abspath(args.screenshot)
        report["requests"] = network_requests(driver)
        try:
            report["console"] = [e.get("message") for e in driver.get_log("browser")]
        except Exception:  # noqa: BLE001 - the console log is a nicety
            report["console"] = None
        if not landed:
            raise SetupError(f"the browser did not land on {args.expect_prefix}: it shows "
                             f"{report['page'].get('title')!r} at {report['url'][:200]}")
    finally:
        if driver is not None:
            try:
                driver.quit()
            except Exception:  # noqa: BLE001
                pass
        proxy.stop()
        report["proxyLog"] = proxy.entries()
        report["proxyPort"] = proxy.port
        shutil.rmtree(profile, ignore_errors=True)
        report["seconds"] = round(time.monotonic() - started, 2)


class SetupError(Exception):
    pass


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True, help="the authorization URL startSignIn returned")
    parser.add_argument("--fake-port", type=int, required=True, help="the fake identity provider's HTTPS port")
    parser.add_argument("--ca-file", required=True, help="the fake's test CA (PEM)")
    parser.add_argument("--host", action="append", help="a host name served by the fake (repeatable)")
    parser.add_argument("--expect-prefix", required=True, help="where the browser must land (the redirect URI)")
    parser.add_argument("--screenshot", required=True, help="PNG to write")
    parser.add_argument("--report", required=True, help="JSON report to write")
    parser.add_argument("--chromium", help=f"default: $SYNCWIZARD_CHROMIUM or {DEFAULT_CHROMIUM}")
    parser.add_argument("--chromedriver", help=f"default: $SYNCWIZARD_CHROMEDRIVER or {DEFAULT_CHROMEDRIVER}")
    parser.add_argument("--chromedriver-log")
    parser.add_argument("--trust", choices=["spki", "insecure", "none"], default="spki",
                        help="spki (default): pin the fake's leaves; insecure: --ignore-certificate-errors; "
                             "none: trust nothing (a negative control; the browser must not land)")
    parser.add_argument("--timeout", type=float, default=30, help="page load timeout, seconds")
    parser.add_argument("--grace", type=float, default=5, help="seconds to wait for the landing after the page load")
    parser.add_argument("--settle", type=float, default=0.5, help="seconds to watch the network after the page loaded")
    parser.add_argument("--window-size", default="900,600")
    args = parser.parse_args()

    # Killed by the test's backstop timeout: unwind, so the finally blocks quit the browser.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(3))
    # Selenium must never try to download a driver or a browser (no network; CI installs them).
    os.environ.setdefault("SE_OFFLINE", "true")
    # The browser gets no D-Bus session: it needs none, and would otherwise have the test's
    # throwaway session (scripts/with-test-keyring.sh) start the accessibility bus.
    os.environ["NO_AT_BRIDGE"] = "1"
    os.environ["DBUS_SESSION_BUS_ADDRESS"] = "unix:path=/nonexistent/syncwizard-browser-test"
    report = {"ok": False}
    status = 0
    try:
        run(args, report)
        report["ok"] = True
    except SetupError as error:
        report["error"] = str(error)
        status = 2
    except Exception as error:  # noqa: BLE001 - everything goes into the report
        report["error"] = f"{type(error).__name__}: {error}"
        report["traceback"] = traceback.format_exc()
        status = 2
    with open(args.report, "w", encoding="utf-8") as out:
        json.dump(report, out, indent=2)
    if status:
        sys.stderr.write("browser_sign_in: " + report["error"] + "\n")
    return status


if __name__ == "__main__":
    sys.exit(main())
