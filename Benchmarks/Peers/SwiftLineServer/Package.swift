// swift-tools-version:6.0
// A benchmark peer: the Swift language's own floor for a JSON-RPC line server.
import PackageDescription

let package = Package(
    name: "SwiftLineServer",
    targets: [
        .executableTarget(name: "SwiftLineServer")
    ],
    // Swift 5 mode: a plain script-style program that peeks at C's `stdin` FILE.
    swiftLanguageModes: [.v5]
)
