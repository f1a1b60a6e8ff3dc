import RPCCore

/// Moves past "Configure Systems", or fails with `stepIncomplete` and the blockers.
public enum NextStep: RPCMethod {
    public static let name = "nextStep"
    public typealias Params = ProfileIDParams

    public struct Result: JSONRepresentable {
        public var step: String
        public init(step: String) { self.step = step }
        public var json: JSONValue { ["step": .string(step)] }
    }
}
