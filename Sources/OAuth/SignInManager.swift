import Cryptography
import RPCCore
import Threading
import WizardContract

/// How one provider signs a profile in: where to send the browser and what to do with the answer.
public struct SignInPlan: Sendable {
    public var profileId: String
    public var system: System
    /// The authorization endpoint without query.
    public var authorizeEndpoint: String
    /// client_id, scope, response_type, prompt, … (state, nonce, PKCE and redirect_uri are added here).
    public var parameters: [(String, String)]
    /// Microsoft wants `localhost`; SuperOffice and Google `127.0.0.1`. The listener binds 127.0.0.1 either way.
    public var redirectHost: String
    public var usesPKCE: Bool
    public var usesNonce: Bool
    public var timeoutSeconds: Double
    /// A browser leg before the authorization request, answered without a code (Microsoft's
    /// tenant-wide admin consent, protocols.md §7.3). Its answer on the loopback page sends the
    /// same tab on to the authorization request.
    public var consentLeg: ConsentLeg?
    /// Work for while the browser is out (the key set, which also opens the token endpoint's
    /// connection): started with the sign-in, never waited for by it.
    public var prepare: (@Sendable () async -> Void)?
    /// Exchanges the code, checks the id_token, stores the refresh token; returns the account.
    public var finish: @Sendable (SignInAnswer) async throws(RPCError) -> JSONObject
    /// Gives an error redirect (error=…&error_description=…) its contract kind.
    public var mapError: @Sendable (OAuthErrorResponse) -> RPCError

    public init(
        profileId: String, system: System, authorizeEndpoint: String, parameters: [(String, String)],
        redirectHost: String = "127.0.0.1", usesPKCE: Bool = true, usesNonce: Bool = true, timeoutSeconds: Double = 600,
        finish: @escaping @Sendable (SignInAnswer) async throws(RPCError) -> JSONObject,
        mapError: @escaping @Sendable (OAuthErrorResponse) -> RPCError = OAuthErrors.standard
    ) {
        self.profileId = profileId
        self.system = system
        self.authorizeEndpoint = authorizeEndpoint
        self.parameters = parameters
        self.redirectHost = redirectHost
        self.usesPKCE = usesPKCE
        self.usesNonce = usesNonce
        self.timeoutSeconds = timeoutSeconds
        self.finish = finish
        self.mapError = mapError
    }
}

/// The first browser leg of a two-leg sign-in: where to send the browser, and whether its
/// answer grants what the second leg needs (otherwise the error the sign-in ends with).
public struct ConsentLeg: Sendable {
    public var endpoint: String
    /// client_id, scope, … (redirect_uri and state are added).
    public var parameters: [(String, String)]
    public var granted: @Sendable (_ answer: [String: String]) -> RPCError?

    public init(endpoint: String, parameters: [(String, String)], granted: @escaping @Sendable ([String: String]) -> RPCError?) {
        self.endpoint = endpoint
        self.parameters = parameters
        self.granted = granted
    }
}

/// What came back from the browser, with what was generated for this sign-in.
public struct SignInAnswer: Sendable {
    public var code: String
    /// Other parameters of the redirect (admin_consent, tenant, scope, …).
    public var extra: [String: String]
    public var redirectURI: String
    public var codeVerifier: String?
    public var nonce: String?
}

/// OAuth errors every provider shares; providers add their own (AADSTS codes, admin_policy_enforced).
public enum OAuthErrors {
    public static func standard(_ error: OAuthErrorResponse) -> RPCError {
        let detail = error.description.map { ": \($0)" } ?? ""
        switch error.error {
        case "access_denied":
            return RPCError(
                .consentDenied, "The sign-in was declined\(detail).", hint: "Sign in again and accept the requested permissions.",
                details: ["error": .string(error.error)])
        case "invalid_grant":
            return RPCError(
                .reauthenticationRequired, "The sign-in is no longer valid\(detail).", hint: "Sign in again.",
                details: ["error": .string(error.error)])
        default:
            return RPCError(.serverError, "The identity provider answered \(error.error)\(detail).", details: ["error": .string(error.error)])
        }
    }
}

/// The browser sign-ins in progress. Each has its own one-shot loopback listener; the answer
/// arrives there (or is pasted with completeSignIn), is checked against the state sent, and is
/// finished by the plan. Every outcome is also announced (signInCompleted / signInFailed).
public actor SignInManager {
    public typealias Notifier = @Sendable (_ method: String, _ params: JSONValue) -> Void

    final class Session: Sendable {
        let id: String
        let plan: SignInPlan
        let state: String
        let nonce: String?
        let pkce: PKCE?
        let redirectURI: String
        let expiresAt: String
        /// The state of the consent leg (a different one from the authorization leg's).
        let consentState: String?
        /// Where the authorization leg starts (after the consent leg, when there is one).
        let authorizationURL: MutexBox<String> = MutexBox("")
        let listener: MutexBox<LoopbackListener?> = MutexBox(nil)
        /// Device code flow: the polling task (no listener).
        let poller: MutexBox<Task<Void, Never>?> = MutexBox(nil)

        init(id: String, plan: SignInPlan, redirectURI: String, expiresAt: String, pkce: PKCE?) {
            self.id = id
            self.plan = plan
            self.state = RandomToken.make(bytes: 24)
            self.nonce = plan.usesNonce ? RandomToken.make(bytes: 24) : nil
            self.pkce = pkce
            self.redirectURI = redirectURI
            self.expiresAt = expiresAt
            self.consentState = plan.consentLeg == nil ? nil : RandomToken.make(bytes: 24)
        }
    }

    enum Status {
        case waiting
        case processing
        case done(Result<SignInCompleted, RPCError>)
    }

    private var sessions: [String: Session] = [:]
    private var statuses: [String: Status] = [:]
    private var waiters: [String: [Int: CheckedContinuation<Result<SignInCompleted, RPCError>, Never>]] = [:]
    private var nextWaiter = 0
    private let notify: Notifier

    public init(notify: @escaping Notifier) {
        self.notify = notify
    }

    public func start(_ plan: SignInPlan, now: Double, isoDate: @Sendable (Double) -> String) async throws(RPCError) -> StartSignIn.Result {
        let id = RandomToken.make(bytes: 12)
        var pkce: PKCE?
        if plan.usesPKCE {
            guard let made = PKCE() else {
                throw RPCError(
                    .internalError, "The sign-in needs OpenSSL's libcrypto, which cannot be loaded.",
                    hint: RSAPublicKey.unavailableReason)
            }
            pkce = made
        }
        // The handler needs the session, the session needs the listener's port: bind first.
        let box = MutexBox<Session?>(nil)
        let listener: LoopbackListener
        do {
            listener = try await LoopbackListener.start { [weak self] target in
                guard let self, let session = box.withLock({ $0 }) else {
                    return LoopbackListener.Reply(
                        status: 410, html: SignInPage.render(title: "Sign-in expired", message: "This sign-in is no longer open.", ok: false), done: true)
                }
                return await self.handleCallback(session, target: target)
            }
        } catch {
            throw RPCError(.internalError, "Cannot open the loopback listener for the sign-in: \(error).")
        }
        let redirectURI = "http://\(plan.redirectHost):\(listener.port)"
        let session = Session(id: id, plan: plan, redirectURI: redirectURI, expiresAt: isoDate(now + plan.timeoutSeconds), pkce: pkce)
        session.listener.withLock { $0 = listener }
        box.withLock { $0 = session }
        sessions[id] = session
        statuses[id] = .waiting

        var query = plan.parameters
        query.append(("redirect_uri", redirectURI))
        query.append(("state", session.state))
        if let nonce = session.nonce { query.append(("nonce", nonce)) }
        if let pkce = session.pkce {
            query.append(("code_challenge", pkce.challenge))
            query.append(("code_challenge_method", PKCE.method))
        }
        let authorizationURL = Self.url(plan.authorizeEndpoint, query)
        session.authorizationURL.withLock { $0 = authorizationURL }
        var url = authorizationURL
        if let leg = plan.consentLeg, let consentState = session.consentState {
            url = Self.url(leg.endpoint, leg.parameters + [("redirect_uri", redirectURI), ("state", consentState)])
        }

        if let prepare = plan.prepare { Task { await prepare() } }
        let timeout = plan.timeoutSeconds
        Task { [weak self] in
            try? await sleep(seconds: timeout)
            await self?.expire(id)
        }
        return .browser(signInId: id, authorizationUrl: url, redirectUri: redirectURI, expiresAt: session.expiresAt)
    }

    static func url(_ endpoint: String, _ query: [(String, String)]) -> String {
        endpoint + (endpoint.contains("?") ? "&" : "?") + FormEncoding.encode(query)
    }

    /// The device code flow (RFC 8628): nothing listens; `poll` asks the token endpoint until the
    /// user has entered the code (or declined, or it expired) and returns the account.
    public func startDeviceCode(
        profileId: String, system: System, userCode: String, verificationUri: String,
        expiresIn: Double, message: String?, isoDate: @Sendable (Double) -> String, now: Double,
        poll: @escaping @Sendable () async throws(RPCError) -> JSONObject
    ) -> StartSignIn.Result {
        let id = RandomToken.make(bytes: 12)
        let plan = SignInPlan(
            profileId: profileId, system: system, authorizeEndpoint: "", parameters: [], usesPKCE: false,
            usesNonce: false, timeoutSeconds: expiresIn, finish: { _ throws(RPCError) in [:] })
        let session = Session(id: id, plan: plan, redirectURI: "", expiresAt: isoDate(now + expiresIn), pkce: nil)
        sessions[id] = session
        statuses[id] = .waiting
        let task = Task { [weak self] in
            let result: Result<SignInCompleted, RPCError>
            do throws(RPCError) {
                let account = try await poll()
                result = .success(SignInCompleted(signInId: id, profileId: profileId, system: system, account: account))
            } catch {
                result = .failure(error)
            }
            await self?.settle(id, result)
        }
        session.poller.withLock { $0 = task }
        return .deviceCode(signInId: id, userCode: userCode, verificationUri: verificationUri, message: message, expiresAt: session.expiresAt)
    }

    func settle(_ id: String, _ result: Result<SignInCompleted, RPCError>) {
        guard let session = sessions[id], case .waiting? = statuses[id] else { return }
        finish(session, result)
    }

    func expire(_ id: String) {
        guard let session = sessions[id], case .waiting? = statuses[id] else { return }
        finish(
            session,
            .failure(
                RPCError(
                    .signInTimedOut, "Nobody completed the sign-in within \(Int(session.plan.timeoutSeconds / 60)) minutes.",
                    hint: "Start the sign-in again.")))
    }

    /// A request on the loopback listener.
    func handleCallback(_ session: Session, target: String) async -> LoopbackListener.Reply {
        guard case .waiting? = statuses[session.id] else {
            return LoopbackListener.Reply(
                status: 409,
                html: SignInPage.render(title: "Already finished", message: "This sign-in has already finished. You can close this tab.", ok: false), done: true
            )
        }
        let callback: AuthorizationCallback
        switch AuthorizationCallback.parse(target) {
        case .success(let parsed): callback = parsed
        case .failure:
            // Not an answer (a browser probing the port): keep waiting for the real one.
            return LoopbackListener.Reply(
                status: 400, html: SignInPage.render(title: "Not a sign-in answer", message: "This address only receives sign-in answers.", ok: false),
                done: false)
        }
        if let next = consentLegPassed(session, callback) {
            switch next {
            case .success(let authorizationURL):
                return LoopbackListener.Reply(
                    status: 302, html: SignInPage.render(title: "Consent granted", message: "Continuing the sign-in.", ok: true),
                    done: false, location: authorizationURL)
            case .failure(let error):
                finish(session, .failure(error))
                return LoopbackListener.Reply(
                    status: 400,
                    html: SignInPage.render(
                        title: "Sign-in failed", message: "\(error.message) You can close this tab and return to the synchronizer.", ok: false), done: true)
            }
        }
        let result = await process(session, callback)
        switch result {
        case .success:
            return LoopbackListener.Reply(
                status: 200,
                html: SignInPage.render(
                    title: "Signed in",
                    message: "You are signed in to \(session.plan.system.displayName). You can close this tab and return to the synchronizer.", ok: true),
                done: true)
        case .failure(let error):
            return LoopbackListener.Reply(
                status: 400,
                html: SignInPage.render(title: "Sign-in failed", message: "\(error.message) You can close this tab and return to the synchronizer.", ok: false),
                done: true)
        }
    }

    /// nil when `callback` is not the consent leg's answer; else where the browser goes next, or
    /// why the sign-in ends there.
    func consentLegPassed(_ session: Session, _ callback: AuthorizationCallback) -> Result<String, RPCError>? {
        guard let leg = session.plan.consentLeg, let consentState = session.consentState, callback.state == consentState else { return nil }
        switch callback {
        case .error(let error, let description, _):
            return .failure(session.plan.mapError(OAuthErrorResponse(error: error, description: description)))
        case .code(_, _, let extra):
            if let refusal = leg.granted(extra) { return .failure(refusal) }
            return .success(session.authorizationURL.withLock { $0 })
        }
    }

    func process(_ session: Session, _ callback: AuthorizationCallback) async -> Result<SignInCompleted, RPCError> {
        statuses[session.id] = .processing
        let result: Result<SignInCompleted, RPCError>
        if callback.state != session.state {
            result = .failure(
                RPCError(
                    .stateMismatch, "The sign-in answer does not belong to this sign-in (its state does not match).",
                    hint: "Start the sign-in again and finish it in the browser window it opens."))
        } else {
            switch callback {
            case .error(let error, let description, _):
                result = .failure(session.plan.mapError(OAuthErrorResponse(error: error, description: description)))
            case .code(let code, _, let extra):
                let answer = SignInAnswer(
                    code: code, extra: extra, redirectURI: session.redirectURI,
                    codeVerifier: session.pkce?.verifier, nonce: session.nonce)
                do throws(RPCError) {
                    let account = try await session.plan.finish(answer)
                    result = .success(
                        SignInCompleted(
                            signInId: session.id, profileId: session.plan.profileId,
                            system: session.plan.system, account: account))
                } catch {
                    result = .failure(error)
                }
            }
        }
        // A cancel or timeout that came in while the tokens were being fetched wins.
        if case .done(let decided)? = statuses[session.id] { return decided }
        finish(session, result)
        return result
    }

    private func finish(_ session: Session, _ result: Result<SignInCompleted, RPCError>) {
        statuses[session.id] = .done(result)
        session.listener.withLock {
            $0?.close()
            $0 = nil
        }
        session.poller.withLock {
            $0?.cancel()
            $0 = nil
        }
        for waiter in (waiters.removeValue(forKey: session.id) ?? [:]).values { waiter.resume(returning: result) }
        switch result {
        case .success(let payload):
            notify(SignInCompletedNotification.name, payload.json)
        case .failure(let error):
            notify(
                SignInFailedNotification.name,
                [
                    "signInId": .string(session.id), "profileId": .string(session.plan.profileId),
                    "system": .string(session.plan.system.rawValue), "error": error.json,
                ])
        }
    }

    func session(_ id: String) throws(RPCError) -> Session {
        guard let session = sessions[id] else {
            throw RPCError(.signInNotFound, "There is no sign-in with the id '\(id.clipped(toBytes: 64))'.", hint: "Start one with startSignIn.")
        }
        return session
    }

    /// Waits for the outcome; `timeoutSeconds` only bounds this wait, not the sign-in.
    public func wait(_ id: String, timeoutSeconds: Double?) async throws(RPCError) -> SignInCompleted {
        let session = try session(id)
        if case .done(let result)? = statuses[id] { return try result.get() }
        let key = nextWaiter
        nextWaiter += 1
        if let timeoutSeconds {
            Task { [weak self] in
                try? await sleep(seconds: timeoutSeconds)
                await self?.resumeWaiter(
                    id, key,
                    .failure(
                        RPCError(
                            .signInTimedOut, "The sign-in did not finish within \(Int(timeoutSeconds)) seconds; it is still open until \(session.expiresAt).",
                            hint: "Call awaitSignIn again, or cancelSignIn.", details: ["stillOpen": true])))
            }
        }
        let result = await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                waiters[id, default: [:]][key] = continuation
            }
        } onCancel: {
            Task { await self.resumeWaiter(id, key, .failure(.cancelled)) }
        }
        return try result.get()
    }

    func resumeWaiter(_ id: String, _ key: Int, _ result: Result<SignInCompleted, RPCError>) {
        waiters[id]?.removeValue(forKey: key)?.resume(returning: result)
    }

    /// The URL the browser landed on, pasted by the user (a browser on another machine).
    public func complete(_ id: String, redirectUrl: String) async throws(RPCError) -> SignInCompleted {
        let session = try session(id)
        if case .done(let result)? = statuses[id] { return try result.get() }
        guard case .waiting? = statuses[id] else {
            throw RPCError(.invalidParams, "The sign-in is already being completed.", details: ["field": "signInId"])
        }
        let port = session.redirectURI.split(separator: ":").last.map(String.init) ?? ""
        let lower = redirectUrl.lowercased()
        guard lower.hasPrefix("http://127.0.0.1:\(port)") || lower.hasPrefix("http://localhost:\(port)") || lower.hasPrefix("http://[::1]:\(port)") else {
            throw .invalidParams(field: "redirectUrl", "'redirectUrl' must be the address the browser ended on, starting with \(session.redirectURI).")
        }
        switch AuthorizationCallback.parse(redirectUrl) {
        case .success(let callback):
            switch consentLegPassed(session, callback) {
            case .success(let next)?:
                // A browser elsewhere: the consent is in, the sign-in itself is the next page.
                throw RPCError(
                    .invalidParams, "This is the admin consent's answer; the sign-in continues at the address in data.nextUrl.",
                    hint: "Open data.nextUrl in the same browser, sign in, and paste the address it ends on.",
                    details: ["field": "redirectUrl", "nextUrl": .string(next)])
            case .failure(let error)?:
                finish(session, .failure(error))
                throw error
            case nil:
                return try await process(session, callback).get()
            }
        case .failure(.notARedirect(let why)):
            throw .invalidParams(field: "redirectUrl", "'redirectUrl' is not a sign-in answer: \(why).")
        }
    }

    public func cancel(_ id: String) throws(RPCError) -> CancelSignIn.Result {
        let session = try session(id)
        switch statuses[id] {
        case .done(let result)?:
            return CancelSignIn.Result(alreadyFinished: (try? result.get()) != nil ? .completed : .failed)
        default:
            finish(session, .failure(RPCError(.signInCancelled, "The sign-in was cancelled.")))
            return CancelSignIn.Result()
        }
    }

    /// Input ended: close every listener and fail what is still open.
    public func closeAll() {
        for (id, session) in sessions {
            if case .done? = statuses[id] { continue }
            finish(session, .failure(RPCError(.signInCancelled, "syncwizard is shutting down.")))
        }
    }

    /// For tests: whether the sign-in's listener is still open.
    public func isListening(_ id: String) -> Bool {
        sessions[id]?.listener.withLock { $0?.isOpen } ?? false
    }
}
