#!/usr/bin/env bash
# Self-test of fake_idp.py: starts it, then drives it the way syncwizard and its tests will —
# every HTTP request goes through curl with --connect-to HOST:443:127.0.0.1:PORT and --cacert
# (real TLS, production host names) — and checks the answers. id_tokens are verified with PyJWT
# against the JWKS the fixture serves, independently of the fixture's own signing code.
#
#   Tests/Fixtures/oauth/selftest.sh          exit 0 when every check passed
#
# Needs: python3 with trustme, cryptography, PyJWT; /usr/bin/curl.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/fake-idp-selftest.XXXXXX")"
fifo="$work/stdin"
mkfifo "$fifo"

cat >"$work/config.json" <<'JSON'
{
  "clients": {"so-client": "so-app-token", "so-public": null, "ms-client": null, "g-client": "g-secret"},
  "superoffice": {"tenants": {
      "Cust12345": {"environment": "online", "webapiHost": "app-online.superoffice.com"},
      "Cust55555": {"environment": "online", "webapiHost": "online3.superoffice.com", "state": "Suspended"},
      "Cust23456": {"environment": "sod", "webapiHost": "app-sod.superoffice.com"}}},
  "microsoft": {"devicePendingPolls": 1, "deviceInterval": 1}
}
JSON

python3 "$here/fake_idp.py" --config "$work/config.json" --log "$work/log.jsonl" --workdir "$work" \
    <"$fifo" >"$work/ready.json" 2>"$work/stderr.txt" &
fixture=$!
exec 3>"$fifo"   # the fixture runs until this descriptor closes
cleanup() {
    exec 3>&- || true
    wait "$fixture" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

for _ in $(seq 1 150); do
    [ -s "$work/ready.json" ] && break
    if ! kill -0 "$fixture" 2>/dev/null; then
        echo "fake_idp.py exited early:" >&2; cat "$work/stderr.txt" >&2; exit 1
    fi
    sleep 0.1
done
[ -s "$work/ready.json" ] || { echo "fake_idp.py not ready after 15 s" >&2; cat "$work/stderr.txt" >&2; exit 1; }

READY_FILE="$work/ready.json" LOG_FILE="$work/log.jsonl" WORK="$work" FIXTURE_DIR="$here" python3 - <<'PY'
import base64, hashlib, json, os, secrets, subprocess, sys, time, urllib.parse
import jwt  # PyJWT

ready = json.load(open(os.environ["READY_FILE"]))
PORT, CA, LOG = ready["httpsPort"], ready["caFile"], os.environ["LOG_FILE"]
WORK = os.environ["WORK"]
CONNECT = []
for host in ready["hosts"]:
    CONNECT += ["--connect-to", "%s:443:127.0.0.1:%d" % (host, PORT)]
SO = "https://online.superoffice.com"
REDIRECT = "http://127.0.0.1:49152/callback"
passed = 0


def check(condition, label, detail=""):
    global passed
    if not condition:
        print("FAIL  %s %s" % (label, detail))
        sys.exit(1)
    passed += 1
    print("ok    %s" % label)


def curl(url, method="GET", form=None, headers=(), json_body=None, cacert=None):
    cacert = cacert or CA  # CA changes while a second fixture runs
    out, hdr = os.path.join(WORK, "body"), os.path.join(WORK, "headers")
    args = ["/usr/bin/curl", "-sS", "--noproxy", "*", "--max-time", "15", "--cacert", cacert, *CONNECT,
            "-X", method, "-o", out, "-D", hdr, "-w", "%{http_code}"]
    for h in headers:
        args += ["-H", h]
    if form is not None:
        args += ["-H", "Content-Type: application/x-www-form-urlencoded", "--data", urllib.parse.urlencode(form)]
    if json_body is not None:
        args += ["-H", "Content-Type: application/json", "--data", json.dumps(json_body)]
    run = subprocess.run(args + [url], capture_output=True, text=True)
    if run.returncode != 0:
        return run.returncode * -1, {}, run.stderr
    status = int(run.stdout)
    fields = {}
    for line in open(hdr, encoding="latin-1").read().splitlines()[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            fields[k.strip().lower()] = v.strip()
    return status, fields, open(out, encoding="utf-8", errors="replace").read()


def as_json(body):
    try:
        return json.loads(body)
    except ValueError:
        return {"unparseable": body[:200]}


def pkce():
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def set_scenario(name, provider=None):
    body = {"scenario": name}
    if provider:
        body["provider"] = provider
    status, _, text = curl(SO + "/__control/scenario", "POST", json_body=body)
    check(status == 200, "scenario %s%s" % (name, " (%s)" % provider if provider else ""), text)


def authorize(base, client="so-client", redirect_uri=REDIRECT, scope="openid", extra=None, path=None):
    verifier, challenge = pkce()
    state, nonce = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    params = {"response_type": "code", "client_id": client, "redirect_uri": redirect_uri, "scope": scope,
              "state": state, "nonce": nonce, "code_challenge": challenge, "code_challenge_method": "S256"}
    params.update(extra or {})
    url = base + (path or "/login/common/oauth/authorize") + "?" + urllib.parse.urlencode(params)
    status, headers, body = curl(url)
    location = headers.get("location", "")
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))
    return {"status": status, "location": location, "query": query, "verifier": verifier, "state": state,
            "nonce": nonce, "body": body, "redirect_uri": redirect_uri, "client": client}


def redeem(base, flow, client_secret="so-app-token", verifier=None, path="/login/common/oauth/tokens", **over):
    form = {"grant_type": "authorization_code", "code": flow["query"].get("code", ""),
            "redirect_uri": flow["redirect_uri"], "client_id": flow["client"],
            "code_verifier": verifier or flow["verifier"]}
    if client_secret:
        form["client_secret"] = client_secret
    form.update(over)
    status, _, body = curl(base + path, "POST", form=form)
    return status, as_json(body)


def jwks(url):
    status, _, body = curl(url)
    check(status == 200, "JWKS %s" % urllib.parse.urlsplit(url).netloc)
    return jwt.PyJWKSet.from_dict(json.loads(body))


def verify(id_token, keyset, audience, issuer, nonce=None):
    """PyJWT verification (RS256 only, kid lookup); returns claims or raises."""
    header = jwt.get_unverified_header(id_token)
    if header.get("alg") != "RS256":
        raise jwt.InvalidAlgorithmError("alg %r" % header.get("alg"))
    key = next((k for k in keyset.keys if k.key_id == header.get("kid")), None)
    if key is None:
        raise jwt.InvalidKeyError("kid %r not in JWKS" % header.get("kid"))
    claims = jwt.decode(id_token, key.key, algorithms=["RS256"], audience=audience, issuer=issuer,
                        options={"require": ["exp", "iat", "iss", "aud", "sub"]})
    if nonce is not None and claims.get("nonce") != nonce:
        raise jwt.InvalidTokenError("nonce mismatch")
    return claims


def log_entries():
    return [json.loads(line) for line in open(LOG) if line.strip()]


CLAIM = "http://schemes.superoffice.net/identity/"

# ---------------------------------------------------------------- SuperOffice: success
print("== SuperOffice")
flow = authorize(SO)
check(flow["status"] == 302, "authorize answers 302", flow["body"][:200])
check(flow["location"].startswith(REDIRECT + "?"), "redirects to the loopback redirect_uri", flow["location"][:80])
check(flow["query"].get("state") == flow["state"] and flow["query"].get("code", "").startswith("code-"),
      "redirect carries code and the same state")
status, tokens = redeem(SO, flow)
check(status == 200 and tokens.get("token_type") == "Bearer" and tokens.get("expires_in") == 3600,
      "code exchange 200 Bearer 3600", str(tokens)[:200])
check(tokens["access_token"].startswith("8A:Cust12345.") and tokens["refresh_token"].startswith("rt-"),
      "access token 8A:Cust12345.… and refresh token rt-…")
so_keys = jwks(SO + "/login/.well-known/jwks")
claims = verify(tokens["id_token"], so_keys, "so-client", SO, flow["nonce"])
check(True, "id_token verifies with PyJWT (RS256, kid, iss, aud, exp, nonce)")
check(jwt.get_unverified_header(tokens["id_token"])["kid"] == ready["kid"], "id_token kid is the configured kid")
check(claims[CLAIM + "ctx"] == "Cust12345"
      and claims[CLAIM + "webapi_url"] == "https://app-online.superoffice.com/Cust12345/api/"
      and claims[CLAIM + "netserver_url"].startswith("https://app-online.superoffice.com/Cust12345/Remote/")
      and claims[CLAIM + "is_administrator"] == "True"
      and claims[CLAIM + "upn"] == "admin@contoso.test" and claims[CLAIM + "email"] == "admin@contoso.test"
      and claims["nbf"] <= time.time() < claims["exp"], "SuperOffice claims (schemes.superoffice.net/identity/)")
discovery = as_json(curl(SO + "/login/.well-known/openid-configuration")[2])
check(discovery.get("issuer") == SO and discovery.get("token_endpoint") == SO + "/login/common/oauth/tokens",
      "discovery document")

# ---------------------------------------------------------------- REST currentPrincipal
API = "https://app-online.superoffice.com/Cust12345/api/v1/User/currentPrincipal"
status, _, body = curl(API, headers=["Authorization: Bearer " + tokens["access_token"], "Accept: application/json"])
principal = as_json(body)
check(status == 200 and principal.get("AssociateId") == 5 and principal.get("EMailAddress") == "admin@contoso.test"
      and principal.get("DatabaseContextIdentifier") == "Cust12345", "currentPrincipal 200 with a valid token",
      body[:200])
status, _, _ = curl(API, headers=["Authorization: Bearer 8A:Cust12345.at-forged"])
check(status == 401, "currentPrincipal 401 with an unknown token")
status, _, _ = curl(API)
check(status == 401, "currentPrincipal 401 without a token")
status, _, _ = curl("https://online.superoffice.com/Cust12345/api/v1/User/currentPrincipal",
                    headers=["Authorization: Bearer " + tokens["access_token"]])
check(status == 421, "REST on the auth host answers 421")

# ---------------------------------------------------------------- refresh rotation
def refresh(base, rt, client="so-client", secret="so-app-token", path="/login/common/oauth/tokens"):
    form = {"grant_type": "refresh_token", "refresh_token": rt, "client_id": client}
    if secret:
        form["client_secret"] = secret
    status, _, body = curl(base + path, "POST", form=form)
    return status, as_json(body)

status, renewed = refresh(SO, tokens["refresh_token"])
check(status == 200 and renewed["access_token"] != tokens["access_token"]
      and renewed.get("refresh_token") not in (None, tokens["refresh_token"]),
      "refresh: new access token and rotated refresh token", str(renewed)[:200])
refreshed_claims = verify(renewed["id_token"], so_keys, "so-client", SO)
check("nonce" not in refreshed_claims and refreshed_claims[CLAIM + "ctx"] == "Cust12345",
      "refreshed id_token verifies, carries claims, no nonce")
status, err = refresh(SO, tokens["refresh_token"])
check(status == 400 and err.get("error") == "invalid_grant" and err.get("error_description"),
      "old refresh token: 400 invalid_grant", str(err))
status, err = refresh(SO, "rt-never-issued")
check(status == 400 and err.get("error") == "invalid_grant", "unknown refresh token: 400 invalid_grant")
status, _, _ = curl(API, headers=["Authorization: Bearer " + renewed["access_token"]])
check(status == 200, "renewed access token works")
curl(SO + "/__control/expire-access-tokens", "POST")
status, _, _ = curl(API, headers=["Authorization: Bearer " + renewed["access_token"]])
check(status == 401, "expired access token: 401")

set_scenario("refresh_fails")
status, err = refresh(SO, renewed["refresh_token"])
check(status == 400 and err.get("error") == "invalid_grant", "refresh_fails: invalid_grant")
set_scenario("success")
status, err = refresh(SO, renewed["refresh_token"])
check(status == 400, "refresh_fails revoked the token for good")

# ---------------------------------------------------------------- PKCE, client auth, code rules
flow = authorize(SO)
status, err = redeem(SO, flow, verifier=pkce()[0])
check(status == 400 and err.get("error") == "invalid_grant", "PKCE mismatch: 400 invalid_grant", str(err))
status, err = redeem(SO, flow)
check(status == 400 and err.get("error") == "invalid_grant", "code is single use (even after a failed try)")
flow = authorize(SO)
status, err = redeem(SO, flow, client_secret=None)
check(status == 401 and err.get("error") == "invalid_client", "missing client_secret: 401 invalid_client")
status, err = redeem(SO, flow, client_secret="wrong")
check(status == 401 and err.get("error") == "invalid_client", "wrong client_secret: 401 invalid_client")
status, tok = redeem(SO, flow, redirect_uri="http://127.0.0.1:49153/callback")
check(status == 400 and tok.get("error") == "invalid_grant", "different redirect_uri: invalid_grant")
flow = authorize(SO)
status, tok = redeem(SO, flow)
check(status == 200, "fresh code redeems")
status, err = redeem(SO, flow)
check(status == 400 and err.get("error") == "invalid_grant", "code reuse: invalid_grant")
status, _, _ = curl(API, headers=["Authorization: Bearer " + tok["access_token"]])
check(status == 401, "code reuse revoked the tokens it produced")
flow = authorize(SO, client="so-public")
status, tok = redeem(SO, flow, client_secret=None)
check(status == 200, "public client (null secret) redeems without client_secret")
set_scenario("token_server_error")
status, err = refresh(SO, tok["refresh_token"], client="so-public", secret=None)
check(status == 500 and err.get("error") == "server_error", "token_server_error: 500 on refresh")
set_scenario("refresh_no_rotation")
status, kept = refresh(SO, tok["refresh_token"], client="so-public", secret=None)
check(status == 200 and "refresh_token" not in kept and "id_token" in kept, "refresh_no_rotation: no refresh_token")
set_scenario("success")
status, kept = refresh(SO, tok["refresh_token"], client="so-public", secret=None)
check(status == 200 and kept.get("refresh_token"), "the refresh token survived the 500 and the non-rotating refresh")
# Basic client authentication
flow = authorize(SO)
form = {"grant_type": "authorization_code", "code": flow["query"]["code"], "redirect_uri": REDIRECT,
        "code_verifier": flow["verifier"]}
basic = base64.b64encode(b"so-client:so-app-token").decode()
status, _, body = curl(SO + "/login/common/oauth/tokens", "POST", form=form, headers=["Authorization: Basic " + basic])
check(status == 200, "client_secret_basic accepted", body[:200])
status, _, body = curl(SO + "/login/common/oauth/tokens", "POST", json_body={"grant_type": "authorization_code"})
check(status == 400 and as_json(body).get("error") == "invalid_request", "JSON body at the token endpoint: 400")

# authorization request validation
flow = authorize(SO, extra={"code_challenge_method": "plain"})
check(flow["status"] == 302 and flow["query"].get("error") == "invalid_request"
      and flow["query"].get("state") == flow["state"], "code_challenge_method plain: redirect error=invalid_request")
flow = authorize(SO, extra={"code_challenge": ""})
check(flow["query"].get("error") == "invalid_request", "missing code_challenge: error=invalid_request")
flow = authorize(SO, extra={"response_type": "token"})
check(flow["query"].get("error") == "unsupported_response_type", "response_type token: unsupported_response_type")
flow = authorize(SO, redirect_uri="http://localhost:49152/callback")
check(flow["status"] == 400 and not flow["location"], "redirect_uri localhost: error page, no redirect")
flow = authorize(SO, redirect_uri="https://evil.test/cb")
check(flow["status"] == 400 and not flow["location"], "foreign redirect_uri: error page, no redirect")
flow = authorize(SO, client="nobody")
check(flow["status"] == 400 and not flow["location"], "unknown client_id: error page, no redirect")
flow = authorize("https://sod.superoffice.com")
status, tok = redeem("https://sod.superoffice.com", flow)
sod_claims = verify(tok["id_token"], jwks("https://sod.superoffice.com/login/.well-known/jwks"), "so-client",
                    "https://sod.superoffice.com", flow["nonce"])
check(sod_claims[CLAIM + "ctx"] == "Cust23456", "sod environment: iss https://sod.superoffice.com, its tenant")
flow = authorize(SO, extra={"acr_values": "tenant:Cust55555"})
check(flow["query"].get("code"), "acr_values tenant:Cust55555 selects that tenant")

# ---------------------------------------------------------------- scenarios
flow = authorize(SO, extra={"__scenario": "access_denied"})
check(flow["query"].get("error") == "access_denied" and flow["query"].get("state") == flow["state"],
      "access_denied: error=access_denied with state")
set_scenario("wrong_state")
flow = authorize(SO)
check(flow["query"].get("code") and flow["query"].get("state") not in (None, flow["state"]), "wrong_state")
set_scenario("success")

expectations = {
    "tampered_signature": jwt.InvalidSignatureError, "wrong_audience": jwt.InvalidAudienceError,
    "expired": jwt.ExpiredSignatureError, "wrong_issuer": jwt.InvalidIssuerError,
    "nonce_mismatch": jwt.InvalidTokenError, "not_yet_valid": jwt.ImmatureSignatureError,
    "unknown_kid": jwt.InvalidKeyError, "alg_none": jwt.InvalidAlgorithmError,
    "alg_hs256": jwt.InvalidAlgorithmError, "missing_nonce": jwt.InvalidTokenError,
}
for name, error in expectations.items():
    set_scenario(name)
    flow = authorize(SO)
    set_scenario("success")  # the code keeps the scenario of its authorization request
    status, tok = redeem(SO, flow)
    try:
        verify(tok["id_token"], so_keys, "so-client", SO, flow["nonce"])
        outcome = None
    except jwt.PyJWTError as raised:
        outcome = raised
    check(status == 200 and type(outcome) is error, "%s: PyJWT rejects (%s)" % (name, type(outcome).__name__))
flow = authorize(SO, extra={"__scenario": "rotated_key"})
status, tok = redeem(SO, flow)
kid = jwt.get_unverified_header(tok["id_token"])["kid"]
check(kid not in [k.key_id for k in so_keys.keys], "rotated_key: kid not in the cached JWKS")
verify(tok["id_token"], jwks(SO + "/login/.well-known/jwks"), "so-client", SO, flow["nonce"])
check(True, "rotated_key: verifies after refetching the JWKS")
flow = authorize(SO, extra={"__scenario": "not_administrator"})
status, tok = redeem(SO, flow)
check(verify(tok["id_token"], jwks(SO + "/login/.well-known/jwks"), "so-client", SO)[CLAIM + "is_administrator"]
      == "False", "not_administrator: is_administrator False")

# ---------------------------------------------------------------- State API
status, _, body = curl(SO + "/api/state/Cust12345")
state = as_json(body)
check(status == 200 and state.get("ContextIdentifier") == "Cust12345" and state.get("State") == "Running"
      and state.get("IsRunning") is True and state.get("Endpoint") == "https://app-online.superoffice.com/Cust12345"
      and state.get("Api") == "https://app-online.superoffice.com/Cust12345/api" and state.get("ValidUntil"),
      "State API: Running", body)
set_scenario("suspended")
state = as_json(curl(SO + "/api/state/Cust12345")[2])
check(state.get("State") == "Suspended" and state.get("IsRunning") is False, "State API: suspended scenario")
set_scenario("success")
state = as_json(curl(SO + "/api/state/Cust55555")[2])
check(state.get("State") == "Suspended" and state.get("Endpoint") == "https://online3.superoffice.com/Cust55555",
      "State API: tenant configured Suspended")
state = as_json(curl(SO + "/api/state/Cust99999")[2])
check(state.get("State") == "Unknown" and state.get("IsRunning") is False, "State API: unknown tenant")

# ---------------------------------------------------------------- Microsoft
print("== Microsoft")
MS = "https://login.microsoftonline.com/organizations"
ms_redirect = "http://localhost:50123"
flow = authorize(MS, client="ms-client", redirect_uri=ms_redirect, path="/oauth2/v2.0/authorize",
                 scope="openid profile offline_access https://graph.microsoft.com/User.Read Calendars.ReadWrite User.Read.All")
check(flow["query"].get("code"), "authorize (organizations, http://localhost:PORT)", flow["body"][:200])
status, tok = redeem(MS, flow, client_secret=None, path="/oauth2/v2.0/token")
check(status == 200 and "refresh_token" in tok and "Calendars.ReadWrite" in tok.get("scope", ""),
      "token: refresh_token (offline_access) and scope", str(tok)[:300])
tid = "b7c3f1a2-4d5e-4f60-8a9b-0c1d2e3f4a5b"  # the default microsoft.tenantId
ms_claims = verify(tok["id_token"], jwks("https://login.microsoftonline.com/%s/discovery/v2.0/keys" % tid),
                   "ms-client", "https://login.microsoftonline.com/%s/v2.0" % tid, flow["nonce"])
check(ms_claims["tid"] == tid and ms_claims["preferred_username"] == "admin@contoso.test", "id_token tid/iss")
flow2 = authorize(MS, client="ms-client", redirect_uri=ms_redirect, path="/oauth2/v2.0/authorize")
status, err = redeem(MS, flow2, client_secret="x", path="/oauth2/v2.0/token")
check(status == 401 and "AADSTS700025" in err.get("error_description", "") and err.get("error_codes") == [700025],
      "public client sending a secret: AADSTS700025")
G = "https://graph.microsoft.com/v1.0"
GRAPH_SCOPES = " ".join("https://graph.microsoft.com/" + s for s in
                        ("User.Read", "User.Read.All", "Calendars.ReadWrite", "Directory.Read.All"))


def ms_sign_in(scope, **extra):
    """Authorization request + code exchange for the public ms-client; returns (flow, tokens or None)."""
    flow = authorize(MS, client="ms-client", redirect_uri=ms_redirect, path="/oauth2/v2.0/authorize",
                     scope=scope, extra=extra)
    if not flow["query"].get("code"):
        return flow, None
    return flow, redeem(MS, flow, client_secret=None, path="/oauth2/v2.0/token")[1]


def graph(path, access_token, **query):
    url = G + path + ("?" + urllib.parse.urlencode(query) if query else "")
    status, _, body = curl(url, headers=["Authorization: Bearer " + access_token])
    return status, as_json(body)


def grants_control(body=None):
    status, _, text = curl(SO + "/__control/grants", "POST" if body is not None else "GET", json_body=body)
    check(status == 200, "control grants %s" % ("reset %s" % body if body is not None else "read"), text)
    return as_json(text)


# A refresh token redeems a token for another resource the client has consent for (else AADSTS65001).
_, ms_tok = ms_sign_in("openid offline_access https://graph.microsoft.com/User.Read")
ews_form = {"grant_type": "refresh_token", "refresh_token": ms_tok["refresh_token"], "client_id": "ms-client",
            "scope": "https://outlook.office365.com/EWS.AccessAsUser.All offline_access"}
status, _, body = curl(MS + "/oauth2/v2.0/token", "POST", form=ews_form)
check(status == 400 and "AADSTS65001" in as_json(body).get("error_description", ""), "refresh for outlook without consent: AADSTS65001", body[:200])
grants_control({"grants": [{"clientId": "ms-client", "consentType": "AllPrincipals", "resource": "outlook", "scopes": "EWS.AccessAsUser.All"}]})
status, _, body = curl(MS + "/oauth2/v2.0/token", "POST", form=ews_form)
check(status == 200 and as_json(body).get("scope", "").startswith("https://outlook.office365.com/EWS.AccessAsUser.All"),
      "refresh for outlook with consent: an outlook token", body[:200])
status, _, _ = curl("https://outlook.office365.com/EWS/Exchange.asmx", "POST", headers=["Authorization: Bearer " + as_json(body)["access_token"]])
check(status == 200, "the outlook token opens EWS")
grants_control({})


def graph_last():
    return [e for e in log_entries() if e["endpoint"] == "graph"][-1]


def last_authorize():
    return [e for e in log_entries() if e["endpoint"] == "authorize"][-1]


# Per-call permissions: the first token holds User.Read, User.Read.All, Calendars.ReadWrite only.
at = tok["access_token"]
check(graph("/me", at)[0] == 200, "Graph /me")
check(graph("/users", at, **{"$top": 1})[0] == 200, "Graph /users?$top=1")
check(graph("/me/calendar", at)[0] == 200, "Graph /me/calendar")
status, body = graph("/organization", at)
check(status == 200 and body["value"][0]["id"] == tid
      and any(d["name"] == "contoso.test" for d in body["value"][0]["verifiedDomains"]), "Graph /organization (User.Read)")
status, body = graph("/servicePrincipals", at, **{"$filter": "appId eq 'ms-client'", "$select": "id"})
check(status == 403 and body["error"]["code"] == "Authorization_RequestDenied"
      and body["error"]["message"] == "Insufficient privileges to complete the operation.",
      "servicePrincipals without Application.Read.All/Directory.Read.All: 403", str(body))
status, body = graph("/oauth2PermissionGrants", at, **{"$filter": "clientId eq 'x'"})
check(status == 403 and body["error"]["code"] == "Authorization_RequestDenied",
      "oauth2PermissionGrants without Directory.Read.All: 403 Authorization_RequestDenied")
entry = graph_last()
check(entry["requiredPermissions"][0] == "Directory.Read.All" and entry["permissionOk"] is False
      and entry["graphCall"] == "oauth2PermissionGrants", "log: requiredPermissions, permissionOk false", str(entry))
# With Directory.Read.All (in the tenant's default grant, so no consent page without prompt=consent).
flow, tok = ms_sign_in("openid profile offline_access " + GRAPH_SCOPES)
check(tok and "Directory.Read.All" in tok.get("scope", "") and last_authorize()["consentShown"] is False,
      "sign-in for granted scopes: code without a consent page", str(flow["query"]))
at = tok["access_token"]
status, body = graph("/servicePrincipals", at, **{"$filter": "appId eq 'ms-client'", "$select": "id"})
check(status == 200 and len(body["value"]) == 1 and set(body["value"][0]) == {"id"},
      "servicePrincipals by appId with Directory.Read.All ($select=id)", str(body))
sp_id = body["value"][0]["id"]
status, body = graph("/oauth2PermissionGrants", at, **{"$filter": "clientId eq '%s'" % sp_id})
check(status == 200 and [g["consentType"] for g in body["value"]] == ["AllPrincipals"]
      and body["value"][0]["principalId"] is None and "Directory.Read.All" in body["value"][0]["scope"].split(),
      "oauth2PermissionGrants with Directory.Read.All: 200, AllPrincipals", str(body))
check(graph_last()["permissionOk"] is True, "log: permissionOk true")
status, body = graph("/servicePrincipals/%s/oauth2PermissionGrants" % sp_id, at)
check(status == 200 and body["value"][0]["clientId"] == sp_id, "servicePrincipals/{id}/oauth2PermissionGrants")
check(graph("/servicePrincipals/not-an-sp/oauth2PermissionGrants", at)[0] == 404, "grants of an unknown sp: 404")
# /me with only Calendars.Read (user-consentable: the admin's consent page adds it to the org grant).
flow, cal = ms_sign_in("openid Calendars.Read")
check(cal and last_authorize()["consentShown"] is True, "sign-in for a new scope shows the consent page")
status, body = graph("/me", cal["access_token"])
check(status == 403 and body["error"]["code"] == "Authorization_RequestDenied", "/me with only Calendars.Read: 403")
check(graph("/me/calendar", cal["access_token"])[0] == 200, "/me/calendar with Calendars.Read: 200")
status, body = graph("/users", cal["access_token"])
check(status == 403 and body["error"]["code"] == "Authorization_RequestDenied", "/users with only Calendars.Read: 403")
flow, usr = ms_sign_in("openid User.Read")
status, body = graph("/me/calendar", usr["access_token"])
check(status == 403 and body["error"]["code"] == "ErrorAccessDenied", "/me/calendar without Calendars.*: ErrorAccessDenied")
set_scenario("graph_forbidden", "microsoft")
status, body = graph("/users", at, **{"$top": 1})
check(status == 403 and body["error"]["code"] == "Authorization_RequestDenied", "graph_forbidden: 403")
set_scenario("success")
flow = authorize(MS, client="ms-client", redirect_uri=ms_redirect, path="/oauth2/v2.0/authorize",
                 extra={"__scenario": "admin_consent_required"})
check(flow["query"].get("error") == "access_denied"
      and flow["query"].get("error_description", "").startswith("AADSTS90094:"), "admin_consent_required: AADSTS90094")

# Consent as tenant state. Start from a tenant that has granted nothing.
grants_control({"consentType": "none"})
status, body = graph("/servicePrincipals", at, **{"$filter": "appId eq 'ms-client'"})
check(status == 200 and body["value"] == [], "no grant: no service principal for the app")
flow, _ = ms_sign_in("openid User.Read https://graph.microsoft.com/Directory.Read.All", __scenario="user_not_admin")
check(flow["query"].get("error") == "access_denied"
      and flow["query"].get("error_description", "").startswith("AADSTS90094:"),
      "non-admin asking for Directory.Read.All without tenant consent: AADSTS90094", str(flow["query"]))
flow, own = ms_sign_in("openid User.Read Calendars.Read", __scenario="user_not_admin")
check(own and last_authorize()["consentType"] == "Principal",
      "non-admin consents to user-consentable scopes for themselves")
flow, mine = ms_sign_in("openid " + GRAPH_SCOPES, prompt="consent", __scenario="consent_principal_only")
check(mine and last_authorize()["consentType"] == "Principal", "consent_principal_only: code, Principal grant")
status, body = graph("/oauth2PermissionGrants", mine["access_token"], **{"$filter": "clientId eq '%s'" % sp_id})
check(status == 200 and [g["consentType"] for g in body["value"]] == ["Principal"]
      and body["value"][0]["principalId"] == "0f6e5d4c-3b2a-4190-8877-665544332211"
      and "Directory.Read.All" in body["value"][0]["scope"].split(),
      "consent_principal_only: oauth2PermissionGrants shows only a Principal grant", str(body))
# Admin consent for the PUBLIC client (no secret exists): AllPrincipals grant, no code.
AC = "https://login.microsoftonline.com/%s/v2.0/adminconsent?"
consent_params = {"client_id": "ms-client", "scope": GRAPH_SCOPES, "redirect_uri": ms_redirect, "state": "s1"}
status, headers, _ = curl(AC % tid + urllib.parse.urlencode(consent_params))
consent = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(headers.get("location", "")).query))
check(status == 302 and consent.get("admin_consent") == "True" and consent.get("tenant") == tid
      and consent.get("state") == "s1" and consent.get("scope") == GRAPH_SCOPES and "code" not in consent,
      "adminconsent (public client): admin_consent=True&tenant&scope&state, no code", str(consent))
entry = [e for e in log_entries() if e["endpoint"] == "adminconsent"][-1]
check(entry["consentedScopes"] == ["User.Read", "User.Read.All", "Calendars.ReadWrite", "Directory.Read.All"],
      "log: consentedScopes", str(entry))
status, body = graph("/oauth2PermissionGrants", mine["access_token"], **{"$filter": "clientId eq '%s'" % sp_id})
org = [g for g in body["value"] if g["consentType"] == "AllPrincipals"]
check(status == 200 and org and org[0]["principalId"] is None
      and set(org[0]["scope"].split()) == {"User.Read", "User.Read.All", "Calendars.ReadWrite", "Directory.Read.All"},
      "adminconsent created an AllPrincipals grant visible in oauth2PermissionGrants", str(body))
flow, after = ms_sign_in("openid offline_access " + GRAPH_SCOPES, prompt="select_account",
                         __scenario="user_not_admin")
check(after and last_authorize()["consentShown"] is False and "Directory.Read.All" in after.get("scope", ""),
      "after tenant-wide consent a non-admin gets a code directly (no consent page)")
flow, _ = ms_sign_in("openid " + GRAPH_SCOPES, prompt="consent", __scenario="user_not_admin")
check(flow["query"].get("error_description", "").startswith("AADSTS90094:"),
      "prompt=consent stops a non-admin even after tenant-wide consent")
flow, _ = ms_sign_in("openid https://graph.microsoft.com/Mail.Read", prompt="none")
check(flow["query"].get("error") == "consent_required", "prompt=none with consent due: consent_required")
grants_control({"consentType": "none"})
flow, admin = ms_sign_in("openid " + GRAPH_SCOPES, prompt="consent")
check(admin and last_authorize()["consentType"] == "AllPrincipals",
      "an admin's consent page ticks 'on behalf of your organization' by default")
state = grants_control()
check([(g["clientId"], g["consentType"]) for g in state["grants"]] == [("ms-client", "AllPrincipals")]
      and state["servicePrincipals"] == ["ms-client"], "GET /__control/grants", str(state))
# adminconsent refusals
status, _, body = curl(AC % "common" + urllib.parse.urlencode(consent_params))
check(status == 400 and "AADSTS50194" in body, "adminconsent on common: AADSTS50194 page")
for scenario, error, code in (("consent_declined", "consent_required", "AADSTS65004"),
                              ("admin_consent_not_admin", "access_denied", "AADSTS90093"),
                              ("user_not_admin", "access_denied", "AADSTS90093")):
    location = curl(AC % "organizations" + urllib.parse.urlencode(dict(consent_params, __scenario=scenario)))[1]
    answer = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location.get("location", "")).query))
    check(answer.get("admin_consent") == "True" and answer.get("error") == error
          and answer.get("error_description", "").startswith(code) and "tenant" not in answer,
          "adminconsent %s: error=%s %s" % (scenario, error, code), str(answer))
status, headers, _ = curl(AC % "organizations" + urllib.parse.urlencode(
    dict(consent_params, scope="https://graph.microsoft.com/.default")))
check("admin_consent=True" in headers.get("location", ""), "adminconsent with .default")
check(curl(AC % "organizations" + urllib.parse.urlencode(dict(consent_params, scope="")))[0] == 400,
      "adminconsent without scope: 400")
grants_control({})
status, dc = curl(MS + "/oauth2/v2.0/devicecode", "POST", form={"client_id": "ms-client",
                                                                "scope": "openid offline_access User.Read"})[0:3:2]
dc = as_json(dc)
check(status == 200 and dc.get("verification_uri") == "https://microsoft.com/devicelogin" and dc.get("interval") == 1,
      "devicecode")
poll = {"grant_type": "urn:ietf:params:oauth:grant-type:device_code", "client_id": "ms-client",
        "device_code": dc["device_code"]}
first = as_json(curl(MS + "/oauth2/v2.0/token", "POST", form=poll)[2])
check(first.get("error") == "authorization_pending" and "AADSTS70016" in first["error_description"], "poll: pending")
early = as_json(curl(MS + "/oauth2/v2.0/token", "POST", form=poll)[2])
check(early.get("error") == "slow_down", "poll faster than the interval: slow_down")
time.sleep(1.1)
done = as_json(curl(MS + "/oauth2/v2.0/token", "POST", form=poll)[2])
check("access_token" in done and "refresh_token" in done, "poll: tokens after the pending polls", str(done)[:200])

# ---------------------------------------------------------------- Google
print("== Google")
GA = "https://accounts.google.com"
scopes = ("openid email https://www.googleapis.com/auth/calendar "
          "https://www.googleapis.com/auth/admin.directory.user.readonly")
flow = authorize(GA, client="g-client", redirect_uri="http://127.0.0.1:50321/", scope=scopes, path="/o/oauth2/v2/auth")
check(flow["query"].get("code") and "admin.directory" in flow["query"].get("scope", ""), "authorize with scope echo")
status, tok = redeem("https://oauth2.googleapis.com", flow, client_secret="g-secret", path="/token")
check(status == 200 and "admin.directory" in tok.get("scope", ""), "token with granted scope", str(tok)[:200])
verify(tok["id_token"], jwks("https://www.googleapis.com/oauth2/v3/certs"), "g-client", "https://accounts.google.com",
       flow["nonce"])
check(True, "Google id_token verifies")
bearer = ["Authorization: Bearer " + tok["access_token"]]
status, _, body = curl("https://admin.googleapis.com/admin/directory/v1/users?customer=my_customer&maxResults=2",
                       headers=bearer)
page = as_json(body)
check(status == 200 and len(page["users"]) == 2 and page.get("nextPageToken"), "Directory users.list page 1")
status, _, body = curl("https://admin.googleapis.com/admin/directory/v1/users?customer=my_customer&maxResults=2"
                       "&pageToken=" + page["nextPageToken"], headers=bearer)
check(status == 200 and len(as_json(body)["users"]) == 1 and "nextPageToken" not in as_json(body), "page 2")
check(curl("https://www.googleapis.com/calendar/v3/users/me/calendarList/primary", headers=bearer)[0] == 200,
      "calendarList/primary")
status, renewed = refresh("https://oauth2.googleapis.com", tok["refresh_token"], client="g-client", secret="g-secret",
                          path="/token")
check(status == 200 and "refresh_token" not in renewed, "Google refresh: no refresh_token (not rotated)")
set_scenario("directory_forbidden", "google")
status, _, body = curl("https://admin.googleapis.com/admin/directory/v1/users?customer=my_customer", headers=bearer)
check(status == 403 and as_json(body)["error"]["message"] == "Not Authorized to access this resource/api",
      "directory_forbidden: 403 Not Authorized to access this resource/api")
set_scenario("success")
flow = authorize(GA, client="g-client", redirect_uri="http://127.0.0.1:50321/", scope=scopes, path="/o/oauth2/v2/auth",
                 extra={"__scenario": "scopes_partial"})
status, tok = redeem("https://oauth2.googleapis.com", flow, client_secret="g-secret", path="/token")
check("admin.directory" not in tok["scope"] and "auth/calendar" in tok["scope"], "scopes_partial: scope lacks directory")
status, _, _ = curl("https://admin.googleapis.com/admin/directory/v1/users?customer=my_customer",
                    headers=["Authorization: Bearer " + tok["access_token"]])
check(status == 403, "directory without the scope: 403 insufficientPermissions")
flow = authorize(GA, client="g-client", redirect_uri="http://127.0.0.1:50321/", scope=scopes, path="/o/oauth2/v2/auth",
                 extra={"__scenario": "admin_policy_enforced"})
check(flow["query"].get("error") == "admin_policy_enforced", "admin_policy_enforced")
# A grant the admin stops trusting, or narrows, later: the refresh says so.
flow = authorize(GA, client="g-client", redirect_uri="http://127.0.0.1:50321/", scope=scopes, path="/o/oauth2/v2/auth")
status, full = redeem("https://oauth2.googleapis.com", flow, client_secret="g-secret", path="/token")
set_scenario("admin_policy_enforced", "google")
status, err = refresh("https://oauth2.googleapis.com", full["refresh_token"], client="g-client", secret="g-secret", path="/token")
check(status == 400 and err.get("error") == "admin_policy_enforced", "admin_policy_enforced: refresh answers 400 admin_policy_enforced", str(err))
set_scenario("scopes_partial", "google")
status, narrowed = refresh("https://oauth2.googleapis.com", full["refresh_token"], client="g-client", secret="g-secret", path="/token")
check(status == 200 and "admin.directory" not in narrowed["scope"] and "auth/calendar" in narrowed["scope"],
      "scopes_partial: a refresh's scope lacks the unticked scopes", str(narrowed)[:200])
set_scenario("success")

# ---------------------------------------------------------------- Microsoft config keys (own instances)
print("== Microsoft config")
FIXTURE = os.path.join(os.environ["FIXTURE_DIR"], "fake_idp.py")


def with_fixture(config, body):
    """Runs body(connect_args) against a second fixture started with this config."""
    global CONNECT
    path = os.path.join(WORK, "config2.json")
    json.dump(config, open(path, "w"))
    proc = subprocess.Popen([sys.executable, FIXTURE, "--config", path, "--log", os.path.join(WORK, "log2.jsonl"),
                             "--workdir", os.path.join(WORK, "second")], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    saved = CONNECT
    try:
        other = json.loads(proc.stdout.readline())
        CONNECT = [a.replace(":%d" % PORT, ":%d" % other["httpsPort"]) for a in saved]
        body(other)
    finally:
        CONNECT = saved
        proc.stdin.close()
        proc.wait(timeout=10)


def not_admin(other):
    global CA
    saved, CA = CA, other["caFile"]
    try:
        flow, _ = ms_sign_in("openid " + GRAPH_SCOPES)
        check(flow["query"].get("error_description", "").startswith("AADSTS90094:"),
              "microsoft.user.isGlobalAdmin false: AADSTS90094 for Directory.Read.All", str(flow)[:400])
        answer = curl(AC % "organizations" + urllib.parse.urlencode(consent_params))[1].get("location", "")
        check("AADSTS90093" in urllib.parse.unquote_plus(answer), "microsoft.user.isGlobalAdmin false: adminconsent AADSTS90093")
    finally:
        CA = saved


def no_tick(other):
    global CA
    saved, CA = CA, other["caFile"]
    try:
        flow, tok = ms_sign_in("openid " + GRAPH_SCOPES, prompt="consent")
        granted = as_json(curl(SO + "/__control/grants")[2])["grants"]
        check(tok and [g["consentType"] for g in granted] == ["Principal"],
              "microsoft.ticksOrganizationConsent false: a Principal grant only", str(granted))
    finally:
        CA = saved


with_fixture({"clients": {"ms-client": None}, "microsoft": {"consentType": "none", "user": {"isGlobalAdmin": False}}},
             not_admin)
with_fixture({"clients": {"ms-client": None}, "microsoft": {"consentType": "none", "ticksOrganizationConsent": False}},
             no_tick)
bad = subprocess.run([sys.executable, FIXTURE, "--config", "/dev/stdin", "--log", os.path.join(WORK, "log3.jsonl"),
                      "--workdir", os.path.join(WORK, "third")], input='{"microsoft": {"consentType": "Everyone"}}',
                     capture_output=True, text=True, timeout=30)
check(bad.returncode == 2 and "consentType" in bad.stderr, "bad microsoft.consentType: exit 2", bad.stderr)

# ---------------------------------------------------------------- TLS and the log
print("== TLS and log")
status, _, err = curl(SO + "/api/state/Cust12345", cacert=ready["untrustedCaFile"])
check(status < 0, "the untrusted CA does not verify the fixture's certificates")
entries = log_entries()
check(all({"t", "host", "method", "path", "status", "grantType", "clientId", "hasCodeVerifier", "pkceOk",
           "bearerValid"} <= set(e) for e in entries), "every log entry has the documented fields")
check(not any(e["path"].startswith("/__control/") for e in entries), "control requests are not logged")
pkce_fail = [e for e in entries if e["endpoint"] == "token" and e["pkceOk"] is False]
check(pkce_fail and pkce_fail[0]["hasCodeVerifier"] is True and pkce_fail[0]["error"] == "invalid_grant",
      "log: PKCE mismatch shows pkceOk false")
check(any(e["endpoint"] == "currentPrincipal" and e["bearerValid"] is True for e in entries)
      and any(e["endpoint"] == "rest" and e["bearerValid"] is False for e in entries), "log: bearerValid")
check(any(e["grantType"] == "refresh_token" for e in entries), "log: grantType")
auth = next(e for e in entries if e["endpoint"] == "authorize")
check("code_challenge&" in auth["path"] and "=" not in auth["path"], "log: query parameter names only",
      auth["path"])
issued = as_json(curl(SO + "/__control/issued")[2])
text = open(LOG).read()
leaks = [s for s in issued["secrets"] + issued["clientSecrets"] if s in text]
check(issued["secrets"] and not leaks, "no code, token or client secret value in the log (%d checked)"
      % len(issued["secrets"]), str(leaks[:3]))
print("selftest: %d checks passed" % passed)
PY
