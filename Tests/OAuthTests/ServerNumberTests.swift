import RPCCore
import Testing
import Threading
import WizardContract

@testable import OAuth

/// Numbers a server sends are bounded before use: these answers used to end the process
/// (`Int(1e19)` and `UInt64(.infinity)` trap).
@Suite struct ServerNumberTests {
    static func device(_ members: String) throws -> DeviceAuthorization? {
        let json = try JSONParser.parse(
            Array(#"{"device_code":"dc-1","user_code":"ABCD","verification_uri":"https://microsoft.com/devicelogin"\#(members)}"#.utf8))
        return DeviceAuthorization(json: json)
    }

    @Test(arguments: [
        (#","expires_in":1e19,"interval":5"#, 86_400.0, 5.0),
        (#","expires_in":900,"interval":1e999"#, 900.0, 5.0),
        (#","expires_in":-20,"interval":-3"#, 10.0, 1.0),
        (#","expires_in":"600","interval":"abc""#, 600.0, 5.0),
        // Fuzz finding trim-crlf: "\r\n" around a number is whitespace.
        (#","expires_in":"600\r\n","interval":"7\r\n""#, 600.0, 7.0),
        (#","expires_in":null,"interval":{}"#, 900.0, 5.0),
        (#","expires_in":1e-400,"interval":100000"#, 10.0, 300.0),
        ("", 900.0, 5.0),
    ])
    func deviceCodeNumbersAreClamped(_ members: String, _ expiresIn: Double, _ interval: Double) throws {
        let device = try #require(try Self.device(members))
        #expect(device.expiresIn == expiresIn)
        #expect(device.interval == interval)
    }

    @Test func deviceCodeWithoutItsCodesIsRejected() throws {
        let json = try JSONParser.parse(Array(#"{"device_code":"","user_code":"A","verification_uri":"https://x"}"#.utf8))
        #expect(DeviceAuthorization(json: json) == nil)
        #expect(DeviceAuthorization(json: .array([])) == nil)
    }

    @Test func tokenLifetimesAreClamped() throws {
        func expires(_ literal: String) throws -> Double? {
            TokenResponse(json: try JSONParser.parse(Array(#"{"access_token":"at","expires_in":\#(literal)}"#.utf8)))?.expiresIn
        }
        #expect(try expires("1e19") == TokenResponse.expiresInRange.upperBound)
        #expect(try expires("-1") == 0)
        #expect(try expires("1e999") == 3600)
        #expect(try expires("\"3599\"") == 3599)
        #expect(try expires("null") == nil)
    }

    @Test func errorCodesThatCannotBeAADSTSNumbersAreDropped() throws {
        let json = try JSONParser.parse(
            Array(#"{"error":"invalid_grant","error_codes":[1e19,-4,99999999999999999999,65001],"error_description":"AADSTS99999999999999999999999: x"}"#.utf8))
        let error = try #require(OAuthErrorResponse(json: json))
        #expect(error.codes == [65001])
        // Fuzz finding aadsts-zero: only 1 to 7 digits, and not 0, are an AADSTS number.
        #expect(OAuthErrorResponse(error: "x", description: "AADSTS99999999999999999999999: x").aadsts == nil)
        #expect(OAuthErrorResponse(error: "", description: "AADSTS0").aadsts == nil)
        #expect(OAuthErrorResponse(error: "", description: "AADSTS00065001: x").aadsts == nil)
        #expect(OAuthErrorResponse(error: "", description: "AADSTS7000218: x").aadsts == 7_000_218)
    }

    @Test func sleepsNeverTrap() {
        #expect(nanoseconds(.nan) == 0)
        #expect(nanoseconds(-1) == 0)
        #expect(nanoseconds(.infinity) == 18_000_000_000_000_000_000)
        #expect(nanoseconds(1.5) == 1_500_000_000)
    }
}
