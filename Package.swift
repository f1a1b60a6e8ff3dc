// swift-tools-version:6.0
import PackageDescription

// Arrows point one way, down the layers (each line: a module and what it imports):
//   syncwizard            → Wizard, JSONRPC, Keyring, SuperOfficeConnector (default hosts), ConnectorCore (diagnosis events), WizardContract, Threading
//   Wizard                → the connectors, OAuth, Keyring, JSONRPC, HTTP, DNS, WizardContract (profiles, state, method table)
//   <System>Connector     → ConnectorCore, OAuth (the three OAuth systems), HTTP, WizardContract; Exchange also DNS, XMLTree, IntegratedAuth, NTLMChallenge;
//                           Exchange and Microsoft365 share EWS (→ HTTP, XMLTree, WizardContract)
//   OAuth                 → ConnectorCore, HTTP, Cryptography, Threading, NIO (the one OAuth flow, providers supply data)
//   ConnectorCore         → HTTP, WizardContract (checks, error mapping at the edge)
//   IntegratedAuth        → HTTP, CGSSAPIShim, Threading (Kerberos / NTLM with channel binding over one connection)
//   HTTP · Keyring · DNS · XMLTree · Cryptography → their C shims / Threading (DNS: CResolvShim, glibc's resolver)
//   JSONRPC               → RPCCore, Threading (framing, dispatch)
//   WizardContract        → RPCCore (methods, Profile, WizardState, wizard kinds; types only)
//   RPCCore               → nothing (JSON values, RPCError, RPCMethod, ParamsReader)
let package = Package(
    name: "syncwizard",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "syncwizard", targets: ["syncwizard"]),
        // For the fuzzers (Fuzz/, a package of its own built with -sanitize=fuzzer).
        .library(
            name: "SyncwizardParsing",
            targets: [
                "RPCCore", "WizardContract", "JSONRPC", "XMLTree", "EWS", "ExchangeConnector", "OAuth", "Microsoft365Connector", "Threading",
                "NTLMChallenge",
            ]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        // base64 and base64url without Foundation (jwt-kit uses it too).
        .package(url: "https://github.com/swift-extras/swift-extras-base64", from: "1.2.0"),
    ],
    targets: [
        // JSON values, RPCError and the base kinds, RPCMethod, ParamsReader: what JSON-RPC needs.
        .target(name: "RPCCore"),
        // The wizard's contract: its methods (one type each), Profile, WizardState, wizard kinds.
        .target(name: "WizardContract", dependencies: ["RPCCore"]),
        .target(name: "Threading"),
        .target(
            name: "JSONRPC",
            dependencies: [
                "RPCCore", "Threading", .product(name: "Logging", package: "swift-log"),
            ]),
        // libsecret (with GLib, GObject, GIO) is dlopen'ed on first keyring use by this C shim,
        // never linked: --secret-store memory and runs without secrets do not load it.
        // Compiled against libsecret's real header (libsecret-1-dev): the include paths of
        // `pkg-config --cflags libsecret-1` on Debian, without its link flags (still dlopen'ed).
        .target(
            name: "CSecretShim",
            cSettings: [
                .unsafeFlags([
                    "-I/usr/include/libsecret-1", "-I/usr/include/glib-2.0",
                    "-I/usr/lib/x86_64-linux-gnu/glib-2.0/include", "-I/usr/lib/aarch64-linux-gnu/glib-2.0/include",
                ])
            ]),
        .target(name: "Keyring", dependencies: ["CSecretShim", "RPCCore", "WizardContract", "Threading"]),
        // libcurl is dlopen'ed on the first HTTP use by this C shim, never linked, so start-up
        // does not map it and its ~30 libraries. Its header brings
        // <curl/curl.h> (default include path; Debian: libcurl4-openssl-dev) for types and
        // constants, and non-variadic setopt/getinfo wrappers and the CURLAUTH_* values.
        .target(name: "CCurlShim"),
        // OpenSSL's libcrypto, dlopen'ed on first use (certificate digests, RS256 signatures).
        .target(name: "CLibcryptoShim"),
        .target(name: "HTTP", dependencies: ["CCurlShim", "CLibcryptoShim", .product(name: "ExtrasBase64", package: "swift-extras-base64")]),
        // SHA-256 in Swift and RSA signature checks through CLibcryptoShim: no Foundation.
        .target(name: "Cryptography", dependencies: ["CLibcryptoShim"]),
        // MIT Kerberos' GSSAPI and libkrb5 (Debian libgssapi-krb5-2; headers from libkrb5-dev),
        // dlopen'ed on the first integrated-auth handshake by this C shim, never linked.
        .target(name: "CGSSAPIShim"),
        // Windows-integrated authentication: Kerberos and NTLM (gss-ntlmssp) with TLS channel binding.
        .target(
            name: "IntegratedAuth",
            dependencies: [
                "CGSSAPIShim", "Cryptography", "HTTP", "Threading",
                .product(name: "ExtrasBase64", package: "swift-extras-base64"),
            ]),
        .target(name: "XMLTree"),
        // NTLM CHALLENGE_MESSAGE and AV pairs ([MS-NLMP]), the anonymous NEGOTIATE, SPNEGO envelopes: pure, no Foundation.
        .target(name: "NTLMChallenge"),
        // glibc's stub resolver (res_nsend on a private res_state; libc) and its message parser
        // (ns_initparse, ns_parserr; libresolv, linked: a 60 KB library of libc's own).
        .target(name: "CResolvShim", linkerSettings: [.linkedLibrary("resolv")]),
        .target(name: "DNS", dependencies: ["CResolvShim", "Threading"]),
        // EWS SOAP shared by the Exchange and Microsoft 365 connectors.
        .target(name: "EWS", dependencies: ["HTTP", "XMLTree", "RPCCore", "WizardContract"]),
        // OAuth 2.0 for native apps: PKCE, the loopback listener (SwiftNIO), token endpoint
        // calls (libcurl), id_token checks (RS256 through libcrypto).
        .target(
            name: "OAuth",
            dependencies: [
                "HTTP", "ConnectorCore", "RPCCore", "WizardContract", "Threading",
                .product(name: "ExtrasBase64", package: "swift-extras-base64"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                "Cryptography",
            ]),
        .target(name: "ConnectorCore", dependencies: ["HTTP", "RPCCore", "WizardContract"], path: "Sources/Connectors/Core"),
        .target(
            name: "ExchangeConnector",
            dependencies: [
                "ConnectorCore", "EWS", "HTTP", "IntegratedAuth", "DNS", "XMLTree", "Threading", "RPCCore", "WizardContract", "NTLMChallenge",
                .product(name: "ExtrasBase64", package: "swift-extras-base64"),
            ],
            path: "Sources/Connectors/Exchange"),
        .target(
            name: "SuperOfficeConnector", dependencies: ["ConnectorCore", "OAuth", "HTTP", "RPCCore", "WizardContract"],
            path: "Sources/Connectors/SuperOffice"),
        .target(
            name: "Microsoft365Connector", dependencies: ["ConnectorCore", "OAuth", "HTTP", "RPCCore", "WizardContract", "EWS"],
            path: "Sources/Connectors/Microsoft365"),
        .target(
            name: "GoogleConnector", dependencies: ["ConnectorCore", "OAuth", "HTTP", "RPCCore", "WizardContract"],
            path: "Sources/Connectors/Google"),
        .target(
            name: "Wizard",
            dependencies: [
                "RPCCore", "WizardContract", "JSONRPC", "Keyring", "Threading", "ConnectorCore", "ExchangeConnector", "SuperOfficeConnector",
                "Microsoft365Connector", "GoogleConnector", "OAuth", "HTTP", "DNS",
                .product(name: "Logging", package: "swift-log"),
            ],
            // Protocol/openrpc.json (a link to it) compiled in as bytes for rpc.discover: no resource
            // bundle to lose when the binary is copied, no generated file in git, no Foundation.
            resources: [.embedInCode("Resources/openrpc.json")]),
        .executableTarget(
            name: "syncwizard",
            dependencies: [
                "Wizard", "JSONRPC", "Keyring", "RPCCore", "WizardContract", "SuperOfficeConnector", "ConnectorCore", "Threading", "DNS",
                .product(name: "Logging", package: "swift-log"),
            ]),
        .target(name: "TestSupport", dependencies: ["RPCCore", "WizardContract", "JSONRPC", "HTTP"], path: "Tests/TestSupport"),
        // Connectors in-process against a fake HTTP transport (no binary, no server process).
        .testTarget(
            name: "ConnectorTests",
            dependencies: [
                "ConnectorCore", "SuperOfficeConnector", "Microsoft365Connector", "GoogleConnector", "OAuth", "HTTP", "RPCCore", "WizardContract",
                "TestSupport",
            ]),
        .testTarget(name: "WizardContractTests", dependencies: ["RPCCore", "WizardContract"]),
        .testTarget(
            name: "JSONRPCTests",
            dependencies: [
                "JSONRPC", "RPCCore", "WizardContract", "Threading", .product(name: "Logging", package: "swift-log"),
            ]),
        .testTarget(name: "NTLMChallengeTests", dependencies: ["NTLMChallenge"]),
        .testTarget(
            name: "ExchangeTests",
            dependencies: ["ExchangeConnector", "NTLMChallenge", "EWS", "DNS", "HTTP", "XMLTree", "RPCCore", "WizardContract", "TestSupport"]),
        // swift-crypto only here: it signs test tokens and cross-checks Cryptography.
        .testTarget(
            name: "OAuthTests",
            dependencies: [
                "OAuth", "Cryptography", "RPCCore", "WizardContract", "TestSupport", "Threading", "HTTP",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ]),
        .testTarget(name: "HTTPTests", dependencies: ["HTTP"], exclude: ["Support"]),
        // SRV lookups against dnsmasq and Tests/Fixtures/dns/odd_dns.py on loopback.
        .testTarget(name: "DNSTests", dependencies: ["DNS", "Threading"]),
        .testTarget(name: "KeyringTests", dependencies: ["Keyring", "RPCCore", "WizardContract", "TestSupport"]),
        .testTarget(name: "WizardTests", dependencies: ["Wizard", "Keyring", "RPCCore", "WizardContract", "TestSupport"]),
        // Kerberos and NTLM with channel binding against a real KDC and acceptor (Tests/Fixtures/integrated-auth).
        .testTarget(
            name: "IntegratedAuthTests", dependencies: ["ExchangeConnector", "IntegratedAuth", "HTTP", "EWS", "RPCCore", "WizardContract", "TestSupport"]),
        .testTarget(name: "EndToEndTests", dependencies: ["RPCCore", "WizardContract", "TestSupport"]),
    ]
)
