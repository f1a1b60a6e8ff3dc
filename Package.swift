// swift-tools-version:6.0
import PackageDescription

// Arrows point one way: syncwizard → Wizard → Keyring/JSONRPC/DNS → Threading/C shims;
// WizardProtocol (types only, no dependencies) is used by all.
let package = Package(
    name: "syncwizard",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "syncwizard", targets: ["syncwizard"]),
        // For the fuzzers (Fuzz/, a package of its own built with -sanitize=fuzzer).
        .library(name: "SyncwizardParsing", targets: ["WizardProtocol", "JSONRPC", "XMLTree", "ExchangeConnector", "OAuth"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
    ],
    targets: [
        .target(name: "WizardProtocol"),
        .target(name: "Threading"),
        .target(name: "JSONRPC", dependencies: [
            "WizardProtocol", "Threading", .product(name: "Logging", package: "swift-log"),
        ]),
        // libsecret (with GLib, GObject, GIO) is dlopen'ed on first keyring use by this C shim,
        // never linked: --secret-store memory and runs without secrets do not load it.
        .target(name: "CSecretShim"),
        .target(name: "Keyring", dependencies: ["CSecretShim", "WizardProtocol", "Threading"]),
        // libcurl is dlopen'ed on the first HTTP use by this C shim, never linked, so start-up
        // does not map it and its ~30 libraries. Its header brings
        // <curl/curl.h> (default include path; Debian: libcurl4-openssl-dev) for types and
        // constants, and non-variadic setopt/getinfo wrappers and the CURLAUTH_* values.
        .target(name: "CCurlShim"),
        // OpenSSL's libcrypto, dlopen'ed on first use (certificate digests, RS256 signatures).
        .target(name: "CLibcryptoShim"),
        .target(name: "HTTP", dependencies: ["CCurlShim", "CLibcryptoShim"]),
        // SHA-256 in Swift and RSA signature checks through CLibcryptoShim: no Foundation.
        .target(name: "Cryptography", dependencies: ["CLibcryptoShim"]),
        .target(name: "XMLTree"),
        // glibc's stub resolver (res_nsend on a private res_state; libc) and its message parser
        // (ns_initparse, ns_parserr; libresolv, linked: a 60 KB library of libc's own).
        .target(name: "CResolvShim", linkerSettings: [.linkedLibrary("resolv")]),
        .target(name: "DNS", dependencies: ["CResolvShim", "Threading"]),
        // OAuth 2.0 for native apps: PKCE, the loopback listener (SwiftNIO), token endpoint
        // calls (libcurl), id_token checks (RS256 through libcrypto).
        .target(name: "OAuth", dependencies: [
            "HTTP", "ConnectorCore", "WizardProtocol", "Threading", "XMLTree",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            "Cryptography",
        ]),
        .target(name: "ConnectorCore", dependencies: ["HTTP", "WizardProtocol"], path: "Sources/Connectors/Core"),
        .target(name: "ExchangeConnector", dependencies: ["ConnectorCore", "HTTP", "DNS", "XMLTree", "Threading", "WizardProtocol"],
                path: "Sources/Connectors/Exchange"),
        .target(name: "SuperOfficeConnector", dependencies: ["ConnectorCore", "OAuth", "HTTP", "WizardProtocol"],
                path: "Sources/Connectors/SuperOffice"),
        .target(name: "Microsoft365Connector", dependencies: ["ConnectorCore", "OAuth", "HTTP", "WizardProtocol", "ExchangeConnector"],
                path: "Sources/Connectors/Microsoft365"),
        .target(name: "GoogleConnector", dependencies: ["ConnectorCore", "OAuth", "HTTP", "WizardProtocol"],
                path: "Sources/Connectors/Google"),
        .target(name: "Wizard", dependencies: [
            "WizardProtocol", "JSONRPC", "Keyring", "Threading", "ConnectorCore", "ExchangeConnector", "SuperOfficeConnector", "Microsoft365Connector", "GoogleConnector", "OAuth", "HTTP", "DNS",
            .product(name: "Logging", package: "swift-log"),
        ]),
        .executableTarget(name: "syncwizard", dependencies: [
            "Wizard", "JSONRPC", "Keyring", "WizardProtocol", "SuperOfficeConnector", "Threading", "DNS",
            .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "TestSupport", dependencies: ["WizardProtocol", "JSONRPC"], path: "Tests/TestSupport"),
        .testTarget(name: "WizardProtocolTests", dependencies: ["WizardProtocol"]),
        .testTarget(name: "JSONRPCTests", dependencies: [
            "JSONRPC", "WizardProtocol", "Threading", .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "ExchangeTests", dependencies: ["ExchangeConnector", "HTTP", "XMLTree", "WizardProtocol", "TestSupport"]),
        // swift-crypto only here: it signs test tokens and cross-checks Cryptography.
        .testTarget(name: "OAuthTests", dependencies: [
            "OAuth", "Cryptography", "WizardProtocol", "TestSupport", "Threading",
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "_CryptoExtras", package: "swift-crypto"),
        ]),
        .testTarget(name: "HTTPTests", dependencies: ["HTTP"], exclude: ["Support"]),
        // SRV lookups against dnsmasq and Tests/Fixtures/dns/odd_dns.py on loopback.
        .testTarget(name: "DNSTests", dependencies: ["DNS", "Threading"]),
        .testTarget(name: "KeyringTests", dependencies: ["Keyring", "WizardProtocol", "TestSupport"]),
        .testTarget(name: "WizardTests", dependencies: ["Wizard", "Keyring", "WizardProtocol", "TestSupport"]),
        .testTarget(name: "EndToEndTests", dependencies: ["WizardProtocol", "TestSupport"]),
    ]
)
