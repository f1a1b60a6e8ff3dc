import CGSSAPIShim
import Cryptography
import Synchronization
import Threading

#if canImport(Glibc)
    import Glibc
#endif

/// Why a GSSAPI step failed, classified in the C shim from the krb5 / GSSAPI codes.
public struct GSSFailure: Error, Sendable, Equatable {
    public enum Reason: Sendable, Equatable {
        case unavailable, badPassword, unknownUser, kdcUnreachable, noServicePrincipal, clockSkew, badBindings, account, other
    }
    public var reason: Reason
    /// The krb5 code's protocol name when it has one ("KRB_AP_ERR_SKEW").
    public var code: String?
    public var message: String

    init(_ status: sw_gss_status) {
        switch status.result {
        case Int32(SW_GSS_E_UNAVAILABLE.rawValue): reason = .unavailable
        case Int32(SW_GSS_E_BAD_PASSWORD.rawValue): reason = .badPassword
        case Int32(SW_GSS_E_UNKNOWN_USER.rawValue): reason = .unknownUser
        case Int32(SW_GSS_E_KDC_UNREACHABLE.rawValue): reason = .kdcUnreachable
        case Int32(SW_GSS_E_NO_SERVICE_PRINCIPAL.rawValue): reason = .noServicePrincipal
        case Int32(SW_GSS_E_CLOCK_SKEW.rawValue): reason = .clockSkew
        case Int32(SW_GSS_E_BAD_BINDINGS.rawValue): reason = .badBindings
        case Int32(SW_GSS_E_ACCOUNT.rawValue): reason = .account
        default: reason = .other
        }
        code = sw_gss_krb5_code_name(status.minor).map { String(cString: $0) }
        message = withUnsafeBytes(of: status.message) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
    }

    public init(reason: Reason, code: String? = nil, message: String) {
        self.reason = reason
        self.code = code
        self.message = message
    }
}

/// One GSSAPI security context (Kerberos, or NTLM through gss-ntlmssp) for HTTP@host. Every
/// call runs on the one "gssapi" thread: acquiring a ticket talks to the KDC and blocks.
public final class GSSContext: @unchecked Sendable { // the session pointer is only touched on `worker`
    public enum Mechanism: Sendable { case kerberos, ntlm }

    static let worker = SerialWorker(name: "gssapi")
    private let session: OpaquePointer
    public let mechanism: Mechanism
    /// The cached ticket a Kerberos session borrows: it must live as long as the session.
    private let credential: KerberosCredential?

    private init(session: OpaquePointer, mechanism: Mechanism, credential: KerberosCredential?) {
        self.session = session
        self.mechanism = mechanism
        self.credential = credential
    }

    deinit {
        let session = UncheckedBox(self.session)
        Self.worker.submit { sw_gss_session_free(session.value) }
    }

    /// Credentials from the password (Kerberos: the TGT KerberosTicketCache holds for this
    /// principal and password, else a new one into a private MEMORY: cache; NTLM: gss-ntlmssp's
    /// from the password) and a context for HTTP@`host` bound to `channelBinding` (the
    /// application data of RFC 5929).
    public static func start(
        _ mechanism: Mechanism, user: String, password: String, host: String,
        channelBinding: [UInt8]?
    ) async throws(GSSFailure) -> GSSContext {
        let result: Result<(UncheckedBox<OpaquePointer>, KerberosCredential?), GSSFailure>? = await worker.run {
            var status = sw_gss_status()
            let binding = channelBinding ?? []
            // On the worker thread: two requests that want the same ticket at once get one AS exchange.
            var credential: KerberosCredential?
            if mechanism == .kerberos {
                switch KerberosTicketCache.credential(principal: user, password: password) {
                case .success(let cached): credential = cached
                case .failure(let failure): return .failure(failure)
                }
            }
            let session = binding.withUnsafeBufferPointer { bytes in
                let data = channelBinding == nil ? nil : bytes.baseAddress
                if let credential {
                    return sw_gss_session_new_kerberos(credential.pointer, host, data, bytes.count, &status)
                }
                return sw_gss_session_new(SW_GSS_MECH_NTLM, user, password, host, data, bytes.count, &status)
            }
            guard let session else { return .failure(GSSFailure(status)) }
            return .success((UncheckedBox(session), credential))
        }
        switch result {
        case .success(let (box, credential)): return GSSContext(session: box.value, mechanism: mechanism, credential: credential)
        case .failure(let failure): throw failure
        case nil: throw GSSFailure(reason: .other, message: "the GSSAPI worker did not answer")
        }
    }

    /// One gss_init_sec_context step: the server's token in (empty on the first), ours out.
    public func step(_ input: [UInt8]) async throws(GSSFailure) -> (token: [UInt8], complete: Bool) {
        let session = UncheckedBox(self.session)
        let result: Result<([UInt8], Bool), GSSFailure>? = await Self.worker.run {
            var status = sw_gss_status()
            var output: UnsafeMutablePointer<UInt8>?
            var length = 0
            let code = input.withUnsafeBufferPointer { bytes in
                sw_gss_session_step(session.value, bytes.baseAddress, bytes.count, &output, &length, &status)
            }
            defer { sw_gss_free(output) }
            guard code >= 0 else { return .failure(GSSFailure(status)) }
            let token = output.map { Array(UnsafeBufferPointer(start: $0, count: length)) } ?? []
            return .success((token, code == Int32(SW_GSS_COMPLETE.rawValue)))
        }
        switch result {
        case .success(let (token, complete)): return (token, complete)
        case .failure(let failure): throw failure
        case nil: throw GSSFailure(reason: .other, message: "the GSSAPI worker did not answer")
        }
    }

    /// The channel binding for the steps still to come (NTLM: the AUTHENTICATE message).
    public func bind(_ channelBinding: [UInt8]?) async -> Bool {
        let session = UncheckedBox(self.session)
        return await Self.worker.run {
            let binding = channelBinding ?? []
            return binding.withUnsafeBufferPointer { bytes in
                sw_gss_session_set_bindings(session.value, channelBinding == nil ? nil : bytes.baseAddress, bytes.count) == 0
            }
        } ?? false
    }

    /// True when GSSAPI loads and offers gss-ntlmssp's NTLMSSP mechanism.
    public static var ntlmAvailable: Bool {
        get async { await worker.run { sw_gss_ntlm_available() == 1 } ?? false }
    }
}

/// A ticket-granting ticket in its own MEMORY: cache (and the service tickets obtained with it).
final class KerberosCredential: @unchecked Sendable { // the pointer is only touched on GSSContext.worker
    let pointer: OpaquePointer
    let endTime: Int64

    init(pointer: OpaquePointer) {
        self.pointer = pointer
        endTime = sw_gss_kerberos_cred_end_time(pointer)
    }

    deinit {
        let pointer = UncheckedBox(self.pointer)
        GSSContext.worker.submit { sw_gss_kerberos_cred_free(pointer.value) }
    }
}

/// One Kerberos ticket per principal for the life of the process, in memory only: every
/// Autodiscover candidate, EWS and OAB request reuses it instead of asking the KDC again (and
/// the service tickets for HTTP/<host> stay in its cache too). Keyed by the principal; the entry
/// remembers a SHA-256 of the password it was obtained with, so a new password (a user who
/// corrected it, or a wrong one) never rides an old ticket: the entry is dropped and the KDC asked.
/// Only touched on GSSContext.worker's thread (the mutex keeps the compiler and the reader sure).
enum KerberosTicketCache {
    private struct Entry {
        var passwordDigest: [UInt8]
        var credential: KerberosCredential
    }
    private static let entries = Mutex<[String: Entry]>([:])
    /// A ticket this close to its end is replaced: a request must not carry one that expires in flight.
    static let renewalMarginSeconds: Int64 = 300

    static func credential(principal: String, password: String) -> Result<KerberosCredential, GSSFailure> {
        let digest = SHA256.hash(Array(principal.utf8) + [0] + Array(password.utf8)) ?? []
        if let entry = entries.withLock({ $0[principal] }), !digest.isEmpty, entry.passwordDigest == digest,
            entry.credential.endTime - Int64(time(nil)) > renewalMarginSeconds
        {
            return .success(entry.credential)
        }
        _ = entries.withLock { $0.removeValue(forKey: principal) }
        var status = sw_gss_status()
        guard let pointer = sw_gss_kerberos_cred_new(principal, password, &status) else { return .failure(GSSFailure(status)) }
        let credential = KerberosCredential(pointer: pointer)
        if !digest.isEmpty {
            entries.withLock { $0[principal] = Entry(passwordDigest: digest, credential: credential) }
        }
        return .success(credential)
    }
}

struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
