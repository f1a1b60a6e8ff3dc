import WizardProtocol

/// Protocol/openrpc.json as compiled into the binary (see scripts/embed-openrpc.sh).
public enum OpenRPCDocument {
    /// Parsed once, on the first rpc.discover.
    public static let value: JSONValue = {
        do {
            return try JSONParser.parse(text)
        } catch {
            fatalError("Protocol/openrpc.json is not valid JSON: \(error)")
        }
    }()

    public static var embeddedText: String { text }
}
