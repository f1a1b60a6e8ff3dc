import RPCCore

/// One element of what the client sent, classified.
public enum IncomingMessage: Sendable, Equatable {
    case request(id: JSONValue, method: String, params: JSONValue?)
    case notification(method: String, params: JSONValue?)
    /// Not a valid request object; answered with this error and id (null when unknown).
    case invalid(id: JSONValue, error: RPCError)
}

/// A decoded message: one object, or a batch (a JSON array of them).
public enum DecodedMessage: Sendable, Equatable {
    case single(IncomingMessage)
    case batch([IncomingMessage])
    /// Answered with one error, id null: invalid JSON, or an empty batch.
    case unanswerable(RPCError)
}

public enum MessageDecoder {
    public static func decode(_ bytes: [UInt8], maximumDepth: Int = JSONParser.defaultMaximumDepth) -> DecodedMessage {
        let value: JSONValue
        do {
            value = try bytes.withUnsafeBufferPointer { (buffer) throws(JSONParseError) -> JSONValue in
                try JSONParser.parse(buffer, maximumDepth: maximumDepth)
            }
        } catch {
            return .unanswerable(
                RPCError(
                    .parseError, "The message is not valid JSON: \(error.reason) (byte \(error.offset)).",
                    hint: "Send one JSON-RPC object per line, or use Content-Length framing."))
        }
        return classify(value)
    }

    public static func classify(_ value: JSONValue) -> DecodedMessage {
        switch value {
        case .array(let elements):
            guard !elements.isEmpty else {
                return .unanswerable(RPCError(.invalidRequest, "An empty batch is not a valid request."))
            }
            return .batch(elements.map(classifyOne))
        default:
            return .single(classifyOne(value))
        }
    }

    static func classifyOne(_ value: JSONValue) -> IncomingMessage {
        guard case .object(let object) = value else {
            return .invalid(id: .null, error: RPCError(.invalidRequest, "A request must be a JSON object, not a \(value.typeName)."))
        }
        // Keep the id when it is usable, so even a broken request can be answered by id.
        var id: JSONValue? = nil
        if let rawID = object["id"] {
            switch rawID {
            case .string, .number, .null: id = rawID
            default:
                return .invalid(id: .null, error: RPCError(.invalidRequest, "The id must be a string, a number or null, not a \(rawID.typeName)."))
            }
        }
        guard object["jsonrpc"] == .string("2.0") else {
            return .invalid(id: id ?? .null, error: RPCError(.invalidRequest, "The member \"jsonrpc\" must be exactly \"2.0\"."))
        }
        guard let methodValue = object["method"] else {
            return .invalid(id: id ?? .null, error: RPCError(.invalidRequest, "The request has no \"method\"."))
        }
        guard case .string(let method) = methodValue else {
            return .invalid(id: id ?? .null, error: RPCError(.invalidRequest, "\"method\" must be a string, not a \(methodValue.typeName)."))
        }
        let params = object["params"]
        if let params {
            switch params {
            case .object, .array, .null: break
            default:
                return .invalid(id: id ?? .null, error: RPCError(.invalidRequest, "\"params\" must be an object or an array, not a \(params.typeName)."))
            }
        }
        if let id { return .request(id: id, method: method, params: params) }
        return .notification(method: method, params: params)
    }
}

public enum ResponseEncoder {
    public static func result(id: JSONValue, _ result: JSONValue) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(64)
        out.append(contentsOf: #"{"jsonrpc":"2.0","id":"#.utf8)
        JSONWriter.write(id, into: &out)
        out.append(contentsOf: #","result":"#.utf8)
        JSONWriter.write(result, into: &out)
        out.append(UInt8(ascii: "}"))
        return out
    }

    public static func error(id: JSONValue, _ error: RPCError) -> [UInt8] {
        var out: [UInt8] = []
        out.append(contentsOf: #"{"jsonrpc":"2.0","id":"#.utf8)
        JSONWriter.write(id, into: &out)
        out.append(contentsOf: #","error":"#.utf8)
        JSONWriter.write(error.json, into: &out)
        out.append(UInt8(ascii: "}"))
        return out
    }

    public static func notification(method: String, params: JSONValue) -> [UInt8] {
        var out: [UInt8] = []
        out.append(contentsOf: #"{"jsonrpc":"2.0","method":"#.utf8)
        JSONWriter.writeString(method, into: &out)
        out.append(contentsOf: #","params":"#.utf8)
        JSONWriter.write(params, into: &out)
        out.append(UInt8(ascii: "}"))
        return out
    }
}
