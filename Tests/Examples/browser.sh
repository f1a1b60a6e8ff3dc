#!/bin/bash
# The examples' test "browser": SYNCWIZARD_BROWSER="bash Tests/Examples/browser.sh", called with
# the authorization URL. Plays the fake identity provider's sign-in with curl (its CA, every
# https host on port 443 routed to it), as FakeIdentityProvider.playBrowser does.
#   TEST_BROWSER_MODE=follow   follow the redirect to syncwizard's loopback listener (a browser
#                              on this machine)
#   TEST_BROWSER_MODE=landing  stop at the redirect and write the address the browser would land
#                              on to TEST_BROWSER_LANDED (a browser on another machine: the
#                              person pastes it)
set -euo pipefail
url=$1
curl_args=(-sS --noproxy '*' --max-time 20 --cacert "$TEST_BROWSER_CA" --connect-to ":443:127.0.0.1:$TEST_BROWSER_PORT")
case "$TEST_BROWSER_MODE" in
  follow)  curl "${curl_args[@]}" -L -o /dev/null "$url" ;;
  landing) curl "${curl_args[@]}" -o /dev/null -w '%{redirect_url}' "$url" >"$TEST_BROWSER_LANDED.tmp"
           mv "$TEST_BROWSER_LANDED.tmp" "$TEST_BROWSER_LANDED" ;;
esac
