import Foundation

/// `secret-tool`, another Secret Service client: what it finds proves where a secret sits.
public enum SecretTool {
    @discardableResult
    public static func run(_ arguments: [String], input: String? = nil) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/secret-tool")
        process.arguments = arguments
        let out = Pipe()
        let inPipe = Pipe()
        process.standardOutput = out
        process.standardInput = inPipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        if let input { inPipe.fileHandleForWriting.write(Data(input.utf8)) }
        try inPipe.fileHandleForWriting.close()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// The secret stored under exactly these attributes, or nil.
    public static func lookup(_ attributes: [String: String]) throws -> String? {
        let args = ["lookup"] + attributes.sorted { $0.key < $1.key }.flatMap { [$0.key, $0.value] }
        let result = try run(args)
        return result.status == 0 ? result.output : nil
    }

    public static func store(_ secret: String, label: String, _ attributes: [String: String]) throws {
        let args = ["store", "--label", label] + attributes.sorted { $0.key < $1.key }.flatMap { [$0.key, $0.value] }
        let result = try run(args, input: secret)
        precondition(result.status == 0, "secret-tool store failed")
    }
}

/// Another process holding the profile directory's lock, for tests of waiting and cancelling.
public enum ProfileStoreLock {
    /// Polls with `flock -n` until another process holds the lock.
    public static func waitUntilLocked(_ path: String) async throws {
        for _ in 0..<500 {
            let probe = Process()
            probe.executableURL = URL(fileURLWithPath: "/usr/bin/flock")
            probe.arguments = ["-n", path, "true"]
            try probe.run()
            probe.waitUntilExit()
            if probe.terminationStatus != 0 { return }
            try await Task.sleep(nanoseconds: 10_000_000)
        }
        throw TestTimeout(description: "nobody took the lock \(path)")
    }
}
