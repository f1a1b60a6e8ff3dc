import Foundation
import Testing

@testable import HTTP

/// libcurl (with OpenSSL and its ~30 dependencies) and libsecret (with GLib, GObject, GIO) are
/// dlopen'ed on first use, never linked: a run that only answers a ping must not map them.
@Suite struct LazyLoadingTests {
    /// The libraries that must stay out of a process that uses neither HTTP nor the keyring.
    static let lazyLibraries = ["libcurl", "libsecret", "libglib-2.0", "libgio-2.0", "libgobject-2.0", "libcrypto", "libssl"]

    /// $SYNCWIZARD_BINARY, or the debug build next to this checkout (as the end-to-end tests).
    static var binary: String {
        if let path = ProcessInfo.processInfo.environment["SYNCWIZARD_BINARY"] { return path }
        var url = URL(fileURLWithPath: #filePath)
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) {
                return url.appendingPathComponent(".build/debug/syncwizard").path
            }
        }
        return ".build/debug/syncwizard"
    }

    @Test func pingWithMemoryStoreMapsNeitherLibcurlNorLibsecret() throws {
        let binary = Self.binary
        try #require(FileManager.default.isExecutableFile(atPath: binary), "build syncwizard first: \(binary)")
        let config = FileManager.default.temporaryDirectory.appendingPathComponent("syncwizard-lazy-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: config, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: config) }

        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["--secret-store", "memory"]
        var environment = ProcessInfo.processInfo.environment
        environment["SYNCWIZARD_CONFIG_DIR"] = config.path
        process.environment = environment
        let input = Pipe()
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer { if process.isRunning { process.terminate() } }

        input.fileHandleForWriting.write(Data(#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#.utf8 + [0x0A]))
        let answer = try Self.readLine(output.fileHandleForReading.fileDescriptor, timeoutMs: 10_000)
        #expect(answer.contains(#""id":1"#) && answer.contains(#""result""#), "\(answer)")

        // Still running (stdin is open): what it has mapped after serving a request.
        let maps = try Self.readProcFile("/proc/\(process.processIdentifier)/maps")
        #expect(maps.contains("libswiftCore"), "not the maps of a Swift process")
        for library in Self.lazyLibraries {
            let lines = maps.split(separator: "\n").filter { $0.contains("/\(library)") }
            #expect(lines.isEmpty, "\(library) is mapped at start-up: \(lines.first ?? "")")
        }

        try input.fileHandleForWriting.close()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
    }

    @Test func creatingAClientLoadsLibcurl() throws {
        _ = try HTTPClient() // throws invalidConfiguration when libcurl cannot be loaded
        let maps = try Self.readProcFile("/proc/self/maps")
        #expect(maps.contains("/libcurl.so.4"))
    }

    /// The whole of a /proc file (its size reads as 0, so read until EOF).
    static func readProcFile(_ path: String) throws -> String {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw CocoaError(.fileReadNoSuchFile, userInfo: [NSFilePathErrorKey: path]) }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            bytes.append(contentsOf: buffer[0..<count])
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// One line from `fd`, waiting at most `timeoutMs` in total.
    static func readLine(_ fd: Int32, timeoutMs: Int) throws -> String {
        let deadline = ContinuousClock.now + .milliseconds(timeoutMs)
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !bytes.contains(0x0A) {
            let left = ContinuousClock.now.duration(to: deadline)
            guard left > .zero else { throw LineTimeout(received: String(decoding: bytes, as: UTF8.self)) }
            var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, Int32(max(1, left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000)))
            if ready <= 0 { continue }
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            guard count > 0 else { throw LineTimeout(received: String(decoding: bytes, as: UTF8.self) + " (EOF)") }
            bytes.append(contentsOf: buffer[0..<count])
        }
        return String(decoding: bytes.prefix { $0 != 0x0A }, as: UTF8.self)
    }

    struct LineTimeout: Error, CustomStringConvertible {
        var received: String
        var description: String { "no answer line in time; got \"\(received)\"" }
    }
}
