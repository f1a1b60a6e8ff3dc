import EWS
import Foundation
import HTTP
import IntegratedAuth
import RPCCore
import TestSupport
import Testing

/// Scheme once per host (issue 16.2), against the real acceptor: a host whose scheme the client
/// learned gets the handshake without the unauthenticated probe, a request on a live
/// authenticated connection needs none, and knowledge that no longer fits falls back to the probe.
/// Counted in the acceptor's log, which records every request with its body size.
@Suite(.serialized) struct SchemeReuseTests {
    static let credentials = IntegratedCredentials(userName: "alice", domain: "CONTOSO", email: "alice@contoso.test", password: "Passw0rd!")
    static let body = EWS.getFolderBody(impersonate: nil)

    static func getFolder() -> HTTPRequest {
        var headers = HTTPHeaders()
        headers.add("Content-Type", "text/xml; charset=utf-8")
        return HTTPRequest(method: "POST", url: IntegratedAuthTests.ews, headers: headers, body: body, timeoutSeconds: 20)
    }

    /// The acceptor's log entries after the first `skip`.
    static func entries(_ acceptor: IntegratedAuthProcess, after skip: Int) -> [JSONValue] {
        Array(acceptor.logEntries().dropFirst(skip))
    }

    @Test func ntlmHostIsAskedOnceThenTheHandshakeGoesWithoutTheProbe() async throws {
        let acceptor = try IntegratedAuthRealm.acceptor(offer: "NTLM", requireCBT: true)
        let client = try IntegratedAuthTests.client(acceptor)
        // Unknown host: probe (with the body), NEGOTIATE, AUTHENTICATE.
        let first = try await IntegratedAuthenticator(client: client).send(Self.getFolder(), credentials: Self.credentials)
        #expect(first.response.status == 200)
        #expect(!first.probeSkipped)
        let learned = acceptor.logEntries()
        #expect(learned.map { $0["token"]?.stringValue ?? "-" } == ["-", "ntlm-negotiate", "ntlm-authenticate"], "\(learned)")

        // At once again: the authenticated connection is alive, the probe is the whole request.
        let again = try await IntegratedAuthenticator(client: client).send(Self.getFolder(), credentials: Self.credentials)
        #expect(again.response.status == 200)
        #expect(again.scheme == .none)
        let live = Self.entries(acceptor, after: learned.count)
        // No Authorization header, accepted on the connection the handshake authenticated.
        #expect(live.count == 1 && live.first?["scheme"] == "" && live.first?["outcome"] == "ok", "\(live)")
        #expect(live.first?["connection"] != nil && live.first?["connection"] == learned.last?["connection"])

        // Its connection taken as gone (a live window of 0 s): NEGOTIATE at once with no body,
        // AUTHENTICATE with the body: 2 requests, the body once, still channel-bound.
        let known = try await IntegratedAuthenticator(client: client, liveConnectionSeconds: 0).send(Self.getFolder(), credentials: Self.credentials)
        #expect(known.response.status == 200)
        #expect(known.probeSkipped)
        #expect(known.scheme == .ntlm(channelBinding: true, libcurl: false))
        let skipped = Self.entries(acceptor, after: learned.count + live.count)
        #expect(skipped.map { $0["token"]?.stringValue ?? "-" } == ["ntlm-negotiate", "ntlm-authenticate"], "\(skipped)")
        #expect(skipped.map { $0["bodyBytes"]?.intValue ?? -1 } == [0, Self.body.count])
        #expect(skipped.last?["outcome"] == "ok" && skipped.last?["cbt"] == true)
        print("[round trips] NTLM+CBT: unknown host \(learned.count) requests, live connection \(live.count), known host \(skipped.count)")
    }

    @Test func kerberosHostGetsItsTicketInTheFirstRequest() async throws {
        let acceptor = try IntegratedAuthRealm.acceptor(offer: "Negotiate", requireCBT: true, noNTLM: true)
        let client = try IntegratedAuthTests.client(acceptor)
        _ = IntegratedAuthTests.defaultCache
        let first = try await IntegratedAuthenticator(client: client).send(Self.getFolder(), credentials: Self.credentials)
        #expect(first.response.status == 200)
        #expect(first.scheme == .kerberos(channelBinding: true))
        let learned = acceptor.logEntries()
        #expect(learned.map { $0["token"]?.stringValue ?? "-" } == ["-", "kerberos"], "\(learned)")

        // Known host: the AP-REQ, bound to the certificate the host presented, with the body: 1 request.
        let known = try await IntegratedAuthenticator(client: client, liveConnectionSeconds: 0).send(Self.getFolder(), credentials: Self.credentials)
        #expect(known.response.status == 200)
        #expect(known.probeSkipped)
        #expect(known.scheme == .kerberos(channelBinding: true))
        let skipped = Self.entries(acceptor, after: learned.count)
        #expect(skipped.count == 1, "\(skipped)")
        #expect(skipped.first?["token"] == "kerberos" && skipped.first?["outcome"] == "ok")
        #expect(skipped.first?["bodyBytes"]?.intValue == Self.body.count)
        print("[round trips] Kerberos: unknown host \(learned.count) requests, known host \(skipped.count)")
    }

    /// What the client knew no longer fits (here: NTLM remembered, the server now takes Kerberos
    /// only): the NEGOTIATE is refused, the probe decides as for an unknown host, and the new
    /// scheme is what the client knows afterwards.
    @Test func staleKnowledgeFallsBackToTheProbe() async throws {
        let acceptor = try IntegratedAuthRealm.acceptor(offer: "Negotiate", requireCBT: true, noNTLM: true)
        let client = try IntegratedAuthTests.client(acceptor)
        let key = IntegratedAuthenticator.memoryKey(IntegratedAuthTests.ews, Self.credentials)
        client.authenticationMemory?[key] = AuthenticationMemory.Entry(scheme: "ntlm", label: "NTLM", tlsServerEndPoint: nil, authenticatedAt: 0)
        let outcome = try await IntegratedAuthenticator(client: client, liveConnectionSeconds: 0).send(Self.getFolder(), credentials: Self.credentials)
        #expect(outcome.response.status == 200)
        #expect(outcome.scheme == .kerberos(channelBinding: true))
        #expect(!outcome.probeSkipped)
        let log = acceptor.logEntries()
        // The bodiless NEGOTIATE leg, answered with the acceptor's offers only (no NTLM challenge).
        #expect(log.first?["scheme"] == "NTLM" && log.first?["outcome"] == "challenge" && log.first?["bodyBytes"] == 0, "\(log)")
        #expect(log.count == 3, "\(log)")
        #expect(log.last?["protocol"] == "kerberos" && log.last?["outcome"] == "ok")
        #expect(client.authenticationMemory?[key]?.scheme == "kerberos")
    }
}
