import RPCCore

public enum ProfileID {
    /// Lowercase UUIDs: 36 characters of hex digits and dashes.
    public static func isWellFormed(_ id: String) -> Bool {
        let utf8 = id.utf8
        guard utf8.count == 36 else { return false }
        for (i, byte) in utf8.enumerated() {
            if [8, 13, 18, 23].contains(i) {
                guard byte == UInt8(ascii: "-") else { return false }
            } else {
                guard (0x30...0x39).contains(byte) || (0x61...0x66).contains(byte) else { return false }
            }
        }
        return true
    }
}

extension ParamsReader {
    /// A profile id as createProfile returns it. Checked here so that no odd string ever
    /// becomes a file name or a huge error message.
    public mutating func profileId(_ name: String = "profileId") throws(RPCError) -> String {
        let id = try requiredString(name, maxLength: 256)
        guard ProfileID.isWellFormed(id) else {
            throw .invalidParams(field: name, "'\(name)' is not a profile id (expected the id createProfile returned, like 3f2b…).")
        }
        return id
    }
}
