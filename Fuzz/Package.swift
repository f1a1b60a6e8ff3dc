// swift-tools-version:6.0
import PackageDescription

// libFuzzer targets for syncwizard's parsers. A package of its own so the main package stays
// free of fuzzer flags; build it only with the fuzzer sanitizer (scripts/fuzz.sh does):
//   swift build --package-path Fuzz -c release --sanitize=fuzzer --sanitize=address
// Each fuzz target is an executable whose single file is not main.swift: the entry point is
// @_cdecl("LLVMFuzzerTestOneInput") and libFuzzer supplies main().
let package = Package(
    name: "SyncwizardFuzz",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(name: "syncwizard", path: ".."),
        // The same package and version range as the main package (for _CryptoExtras: the
        // OAuth fuzzer signs tokens with an RSA key it makes at start-up).
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
    ],
    targets: [
        .target(
            name: "FuzzSupport",
            dependencies: [
                .product(name: "SyncwizardParsing", package: "syncwizard")
            ]),
        .executableTarget(
            name: "FuzzMessages",
            dependencies: [
                "FuzzSupport",
                .product(name: "SyncwizardParsing", package: "syncwizard"),
            ]),
        .executableTarget(
            name: "FuzzExchangeXML",
            dependencies: [
                "FuzzSupport",
                .product(name: "SyncwizardParsing", package: "syncwizard"),
            ]),
        .executableTarget(
            name: "FuzzOAuthCallback",
            dependencies: [
                "FuzzSupport",
                .product(name: "SyncwizardParsing", package: "syncwizard"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ]),
        .executableTarget(
            name: "FuzzNTLMChallenge",
            dependencies: [
                "FuzzSupport",
                .product(name: "SyncwizardParsing", package: "syncwizard"),
            ]),
        .executableTarget(
            name: "FuzzTokenResponses",
            dependencies: [
                "FuzzSupport",
                .product(name: "SyncwizardParsing", package: "syncwizard"),
            ]),
    ]
)
