import RPCCore
import WizardContract

/// Protocol/openrpc.json as compiled into the binary (SwiftPM's embedInCode of
/// Sources/Wizard/Resources/openrpc.json, a link to it).
public enum OpenRPCDocument {
    /// Parsed once, on the first rpc.discover.
    public static let value: JSONValue = {
        do {
            return try JSONParser.parse(PackageResources.openrpc_json)
        } catch {
            fatalError("Protocol/openrpc.json is not valid JSON: \(error)")
        }
    }()

    public static var embeddedText: String { String(decoding: PackageResources.openrpc_json, as: UTF8.self) }
}
