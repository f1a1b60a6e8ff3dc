import Foundation
import JSONRPC
import Keyring
import Logging
import RPCCore
import TestSupport
import Testing
import Wizard
import WizardContract

/// Protocol/openrpc.json and the server must agree in both directions, and the document must
/// be a valid OpenRPC document.
@Suite struct ContractTests {
    static let documentPath = TestPaths.repositoryRoot.appendingPathComponent("Protocol/openrpc.json").path

    static func document() throws -> JSONValue {
        try JSONParser.parse(Array(FileManager.default.contents(atPath: documentPath)!))
    }

    /// Methods the transport answers itself (not in the wizard's table).
    static let builtInMethods = [Shutdown.name]

    static func serverMethodNames() -> Set<String> {
        var table = MethodTable()
        let service = WizardService(
            store: ProfileStore(directory: "/nonexistent"), secrets: MemorySecretStore(),
            info: .init(name: "syncwizard", version: "test", maximumMessageBytes: 1),
            logger: Logger(label: "test"))
        service.register(into: &table)
        return Set(table.requestNames + builtInMethods)
    }

    /// Params of every method the Swift side declares, by method name.
    static let declaredParams: [String: [String]] = [
        Initialize.name: Initialize.Params.parameterNames, Shutdown.name: [], Ping.name: [], Discover.name: [],
        CreateProfile.name: CreateProfile.Params.parameterNames, ListProfiles.name: [],
        GetProfile.name: GetProfile.Params.parameterNames, DeleteProfile.name: DeleteProfile.Params.parameterNames,
        SelectCalendarSystem.name: SelectCalendarSystem.Params.parameterNames,
        GetWizardState.name: GetWizardState.Params.parameterNames, NextStep.name: NextStep.Params.parameterNames,
        SetProviderSettings.name: SetProviderSettings.Params.parameterNames,
        GetProviderSettings.name: GetProviderSettings.Params.parameterNames,
        SubmitExchangeCredentials.name: SubmitExchangeCredentials.Params.parameterNames,
        DiscoverAccountHints.name: DiscoverAccountHints.Params.parameterNames,
        OverrideEndpoints.name: OverrideEndpoints.Params.parameterNames,
        TestConnection.name: TestConnection.Params.parameterNames,
        TrustCertificate.name: TrustCertificate.Params.parameterNames,
        StartSignIn.name: StartSignIn.Params.parameterNames, AwaitSignIn.name: AwaitSignIn.Params.parameterNames,
        CompleteSignIn.name: CompleteSignIn.Params.parameterNames, CancelSignIn.name: CancelSignIn.Params.parameterNames,
        SignOut.name: SignOut.Params.parameterNames,
    ]

    @Test func documentAndServerListTheSameMethods() throws {
        let documented = Set(try #require(Self.document()["methods"]?.arrayValue).compactMap { $0["name"]?.stringValue })
        let served = Self.serverMethodNames()
        #expect(documented.subtracting(served).isEmpty, "documented but not served: \(documented.subtracting(served).sorted())")
        #expect(served.subtracting(documented).isEmpty, "served but not documented: \(served.subtracting(documented).sorted())")
        #expect(Set(Self.declaredParams.keys) == served, "declaredParams in this test is out of date")
    }

    @Test func documentedParamsMatchTheSwiftTypes() throws {
        for method in try #require(Self.document()["methods"]?.arrayValue) {
            let name = try #require(method["name"]?.stringValue)
            let documented = (method["params"]?.arrayValue ?? []).compactMap { $0["name"]?.stringValue }
            #expect(documented == Self.declaredParams[name], "params of \(name)")
        }
    }

    @Test func documentedErrorKindsMatchTheSwiftList() throws {
        let listed = try #require(Self.document()["x-error-kinds"]?.arrayValue)
        let documented = listed.map { "\($0["kind"]?.stringValue ?? "?")=\($0["code"]?.intValue ?? 0)" }
        #expect(documented == ErrorKind.all.map { "\($0.name)=\($0.code)" })
        let components = try #require(Self.document()["components"]?["errors"]?.objectValue)
        for kind in ErrorKind.all {
            #expect(components[kind.name]?["code"]?.intValue == kind.code, "components.errors.\(kind.name)")
        }
        let blockers = try #require(Self.document()["x-blocker-kinds"]?.arrayValue).compactMap(\.stringValue)
        #expect(blockers == BlockerKind.all)
    }

    @Test func embeddedCopyIsTheFile() throws {
        #expect(
            OpenRPCDocument.embeddedText == String(decoding: FileManager.default.contents(atPath: Self.documentPath)!, as: UTF8.self),
            "the build embeds Protocol/openrpc.json through Sources/Wizard/Resources/openrpc.json")
        #expect(OpenRPCDocument.value == (try Self.document()))
    }

    @Test func documentValidatesAgainstTheOpenRPCMetaSchema() throws {
        let script = TestPaths.repositoryRoot.appendingPathComponent("scripts/validate-openrpc.py").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script, Self.documentPath]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "\(text)")
    }
}
