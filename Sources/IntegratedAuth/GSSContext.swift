import CGSSAPIShim
import Threading

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

    private init(session: OpaquePointer, mechanism: Mechanism) {
        self.session = session
        self.mechanism = mechanism
    }

    deinit {
        let session = UncheckedBox(self.session)
        Self.worker.submit { sw_gss_session_free(session.value) }
    }

    /// Credentials from the password (Kerberos: a TGT into a private MEMORY: cache) and a
    /// context for HTTP@`host` bound to `channelBinding` (the application data of RFC 5929).
    public static func start(
        _ mechanism: Mechanism, user: String, password: String, host: String,
        channelBinding: [UInt8]?
    ) async throws(GSSFailure) -> GSSContext {
        let result: Result<UncheckedBox<OpaquePointer>, GSSFailure>? = await worker.run {
            var status = sw_gss_status()
            let mech = mechanism == .kerberos ? SW_GSS_MECH_KERBEROS : SW_GSS_MECH_NTLM
            let binding = channelBinding ?? []
            let session = binding.withUnsafeBufferPointer { bytes in
                sw_gss_session_new(mech, user, password, host, channelBinding == nil ? nil : bytes.baseAddress, bytes.count, &status)
            }
            guard let session else { return .failure(GSSFailure(status)) }
            return .success(UncheckedBox(session))
        }
        switch result {
        case .success(let box): return GSSContext(session: box.value, mechanism: mechanism)
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

    /// True when GSSAPI loads and offers gss-ntlmssp's NTLMSSP mechanism.
    public static var ntlmAvailable: Bool {
        get async { await worker.run { sw_gss_ntlm_available() == 1 } ?? false }
    }
}

struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
