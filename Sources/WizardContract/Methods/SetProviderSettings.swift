import RPCCore

public enum SetProviderSettings: RPCMethod {
    public static let name = "setProviderSettings"

    public struct Params: RPCParams, Equatable {
        public static let parameterNames = ["system", "clientId", "clientSecret", "environment", "tenant"]
        public var system: System
        public var clientId: String
        /// nil keeps a stored secret; "" removes it.
        public var clientSecret: String?
        public var environment: SuperOfficeEnvironment?
        public var tenant: String?

        public init(reading reader: inout ParamsReader) throws(RPCError) {
            system = try reader.requiredEnum("system", System.self, among: System.signIns)
            clientId = try reader.requiredNonEmptyString("clientId", maxLength: 512)
            clientSecret = try reader.optionalString("clientSecret", maxLength: 4096)
            environment = try reader.optionalEnum("environment", SuperOfficeEnvironment.self)
            tenant = try reader.optionalString("tenant", maxLength: 256)
            if environment != nil, system != .superOffice {
                throw .invalidParams(field: "environment", "'environment' applies to superOffice only.")
            }
            if let tenant {
                guard system == .microsoft365 else {
                    throw .invalidParams(field: "tenant", "'tenant' applies to microsoft365 only.")
                }
                let allowed = tenant.unicodeScalars.allSatisfy {
                    ($0.properties.isASCIIHexDigit || $0.properties.isAlphabetic && $0.isASCII) || "-._".unicodeScalars.contains($0) || ("0"..."9").contains($0)
                }
                guard !tenant.isEmpty, allowed else {
                    throw .invalidParams(
                        field: "tenant", "'tenant' must be a tenant id, a domain such as contoso.onmicrosoft.com, 'organizations' or 'common'.")
                }
            }
        }
    }

    public typealias Result = ProviderSettings
}
