extension HTTPClient {
    /// Client-wide network settings (the `--ca-file` and `--connect-to` hooks).
    /// TLS verification cannot be switched off here or anywhere else.
    public struct Configuration: Sendable {
        /// Extra trust anchors (PEM), used in addition to the system's.
        public var caFile: String?
        /// libcurl CONNECT_TO entries "HOST:PORT:CONNECT_HOST:CONNECT_PORT"; TLS is still
        /// verified against HOST.
        public var connectTo: [String]
        public var userAgent: String
        /// Upper bound for connecting; a request's own deadline can make it shorter.
        public var connectTimeoutSeconds: Double

        public init(
            caFile: String? = nil,
            connectTo: [String] = [],
            userAgent: String = "syncwizard/0.1.0",
            connectTimeoutSeconds: Double = 15
        ) {
            self.caFile = caFile
            self.connectTo = connectTo
            self.userAgent = userAgent
            self.connectTimeoutSeconds = connectTimeoutSeconds
        }

        func validate() throws(HTTPError) {
            for entry in connectTo {
                guard entry.split(separator: ":", omittingEmptySubsequences: false).count >= 4,
                    !entry.containsControlCharacter
                else {
                    throw .invalidConfiguration(reason: "connect-to entry \"\(entry)\" is not HOST:PORT:CONNECT_HOST:CONNECT_PORT")
                }
            }
            guard !userAgent.containsControlCharacter else {
                throw .invalidConfiguration(reason: "the user agent contains a control character")
            }
        }
    }
}

extension String {
    var containsControlCharacter: Bool {
        unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F }
    }
}
