#!/usr/bin/env python3
"""Fake identity providers for syncwizard's OAuth tests: SuperOffice (SuperID), Microsoft identity
platform + Graph, Google accounts + Directory/Calendar. Real TLS, production host names.

    python3 fake_idp.py --config CONFIG.json --log LOG.jsonl --workdir DIR

ONE threaded HTTPS listener on 127.0.0.1 (ephemeral port) serves every host; the certificate is
chosen per SNI name from one trustme CA (DIR/ca.pem). Hosts listed in "untrustedHosts" get a leaf
from a second CA (DIR/untrusted-ca.pem) that clients are never given. The client reaches the
listener with libcurl CONNECT_TO / curl --connect-to "HOST:443:127.0.0.1:PORT".

When ready it prints ONE JSON line on stdout:
    {"httpsPort": P, "caFile": ..., "untrustedCaFile": ..., "hosts": [...], "kid": ..., "pid": ...}
then serves until stdin reaches EOF (the test process is gone).

Behaviour is chosen per *scenario* (README.md lists them): POST https://ANY-HOST/__control/scenario
{"scenario": NAME[, "provider": "superoffice"|"microsoft"|"google"]}. A sign-in takes the scenario
current when its authorization request arrives (or the `__scenario` query parameter of that
request) and keeps it for the code exchange; refreshes, API calls and the State API use the
scenario current when they arrive.

Every request except /__control/* is appended to LOG as one JSON line, written before the
answer's first byte. The log carries parameter NAMES, never a code, state, nonce, token, secret,
verifier or Authorization value (see README.md for the fields).

Needs: pip install trustme cryptography   (PyJWT only for selftest.sh)
"""

import argparse
import base64
import copy
import hashlib
import hmac
import http.server
import json
import os
import re
import secrets
import socket
import socketserver
import ssl
import sys
import threading
import time
import urllib.parse
import uuid
from datetime import datetime, timezone

import trustme
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

# ---------------------------------------------------------------------------------------------
# Constants

SO_CLAIM = "http://schemes.superoffice.net/identity/"  # sic: "schemes", as SuperOffice spells it
MS_LOGIN_HOST = "login.microsoftonline.com"
GRAPH_HOST = "graph.microsoft.com"
OUTLOOK_HOST = "outlook.office365.com"
GOOGLE_ACCOUNTS_HOST = "accounts.google.com"
GOOGLE_TOKEN_HOST = "oauth2.googleapis.com"
GOOGLE_APIS_HOST = "www.googleapis.com"
GOOGLE_ADMIN_HOST = "admin.googleapis.com"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
EXCHANGE_APP_ID = "00000002-0000-0ff1-ce00-000000000000"
GOOGLE_ISSUER = "https://accounts.google.com"
MAX_BODY = 1 << 20
ID_NS = uuid.UUID("3f1c2a8e-5b7d-4e61-9a0c-7d2e4b6f8a13")

# Query/form parameters whose values may appear in the log. Everything else is logged by name only.
SAFE_PARAMS = {
    "client_id", "redirect_uri", "scope", "response_type", "response_mode", "code_challenge_method",
    "prompt", "acr_values", "login_hint", "domain_hint", "access_type", "include_granted_scopes", "hd",
    "grant_type", "$filter", "$top", "$select", "customer", "domain", "maxResults", "viewType",
    "orderBy", "sortOrder", "projection", "__scenario",
}

OIDC_SCOPES = {"openid", "profile", "email", "offline_access"}

# Delegated Graph permissions only an admin can grant ("Admin consent required: Yes" in
# learn.microsoft.com/graph/permissions-reference). User.Read, User.ReadBasic.All and Calendars.*
# are not among them: a user may consent to those for themselves.
ADMIN_ONLY_GRAPH = {p.lower() for p in (
    "Directory.Read.All", "Directory.ReadWrite.All", "Directory.AccessAsUser.All", "User.Read.All",
    "User.ReadWrite.All", "Application.Read.All", "Application.ReadWrite.All",
    "DelegatedPermissionGrant.ReadWrite.All", "Organization.Read.All", "Group.Read.All",
    "Group.ReadWrite.All", "GroupMember.Read.All")}

# Graph calls served and the delegated permissions each accepts, least privileged first. From the
# "Permissions" table of learn.microsoft.com/graph/api/user-get (/me), user-list, calendar-get,
# serviceprincipal-list, oauth2permissiongrant-list, serviceprincipal-list-oauth2permissiongrants,
# organization-get; names as in learn.microsoft.com/graph/permissions-reference. Real Graph answers
# a token holding none of them with 403, whatever the caller meant to do (protocols.md 7.2).
GRAPH_DENIED = ("Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
MAILBOX_DENIED = ("ErrorAccessDenied", "Access is denied. Check credentials and try again.")
GRAPH_CALLS = (
    ("me", r"^/v1\.0/me$", ("User.Read", "User.ReadWrite", "User.ReadBasic.All", "User.Read.All",
                             "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"), GRAPH_DENIED),
    ("users", r"^/v1\.0/users$", ("User.ReadBasic.All", "User.Read.All", "User.ReadWrite.All",
                                   "Directory.Read.All", "Directory.ReadWrite.All"), GRAPH_DENIED),
    ("calendar", r"^/v1\.0/(me|users/[^/]+)/calendar$", ("Calendars.ReadBasic", "Calendars.Read",
                                                          "Calendars.ReadWrite"), MAILBOX_DENIED),
    ("servicePrincipals", r"^/v1\.0/servicePrincipals$", ("Application.Read.All", "Application.ReadWrite.All",
                                                           "Directory.Read.All", "Directory.ReadWrite.All"), GRAPH_DENIED),
    ("servicePrincipalGrants", r"^/v1\.0/servicePrincipals/([^/]+)/oauth2PermissionGrants$",
     ("Directory.Read.All", "DelegatedPermissionGrant.ReadWrite.All", "Directory.ReadWrite.All"), GRAPH_DENIED),
    ("oauth2PermissionGrants", r"^/v1\.0/oauth2PermissionGrants$",
     ("Directory.Read.All", "DelegatedPermissionGrant.ReadWrite.All", "Directory.ReadWrite.All"), GRAPH_DENIED),
    ("organization", r"^/v1\.0/organization$", ("User.Read", "Directory.Read.All", "Directory.ReadWrite.All"),
     GRAPH_DENIED),
)
RESOURCE_APP_IDS = {"graph": GRAPH_APP_ID, "outlook": EXCHANGE_APP_ID}
RESOURCE_HOSTS = {"graph": "https://graph.microsoft.com", "outlook": "https://outlook.office365.com"}
CONSENT_TYPES = {"AllPrincipals", "Principal", "none"}

VERIFIER_RE = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
CHALLENGE_RE = re.compile(r"^[A-Za-z0-9\-_]{43}$")

# Scenarios: name -> what it does (README.md has the long form). Anything that does not concern
# a stage behaves as "success" there.
SCENARIOS = {
    # every provider
    "success": "everything works",
    "access_denied": "authorize redirects with error=access_denied",
    "wrong_state": "authorize redirects with a different state",
    "tampered_signature": "id_token signed by the attacker key under the real kid",
    "unknown_kid": "id_token signed by the attacker key under a kid that is in no JWKS",
    "rotated_key": "id_token signed by a new key whose kid is added to the JWKS at that moment",
    "alg_none": "id_token with alg none and no signature",
    "alg_hs256": "id_token HMAC-signed with the public key's PEM as secret (algorithm confusion)",
    "wrong_audience": "id_token aud is another client",
    "expired": "id_token exp one hour in the past",
    "not_yet_valid": "id_token nbf one hour in the future",
    "nonce_mismatch": "id_token nonce differs from the request's",
    "missing_nonce": "id_token without nonce",
    "wrong_issuer": "id_token iss of another environment/tenant",
    "code_rejected": "the code exchange answers invalid_grant",
    "token_server_error": "the token endpoint answers 500 (code exchange and refresh)",
    "refresh_fails": "a refresh answers invalid_grant and revokes the presented refresh token",
    "refresh_no_rotation": "a refresh answers without refresh_token; the old one stays valid",
    # SuperOffice
    "not_administrator": "SuperOffice is_administrator claim \"False\"",
    "stale_webapi_url": "SuperOffice webapi_url/netserver_url claims point at the auth host (REST there: 421)",
    "suspended": "State API: State Suspended, IsRunning false; REST 503",
    "offline_maintenance": "State API: State OfflineMaintenance, IsRunning false; REST 503",
    "online_maintenance": "State API: State OnlineMaintenance, IsRunning true",
    # Microsoft
    "admin_consent_required": "authorize: error=access_denied, AADSTS90094",
    "user_consent_blocked": "authorize: error=access_denied, AADSTS90093",
    "admin_consent_workflow": "authorize: error=access_denied, AADSTS90095",
    "risky_app": "authorize: error=access_denied, AADSTS900941",
    "consent_declined": "authorize / adminconsent: AADSTS65004 (user or admin declined)",
    "user_not_in_tenant": "authorize: error=access_denied, AADSTS50020",
    "conditional_access": "authorize: error=access_denied, AADSTS53003",
    "mfa_required": "authorize: error=interaction_required, AADSTS50076",
    "consent_missing_at_token": "code exchange: invalid_grant, AADSTS65001",
    "admin_consent_not_admin": "adminconsent: error=access_denied, AADSTS90093 (signed-in user is no admin)",
    "user_not_admin": "the signed-in Microsoft user is no Global Administrator (authorize and adminconsent)",
    "consent_principal_only": "authorize: the admin consents for themselves only (Principal grant), not the organization",
    "consent_missing": "Graph: no servicePrincipal and no grants for the app, whatever the tenant holds",
    "graph_forbidden": "Graph /users and /me/calendar: 403 Authorization_RequestDenied",
    "device_declined": "device code polling ends with authorization_declined",
    "device_expired": "device code polling ends with expired_token",
    "device_slow_down": "the first device code poll answers slow_down",
    # Google
    "admin_policy_enforced": "authorize: error=admin_policy_enforced; Google refresh: 400 admin_policy_enforced",
    "org_internal": "authorize: error=org_internal",
    "scopes_partial": "the user unticks google.untickedScopes: redirect, token and later refreshes carry fewer scopes",
    "directory_forbidden": "Directory users.list: 403 Not Authorized to access this resource/api",
}

# AADSTS codes: (stage, error, description). "aadsts_NNNN" scenarios pick from here as well.
AADSTS = {
    90094: ("authorize", "access_denied", "AdminConsentRequired: The app needs permission to access resources in "
            "your organization that only an admin can grant. Please ask an admin to grant permission to "
            "this app before you can use it."),
    90093: ("authorize", "access_denied", "The signed in user is not authorized to grant the requested "
            "permissions, or tenant policy prevents user consent."),
    90095: ("authorize", "access_denied", "AdminConsentRequiredRequestAccess: an admin consent request was "
            "submitted; an admin must approve it."),
    900941: ("authorize", "access_denied", "Administrator consent is required. App is considered risky. "
             "(AdminConsentRequiredDueToRiskyApp)"),
    65004: ("authorize", "access_denied", "User declined to consent to access the app."),
    50020: ("authorize", "access_denied", "User account from identity provider does not exist in tenant "
            "and cannot access the application in that tenant."),
    53003: ("authorize", "access_denied", "Access has been blocked by Conditional Access policies."),
    50076: ("authorize", "interaction_required", "Due to a configuration change made by your administrator, "
            "or because you moved to a new location, you must use multi-factor authentication."),
    50011: ("authorize", "invalid_request", "The redirect URI specified in the request does not match the "
            "redirect URIs configured for the application."),
    700016: ("authorize", "unauthorized_client", "Application was not found in the directory."),
    50194: ("authorize", "invalid_request", "Application is not configured as a multi-tenant application."),
    65001: ("token", "invalid_grant", "The user or administrator has not consented to use the application. "
            "Send an interactive authorization request for this user and resource."),
    70008: ("refresh", "invalid_grant", "The provided authorization code or refresh token has expired due to "
            "inactivity."),
    700082: ("refresh", "invalid_grant", "The refresh token has expired due to inactivity."),
    50173: ("refresh", "invalid_grant", "The provided grant has expired due to it being revoked."),
    700025: ("token", "invalid_client", "Client is public so neither 'client_assertion' nor 'client_secret' "
             "should be presented."),
    7000218: ("token", "invalid_client", "The request body must contain the following parameter: "
              "'client_assertion' or 'client_secret'."),
}
SCENARIO_AADSTS = {
    "admin_consent_required": 90094, "user_consent_blocked": 90093, "admin_consent_workflow": 90095,
    "risky_app": 900941, "consent_declined": 65004, "user_not_in_tenant": 50020,
    "conditional_access": 53003, "mfa_required": 50076, "consent_missing_at_token": 65001,
}

ID_TOKEN_VARIANTS = {"tampered_signature", "unknown_kid", "rotated_key", "alg_none", "alg_hs256",
                     "wrong_audience", "expired", "not_yet_valid", "nonce_mismatch", "missing_nonce",
                     "wrong_issuer"}

PROVIDERS = ("superoffice", "microsoft", "google")


def fail(message):
    sys.stderr.write("fake_idp: %s\n" % message)
    sys.stderr.flush()
    sys.exit(2)


def norm(name):
    return (name or "").strip().rstrip(".").lower()


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_uint(value):
    return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def s256(verifier):
    return b64url(hashlib.sha256(verifier.encode()).digest())


def token(prefix):
    return prefix + secrets.token_urlsafe(24)


def iso(ts):
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def guid(*parts):
    return str(uuid.uuid5(ID_NS, "/".join(parts)))


def add_query(url, params):
    parts = urllib.parse.urlsplit(url)
    query = parts.query + ("&" if parts.query else "") + urllib.parse.urlencode(params)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


# ---------------------------------------------------------------------------------------------
# Configuration

DEFAULT_CONFIG = {
    "clients": {
        "syncwizard-superoffice": "so-application-token",
        "syncwizard-microsoft": None,
        "syncwizard-google": "google-desktop-client-secret",
    },
    "kid": "fake-idp-key-1",
    "accessTokenLifetime": 3600,
    "codeLifetime": 600,
    "untrustedHosts": [],
    "extraHosts": [],
    "delayMs": {},
    "scenario": "success",
    "superoffice": {
        "environments": {"sod": "sod.superoffice.com", "stage": "qaonline.superoffice.com",
                         "online": "online.superoffice.com"},
        "tenants": {
            "Cust12345": {"environment": "online", "webapiHost": "app-online.superoffice.com"},
            "Cust23456": {"environment": "sod", "webapiHost": "app-sod.superoffice.com"},
            "Cust34567": {"environment": "stage", "webapiHost": "app-stage.superoffice.com"},
        },
        "user": {"sub": "admin@contoso.test", "upn": "admin@contoso.test", "email": "admin@contoso.test",
                 "associateId": 5, "personId": 12, "contactId": 2, "userName": "admin@contoso.test",
                 "fullName": "Ada Admin", "initials": "AA", "isAdministrator": True},
        "redirectUriPattern": r"^http://(127\.0\.0\.1|\[::1\]):[0-9]{1,5}(/[^?#]*)?$",
        "refreshMode": "rotate",
    },
    "microsoft": {
        "tenantId": "b7c3f1a2-4d5e-4f60-8a9b-0c1d2e3f4a5b",
        "tenantDomain": "contoso.test",
        "user": {"oid": "0f6e5d4c-3b2a-4190-8877-665544332211", "upn": "admin@contoso.test",
                 "name": "Ada Admin", "mail": "admin@contoso.test", "isGlobalAdmin": True},
        "redirectUris": ["http://localhost", "http://127.0.0.1"],
        "matchRedirectPath": False,
        # What the vendor's app registration lists (= what /.default means).
        "defaultScopes": {"graph": ["User.Read", "User.Read.All", "Calendars.ReadWrite", "Directory.Read.All"],
                          "outlook": ["EWS.AccessAsUser.All"]},
        # The tenant's initial grants: an organization-wide grant of defaultScopes.graph for every client.
        "consentType": "AllPrincipals",
        "ticksOrganizationConsent": True,
        "deviceInterval": 1,
        "devicePendingPolls": 1,
        "deviceExpiresIn": 900,
        "refreshMode": "reissue",
    },
    "google": {
        "domain": "contoso.test",
        "user": {"sub": "104729658311522000001", "email": "admin@contoso.test", "name": "Ada Admin",
                 "isAdmin": True},
        "directoryUsers": ["admin@contoso.test", "bob@contoso.test", "carol@contoso.test"],
        "untickedScopes": ["https://www.googleapis.com/auth/admin.directory.user.readonly"],
        "refreshMode": "none",
    },
}

REFRESH_MODES = {"rotate", "reissue", "none"}
TENANT_KEYS = {"environment", "webapiHost", "state", "companyName", "serial", "servicesVersion"}


def merge(defaults, given, label, nested=()):
    """Defaults overlaid with `given`; keys in `nested` are merged one level down, others replaced."""
    if not isinstance(given, dict):
        fail("%s must be a JSON object" % label)
    unknown = set(given) - set(defaults)
    if unknown:
        fail("%s: unknown keys %s (known: %s)" % (label, sorted(unknown), sorted(defaults)))
    out = copy.deepcopy(defaults)
    for key, value in given.items():
        out[key] = merge(defaults[key], value, "%s.%s" % (label, key)) if key in nested else copy.deepcopy(value)
    return out


class Config:
    def __init__(self, raw):
        top = merge({k: ({} if k in PROVIDERS else v) for k, v in DEFAULT_CONFIG.items()}, raw, "config")
        self.clients = top["clients"]
        if not isinstance(self.clients, dict) or not all(
                isinstance(v, (str, type(None))) for v in self.clients.values()):
            fail('clients must be {"client_id": "secret" | null}')
        self.kid = str(top["kid"])
        self.access_lifetime = int(top["accessTokenLifetime"])
        self.code_lifetime = int(top["codeLifetime"])
        self.untrusted_hosts = {norm(h) for h in top["untrustedHosts"]}
        self.extra_hosts = [norm(h) for h in top["extraHosts"]]
        # Host -> milliseconds to sleep before answering each request to it (control endpoints
        # excepted); "*" applies to every host without an entry of its own.
        delays = top["delayMs"]
        if not isinstance(delays, dict) or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 for v in delays.values()):
            fail('delayMs must be {"HOST" | "*": milliseconds >= 0}')
        self.delays = {(h if h == "*" else norm(h)): float(v) for h, v in delays.items()}
        self.scenario = top["scenario"]
        if self.scenario not in SCENARIOS and not str(self.scenario).startswith("aadsts_"):
            fail("scenario %r unknown" % self.scenario)
        self.so = merge(DEFAULT_CONFIG["superoffice"], top["superoffice"], "superoffice", ("user",))
        self.ms = merge(DEFAULT_CONFIG["microsoft"], top["microsoft"], "microsoft", ("user", "defaultScopes"))
        self.google = merge(DEFAULT_CONFIG["google"], top["google"], "google", ("user",))
        for label, section in (("superoffice", self.so), ("microsoft", self.ms), ("google", self.google)):
            if section["refreshMode"] not in REFRESH_MODES:
                fail("%s.refreshMode must be one of %s" % (label, sorted(REFRESH_MODES)))
        if self.ms["consentType"] not in CONSENT_TYPES:
            fail("microsoft.consentType must be one of %s" % sorted(CONSENT_TYPES))
        for label, value in (("microsoft.user.isGlobalAdmin", self.ms["user"]["isGlobalAdmin"]),
                             ("microsoft.ticksOrganizationConsent", self.ms["ticksOrganizationConsent"])):
            if not isinstance(value, bool):
                fail("%s must be true or false" % label)
        envs = self.so["environments"]
        for ctx, tenant in self.so["tenants"].items():
            if not isinstance(tenant, dict) or set(tenant) - TENANT_KEYS:
                fail("superoffice.tenants[%r]: keys are %s" % (ctx, sorted(TENANT_KEYS)))
            if tenant.get("environment") not in envs:
                fail("superoffice.tenants[%r].environment must be one of %s" % (ctx, sorted(envs)))
            tenant.setdefault("webapiHost", "app-%s.superoffice.com" % tenant["environment"])
            tenant.setdefault("state", "Running")
            tenant.setdefault("companyName", "Contoso AS")
            tenant.setdefault("serial", "1234567890")
            tenant.setdefault("servicesVersion", "Services88")
        try:
            self.so_redirect_re = re.compile(self.so["redirectUriPattern"])
        except re.error as error:
            fail("superoffice.redirectUriPattern: %s" % error)

    def so_env_by_host(self):
        return {norm(host): env for env, host in self.so["environments"].items()}

    def hosts(self):
        names = list(self.so_env_by_host())
        names += [norm(t["webapiHost"]) for t in self.so["tenants"].values()]
        names += [MS_LOGIN_HOST, GRAPH_HOST, OUTLOOK_HOST, GOOGLE_ACCOUNTS_HOST, GOOGLE_TOKEN_HOST,
                  GOOGLE_APIS_HOST, GOOGLE_ADMIN_HOST]
        names += self.extra_hosts + sorted(self.untrusted_hosts)
        out = []
        for name in names:
            if name and name not in out:
                out.append(name)
        return out


# ---------------------------------------------------------------------------------------------
# Request log


class Log:
    def __init__(self, path):
        self._file = open(path, "a", encoding="utf-8")
        self._lock = threading.Lock()
        self.entries = []

    def write(self, entry):
        entry = {"t": round(time.time(), 3), **entry}
        line = json.dumps(entry, separators=(",", ":"))
        with self._lock:
            self.entries.append(entry)
            self._file.write(line + "\n")
            self._file.flush()

    def snapshot(self):
        with self._lock:
            return list(self.entries)


# ---------------------------------------------------------------------------------------------
# Keys and JWTs


class Keys:
    def __init__(self, kid):
        self.kid = kid
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.attacker = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.rotated = None  # (kid, key) once a "rotated_key" sign-in happened
        self.lock = threading.Lock()

    @staticmethod
    def jwk(key, kid):
        numbers = key.public_key().public_numbers()
        return {"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
                "n": b64url_uint(numbers.n), "e": b64url_uint(numbers.e)}

    def jwks(self):
        with self.lock:
            keys = [self.jwk(self.key, self.kid)]
            if self.rotated:
                keys.append(self.jwk(self.rotated[1], self.rotated[0]))
        return {"keys": keys}

    def rotate(self):
        with self.lock:
            if self.rotated is None:
                self.rotated = (self.kid + "-rotated", rsa.generate_private_key(public_exponent=65537, key_size=2048))
            return self.rotated

    def public_pem(self):
        return self.key.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo)

    def sign(self, claims, variant=None):
        alg, kid, key = "RS256", self.kid, self.key
        if variant == "tampered_signature":
            key = self.attacker
        elif variant == "unknown_kid":
            key, kid = self.attacker, "kid-nobody-publishes"
        elif variant == "rotated_key":
            kid, key = self.rotate()
        elif variant == "alg_none":
            alg = "none"
        elif variant == "alg_hs256":
            alg = "HS256"
        header = {"alg": alg, "typ": "JWT"}
        if alg != "none":
            header["kid"] = kid
        signing_input = (b64url(json.dumps(header, separators=(",", ":")).encode()) + "." +
                         b64url(json.dumps(claims, separators=(",", ":")).encode())).encode()
        if alg == "RS256":
            signature = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        elif alg == "HS256":
            signature = hmac.new(self.public_pem(), signing_input, hashlib.sha256).digest()
        else:
            signature = b""
        return signing_input.decode() + "." + b64url(signature)


def apply_variant(claims, variant, now, wrong_issuer):
    if variant == "wrong_audience":
        claims["aud"] = "some-other-client"
    elif variant == "expired":
        claims.update(iat=now - 7200, nbf=now - 7200, exp=now - 3600)
    elif variant == "not_yet_valid":
        claims.update(nbf=now + 3600, exp=now + 7200)
    elif variant == "nonce_mismatch" and "nonce" in claims:
        claims["nonce"] = token("not-your-nonce-")
    elif variant == "missing_nonce":
        claims.pop("nonce", None)
    elif variant == "wrong_issuer":
        claims["iss"] = wrong_issuer
    return claims


# ---------------------------------------------------------------------------------------------
# TLS: one listener, certificate per SNI name


class TLS:
    def __init__(self, config, workdir):
        self.config = config
        self.ca = trustme.CA(organization_name="syncwizard fake identity provider CA")
        self.untrusted_ca = trustme.CA(organization_name="syncwizard untrusted CA")
        self.ca_file = os.path.join(workdir, "ca.pem")
        self.untrusted_ca_file = os.path.join(workdir, "untrusted-ca.pem")
        self.ca.cert_pem.write_to_path(self.ca_file)
        self.untrusted_ca.cert_pem.write_to_path(self.untrusted_ca_file)
        self.lock = threading.Lock()
        self.contexts = {}
        for host in config.hosts():
            self.contexts[host] = self._context(host)
        self.base = self._context("no-sni.invalid")
        self.base.sni_callback = self._on_sni
        self.local = threading.local()

    def _context(self, host):
        ca = self.untrusted_ca if host in self.config.untrusted_hosts else self.ca
        leaf = ca.issue_cert(host, common_name=host)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.set_alpn_protocols(["http/1.1"])
        leaf.configure_cert(context)
        return context

    def _on_sni(self, sock, server_name, _context):
        name = norm(server_name)
        self.local.sni = name or None
        if name:
            with self.lock:
                if name not in self.contexts:
                    # An unconfigured name still gets a trusted certificate, so what the client
                    # sends there shows up in the log (answered 404).
                    self.contexts[name] = self._context(name)
                sock.context = self.contexts[name]
        return None


class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, app, tls):
        self.app = app
        self.tls = tls
        # SYNCWIZARD_FAKE_BIND: another local address (Benchmarks/wan binds a namespace's own).
        super().__init__((os.environ.get("SYNCWIZARD_FAKE_BIND", "127.0.0.1"), 0), Handler)

    def finish_request(self, request, client_address):
        # The TLS handshake runs in the connection's own thread.
        try:
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        self.tls.local.sni = None
        request = self.tls.base.wrap_socket(request, server_side=True, do_handshake_on_connect=False)
        request.settimeout(30)
        try:
            request.do_handshake()
        except (OSError, ssl.SSLError):
            try:
                request.close()
            except OSError:
                pass
            return
        self.app.local.sni = self.tls.local.sni
        self.RequestHandlerClass(request, client_address, self)

    def shutdown_request(self, request):
        try:
            super().shutdown_request(request)
        except OSError:
            pass

    def handle_error(self, request, client_address):
        pass


# ---------------------------------------------------------------------------------------------
# HTTP plumbing


class Reply:
    def __init__(self, status, body=b"", content_type="text/html; charset=utf-8", headers=()):
        self.status = status
        self.body = body if isinstance(body, bytes) else body.encode("utf-8")
        self.content_type = content_type
        self.headers = list(headers)


def json_reply(status, obj, headers=()):
    return Reply(status, json.dumps(obj, indent=None).encode(), "application/json; charset=utf-8",
                 list(headers) + [("Cache-Control", "no-store"), ("Pragma", "no-cache")])


def html_reply(status, title, text):
    body = "<!DOCTYPE html><html><head><title>%s</title></head><body><h1>%s</h1><p>%s</p></body></html>" % (
        title, title, text)
    return Reply(status, body)


def redirect(location):
    return Reply(302, "<html><body>Object moved to <a href=\"%s\">here</a>.</body></html>" % location,
                 headers=[("Location", location)])


class Request:
    """What a handler sees: host (SNI), method, path, query and form (first value per name)."""

    def __init__(self, handler, body):
        self.sni = handler.sni
        self.host = handler.sni or norm((handler.headers.get("Host") or "").rsplit(":", 1)[0])
        self.host_header = norm((handler.headers.get("Host") or "").rsplit(":", 1)[0])
        self.method = handler.command
        split = urllib.parse.urlsplit(handler.path)
        self.path = split.path
        self.query_pairs = urllib.parse.parse_qsl(split.query, keep_blank_values=True)
        self.query = {}
        for k, v in self.query_pairs:
            self.query.setdefault(k, v)
        self.headers = handler.headers
        self.body = body
        self.content_type = (handler.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        self.form_pairs = []
        if self.content_type == "application/x-www-form-urlencoded":
            self.form_pairs = urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        self.form = {}
        for k, v in self.form_pairs:
            self.form.setdefault(k, v)

    def bearer(self):
        value = self.headers.get("Authorization") or ""
        scheme, _, credentials = value.partition(" ")
        return credentials.strip() if scheme.lower() == "bearer" and credentials.strip() else None

    def logged_path(self):
        names = [k for k, _ in self.query_pairs]
        return self.path + ("?" + "&".join(names) if names else "")

    def safe_query(self):
        return {k: v for k, v in self.query.items() if k in SAFE_PARAMS}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-idp/1.0"
    sys_version = ""
    timeout = 60

    def setup(self):
        super().setup()
        self.sni = self.server.app.local.sni

    def log_message(self, *args):
        pass  # never echo requests: they carry codes and tokens

    def log_error(self, *args):
        pass

    def read_body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks, total = [], 0
            while True:
                line = self.rfile.readline(1024)
                if not line:
                    return None
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                total += size
                if total > MAX_BODY:
                    return None
                chunks.append(self.rfile.read(size))
                self.rfile.readline(8)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            return None
        return self.rfile.read(length) if length else b""

    def dispatch(self):
        app = self.server.app
        body = self.read_body()
        if body is None:
            self.close_connection = True
            return self.send(None, Reply(413, "request body too large or malformed"))
        req = Request(self, body)
        if req.path.startswith("/__control/"):
            return self.send(None, app.control(req))
        delay = app.config.delays.get(req.host, app.config.delays.get("*", 0))
        if delay:
            time.sleep(delay / 1000)
        entry = {
            "host": req.host, "method": req.method, "path": req.logged_path(), "status": None,
            "provider": None, "endpoint": None, "scenario": None,
            "grantType": None, "clientId": None, "hasCodeVerifier": None, "pkceOk": None,
            "bearerValid": None, "error": None,
        }
        safe = req.safe_query()
        if safe:
            entry["query"] = safe
        if req.host_header and req.sni and req.host_header != req.sni:
            reply = html_reply(421, "Misdirected Request", "Host header does not match the TLS server name.")
        else:
            try:
                reply = app.route(req, entry)
            except Exception as error:  # never print the request: it may carry secrets
                sys.stderr.write("fake_idp: internal error on %s %s: %s: %s\n" % (
                    req.method, req.path, type(error).__name__, error))
                reply = json_reply(500, {"error": "server_error", "error_description": "fixture bug"})
        self.send(entry, reply)

    def send(self, entry, reply):
        if entry is not None:
            entry["status"] = reply.status
            self.server.app.log.write(entry)  # before the first byte of the answer
        self.send_response(reply.status)
        for name, value in reply.headers:
            self.send_header(name, value)
        if reply.body or reply.status not in (204, 304):
            self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply.body)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = dispatch


# ---------------------------------------------------------------------------------------------
# Token store


class Store:
    def __init__(self):
        self.lock = threading.Lock()
        self.codes = {}     # code -> grant dict
        self.access = {}    # access token -> record
        self.refresh = {}   # refresh token -> record
        self.devices = {}   # device_code -> record
        self.issued_secrets = []  # every code/token value handed out, for leak assertions


# ---------------------------------------------------------------------------------------------
# Providers: shared OAuth machinery


class Provider:
    name = ""
    access_prefix = "at-"

    def __init__(self, app):
        self.app = app
        self.config = app.config
        self.store = app.store
        self.keys = app.keys

    # -- hooks ---------------------------------------------------------------------------------
    def section(self):
        raise NotImplementedError

    def id_token_claims(self, grant, now):
        raise NotImplementedError

    def wrong_issuer(self, grant):
        raise NotImplementedError

    def token_error(self, status, error, description, code=None):
        return json_reply(status, {"error": error, "error_description": description})

    def access_token_value(self, grant):
        return token(self.access_prefix)

    def token_extras(self, grant, scopes):
        return {}

    # -- helpers -------------------------------------------------------------------------------
    def scenario(self, req=None):
        return self.app.current_scenario(self.name)

    def client_secret_check(self, req, entry):
        """Returns (client_id, error reply or None). Accepts client_secret_post or client_secret_basic."""
        basic = None
        header = req.headers.get("Authorization") or ""
        if header.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(header[6:].strip()).decode()
                user, _, password = decoded.partition(":")
                basic = (urllib.parse.unquote_plus(user), urllib.parse.unquote_plus(password))
            except (ValueError, UnicodeDecodeError):
                return None, self.token_error(400, "invalid_request", "malformed Basic credentials")
        client_id = req.form.get("client_id")
        secret = req.form.get("client_secret")
        auth = "none"
        if basic is not None:
            if secret is not None:
                return client_id, self.token_error(400, "invalid_request",
                                                   "more than one client authentication method")
            if client_id is not None and client_id != basic[0]:
                return client_id, self.token_error(400, "invalid_request", "client_id differs from Basic user")
            client_id, secret, auth = basic[0], basic[1], "basic"
        elif secret is not None:
            auth = "post"
        entry["clientId"] = client_id
        entry["clientAuth"] = auth
        if not client_id or client_id not in self.config.clients:
            return client_id, self.token_error(401, "invalid_client", "unknown client_id", code=700016)
        expected = self.config.clients[client_id]
        if expected is None:
            entry["clientSecretOk"] = None
            if secret is not None and self.name == "microsoft":
                return client_id, self.token_error(401, "invalid_client", AADSTS[700025][2], code=700025)
            return client_id, None
        entry["clientSecretOk"] = secret is not None and hmac.compare_digest(secret, expected)
        if secret is None:
            return client_id, self.token_error(401, "invalid_client", "client_secret is required", code=7000218)
        if not entry["clientSecretOk"]:
            return client_id, self.token_error(401, "invalid_client", "invalid client secret", code=7000215)
        return client_id, None

    def authorize_common(self, req, entry, redirect_ok):
        """Checks shared by every authorization endpoint. Returns (grant, reply): a reply ends it."""
        q = req.query
        entry["endpoint"] = "authorize"
        client_id = q.get("client_id")
        entry["clientId"] = client_id
        redirect_uri = q.get("redirect_uri")
        entry["redirectUri"] = redirect_uri
        entry["scope"] = q.get("scope")
        entry["codeChallengeMethod"] = q.get("code_challenge_method")
        entry["hasState"] = "state" in q
        entry["hasNonce"] = "nonce" in q
        scenario = q.get("__scenario") or self.scenario()
        if scenario not in SCENARIOS and not scenario.startswith("aadsts_"):
            return None, html_reply(400, "Unknown scenario", "no such scenario")
        entry["scenario"] = scenario
        if req.method != "GET":
            return None, html_reply(405, "Method not allowed", "use GET")
        # Errors about the client or the redirect URI are shown to the user, never redirected.
        if not client_id or client_id not in self.config.clients:
            entry["error"] = "unknown_client"
            return None, self.unknown_client_page(client_id)
        if not redirect_uri or not redirect_ok(redirect_uri):
            entry["error"] = "redirect_uri_mismatch"
            return None, self.bad_redirect_page(redirect_uri)
        state = q.get("state")

        def back(error, description, **extra):
            entry["error"] = error
            params = [("error", error), ("error_description", description)]
            params += list(extra.items())
            if state is not None:
                params.append(("state", state))
            return None, redirect(add_query(redirect_uri, params))

        if q.get("response_type") != "code":
            return back("unsupported_response_type", "response_type must be code")
        if q.get("code_challenge_method") != "S256":
            return back("invalid_request", "code_challenge_method must be S256")
        challenge = q.get("code_challenge") or ""
        if not CHALLENGE_RE.match(challenge):
            return back("invalid_request", "code_challenge must be 43 base64url characters (S256)")
        grant = {
            "provider": self.name, "clientId": client_id, "redirectUri": redirect_uri,
            "challenge": challenge, "nonce": q.get("nonce"), "state": state,
            "scope": (q.get("scope") or "").split(), "scenario": scenario, "created": time.time(),
            "used": False, "issued": [],
        }
        return (grant, back), None

    def issue_code(self, grant, extra_params=()):
        code = token("code-")
        with self.store.lock:
            self.store.codes[code] = grant
            self.store.issued_secrets.append(code)
        params = [("code", code)]
        if grant["scenario"] == "wrong_state":
            params.append(("state", token("not-your-state-")))
        elif grant["state"] is not None:
            params.append(("state", grant["state"]))
        params += list(extra_params)
        return redirect(add_query(grant["redirectUri"], params))

    def unknown_client_page(self, client_id):
        return html_reply(400, "Technical error", "Unknown application. Request ID: %s" % uuid.uuid4())

    def bad_redirect_page(self, redirect_uri):
        return html_reply(400, "Technical error", "The redirect URI is not registered for this application. "
                          "Request ID: %s" % uuid.uuid4())

    # -- token endpoint ------------------------------------------------------------------------
    def token_endpoint(self, req, entry):
        entry["endpoint"] = "token"
        entry["formKeys"] = [k for k, _ in req.form_pairs]
        entry["contentType"] = req.content_type or None
        if req.method != "POST":
            return self.token_error(405, "invalid_request", "the token endpoint takes POST")
        if req.content_type != "application/x-www-form-urlencoded":
            return self.token_error(400, "invalid_request",
                                    "Content-Type must be application/x-www-form-urlencoded")
        grant_type = req.form.get("grant_type")
        entry["grantType"] = grant_type
        entry["redirectUri"] = req.form.get("redirect_uri")
        if "scope" in req.form:
            entry["scope"] = req.form.get("scope")
        client_id, error = self.client_secret_check(req, entry)
        if error is not None:
            entry["error"] = "invalid_client"
            return error
        if grant_type == "authorization_code":
            return self.exchange_code(req, entry, client_id)
        if grant_type == "refresh_token":
            return self.refresh(req, entry, client_id)
        if grant_type == "urn:ietf:params:oauth:grant-type:device_code" and self.name == "microsoft":
            return self.poll_device(req, entry, client_id)
        if grant_type == "client_credentials" and self.name == "microsoft":
            return self.client_credentials(req, entry, client_id)
        entry["error"] = "unsupported_grant_type"
        return self.token_error(400, "unsupported_grant_type", "grant_type %r is not supported" % grant_type)

    def exchange_code(self, req, entry, client_id):
        f = req.form
        code = f.get("code")
        verifier = f.get("code_verifier")
        entry["hasCodeVerifier"] = verifier is not None
        with self.store.lock:
            grant = self.store.codes.get(code) if code else None
            if grant is not None and grant["provider"] != self.name:
                grant = None
            reused = grant is not None and grant["used"]
            if grant is not None:
                grant["used"] = True
                if reused:  # RFC 6749 4.1.2: revoke what the code produced
                    for value in grant["issued"]:
                        self.store.refresh.pop(value, None)
                        self.store.access.pop(value, None)
        if grant is None:
            return self.fail_grant(entry, "unknown authorization code")
        entry["scenario"] = grant["scenario"]
        if reused:
            return self.fail_grant(entry, "authorization code already redeemed")
        if time.time() - grant["created"] > self.config.code_lifetime:
            return self.fail_grant(entry, "authorization code expired")
        if grant["clientId"] != client_id:
            return self.fail_grant(entry, "authorization code was issued to another client")
        if f.get("redirect_uri") != grant["redirectUri"]:
            return self.fail_grant(entry, "redirect_uri differs from the authorization request's")
        if verifier is None:
            entry["pkceOk"] = False
            return self.fail_grant(entry, "code_verifier missing")
        entry["pkceOk"] = bool(VERIFIER_RE.match(verifier)) and hmac.compare_digest(s256(verifier), grant["challenge"])
        if not VERIFIER_RE.match(verifier):
            return self.fail_grant(entry, "code_verifier must be 43-128 characters of [A-Za-z0-9-._~]")
        if not entry["pkceOk"]:
            return self.fail_grant(entry, "PKCE verification failed")
        scenario = grant["scenario"]
        if scenario == "token_server_error":
            entry["error"] = "server_error"
            return self.token_error(500, "server_error", "the token service is unavailable")
        if scenario == "code_rejected":
            return self.fail_grant(entry, "authorization code is invalid or expired")
        aadsts = self.aadsts_for(scenario, "token")
        if aadsts is not None:
            entry["error"] = AADSTS[aadsts][1]
            return self.token_error(400, AADSTS[aadsts][1], AADSTS[aadsts][2], code=aadsts)
        return self.issue_tokens(grant, entry, grant.get("granted", grant["scope"]), variant=scenario,
                                 with_refresh=True, with_nonce=True)

    def fail_grant(self, entry, description, code=None):
        entry["error"] = "invalid_grant"
        return self.token_error(400, "invalid_grant", description, code=code)

    def aadsts_for(self, scenario, stage):
        return None

    def wants_refresh_token(self, scopes):
        return True

    def wants_id_token(self, scopes):
        return "openid" in scopes

    def issue_tokens(self, grant, entry, scopes, variant, with_refresh, with_nonce):
        now = int(time.time())
        lifetime = self.config.access_lifetime
        access = self.access_token_value(grant)
        record = {"provider": self.name, "clientId": grant["clientId"], "expires": time.time() + lifetime,
                  "scopes": list(scopes), "grant": grant}
        body = {"access_token": access, "token_type": "Bearer", "expires_in": lifetime}
        issued = [access]
        refresh = None
        if with_refresh and self.wants_refresh_token(grant["scope"]):
            refresh = token("rt-")
            body["refresh_token"] = refresh
            issued.append(refresh)
        if self.wants_id_token(grant["scope"]):
            claims = self.id_token_claims(grant, now)
            if not with_nonce:
                claims.pop("nonce", None)
            if variant in ID_TOKEN_VARIANTS:
                claims = apply_variant(claims, variant, now, self.wrong_issuer(grant))
            body["id_token"] = self.keys.sign(claims, variant if variant in ID_TOKEN_VARIANTS else None)
        body.update(self.token_extras(grant, scopes))
        with self.store.lock:
            self.store.access[access] = record
            if refresh is not None:
                self.store.refresh[refresh] = {"provider": self.name, "clientId": grant["clientId"],
                                               "grant": grant, "scopes": list(scopes)}
            grant["issued"].extend(issued)
            self.store.issued_secrets.extend(issued)
        return json_reply(200, body)

    def client_credentials(self, req, entry, client_id):
        """App-only token (Microsoft): a confidential client, a /.default scope; no refresh token, no id_token."""
        scope = req.form.get("scope") or ""
        if self.config.clients.get(client_id) is None:
            entry["error"] = "invalid_client"
            return self.token_error(401, "invalid_client", "client_credentials needs a confidential client", code=7000218)
        if not scope.endswith("/.default"):
            entry["error"] = "invalid_scope"
            return self.token_error(400, "invalid_scope", "client_credentials needs a /.default scope", code=1002012)
        access = token(self.access_prefix)
        with self.store.lock:
            self.store.access[access] = {"provider": self.name, "clientId": client_id, "expires": time.time() + self.config.access_lifetime,
                                         "scopes": [scope], "grant": {"clientId": client_id, "scope": scope, "issued": [access]}}
            self.store.issued_secrets.append(access)
        return json_reply(200, {"access_token": access, "token_type": "Bearer", "expires_in": self.config.access_lifetime})

    def refresh(self, req, entry, client_id):
        value = req.form.get("refresh_token")
        scenario = self.scenario()
        entry["scenario"] = scenario
        if scenario == "token_server_error":  # before anything is consumed
            entry["error"] = "server_error"
            return self.token_error(500, "server_error", "the token service is unavailable")
        if self.name == "google" and scenario == "admin_policy_enforced":
            # An app the Workspace admin stops trusting after the grant: Google refuses the refresh
            # with the same error as the authorization (developers.google.com/identity/protocols/oauth2
            # "admin_policy_enforced"; gcloud and google-auth report it as RefreshError). Nothing is consumed.
            entry["error"] = "admin_policy_enforced"
            return self.token_error(400, "admin_policy_enforced",
                                    "The administrator of your organization does not allow this app to access your data.")
        with self.store.lock:
            record = self.store.refresh.get(value) if value else None
            if record is not None and (record["provider"] != self.name or record["clientId"] != client_id):
                record = None
            if record is not None and scenario == "refresh_fails":
                self.store.refresh.pop(value, None)
                record = None
                revoked = True
            else:
                revoked = False
            mode = self.section()["refreshMode"]
            if scenario == "refresh_no_rotation":
                mode = "none"
            if record is not None and mode == "rotate":
                self.store.refresh.pop(value, None)
        if record is None:
            return self.refresh_failed(entry, revoked)
        grant = dict(record["grant"])
        grant["issued"] = record["grant"]["issued"]
        scopes = record["scopes"]
        if self.name == "microsoft" and req.form.get("scope"):
            # Microsoft refresh tokens are not tied to a resource: the same one redeems a token for
            # another resource the client has consent for (learn.microsoft.com/entra/identity-platform/
            # refresh-tokens), else AADSTS65001. Only the requested resource changes.
            resource, wanted, problem = self.resolve_scopes(req.form["scope"].split())
            if problem:
                return self.token_error(400, "invalid_scope", problem, code=28000)
            if resource != grant.get("resource", "graph"):
                named = [w for w in wanted if w not in ("openid", "profile", "email", "offline_access")]
                if not {w.lower() for w in named} <= self.covered(client_id, resource):
                    entry["error"] = "invalid_grant"
                    return self.token_error(400, "invalid_grant", "AADSTS65001: " + AADSTS[65001][2], code=65001)
                grant["resource"] = resource
                scopes = wanted
        if self.name == "google" and scenario == "scopes_partial":
            # The user re-consented without "Select all": Google's refresh answer names only what
            # is granted now (its `scope` field, developers.google.com/identity/protocols/oauth2/native-app
            # "Step 5: Refreshing an access token": "scope: The scopes of access granted").
            unticked = set(self.config.google["untickedScopes"])
            scopes = [s for s in scopes if s not in unticked]
        return self.issue_tokens(grant, entry, scopes, variant=scenario,
                                 with_refresh=(mode != "none"), with_nonce=False)

    def refresh_failed(self, entry, revoked):
        return self.fail_grant(entry, "refresh token is invalid, expired or revoked")

    # -- bearer checks -------------------------------------------------------------------------
    def bearer_record(self, req, entry):
        value = req.bearer()
        with self.store.lock:
            record = self.store.access.get(value) if value else None
        ok = record is not None and record["provider"] == self.name and record["expires"] > time.time()
        entry["bearerValid"] = ok
        return record if ok else None


# ---------------------------------------------------------------------------------------------
# SuperOffice


class SuperOffice(Provider):
    name = "superoffice"

    def section(self):
        return self.config.so

    def tenant(self, ctx):
        for key, tenant in self.config.so["tenants"].items():
            if key.lower() == (ctx or "").lower():
                return key, tenant
        return None, None

    def issuer(self, env):
        return "https://" + self.config.so["environments"][env]

    def access_token_value(self, grant):
        # SuperOffice reference tokens start with the context identifier; opaque to clients.
        return "8A:%s.%s" % (grant["ctx"], token("at-"))

    def route(self, req, entry):
        envs = self.config.so_env_by_host()
        if req.host in envs:
            env = envs[req.host]
            entry["provider"] = self.name
            path = req.path
            if path == "/login/common/oauth/authorize":
                return self.authorize(req, entry, env)
            if path == "/login/common/oauth/tokens":
                return self.token_endpoint(req, entry)
            if path == "/login/.well-known/jwks":
                entry["endpoint"] = "jwks"
                return json_reply(200, self.keys.jwks())
            if path == "/login/.well-known/openid-configuration":
                entry["endpoint"] = "discovery"
                return json_reply(200, self.discovery(env))
            m = re.match(r"^/api/state/([^/]+)$", path)
            if m:
                return self.state_api(req, entry, env, urllib.parse.unquote(m.group(1)))
            m = re.match(r"^/([^/]+)/(api|Remote)/", path)
            if m:
                entry["endpoint"] = "rest"
                return json_reply(421, {"Error": "Misdirected Request",
                                        "Message": "Wrong subdomain used to access tenant"})
            return html_reply(404, "Not found", "no such page")
        webapi_hosts = {norm(t["webapiHost"]) for t in self.config.so["tenants"].values()}
        if req.host in webapi_hosts:
            entry["provider"] = self.name
            return self.rest(req, entry)
        return None

    def discovery(self, env):
        base = self.issuer(env)
        return {
            "issuer": base,
            "authorization_endpoint": base + "/login/common/oauth/authorize",
            "token_endpoint": base + "/login/common/oauth/tokens",
            "jwks_uri": base + "/login/.well-known/jwks",
            "scopes_supported": ["openid"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "response_modes_supported": ["form_post", "fragment", "query"],
            "grant_types_supported": ["implicit", "authorization_code", "refresh_token"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "subject_types_supported": ["public"],
            "code_challenge_methods_supported": ["plain", "S256"],
        }

    def authorize(self, req, entry, env):
        result, reply = self.authorize_common(req, entry, lambda uri: bool(self.config.so_redirect_re.match(uri)))
        if reply is not None:
            return reply
        grant, back = result
        if "openid" not in grant["scope"]:
            return back("invalid_scope", "scope must contain openid")[1]
        # acr_values=tenant:Cust12345 picks the tenant, else the first one of this environment.
        wanted = None
        for value in (req.query.get("acr_values") or "").split():
            if value.startswith("tenant:"):
                wanted = value[len("tenant:"):]
        if wanted:
            ctx, tenant = self.tenant(wanted)
            if tenant is None or tenant["environment"] != env:
                return back("access_denied", "The user has no access to tenant %s" % wanted)[1]
        else:
            ctx = next((k for k, t in self.config.so["tenants"].items() if t["environment"] == env), None)
            if ctx is None:
                return back("access_denied", "The user has no tenant in this environment")[1]
        entry["tenant"] = ctx
        if grant["scenario"] == "access_denied":
            return back("access_denied", "The user did not approve the application")[1]
        grant.update(env=env, ctx=ctx)
        return self.issue_code(grant)

    def id_token_claims(self, grant, now):
        so = self.config.so
        user = so["user"]
        tenant = so["tenants"][grant["ctx"]]
        api_host = tenant["webapiHost"]
        if grant["scenario"] == "stale_webapi_url":
            api_host = so["environments"][grant["env"]]
        base = "https://%s/%s/" % (api_host, grant["ctx"])
        is_admin = bool(user["isAdministrator"]) and grant["scenario"] != "not_administrator"
        claims = {
            "iss": self.issuer(grant["env"]), "aud": grant["clientId"], "sub": user["sub"],
            "iat": now, "nbf": now, "exp": now + 3600, "nonce": grant["nonce"],
            SO_CLAIM + "associateid": str(user["associateId"]),
            SO_CLAIM + "identityprovider": "central-superid",
            SO_CLAIM + "email": user["email"],
            SO_CLAIM + "so_primary_email_address": user["email"],
            SO_CLAIM + "upn": user["upn"],
            SO_CLAIM + "is_administrator": "True" if is_admin else "False",
            SO_CLAIM + "ctx": grant["ctx"],
            SO_CLAIM + "company_name": tenant["companyName"],
            SO_CLAIM + "serial": tenant["serial"],
            SO_CLAIM + "initials": user["initials"],
            SO_CLAIM + "webapi_url": base + "api/",
            SO_CLAIM + "netserver_url": base + "Remote/%s/" % tenant["servicesVersion"],
        }
        if grant["nonce"] is None:
            del claims["nonce"]
        return claims

    def wrong_issuer(self, grant):
        others = [e for e in self.config.so["environments"] if e != grant["env"]]
        return self.issuer(others[0]) if others else "https://evil.superoffice.test"

    def tenant_state(self, tenant, scenario):
        state = tenant["state"]
        if scenario == "suspended":
            state = "Suspended"
        elif scenario == "offline_maintenance":
            state = "OfflineMaintenance"
        elif scenario == "online_maintenance":
            state = "OnlineMaintenance"
        return state, state in ("Running", "OnlineMaintenance")

    def state_api(self, req, entry, env, ctx_raw):
        entry["endpoint"] = "state"
        scenario = self.scenario()
        entry["scenario"] = scenario
        ctx, tenant = self.tenant(ctx_raw)
        entry["tenant"] = ctx or ctx_raw
        valid_until = iso(time.time() + 3600)
        if tenant is None or tenant["environment"] != env:
            # Assumption (not documented): an unknown tenant answers 200 with State Unknown.
            return json_reply(200, {"ContextIdentifier": ctx_raw, "Endpoint": None, "State": "Unknown",
                                    "IsRunning": False, "ValidUntil": valid_until, "Api": None})
        state, running = self.tenant_state(tenant, scenario)
        endpoint = "https://%s/%s" % (tenant["webapiHost"], ctx)
        return json_reply(200, {"ContextIdentifier": ctx, "Endpoint": endpoint, "State": state,
                                "IsRunning": running, "ValidUntil": valid_until, "Api": endpoint + "/api"})

    def rest(self, req, entry):
        entry["endpoint"] = "rest"
        m = re.match(r"^/([^/]+)/api/(.*)$", req.path)
        if not m:
            return html_reply(404, "Not found", "no such page")
        ctx, tenant = self.tenant(m.group(1))
        rest_path = m.group(2)
        entry["tenant"] = ctx or m.group(1)
        if tenant is None:
            return json_reply(404, {"Error": "Unknown tenant"})
        if norm(tenant["webapiHost"]) != req.host:
            return json_reply(421, {"Error": "Misdirected Request", "Message": "Wrong subdomain used to access tenant"})
        scenario = self.scenario()
        entry["scenario"] = scenario
        state, running = self.tenant_state(tenant, scenario)
        if not running:
            return json_reply(503, {"Error": "Tenant not available", "State": state})
        record = self.bearer_record(req, entry)
        if record is None or record["grant"].get("ctx") != ctx:
            entry["bearerValid"] = False
            return json_reply(401, {"Error": "Unauthorized", "Message": "Bearer token is invalid or expired"},
                              headers=[("WWW-Authenticate", 'Bearer error="invalid_token"')])
        if rest_path.lower() == "v1/user/currentprincipal" and req.method == "GET":
            entry["endpoint"] = "currentPrincipal"
            return json_reply(200, self.principal(ctx))
        return json_reply(404, {"Error": "Not found", "Message": "no such resource in the fake"})

    def principal(self, ctx):
        user = self.config.so["user"]
        return {
            "UserType": "InternalAssociate", "Associate": user["initials"], "AssociateId": user["associateId"],
            "IsPerson": True, "PersonId": user["personId"], "CountryId": 578, "HomeCountryId": 578,
            "ContactId": user["contactId"], "GroupId": 1, "BusinessId": 0, "CategoryId": 0, "ContactOwner": 0,
            "RoleId": 1, "RoleName": "Administrator", "RoleDescription": "Full access",
            "RoleType": "Employee", "Licenses": [], "FullName": user["fullName"],
            "EMailAddress": user["email"], "FunctionRights": ["admin-all"], "EjUserId": 0, "EjAccessLevel": 0,
            "EjUserStatus": "Normal", "ProvidedCredentials": [], "SecondaryGroups": [],
            "DatabaseContextIdentifier": ctx, "UserName": user["userName"],
        }


# ---------------------------------------------------------------------------------------------
# Microsoft identity platform + Graph


def graph_scope(scope):
    """('graph'|'outlook'|None, short name) for a requested scope string."""
    lowered = scope.lower()
    for prefix, resource in (("https://graph.microsoft.com/", "graph"), ("https://outlook.office365.com/", "outlook"),
                             ("https://outlook.office.com/", "outlook")):
        if lowered.startswith(prefix):
            return resource, scope[len(prefix):]
    if lowered in OIDC_SCOPES:
        return None, scope
    return "graph", scope


class Microsoft(Provider):
    name = "microsoft"

    def __init__(self, app):
        super().__init__(app)
        self.grants_lock = threading.Lock()
        self.reset_grants(self.config.ms["consentType"])

    def section(self):
        return self.config.ms

    # -- the tenant's consent state --------------------------------------------------------------
    # Delegated permission grants (Graph's oauth2PermissionGrant): {"clientId" (the app id),
    # "resource" ("graph"|"outlook"), "consentType" ("AllPrincipals"|"Principal"), "principalId"
    # (null for AllPrincipals), "scopes": [names]}. Consent pages and /adminconsent add to them; Graph
    # reports them. A client gets its service principal in the tenant with its first grant.
    def reset_grants(self, consent_type, grants=None):
        if grants is None:
            grants = []
            if consent_type != "none":
                oid = self.config.ms["user"]["oid"] if consent_type == "Principal" else None
                grants = [{"clientId": c, "resource": "graph", "consentType": consent_type, "principalId": oid,
                           "scopes": list(self.config.ms["defaultScopes"]["graph"])} for c in self.config.clients]
        with self.grants_lock:
            self.grants = grants
            self.service_principals = {g["clientId"] for g in grants}

    def add_grant(self, client_id, resource, consent_type, scopes):
        principal = self.config.ms["user"]["oid"] if consent_type == "Principal" else None
        with self.grants_lock:
            grant = next((g for g in self.grants if (g["clientId"], g["resource"], g["consentType"], g["principalId"])
                          == (client_id, resource, consent_type, principal)), None)
            if grant is None:
                grant = {"clientId": client_id, "resource": resource, "consentType": consent_type,
                         "principalId": principal, "scopes": []}
                self.grants.append(grant)
            for scope in scopes:  # a set as Graph keeps it, in the order consented
                if scope.lower() not in {s.lower() for s in grant["scopes"]}:
                    grant["scopes"].append(scope)
            self.service_principals.add(client_id)

    def covered(self, client_id, resource):
        """Lower-cased scopes the signed-in user already holds for this client and resource."""
        oid = self.config.ms["user"]["oid"]
        with self.grants_lock:
            return {s.lower() for g in self.grants if g["clientId"] == client_id and g["resource"] == resource
                    and (g["consentType"] == "AllPrincipals" or g["principalId"] == oid) for s in g["scopes"]}

    def control_grants(self, req):
        """GET: the tenant's grants. POST {} resets them to the config's, {"consentType": X} to what
        that consentType gives, {"grants": [{"clientId", "consentType", "scopes", "resource"?}]} to those."""
        if req.method == "POST":
            try:
                body = json.loads(req.body or b"{}")
                consent_type = body.get("consentType", self.config.ms["consentType"])
                grants = None
                if "grants" in body:
                    grants = [{"clientId": g["clientId"], "resource": g.get("resource", "graph"),
                               "consentType": g["consentType"],
                               "principalId": self.config.ms["user"]["oid"] if g["consentType"] == "Principal" else None,
                               "scopes": g["scopes"].split() if isinstance(g["scopes"], str) else list(g["scopes"])}
                              for g in body["grants"]]
                if consent_type not in CONSENT_TYPES or any(
                        g["consentType"] not in ("AllPrincipals", "Principal") or g["resource"] not in RESOURCE_APP_IDS
                        for g in grants or ()):
                    raise ValueError("bad consentType or resource")
            except (ValueError, KeyError, TypeError, AttributeError) as error:
                return json_reply(400, {"error": "bad grants request: %s" % error})
            self.reset_grants(consent_type, grants)
        elif req.method != "GET":
            return json_reply(405, {"error": "GET or POST"})
        with self.grants_lock:
            return json_reply(200, {"grants": copy.deepcopy(self.grants),
                                    "servicePrincipals": sorted(self.service_principals)})

    def is_global_admin(self, scenario):
        return self.config.ms["user"]["isGlobalAdmin"] and scenario != "user_not_admin"

    def consent(self, grant, entry, prompt):
        """The consent page of a sign-in, if one is due. Returns None, or (error, AADSTS code) to redirect with.

        A page is due when a requested scope is not granted yet, or prompt=consent forces it (then
        it lists every requested scope, so a non-admin is stopped even after a tenant-wide consent).
        Only a Global Administrator may consent to admin-only permissions; the "Consent on behalf of
        your organization" box is shown to them alone (protocols.md 2.3, application-consent-experience)."""
        resource = grant["resource"]
        wanted = [s for s in grant["granted"] if s.lower() not in OIDC_SCOPES]
        have = self.covered(grant["clientId"], resource)
        shown = wanted if prompt == "consent" else [s for s in wanted if s.lower() not in have]
        entry["consentShown"] = bool(shown)
        if not shown:
            return None
        if prompt == "none":
            return "consent_required", 65001
        admin = self.is_global_admin(grant["scenario"])
        if not admin and resource == "graph" and any(s.lower() in ADMIN_ONLY_GRAPH for s in shown):
            return "access_denied", 90094  # "Need admin approval"
        organization = admin and self.config.ms["ticksOrganizationConsent"] \
            and grant["scenario"] != "consent_principal_only"
        consent_type = "AllPrincipals" if organization else "Principal"
        self.add_grant(grant["clientId"], resource, consent_type, shown)
        entry["consentType"] = consent_type
        entry["consentedScopes"] = shown
        return None

    def tenant_ok(self, tenant, allow_common=True):
        ms = self.config.ms
        names = {ms["tenantId"].lower(), ms["tenantDomain"].lower(), "organizations"}
        if allow_common:
            names.add("common")
        return tenant.lower() in names

    def token_error(self, status, error, description, code=None):
        code = code or {"invalid_grant": 70000, "invalid_request": 900144, "invalid_client": 7000215,
                        "unsupported_grant_type": 70003, "server_error": 50000}.get(error, 90000)
        return json_reply(status, {
            "error": error, "error_description": "AADSTS%d: %s Trace ID: %s Correlation ID: %s Timestamp: %s" % (
                code, description, uuid.uuid4(), uuid.uuid4(), iso(time.time())),
            "error_codes": [code], "timestamp": iso(time.time()), "trace_id": str(uuid.uuid4()),
            "correlation_id": str(uuid.uuid4()), "error_uri": "https://%s/error?code=%d" % (MS_LOGIN_HOST, code)})

    def aadsts_for(self, scenario, stage):
        code = SCENARIO_AADSTS.get(scenario)
        if code is None and scenario.startswith("aadsts_"):
            try:
                code = int(scenario[len("aadsts_"):])
            except ValueError:
                return None
        if code in AADSTS and AADSTS[code][0] == stage:
            return code
        return None

    def redirect_ok(self, uri):
        parts = urllib.parse.urlsplit(uri)
        for registered in self.config.ms["redirectUris"]:
            reg = urllib.parse.urlsplit(registered)
            loopback = reg.hostname in ("localhost", "127.0.0.1")
            if parts.scheme != reg.scheme or parts.hostname != reg.hostname:
                continue
            if not loopback and parts.port != reg.port:
                continue  # the port is ignored only for loopback redirects
            if self.config.ms["matchRedirectPath"] and (parts.path or "/") != (reg.path or "/"):
                continue
            return True
        return False

    def unknown_client_page(self, client_id):
        return html_reply(400, "Sign in", "AADSTS700016: %s" % AADSTS[700016][2])

    def bad_redirect_page(self, redirect_uri):
        return html_reply(400, "Sign in", "AADSTS50011: %s" % AADSTS[50011][2])

    def issuer(self):
        return "https://%s/%s/v2.0" % (MS_LOGIN_HOST, self.config.ms["tenantId"])

    def route(self, req, entry):
        if req.host == MS_LOGIN_HOST:
            entry["provider"] = self.name
            m = re.match(r"^/([^/]+)/(oauth2/v2\.0/authorize|oauth2/v2\.0/token|oauth2/v2\.0/devicecode|"
                         r"discovery/v2\.0/keys|v2\.0/\.well-known/openid-configuration|v2\.0/adminconsent|"
                         r"adminconsent)$", req.path)
            if not m:
                return html_reply(404, "Not found", "no such page")
            tenant, what = m.group(1), m.group(2)
            entry["tenant"] = tenant
            if what == "discovery/v2.0/keys":
                entry["endpoint"] = "jwks"
                return json_reply(200, self.keys.jwks())
            if not self.tenant_ok(tenant):
                entry["error"] = "invalid_tenant"
                if what.startswith("oauth2/v2.0/token") or what.endswith("devicecode"):
                    return self.token_error(400, "invalid_request", "Tenant '%s' not found." % tenant, code=90002)
                return html_reply(400, "Sign in", "AADSTS90002: Tenant '%s' not found." % tenant)
            if what == "v2.0/.well-known/openid-configuration":
                entry["endpoint"] = "discovery"
                return json_reply(200, self.discovery(tenant))
            if what == "oauth2/v2.0/authorize":
                return self.authorize(req, entry, tenant)
            if what == "oauth2/v2.0/token":
                return self.token_endpoint(req, entry)
            if what == "oauth2/v2.0/devicecode":
                return self.devicecode(req, entry, tenant)
            return self.adminconsent(req, entry, tenant, legacy=(what == "adminconsent"))
        if req.host == GRAPH_HOST:
            entry["provider"] = self.name
            return self.graph(req, entry)
        if req.host == OUTLOOK_HOST:
            entry["provider"] = self.name
            return self.outlook(req, entry)
        return None

    def discovery(self, tenant):
        base = "https://%s/%s" % (MS_LOGIN_HOST, tenant)
        issuer_tenant = self.config.ms["tenantId"] if tenant.lower() not in ("common", "organizations") else "{tenantid}"
        return {
            "issuer": "https://%s/%s/v2.0" % (MS_LOGIN_HOST, issuer_tenant),
            "authorization_endpoint": base + "/oauth2/v2.0/authorize",
            "token_endpoint": base + "/oauth2/v2.0/token",
            "device_authorization_endpoint": base + "/oauth2/v2.0/devicecode",
            "jwks_uri": base + "/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "subject_types_supported": ["pairwise"],
            "tenant_region_scope": "EU",
        }

    def resolve_scopes(self, requested):
        """Requested scope list -> (resource, granted list) or an error description."""
        resources = set()
        granted = []
        for scope in requested:
            resource, short = graph_scope(scope)
            if resource is None:
                granted.append(short)
                continue
            resources.add(resource)
            if short == ".default":
                granted += self.config.ms["defaultScopes"][resource]
            else:
                granted.append(short)
        if len(resources) > 1:
            return None, None, "AADSTS28000: Provided value for the input parameter scope is not valid because " \
                               "it contains more than one resource."
        return (resources.pop() if resources else "graph"), granted, None

    def authorize(self, req, entry, tenant):
        result, reply = self.authorize_common(req, entry, self.redirect_ok)
        if reply is not None:
            return reply
        grant, back = result
        resource, granted, problem = self.resolve_scopes(grant["scope"])
        if problem:
            return back("invalid_request", problem)[1]
        scenario = grant["scenario"]
        if scenario == "access_denied":
            return back("access_denied", "AADSTS65004: " + AADSTS[65004][2], error_subcode="cancel")[1]
        code = self.aadsts_for(scenario, "authorize")
        if code is not None:
            return back(AADSTS[code][1], "AADSTS%d: %s" % (code, AADSTS[code][2]))[1]
        grant.update(resource=resource, granted=granted, tenant=tenant)
        refused = self.consent(grant, entry, req.query.get("prompt"))
        if refused is not None:
            error, code = refused
            return back(error, "AADSTS%d: %s" % (code, AADSTS[code][2]))[1]
        return self.issue_code(grant, [("session_state", str(uuid.uuid4()))])

    def wants_refresh_token(self, scopes):
        return "offline_access" in scopes

    def id_token_claims(self, grant, now):
        ms = self.config.ms
        user = ms["user"]
        claims = {
            "ver": "2.0", "iss": self.issuer(), "aud": grant["clientId"], "iat": now, "nbf": now,
            "exp": now + 3600, "sub": guid("sub", user["oid"], grant["clientId"]), "oid": user["oid"],
            "tid": ms["tenantId"], "preferred_username": user["upn"], "name": user["name"],
            "email": user["mail"], "nonce": grant["nonce"],
        }
        if grant["nonce"] is None:
            del claims["nonce"]
        return claims

    def wrong_issuer(self, grant):
        return "https://%s/%s/v2.0" % (MS_LOGIN_HOST, "9188040d-6c67-4c5b-b112-36a304b66dad")

    def token_extras(self, grant, scopes):
        shown = [s for s in scopes if s not in ("openid", "profile", "email", "offline_access")]
        prefix = "https://graph.microsoft.com/" if grant.get("resource", "graph") == "graph" \
            else "https://outlook.office365.com/"
        return {"scope": " ".join(prefix + s for s in shown), "ext_expires_in": self.config.access_lifetime}

    def refresh_failed(self, entry, revoked):
        code = 50173 if revoked else 70008
        return self.fail_grant(entry, AADSTS[code][2], code=code)

    # -- admin consent ---------------------------------------------------------------------------
    def adminconsent(self, req, entry, tenant, legacy=False):
        """Tenant-wide consent by an admin: no code, no tokens, and no client secret needed, so a
        public client's admin can use it too (protocols.md 2.3, 7.3)."""
        q = req.query
        entry["endpoint"] = "adminconsent"
        entry["clientId"] = q.get("client_id")
        entry["redirectUri"] = q.get("redirect_uri")
        entry["scope"] = q.get("scope")
        scenario = q.get("__scenario") or self.scenario()
        entry["scenario"] = scenario
        if tenant.lower() == "common":
            entry["error"] = "invalid_request"
            return html_reply(400, "Sign in", "AADSTS50194: the adminconsent endpoint needs a tenant or "
                              "'organizations', not 'common'.")
        if q.get("client_id") not in self.config.clients:
            entry["error"] = "unknown_client"
            return self.unknown_client_page(q.get("client_id"))
        uri = q.get("redirect_uri")
        if not uri or not self.redirect_ok(uri):
            entry["error"] = "redirect_uri_mismatch"
            return self.bad_redirect_page(uri)
        # v2 needs scope; the legacy endpoint always consents to the app registration (.default).
        requested = (q.get("scope") or ("" if not legacy else "https://graph.microsoft.com/.default")).split()
        if not requested:
            entry["error"] = "invalid_request"
            return html_reply(400, "Sign in", "AADSTS900144: The request body must contain the following "
                              "parameter: 'scope'.")
        per_resource = {}
        for scope in requested:
            resource, short = graph_scope(scope)
            if resource is not None:
                names = self.config.ms["defaultScopes"][resource] if short == ".default" else [short]
                per_resource.setdefault(resource, []).extend(names)
        params = [("admin_consent", "True")]
        if scenario == "admin_consent_not_admin" or not self.is_global_admin(scenario):
            entry["error"] = "access_denied"
            params += [("error", "access_denied"), ("error_description", "AADSTS90093: " + AADSTS[90093][2])]
        elif scenario in ("consent_declined", "access_denied"):
            entry["error"] = "consent_required"
            params += [("error", "consent_required"), ("error_description", "AADSTS65004: " + AADSTS[65004][2])]
        else:
            for resource, names in per_resource.items():
                self.add_grant(q["client_id"], resource, "AllPrincipals", names)
            entry["consentType"] = "AllPrincipals"
            entry["consentedScopes"] = [n if r == "graph" else "%s/%s" % (RESOURCE_HOSTS[r], n)
                                        for r, names in per_resource.items() for n in names]
            params += [("tenant", self.config.ms["tenantId"]), ("scope", q.get("scope") or "")]
        state = q.get("state")
        if scenario == "wrong_state":
            params.append(("state", token("not-your-state-")))
        elif state is not None:
            params.append(("state", state))
        return redirect(add_query(uri, params))

    # -- device code -----------------------------------------------------------------------------
    def devicecode(self, req, entry, tenant):
        entry["endpoint"] = "devicecode"
        entry["formKeys"] = [k for k, _ in req.form_pairs]
        if req.method != "POST" or req.content_type != "application/x-www-form-urlencoded":
            return self.token_error(400, "invalid_request", "POST a form", code=900144)
        client_id = req.form.get("client_id")
        entry["clientId"] = client_id
        entry["scope"] = req.form.get("scope")
        if client_id not in self.config.clients:
            entry["error"] = "unauthorized_client"
            return self.token_error(400, "unauthorized_client", AADSTS[700016][2], code=700016)
        requested = (req.form.get("scope") or "").split()
        resource, granted, problem = self.resolve_scopes(requested)
        if problem:
            entry["error"] = "invalid_scope"
            return self.token_error(400, "invalid_scope", problem, code=28000)
        scenario = self.scenario()
        entry["scenario"] = scenario
        ms = self.config.ms
        device_code = token("dc-")
        user_code = "".join(secrets.choice("ABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(9))
        with self.store.lock:
            self.store.devices[device_code] = {
                "clientId": client_id, "scope": requested, "granted": granted, "resource": resource,
                "scenario": scenario, "polls": 0, "lastPoll": None, "created": time.time(), "done": False,
                "tenant": tenant,
            }
            self.store.issued_secrets.append(device_code)
        return json_reply(200, {
            "user_code": user_code, "device_code": device_code,
            "verification_uri": "https://microsoft.com/devicelogin",
            "expires_in": ms["deviceExpiresIn"], "interval": ms["deviceInterval"],
            "message": "To sign in, use a web browser to open the page https://microsoft.com/devicelogin "
                       "and enter the code %s to authenticate." % user_code,
        })

    def poll_device(self, req, entry, client_id):
        ms = self.config.ms
        value = req.form.get("device_code")
        now = time.time()
        with self.store.lock:
            record = self.store.devices.get(value) if value else None
            if record is None or record["clientId"] != client_id:
                record = None
            else:
                previous = record["lastPoll"]
                record["lastPoll"] = now
                record["polls"] += 1
                polls = record["polls"]
        if record is None:
            entry["error"] = "invalid_grant"
            return self.token_error(400, "invalid_grant", "The provided value for 'device_code' is not valid.",
                                    code=70000)
        scenario = record["scenario"]
        entry["scenario"] = scenario
        entry["devicePoll"] = polls

        def device_error(error, code, text):
            entry["error"] = error
            return self.token_error(400, error, text, code=code)

        if record["done"]:
            return device_error("invalid_grant", 70000, "The device code was already redeemed.")
        if now - record["created"] > ms["deviceExpiresIn"]:
            return device_error("expired_token", 70020, "The provided value for the input parameter 'device_code' "
                                "is expired.")
        if scenario == "device_slow_down" and polls == 1:
            return device_error("slow_down", 70016, "OAuth 2.0 device flow error. Polling too fast; add 5 seconds "
                                "to the interval.")
        if previous is not None and now - previous < ms["deviceInterval"] - 0.2:
            return device_error("slow_down", 70016, "OAuth 2.0 device flow error. Polling faster than the interval.")
        pending = ms["devicePendingPolls"] + (1 if scenario == "device_slow_down" else 0)
        if polls <= pending:
            return device_error("authorization_pending", 70016, "OAuth 2.0 device flow error. Authorization is "
                                "pending. Continue polling.")
        if scenario == "device_declined":
            return device_error("authorization_declined", 70000, "The user declined the authorization request.")
        if scenario == "device_expired":
            return device_error("expired_token", 70020, "The provided value for the input parameter 'device_code' "
                                "is expired.")
        with self.store.lock:
            record["done"] = True
        grant = {"provider": self.name, "clientId": client_id, "redirectUri": None, "challenge": None,
                 "nonce": None, "state": None, "scope": record["scope"], "granted": record["granted"],
                 "resource": record["resource"], "scenario": scenario, "created": now, "used": True,
                 "issued": [], "tenant": record["tenant"]}
        return self.issue_tokens(grant, entry, grant["granted"], variant=scenario, with_refresh=True,
                                 with_nonce=False)

    # -- Graph -----------------------------------------------------------------------------------
    def graph_error(self, status, code, message):
        return json_reply(status, {"error": {"code": code, "message": message, "innerError": {
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S"),
            "request-id": str(uuid.uuid4()), "client-request-id": str(uuid.uuid4())}}})

    def graph(self, req, entry):
        entry["endpoint"] = "graph"
        scenario = self.scenario()
        entry["scenario"] = scenario
        record = self.bearer_record(req, entry)
        if req.bearer() is None:
            return self.graph_error(401, "InvalidAuthenticationToken", "Access token is empty.")
        if record is None or record["grant"].get("resource", "graph") != "graph":
            entry["bearerValid"] = False
            return self.graph_error(401, "InvalidAuthenticationToken", "Access token validation failure. "
                                    "Invalid audience or expired token.")
        path = req.path.rstrip("/")
        for name, pattern, permissions, denied in GRAPH_CALLS:
            match = re.match(pattern, path, re.IGNORECASE)
            if match:
                break
        else:
            return self.graph_error(404, "Request_ResourceNotFound", "Resource not found in the fake.")
        if req.method != "GET":
            return self.graph_error(405, "Request_BadRequest", "Specified HTTP method is not allowed for the "
                                    "request target.")
        # The token's scp decides, as in real Graph; an app-only token has none and is refused.
        held = {s.lower() for s in record["scopes"]}
        entry["graphCall"] = name
        entry["tokenScopes"] = [s for s in record["scopes"] if s.lower() not in OIDC_SCOPES]
        entry["requiredPermissions"] = list(permissions)
        entry["permissionOk"] = any(p.lower() in held for p in permissions)
        if not entry["permissionOk"] or (scenario == "graph_forbidden" and name in ("users", "calendar")):
            return self.graph_error(403, *denied)
        return getattr(self, "graph_" + name)(req.query, scenario, *match.groups())

    def graph_user(self):
        user = self.config.ms["user"]
        return {"id": user["oid"], "displayName": user["name"], "userPrincipalName": user["upn"],
                "mail": user["mail"], "givenName": user["name"].split()[0], "surname": user["name"].split()[-1]}

    def graph_list(self, entity, items, query):
        """A collection as Graph answers it; $select keeps only the named properties."""
        fields = [f.strip().lower() for f in (query.get("$select") or "").split(",") if f.strip()]
        if fields:
            items = [{k: v for k, v in item.items() if k.lower() in fields} for item in items]
        return json_reply(200, {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#" + entity,
                                "value": items})

    def graph_me(self, query, scenario):
        return json_reply(200, {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users/$entity",
                                **self.graph_user()})

    def graph_users(self, query, scenario):
        domain = self.config.ms["tenantDomain"]
        try:
            top = int(query.get("$top") or 100)
        except ValueError:
            return self.graph_error(400, "Request_BadRequest", "Invalid value for $top.")
        users = [self.graph_user()] + [{"id": guid("user", str(i)), "displayName": "User %d" % i,
                                        "userPrincipalName": "user%d@%s" % (i, domain),
                                        "mail": "user%d@%s" % (i, domain)} for i in range(1, 3)]
        return self.graph_list("users", users[:top], query)

    def graph_calendar(self, query, scenario, _owner):
        user = self.config.ms["user"]
        return json_reply(200, {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users('%s')/"
                                                  "calendar/$entity" % user["oid"],
                                "id": "AAMkAGI2TGuLAAA=", "name": "Calendar", "color": "auto",
                                "canEdit": True, "canShare": True, "canViewPrivateItems": True,
                                "owner": {"name": user["name"], "address": user["mail"]}})

    def tenant_service_principals(self, scenario):
        """App ids with a service principal in the tenant: the resources, and every consented client."""
        with self.grants_lock:
            clients = set() if scenario == "consent_missing" else set(self.service_principals)
        return clients | set(RESOURCE_APP_IDS.values())

    def graph_servicePrincipals(self, query, scenario):
        m = re.match(r"^appId eq '([^']*)'$", (query.get("$filter") or "").strip())
        if not m:
            return self.graph_error(400, "Request_UnsupportedQuery", "the fake supports $filter=appId eq '...'")
        app_id = m.group(1)
        names = {GRAPH_APP_ID: "Microsoft Graph", EXCHANGE_APP_ID: "Office 365 Exchange Online"}
        value = [{"id": guid("sp", app_id), "appId": app_id, "displayName": names.get(app_id, "syncwizard"),
                  "servicePrincipalType": "Application", "accountEnabled": True}] \
            if app_id in self.tenant_service_principals(scenario) else []
        return self.graph_list("servicePrincipals", value, query)

    def graph_grant_objects(self, scenario, sp_id=None):
        with self.grants_lock:
            grants = [] if scenario == "consent_missing" else copy.deepcopy(self.grants)
        value = []
        for g in grants:
            client_sp = guid("sp", g["clientId"])
            if sp_id is not None and client_sp != sp_id:
                continue
            value.append({
                "id": b64url(hashlib.sha256("/".join((client_sp, g["resource"], g["consentType"],
                                                      g["principalId"] or "")).encode()).digest()[:24]),
                "clientId": client_sp, "consentType": g["consentType"], "principalId": g["principalId"],
                "resourceId": guid("sp", RESOURCE_APP_IDS[g["resource"]]),
                "scope": " " + " ".join(g["scopes"]) + " ",  # Graph pads it; split on whitespace
            })
        return value

    def graph_oauth2PermissionGrants(self, query, scenario):
        wanted = (query.get("$filter") or "").strip()
        m = re.match(r"^clientId eq '([^']*)'$", wanted)
        if wanted and not m:
            return self.graph_error(400, "Request_UnsupportedQuery", "the fake supports $filter=clientId eq '...'")
        return self.graph_list("oauth2PermissionGrants",
                               self.graph_grant_objects(scenario, m.group(1) if m else None), query)

    def graph_servicePrincipalGrants(self, query, scenario, sp_id):
        if sp_id not in {guid("sp", a) for a in self.tenant_service_principals(scenario)}:
            return self.graph_error(404, "Request_ResourceNotFound", "Resource '%s' does not exist or one of its "
                                    "queried reference-property objects are not present." % sp_id)
        return self.graph_list("oauth2PermissionGrants", self.graph_grant_objects(scenario, sp_id), query)

    def graph_organization(self, query, scenario):
        ms = self.config.ms
        label = ms["tenantDomain"].split(".")[0]
        return self.graph_list("organization", [{
            "id": ms["tenantId"], "displayName": label.capitalize(), "tenantType": "AAD",
            "verifiedDomains": [
                {"name": ms["tenantDomain"], "isDefault": True, "isInitial": False, "type": "Managed",
                 "capabilities": "Email, OfficeCommunicationsOnline"},
                {"name": label + ".onmicrosoft.com", "isDefault": False, "isInitial": True, "type": "Managed",
                 "capabilities": "Email, OfficeCommunicationsOnline"}]}], query)

    def outlook(self, req, entry):
        entry["endpoint"] = "outlook"
        if req.path.lower() == "/autodiscover/autodiscover.json":
            return json_reply(200, {"Protocol": "EWS", "Url": "https://%s/EWS/Exchange.asmx" % OUTLOOK_HOST})
        if req.path.lower() == "/ews/exchange.asmx":
            record = self.bearer_record(req, entry)
            if record is None or record["grant"].get("resource") != "outlook":
                entry["bearerValid"] = False
                return Reply(401, b"", headers=[("WWW-Authenticate", 'Bearer error="invalid_token"')])
            return Reply(200, EWS_OK, "text/xml; charset=utf-8")
        return html_reply(404, "Not found", "no such page")


EWS_OK = ('<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/">'
          '<s:Body><m:GetFolderResponse xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" '
          'xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><m:ResponseMessages>'
          '<m:GetFolderResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:Folders>'
          '<t:CalendarFolder><t:FolderId Id="AAMkAGI2" ChangeKey="AgAAAB"/><t:DisplayName>Calendar</t:DisplayName>'
          '</t:CalendarFolder></m:Folders></m:GetFolderResponseMessage></m:ResponseMessages></m:GetFolderResponse>'
          '</s:Body></s:Envelope>')


# ---------------------------------------------------------------------------------------------
# Google


DIRECTORY_SCOPES = {"https://www.googleapis.com/auth/admin.directory.user.readonly",
                    "https://www.googleapis.com/auth/admin.directory.user"}
CALENDAR_SCOPES = {"https://www.googleapis.com/auth/calendar", "https://www.googleapis.com/auth/calendar.readonly"}


class Google(Provider):
    name = "google"
    access_prefix = "ya29.at-"

    def section(self):
        return self.config.google

    def redirect_ok(self, uri):
        return bool(re.match(r"^http://(127\.0\.0\.1|\[::1\]|localhost)(:[0-9]{1,5})?(/[^?#]*)?$", uri))

    def unknown_client_page(self, client_id):
        return html_reply(401, "Access blocked: Authorization Error", "The OAuth client was not found. "
                          "Error 401: invalid_client")

    def bad_redirect_page(self, redirect_uri):
        return html_reply(400, "Access blocked: This app's request is invalid", "Error 400: redirect_uri_mismatch")

    def token_error(self, status, error, description, code=None):
        return json_reply(status, {"error": error, "error_description": description})

    def route(self, req, entry):
        if req.host == GOOGLE_ACCOUNTS_HOST:
            entry["provider"] = self.name
            if req.path in ("/o/oauth2/v2/auth", "/o/oauth2/auth"):
                return self.authorize(req, entry)
            if req.path == "/.well-known/openid-configuration":
                entry["endpoint"] = "discovery"
                return json_reply(200, {
                    "issuer": GOOGLE_ISSUER, "authorization_endpoint": "https://accounts.google.com/o/oauth2/v2/auth",
                    "device_authorization_endpoint": "https://oauth2.googleapis.com/device/code",
                    "token_endpoint": "https://oauth2.googleapis.com/token",
                    "userinfo_endpoint": "https://openidconnect.googleapis.com/v1/userinfo",
                    "revocation_endpoint": "https://oauth2.googleapis.com/revoke",
                    "jwks_uri": "https://www.googleapis.com/oauth2/v3/certs",
                    "response_types_supported": ["code", "token", "id_token", "code token", "code id_token",
                                                 "token id_token", "code token id_token", "none"],
                    "subject_types_supported": ["public"], "id_token_signing_alg_values_supported": ["RS256"],
                    "scopes_supported": ["openid", "email", "profile"],
                    "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
                    "code_challenge_methods_supported": ["plain", "S256"],
                    "grant_types_supported": ["authorization_code", "refresh_token",
                                              "urn:ietf:params:oauth:grant-type:device_code",
                                              "urn:ietf:params:oauth:grant-type:jwt-bearer"]})
            return html_reply(404, "Not found", "no such page")
        if req.host == GOOGLE_TOKEN_HOST:
            entry["provider"] = self.name
            if req.path == "/token":
                return self.token_endpoint(req, entry)
            if req.path == "/revoke":
                return self.revoke(req, entry)
            if req.path == "/device/code":
                entry["endpoint"] = "devicecode"
                entry["error"] = "invalid_client"
                return json_reply(401, {"error": "invalid_client",
                                        "error_description": "Invalid client type."})
            return json_reply(404, {"error": "not_found"})
        if req.host == GOOGLE_APIS_HOST:
            entry["provider"] = self.name
            if req.path == "/oauth2/v3/certs":
                entry["endpoint"] = "jwks"
                return json_reply(200, self.keys.jwks())
            if req.path.startswith("/calendar/v3/"):
                return self.calendar(req, entry)
            return self.api_error(404, "Not Found", "notFound", "NOT_FOUND")
        if req.host == GOOGLE_ADMIN_HOST:
            entry["provider"] = self.name
            if req.path == "/admin/directory/v1/users":
                return self.directory(req, entry)
            return self.api_error(404, "Not Found", "notFound", "NOT_FOUND")
        return None

    def authorize(self, req, entry):
        result, reply = self.authorize_common(req, entry, self.redirect_ok)
        if reply is not None:
            return reply
        grant, back = result
        scenario = grant["scenario"]
        if not grant["scope"]:
            return back("invalid_request", "Missing required parameter: scope")[1]
        if scenario == "access_denied":
            return back("access_denied", "The user denied access")[1]
        if scenario == "admin_policy_enforced":
            return back("admin_policy_enforced", "The administrator of your organization does not allow this "
                        "app to access your Google Account data")[1]
        if scenario == "org_internal":
            return back("org_internal", "This client is restricted to users within its organization")[1]
        granted = list(grant["scope"])
        if scenario == "scopes_partial":
            unticked = set(self.config.google["untickedScopes"])
            granted = [s for s in granted if s not in unticked]
        grant["granted"] = granted
        return self.issue_code(grant, [("scope", " ".join(granted)), ("authuser", "0"),
                                       ("hd", self.config.google["domain"]), ("prompt", "consent")])

    def token_extras(self, grant, scopes):
        return {"scope": " ".join(scopes), "expires_in": self.config.access_lifetime - 1}

    def refresh_failed(self, entry, revoked):
        entry["error"] = "invalid_grant"
        return self.token_error(400, "invalid_grant", "Token has been expired or revoked.")

    def id_token_claims(self, grant, now):
        g = self.config.google
        user = g["user"]
        claims = {"iss": GOOGLE_ISSUER, "azp": grant["clientId"], "aud": grant["clientId"], "sub": user["sub"],
                  "hd": g["domain"], "email": user["email"], "email_verified": True, "name": user["name"],
                  "iat": now, "exp": now + 3599, "nonce": grant["nonce"]}
        if grant["nonce"] is None:
            del claims["nonce"]
        return claims

    def wrong_issuer(self, grant):
        return "https://accounts.google.evil.test"

    def revoke(self, req, entry):
        entry["endpoint"] = "revoke"
        value = req.form.get("token") or req.query.get("token")
        with self.store.lock:
            found = self.store.refresh.pop(value, None) or self.store.access.pop(value, None)
        if found is None:
            entry["error"] = "invalid_token"
            return json_reply(400, {"error": "invalid_token", "error_description": "Token expired or revoked"})
        return json_reply(200, {})

    def api_error(self, status, message, reason, status_text):
        return json_reply(status, {"error": {"code": status, "message": message, "errors": [
            {"message": message, "domain": "global", "reason": reason}], "status": status_text}})

    def authorized(self, req, entry, needed):
        record = self.bearer_record(req, entry)
        if record is None:
            return None, self.api_error(401, "Request had invalid authentication credentials. Expected OAuth 2 "
                                        "access token, login cookie or other valid authentication credential.",
                                        "authError", "UNAUTHENTICATED")
        if not set(record["scopes"]) & needed:
            return None, self.api_error(403, "Request had insufficient authentication scopes.",
                                        "insufficientPermissions", "PERMISSION_DENIED")
        return record, None

    def directory(self, req, entry):
        entry["endpoint"] = "directory"
        scenario = self.scenario()
        entry["scenario"] = scenario
        record, reply = self.authorized(req, entry, DIRECTORY_SCOPES)
        if reply is not None:
            return reply
        q = req.query
        g = self.config.google
        if not q.get("customer") and not q.get("domain"):
            return self.api_error(400, "Bad Request", "badRequest", "INVALID_ARGUMENT")
        if q.get("domain") and q["domain"].lower() != g["domain"].lower():
            return self.api_error(400, "Domain not found.", "notFound", "INVALID_ARGUMENT")
        public_view = q.get("viewType") == "domain_public"
        if scenario == "directory_forbidden" or (not g["user"]["isAdmin"] and not public_view):
            return self.api_error(403, "Not Authorized to access this resource/api", "forbidden", "PERMISSION_DENIED")
        try:
            size = int(q.get("maxResults") or 100)
            start = int((q.get("pageToken") or "page-0")[len("page-"):])
        except ValueError:
            return self.api_error(400, "Invalid Input", "invalid", "INVALID_ARGUMENT")
        if not 1 <= size <= 500:
            return self.api_error(400, "Invalid Input: maxResults", "invalid", "INVALID_ARGUMENT")
        users = []
        for i, item in enumerate(g["directoryUsers"]):
            email = item if isinstance(item, str) else item["primaryEmail"]
            local = email.split("@")[0]
            users.append({"kind": "admin#directory#user", "id": str(100000000000000000000 + i),
                          "primaryEmail": email, "name": {"givenName": local.capitalize(), "familyName": "Test",
                                                          "fullName": "%s Test" % local.capitalize()},
                          "isAdmin": email == g["user"]["email"] and g["user"]["isAdmin"],
                          "suspended": bool(isinstance(item, dict) and item.get("suspended"))})
        if public_view:
            users = [u for u in users if not u["suspended"]]
        page = users[start:start + size]
        body = {"kind": "admin#directory#users", "etag": '"fake-etag"', "users": page}
        if start + size < len(users):
            body["nextPageToken"] = "page-%d" % (start + size)
        return json_reply(200, body)

    def calendar(self, req, entry):
        entry["endpoint"] = "calendar"
        entry["scenario"] = self.scenario()
        record, reply = self.authorized(req, entry, CALENDAR_SCOPES)
        if reply is not None:
            return reply
        email = self.config.google["user"]["email"]
        if req.path == "/calendar/v3/users/me/calendarList/primary":
            return json_reply(200, {"kind": "calendar#calendarListEntry", "etag": '"1"', "id": email,
                                    "summary": email, "timeZone": "Europe/Oslo", "accessRole": "owner",
                                    "primary": True})
        if req.path == "/calendar/v3/calendars/primary":
            return json_reply(200, {"kind": "calendar#calendar", "etag": '"1"', "id": email, "summary": email,
                                    "timeZone": "Europe/Oslo"})
        return self.api_error(404, "Not Found", "notFound", "NOT_FOUND")


# ---------------------------------------------------------------------------------------------
# Application: routing and control endpoints


class App:
    def __init__(self, config, log):
        self.config = config
        self.log = log
        self.local = threading.local()
        self.store = Store()
        self.keys = Keys(config.kid)
        self.scenario_lock = threading.Lock()
        self.scenarios = {"*": config.scenario}
        self.microsoft = Microsoft(self)
        self.providers = [SuperOffice(self), self.microsoft, Google(self)]

    def current_scenario(self, provider):
        with self.scenario_lock:
            return self.scenarios.get(provider) or self.scenarios["*"]

    def route(self, req, entry):
        for provider in self.providers:
            reply = provider.route(req, entry)
            if reply is not None:
                return reply
        return html_reply(404, "Not found", "host not served by the fake")

    def control(self, req):
        what = req.path[len("/__control/"):]
        if what == "scenario" and req.method == "POST":
            try:
                body = json.loads(req.body or b"{}")
            except ValueError:
                return json_reply(400, {"error": "body must be JSON"})
            name = body.get("scenario") if isinstance(body, dict) else None
            provider = body.get("provider") if isinstance(body, dict) else None
            if not isinstance(name, str) or (name not in SCENARIOS and not name.startswith("aadsts_")):
                return json_reply(400, {"error": "unknown scenario", "known": sorted(SCENARIOS)})
            if provider is not None and provider not in PROVIDERS:
                return json_reply(400, {"error": "provider must be one of %s" % list(PROVIDERS)})
            with self.scenario_lock:
                if provider is None:
                    self.scenarios = {"*": name}
                else:
                    self.scenarios[provider] = name
                current = dict(self.scenarios)
            return json_reply(200, {"scenarios": current})
        if what == "scenario" and req.method == "GET":
            with self.scenario_lock:
                return json_reply(200, {"scenarios": dict(self.scenarios), "known": SCENARIOS})
        if what == "log" and req.method == "GET":
            return json_reply(200, self.log.snapshot())
        if what == "expire-access-tokens" and req.method == "POST":
            with self.store.lock:
                for record in self.store.access.values():
                    record["expires"] = 0
                count = len(self.store.access)
            return json_reply(200, {"expired": count})
        if what == "revoke-refresh-tokens" and req.method == "POST":
            with self.store.lock:
                count = len(self.store.refresh)
                self.store.refresh.clear()
            return json_reply(200, {"revoked": count})
        if what == "issued" and req.method == "GET":
            # Every code/token value handed out, so tests can prove none of them leaks into
            # syncwizard's logs, traces or files. Never written to the log.
            with self.store.lock:
                return json_reply(200, {"secrets": list(self.store.issued_secrets),
                                        "clientSecrets": [s for s in self.config.clients.values() if s]})
        if what == "jwks" and req.method == "GET":
            return json_reply(200, self.keys.jwks())
        if what == "grants":
            return self.microsoft.control_grants(req)
        return json_reply(404, {"error": "unknown control endpoint"})


def main():
    parser = argparse.ArgumentParser(description="Fake identity providers for syncwizard tests.")
    parser.add_argument("--config", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--workdir", required=True)
    args = parser.parse_args()

    try:
        with open(args.config, encoding="utf-8") as f:
            config = Config(json.load(f))
    except (OSError, ValueError) as error:
        fail("cannot read config: %s" % error)
    os.makedirs(args.workdir, exist_ok=True)

    log = Log(args.log)
    app = App(config, log)
    tls = TLS(config, args.workdir)
    https = Server(app, tls)
    threading.Thread(target=https.serve_forever, daemon=True).start()

    ready = {
        "httpsPort": https.server_address[1],
        "caFile": tls.ca_file,
        "untrustedCaFile": tls.untrusted_ca_file,
        "hosts": config.hosts(),
        "kid": config.kid,
        "pid": os.getpid(),
    }
    sys.stdout.write(json.dumps(ready) + "\n")
    sys.stdout.flush()

    try:
        while sys.stdin.buffer.read(65536):
            pass
    except (OSError, ValueError):
        pass
    os._exit(0)  # EOF on stdin: the test process is gone


if __name__ == "__main__":
    main()
