import RPCCore

/// Pins a certificate the user has looked at and trusts, for one host in one profile.
public enum TrustCertificate: RPCMethod {
    public static let name = "trustCertificate"

    public struct Params: RPCParams, Equatable {
        public static let parameterNames = ["profileId", "host", "sha256"]
        public var profileId: String
        public var host: String
        public var sha256: String

        public init(reading reader: inout ParamsReader) throws(RPCError) {
            profileId = try reader.profileId()
            host = try reader.requiredNonEmptyString("host", maxLength: 253).lowercased()
            let raw = try reader.requiredNonEmptyString("sha256", maxLength: 128)
            sha256 = raw.lowercased().filter { $0 != ":" }
            guard Hostname.isPlausible(host) else {
                throw .invalidParams(field: "host", "'host' must be a host name like mail.contoso.com.")
            }
            guard sha256.count == 64, sha256.allSatisfy({ $0.isHexDigit }) else {
                throw .invalidParams(
                    field: "sha256", "'sha256' must be the certificate's SHA-256 fingerprint: 64 hex digits, as certificateUntrusted reported it.")
            }
        }
    }

    public struct Result: JSONRepresentable {
        public init() {}
        public var json: JSONValue { ["trusted": true] }
    }
}
