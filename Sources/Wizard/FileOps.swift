import RPCCore
import Threading
import WizardContract

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The few POSIX file calls the store needs, with errors turned into `storageFailed` once.
enum FileOps {
    static func failure(_ what: String, _ path: String) -> RPCError {
        RPCError(
            .storageFailed, "Cannot \(what) '\(path)': \(String(cString: strerror(errno))).",
            hint: "Check that the configuration directory is writable (see --config-dir).")
    }

    static func makeDirectory(_ path: String) throws(RPCError) {
        if mkdir(path, 0o700) == 0 || errno == EEXIST { return }
        if errno == ENOENT {
            // Create missing parents (e.g. a fresh $XDG_CONFIG_HOME).
            if let slash = path.lastIndex(of: "/"), slash != path.startIndex {
                try makeDirectory(String(path[..<slash]))
                if mkdir(path, 0o700) == 0 || errno == EEXIST { return }
            }
        }
        throw failure("create the directory", path)
    }

    static func exists(_ path: String) -> Bool {
        access(path, F_OK) == 0
    }

    /// flock without blocking the thread forever: polls so that cancellation and a deadline
    /// (another process holding the lock for too long) are noticed.
    static func lock(
        _ path: String, exclusive: Bool, timeoutSeconds: Double,
        isCancelled: () -> Bool
    ) throws(RPCError) -> Int32 {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw failure("open the lock file", path) }
        let deadline = monotonicSeconds() + timeoutSeconds
        while flock(fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) != 0 {
            if errno == EINTR { continue }
            guard errno == EWOULDBLOCK else {
                let error = failure("lock", path)
                close(fd)
                throw error
            }
            if isCancelled() {
                close(fd)
                throw RPCError.cancelled
            }
            if monotonicSeconds() > deadline {
                close(fd)
                throw RPCError(
                    .storageFailed, "Another process has held the profile directory lock for \(Int(timeoutSeconds)) seconds.",
                    hint: "Check for a stuck syncwizard process using '\(path)'.")
            }
            usleep(5_000)
        }
        return fd
    }

    static func unlock(_ fd: Int32) {
        flock(fd, LOCK_UN)
        close(fd)
    }

    /// nil when the file does not exist.
    static func readFile(_ path: String) throws(RPCError) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT { return nil }
            throw failure("open", path)
        }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16384)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw failure("read", path)
            }
            if n == 0 { return bytes }
            bytes.append(contentsOf: chunk[0..<n])
        }
    }

    /// Temp file in the same directory, fsync, rename over the target, fsync the directory.
    static func writeAtomically(_ path: String, _ bytes: [UInt8]) throws(RPCError) {
        let directory = path.lastIndex(of: "/").map { String(path[..<$0]) } ?? "."
        let name = path.lastIndex(of: "/").map { String(path[path.index(after: $0)...]) } ?? path
        let temp = "\(directory)/.\(name).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw failure("create", temp) }
        var ok = true
        bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0, errno == EINTR { continue }
                if n <= 0 {
                    ok = false
                    return
                }
                offset += n
            }
        }
        if ok, fsync(fd) != 0 { ok = false }
        close(fd)
        guard ok else {
            let error = failure("write", temp)
            unlink(temp)
            throw error
        }
        guard rename(temp, path) == 0 else {
            let error = failure("replace", path)
            unlink(temp)
            throw error
        }
        syncDirectory(directory)
    }

    static func syncDirectory(_ directory: String) {
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        fsync(fd)
        close(fd)
    }

    static func remove(_ path: String) throws(RPCError) {
        guard unlink(path) == 0 || errno == ENOENT else { throw failure("delete", path) }
    }

    static func listDirectory(_ path: String) throws(RPCError) -> [String] {
        guard let dir = opendir(path) else {
            if errno == ENOENT { return [] }
            throw failure("list", path)
        }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }
}
