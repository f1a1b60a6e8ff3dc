#!/bin/bash
# Connects an on-premises Exchange calendar through one long-lived syncwizard (a bash coprocess):
# profile, credentials, Autodiscover (override when it fails), connection test, next step.
#
#   EXCHANGE_EMAIL=alice@contoso.com EXCHANGE_USER=alice EXCHANGE_DOMAIN=CONTOSO \
#     ./connect-exchange.sh [syncwizard options...]
#
# EXCHANGE_PASSWORD and EXCHANGE_EWS_URL (used only when Autodiscover fails) are asked for when
# unset. SYNCWIZARD names the binary (default: syncwizard on PATH); the arguments go to it.
set -euo pipefail

coproc SW { "${SYNCWIZARD:-syncwizard}" "$@"; }
pid=$SW_PID   # kept: bash unsets SW_PID as soon as the coprocess has exited
n=0

# rpc METHOD [PARAMS-JSON]: sends one request and waits for its reply, showing the notifications
# that come before it. The whole reply line is left in $reply. Requests run concurrently in
# syncwizard, so a script that needs one reply for the next request must wait like this.
rpc() {
  n=$((n + 1))
  jq -nc --argjson id "$n" --arg m "$1" --argjson p "${2:-null}" \
     '{jsonrpc: "2.0", id: $id, method: $m, params: $p}' >&"${SW[1]}"
  while IFS= read -r reply <&"${SW[0]}"; do
    if [ "$(jq -r '.id // empty' <<<"$reply")" = "$n" ]; then return 0; fi
    # A notification: progress {requestId, stage, message, percent?}; others shown by name.
    jq -r 'if .method == "progress"
           then "  ... \(.params.message)" + (if .params.percent then " (\(.params.percent)%)" else "" end)
           else "  (notification \(.method))" end' <<<"$reply"
  done
  echo "syncwizard ended before it answered $1" >&2; exit 1
}
# ok: the reply was a result. Otherwise prints the error's message and hint and returns 1.
ok() {
  jq -e 'has("result")' <<<"$reply" >/dev/null && return 0
  jq -r '.error | "error: \(.message)", (.data.hint // empty | "hint: \(.)")' <<<"$reply"
  return 1
}
kind() { jq -r '.error.data.kind // empty' <<<"$reply"; }

: "${EXCHANGE_EMAIL:?set EXCHANGE_EMAIL}" "${EXCHANGE_USER:?set EXCHANGE_USER}"
if [ -z "${EXCHANGE_PASSWORD:-}" ]; then read -rsp "Password for $EXCHANGE_USER: " EXCHANGE_PASSWORD; echo; fi

rpc createProfile '{"name": "Exchange (shell example)"}'; ok || exit 1
profile=$(jq -r .result.id <<<"$reply")
echo "profile $profile"
rpc selectCalendarSystem "$(jq -nc --arg p "$profile" '{profileId: $p, system: "exchange"}')"; ok || exit 1

echo "Looking for the Exchange server (Autodiscover)..."
rpc submitExchangeCredentials "$(jq -nc --arg p "$profile" --arg u "$EXCHANGE_USER" \
    --arg d "${EXCHANGE_DOMAIN:-}" --arg e "$EXCHANGE_EMAIL" --arg pw "$EXCHANGE_PASSWORD" \
    '{profileId: $p, userName: $u, domain: $d, email: $e, password: $pw}')"
if ok; then
  jq -r '.result | "found EWS \(.ewsUrl) (\(.endpointSource))"' <<<"$reply"
elif [ "$(kind)" = autodiscoverFailed ]; then
  jq -r '.error.data.attempts[] | "  tried \(.method) \(.url): \(.outcome)"' <<<"$reply"
  if [ -z "${EXCHANGE_EWS_URL:-}" ]; then read -rp "EWS URL: " EXCHANGE_EWS_URL; fi
  rpc overrideEndpoints "$(jq -nc --arg p "$profile" --arg u "$EXCHANGE_EWS_URL" '{profileId: $p, ewsUrl: $u}')"
  ok || exit 1
  jq -r '.result | "using EWS \(.ewsUrl) (\(.endpointSource))"' <<<"$reply"
else
  exit 1
fi

echo "Testing the connection..."
rpc testConnection "$(jq -nc --arg p "$profile" '{profileId: $p, system: "calendar"}')"; ok || exit 1
jq -r '.result.results[] | .checks[] | "  \(if .ok then "ok  " else "FAIL" end) \(.name): \(.message)"' <<<"$reply"
jq -r '.result.results[] | .error // empty | "error: \(.message)", (.data.hint // empty | "hint: \(.)")' <<<"$reply"

rpc nextStep "$(jq -nc --arg p "$profile" '{profileId: $p}')"
if jq -e 'has("result")' <<<"$reply" >/dev/null; then
  jq -r '"next step: \(.result.step)"' <<<"$reply"
elif [ "$(kind)" = stepIncomplete ]; then
  echo "Not done yet:"
  jq -r '.error.data.blockers[] | "  \(.system): \(.message) [\(.kind)]"' <<<"$reply"
else
  ok
fi

rpc shutdown
exec {SW[1]}>&-   # EOF on syncwizard's stdin: it exits with status 0
wait "$pid"
