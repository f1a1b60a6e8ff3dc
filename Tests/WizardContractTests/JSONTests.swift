import RPCCore
import Testing
import WizardContract

@Suite struct JSONParsingTests {
    @Test func numbersKeepTheirLiteralText() throws {
        let value = try JSONParser.parse(#"{"a":1.50,"b":12345678901234567890123,"c":-0,"d":1e400}"#)
        #expect(value["a"] == .number("1.50"))
        #expect(value["b"] == .number("12345678901234567890123"))
        #expect(JSONWriter.string(value) == #"{"a":1.50,"b":12345678901234567890123,"c":-0,"d":1e400}"#)
    }

    @Test func escapesAndUnicodeRoundTrip() throws {
        let value = try JSONParser.parse(#"["a\"b\\c\/d\n\t\u0001","\u00e9\ud83d\ude00","plain ü"]"#)
        #expect(value == .array([.string("a\"b\\c/d\n\t\u{01}"), .string("é😀"), .string("plain ü")]))
        #expect(try JSONParser.parse(JSONWriter.string(value)) == value)
        #expect(JSONWriter.string(.string("\u{01}\"")) == #""\u0001\"""#)
    }

    @Test(arguments: [
        "", "{", "[1,]", "{\"a\" 1}", "01", "1.", "-", "tru", "nul", "\"abc", "{\"a\":1}x",
        "\"\u{01}\"", "[\"\\x\"]", "\"\\ud800\"", "\"\\udc00x\"", "{'a':1}", "NaN", "[1 2]",
    ])
    func rejectsMalformedJSON(_ text: String) {
        #expect(throws: JSONParseError.self) { try JSONParser.parse(text) }
    }

    @Test func rejectsInvalidUTF8() {
        let bytes: [UInt8] = [0x22, 0xC3, 0x28, 0x22]
        #expect(throws: JSONParseError.self) { try JSONParser.parse(bytes) }
        let overlong: [UInt8] = [0x22, 0xC0, 0xAF, 0x22]
        #expect(throws: JSONParseError.self) { try JSONParser.parse(overlong) }
    }

    @Test func boundsNestingDepth() throws {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(throws: JSONParseError.self) { try JSONParser.parse(deep) }
        let fine = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        _ = try JSONParser.parse(fine)
    }

    @Test func objectsKeepOrderAndLastDuplicateWins() throws {
        let value = try JSONParser.parse(#"{"z":1,"a":2,"z":3}"#)
        #expect(value.objectValue?.keys == ["z", "a", "z"])
        #expect(value["z"] == .number("3"))
    }
}

@Suite struct ParamsReaderTests {
    @Test func unknownParamsAreRejectedWithTheirName() throws {
        let error = #expect(throws: RPCError.self) {
            try CreateProfile.Params.decode(["name": "Sales", "nmae": "typo"])
        }
        #expect(error?.kind == .invalidParams)
        #expect(error?.data["field"] == .string("nmae"))
    }

    @Test func wrongTypeNamesTheField() throws {
        let error = #expect(throws: RPCError.self) { try CreateProfile.Params.decode(["name": 5]) }
        #expect(error?.data["field"] == .string("name"))
        #expect(error?.code == -32602)
    }

    @Test func missingRequiredParamNamesTheField() throws {
        let error = #expect(throws: RPCError.self) { try SelectCalendarSystem.Params.decode(["system": "google"]) }
        #expect(error?.data["field"] == .string("profileId"))
    }

    @Test func enumValuesAreChecked() throws {
        let id = "3f2b0c1e-1111-4222-8333-444455556666"
        let error = #expect(throws: RPCError.self) {
            try SelectCalendarSystem.Params.decode(["profileId": .string(id), "system": "outlook"])
        }
        #expect(error?.data["field"] == .string("system"))
        #expect(try SelectCalendarSystem.Params.decode(["profileId": .string(id), "system": "google"]).system == .google)
    }

    @Test func positionalParamsAreRejected() throws {
        let error = #expect(throws: RPCError.self) { try CreateProfile.Params.decode(["Sales"]) }
        #expect(error?.data["field"] == .string("params"))
    }

    @Test func profileIdsMustLookLikeIds() {
        #expect(ProfileID.isWellFormed("3f2b0c1e-1111-4222-8333-444455556666"))
        #expect(!ProfileID.isWellFormed("../../etc/passwd"))
        #expect(!ProfileID.isWellFormed("3F2B0C1E-1111-4222-8333-444455556666"))
        #expect(!ProfileID.isWellFormed(""))
    }

    @Test func blankNamesAndControlCharactersAreRejected() {
        #expect(throws: RPCError.self) { try CreateProfile.Params.decode(["name": "   "]) }
        #expect(throws: RPCError.self) { try CreateProfile.Params.decode(["name": "a\u{07}b"]) }
        #expect(throws: RPCError.self) { try CreateProfile.Params.decode(["name": .string(String(repeating: "x", count: 201))]) }
    }

    @Test func providerOptionsBelongToTheirSystem() {
        #expect(throws: RPCError.self) { try SetProviderSettings.Params.decode(["system": "google", "clientId": "x", "environment": "sod"]) }
        #expect(throws: RPCError.self) { try SetProviderSettings.Params.decode(["system": "superOffice", "clientId": "x", "tenant": "contoso"]) }
        #expect(throws: RPCError.self) { try SetProviderSettings.Params.decode(["system": "microsoft365", "clientId": "x", "tenant": "a/b"]) }
    }
}

@Suite struct ErrorShapeTests {
    @Test func errorsCarryKindHintAndDetails() {
        let error = RPCError.invalidParams(field: "name", "bad", hint: "try again")
        #expect(error.json == ["code": -32602, "message": "bad", "data": ["kind": "invalidParams", "hint": "try again", "field": "name"]])
    }

    @Test func everyKindHasAUniqueName() {
        let names = ErrorKind.all.map(\.name)
        #expect(Set(names).count == names.count)
    }
}
