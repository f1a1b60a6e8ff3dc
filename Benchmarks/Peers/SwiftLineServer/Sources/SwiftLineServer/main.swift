import Foundation

// The floor for a Swift JSON-RPC server: readLine(), Foundation's JSONSerialization to parse
// the request, and the answer written as text around the request's id, nothing else.
//
// Output is batched the way a careful author would: answers collect in a buffer that is
// written with one write(2) whenever stdin's stdio buffer holds no further input, so a client
// waiting for its answer always gets it at once, and a pipelined client gets one write per
// chunk read instead of one per line.
#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

var pending: [UInt8] = []
pending.reserveCapacity(1 << 16)

func flushPending() {
    var offset = 0
    pending.withUnsafeBytes { raw in
        while offset < raw.count {
            let n = write(1, raw.baseAddress! + offset, raw.count - offset)
            if n > 0 { offset += n } else if n < 0 && errno == EINTR { continue } else { exit(1) }
        }
    }
    pending.removeAll(keepingCapacity: true)
}

/// True when stdio already holds more of stdin, i.e. the next readLine() will not block.
func inputBuffered() -> Bool {
    #if canImport(Glibc)
        let f = stdin!.pointee
        return f._IO_read_ptr != nil && f._IO_read_ptr < f._IO_read_end
    #else
        return false
    #endif
}

/// The id as JSON text: integers and strings as sent, other numbers as Foundation prints them.
func idText(_ id: Any?) -> String {
    guard let id, !(id is NSNull) else { return "null" }
    if let number = id as? Int { return String(number) }
    if id is String, let data = try? JSONSerialization.data(withJSONObject: id, options: .fragmentsAllowed) {
        return String(decoding: data, as: UTF8.self)
    }
    if let number = id as? NSNumber { return number.stringValue }
    return "null"
}

while let line = readLine(strippingNewline: true) {
    if line.isEmpty { continue }
    let answer: String
    if let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] {
        if object["method"] as? String == "ping" {
            answer = #"{"jsonrpc":"2.0","id":"# + idText(object["id"]) + #","result":{}}"#
        } else {
            answer =
                #"{"jsonrpc":"2.0","id":"# + idText(object["id"])
                + #","error":{"code":-32601,"message":"Method not found"}}"#
        }
    } else {
        answer = #"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}}"#
    }
    pending.append(contentsOf: answer.utf8)
    pending.append(0x0A)
    if !inputBuffered() { flushPending() }
}
flushPending()
