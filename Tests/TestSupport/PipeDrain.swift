import Foundation

/// Reads a pipe on a thread of its own until EOF, handing every chunk (and finally an empty one)
/// to `onChunk`. Used instead of FileHandle.readabilityHandler, whose libdispatch source crashed
/// the test process on Linux when pipes closed while the machine was busy.
public enum PipeDrain {
    public static func start(_ handle: FileHandle, _ onChunk: @escaping @Sendable (Data) -> Void) {
        let thread = Thread {
            // The handle is captured so its descriptor stays open until EOF.
            let fd = handle.fileDescriptor
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n < 0, errno == EINTR { continue }
                if n <= 0 {
                    onChunk(Data())
                    return
                }
                onChunk(Data(buffer[0..<n]))
            }
        }
        thread.start()
    }
}
