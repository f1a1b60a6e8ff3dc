// swift-tools-version:6.1
// A benchmark peer: the smallest stdio server on the MCP Swift SDK, answering `ping`.
// Kept apart from syncwizard's own package so its dependencies never reach the product.
import PackageDescription

let package = Package(
    name: "MCPServer",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(url: "https://github.com/modelcontextprotocol/swift-sdk", exact: "0.12.1")
    ],
    targets: [
        .executableTarget(
            name: "MCPServer",
            dependencies: [
                .product(name: "MCP", package: "swift-sdk")
            ])
    ]
)
