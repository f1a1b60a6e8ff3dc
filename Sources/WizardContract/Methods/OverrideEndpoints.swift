import RPCCore

/// Sets the EWS (and optionally OAB) URL by hand, for when Autodiscover cannot find them.
public enum OverrideEndpoints: RPCMethod {
    public static let name = "overrideEndpoints"

    public struct Params: RPCParams, Equatable {
        public static let parameterNames = ["profileId", "ewsUrl", "oabUrl"]
        public var profileId: String
        public var ewsUrl: String
        public var oabUrl: String?

        public init(reading reader: inout ParamsReader) throws(RPCError) {
            profileId = try reader.profileId()
            ewsUrl = try reader.requiredNonEmptyString("ewsUrl", maxLength: 2048).trimmed
            oabUrl = try reader.optionalString("oabUrl", maxLength: 2048)?.trimmed
            if oabUrl?.isEmpty == true { oabUrl = nil }
            try HTTPSURL.validate(ewsUrl, field: "ewsUrl")
            if let oabUrl { try HTTPSURL.validate(oabUrl, field: "oabUrl") }
        }
    }

    public typealias Result = EndpointsResult
}
