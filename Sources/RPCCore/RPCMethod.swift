/// A request the server answers: its wire name, its params and its result.
public protocol RPCMethod {
    associatedtype Params: RPCParams
    associatedtype Result: JSONRepresentable
    static var name: String { get }
}

/// A notification the client sends (no answer).
public protocol RPCNotification {
    associatedtype Params: RPCParams
    static var name: String { get }
}

/// Params decoded from the request's `params`; `parameterNames` is what the contract test
/// compares with the method's params in Protocol/openrpc.json.
public protocol RPCParams: Sendable {
    static var parameterNames: [String] { get }
    init(reading reader: inout ParamsReader) throws(RPCError)
}

extension RPCParams {
    public static func decode(_ params: JSONValue?) throws(RPCError) -> Self {
        var reader = try ParamsReader(params)
        let decoded = try Self(reading: &reader)
        try reader.finish()
        return decoded
    }
}

/// For methods that take nothing.
public struct NoParams: RPCParams, Equatable {
    public static let parameterNames: [String] = []
    public init() {}
    public init(reading reader: inout ParamsReader) throws(RPCError) {}
}
