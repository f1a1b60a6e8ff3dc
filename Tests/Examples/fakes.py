"""Starts the test fakes for the examples' tests and tells how syncwizard reaches them.

Fakes(...) starts Tests/Fixtures/exchange/fake_exchange.py (contoso.test: Autodiscover works for
alice@contoso.test and fails for alice@branch.contoso.test; NTLM user CONTOSO\\alice, Passw0rd!)
and Tests/Fixtures/oauth/fake_idp.py (SuperOffice client syncwizard-superoffice with secret
so-application-token), and gives syncwizard_args(): --ca-file (both CAs), --connect-to for every
host, --dns-server, --secret-store memory. Use it as a context manager; the fakes stop on exit.
"""
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "Tests" / "Fixtures"

EWS = "https://mail.contoso.test/EWS/Exchange.asmx"
EXCHANGE = {
    "hosts": {
        "contoso.test": {"status": 404},
        "autodiscover.contoso.test": {"autodiscover": {"action": "settings", "protocols": [
            {"type": "EXPR", "ewsUrl": EWS, "oabUrl": "https://mail.contoso.test/OAB/abc/"}]}},
        "mail.contoso.test": {"ews": {"result": "success"}, "oab": {"path": "/OAB/abc/oab.xml", "status": 200}},
        # branch.contoso.test has no Autodiscover at all: every candidate answers 404.
        "branch.contoso.test": {"status": 404},
        "autodiscover.branch.contoso.test": {"status": 404},
    },
    "httpHosts": {"autodiscover.contoso.test": {"status": 404}, "autodiscover.branch.contoso.test": {"status": 404}},
    "users": ["CONTOSO:alice:Passw0rd!"],
}
# Every name a discovery for these addresses could touch, so nothing leaves the machine.
ROUTED = ["contoso.test", "autodiscover.contoso.test", "mail.contoso.test", "branch.contoso.test",
          "autodiscover.branch.contoso.test", "autodiscover.test", "test"]


class Fake:
    def __init__(self, script, config, workdir):
        workdir.mkdir(parents=True)
        (workdir / "config.json").write_text(json.dumps(config))
        self.process = subprocess.Popen(
            [sys.executable, str(script), "--config", str(workdir / "config.json"),
             "--log", str(workdir / "log.jsonl"), "--workdir", str(workdir / "work")],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"{script.name} did not start (needs trustme, pyspnego, cryptography)")
        self.ready = json.loads(line)

    def stop(self):
        self.process.stdin.close()   # the fakes exit on EOF
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()


class Fakes:
    def __init__(self):
        self.directory = pathlib.Path(tempfile.mkdtemp(prefix="syncwizard-examples-"))
        self.exchange = Fake(FIXTURES / "exchange" / "fake_exchange.py", EXCHANGE, self.directory / "exchange")
        self.idp = Fake(FIXTURES / "oauth" / "fake_idp.py", {}, self.directory / "idp")
        self.ca_file = self.directory / "ca.pem"
        self.ca_file.write_text(pathlib.Path(self.exchange.ready["caFile"]).read_text()
                                + pathlib.Path(self.idp.ready["caFile"]).read_text())

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.exchange.stop()
        self.idp.stop()
        if "SYNCWIZARD_KEEP_TEST_FILES" not in os.environ:
            shutil.rmtree(self.directory, ignore_errors=True)

    def syncwizard_args(self):
        args = ["--secret-store", "memory", "--ca-file", str(self.ca_file),
                "--dns-server", f"127.0.0.1:{self.exchange.ready['dnsPort']}", "--autodiscover-budget", "10"]
        for host in ROUTED:
            args += ["--connect-to", f"{host}:443:127.0.0.1:{self.exchange.ready['httpsPort']}",
                     "--connect-to", f"{host}:80:127.0.0.1:{self.exchange.ready['httpPort']}"]
        for host in self.idp.ready["hosts"]:
            args += ["--connect-to", f"{host}:443:127.0.0.1:{self.idp.ready['httpsPort']}"]
        return args

    def browser_env(self, mode, landed_file=""):
        """Environment for Tests/Examples/browser.sh: the test's browser (see there)."""
        return {"TEST_BROWSER_MODE": mode, "TEST_BROWSER_CA": str(self.ca_file),
                "TEST_BROWSER_PORT": str(self.idp.ready["httpsPort"]), "TEST_BROWSER_LANDED": str(landed_file)}
