import Foundation
import RPCCore
import TestSupport
import Testing
import WizardContract

/// "Sign in with SuperOffice" in a real headless Chromium: the fake SuperID and syncwizard start
/// as in `SuperOfficeSignInTests`; Tests/Browser/browser_sign_in.py (selenium + chromedriver)
/// opens the authorization URL, Chromium reaches https://online.superoffice.com on the fake
/// through a CONNECT proxy (trusting only the fake's leaf keys), follows the redirect straight to
/// the loopback listener, and reports what the page says and every request the tab made.
/// Screenshots (and the driver's JSON reports) are kept under Tests/artifacts/browser-sign-in/.
///
/// Needs `chromium` and `chromium-driver` (Debian) and `selenium` (PyPI); without them the test
/// fails, unless SYNCWIZARD_SKIP_BROWSER=1.
@Suite(
    .serialized,
    .enabled(
        if: ProcessInfo.processInfo.environment["SYNCWIZARD_SKIP_BROWSER"] != "1",
        "SYNCWIZARD_SKIP_BROWSER=1"))
struct BrowserSignInTests {
    @Test func signInInHeadlessChromium() async throws {
        try Browser.requireInstalled()
        let s = try await SuperOfficeSignInTests.setUp()
        let (signInId, url, redirectUri) = try await SuperOfficeSignInTests.start(s)
        s.server.request("awaitSignIn", ["signInId": signInId, "timeoutSeconds": 60], id: "wait")

        let run = try await Browser.open(url, idp: s.idp, landingOn: redirectUri, name: "signed-in")
        let page = try #require(run.report["page"])
        #expect(page["title"]?.stringValue?.hasPrefix("Signed in") == true, "title: \(Browser.show(page["title"]))")
        #expect(page["heading"] == "Signed in")
        let text = page["text"]?.stringValue ?? ""
        #expect(text.contains("You are signed in to SuperOffice"), "page text: \(text)")
        #expect(text.contains("close this tab"), "page text: \(text)")
        Browser.expectSelfContained(run, authorizationURL: url, redirectUri: redirectUri, landingStatus: 200)
        let landed = run.report["url"]?.stringValue ?? ""
        #expect(landed.contains("code=") && landed.contains("state="), "landed on \(landed.prefix(60))…")

        // syncwizard finished the sign-in the browser carried back.
        let completed = try #require(try await s.server.response(to: "wait", timeout: 20)["result"])
        #expect(completed["account"]?["contextIdentifier"] == "Cust12345")
        #expect(completed["account"]?["userName"] == "admin@contoso.test")
        let notification = try await s.server.next { $0["method"] == "signInCompleted" }.0
        #expect(notification["params"]?["signInId"] == signInId)
        #expect(notification["params"]?["account"]?["contextIdentifier"] == "Cust12345")
        #expect(s.idp.requests(endpoint: "token").first?["pkceOk"] == true)
    }

    @Test func accessDeniedShowsTheErrorPage() async throws {
        try Browser.requireInstalled()
        let s = try await SuperOfficeSignInTests.setUp()
        try s.idp.setScenario("access_denied", provider: "superoffice")
        let (signInId, url, redirectUri) = try await SuperOfficeSignInTests.start(s)

        let run = try await Browser.open(url, idp: s.idp, landingOn: redirectUri, name: "sign-in-failed")
        let page = try #require(run.report["page"])
        #expect(page["title"]?.stringValue?.hasPrefix("Sign-in failed") == true, "title: \(Browser.show(page["title"]))")
        #expect(page["heading"] == "Sign-in failed")
        let text = page["text"]?.stringValue ?? ""
        #expect(text.contains("declined"), "page text: \(text)")
        #expect(text.contains("close this tab"), "page text: \(text)")
        Browser.expectSelfContained(run, authorizationURL: url, redirectUri: redirectUri, landingStatus: 400)

        let failed = try await s.server.next { $0["method"] == "signInFailed" }.0
        #expect(failed["params"]?["error"]?["data"]?["kind"] == "consentDenied", "\(JSONWriter.string(failed))")
        #expect(try await s.server.callExpectingError("awaitSignIn", ["signInId": signInId])["data"]?["kind"] == "consentDenied")
        #expect(s.idp.requests(endpoint: "token").isEmpty)
    }
}

/// Runs Tests/Browser/browser_sign_in.py and reads its report.
enum Browser {
    struct Run {
        let report: JSONValue
        let screenshot: String
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    static var chromium: String { ProcessInfo.processInfo.environment["SYNCWIZARD_CHROMIUM"] ?? "/usr/bin/chromium" }
    static var chromedriver: String { ProcessInfo.processInfo.environment["SYNCWIZARD_CHROMEDRIVER"] ?? "/usr/bin/chromedriver" }

    static var artifacts: String {
        TestPaths.repositoryRoot.appendingPathComponent("Tests/artifacts/browser-sign-in").path
    }

    static func show(_ value: JSONValue?) -> String { value.map { JSONWriter.string($0) } ?? "-" }

    /// Fails (never skips) when the browser is missing: CI installs it.
    static func requireInstalled() throws {
        var missing: [String] = []
        if !FileManager.default.isExecutableFile(atPath: chromium) { missing.append("chromium (\(chromium))") }
        if !FileManager.default.isExecutableFile(atPath: chromedriver) { missing.append("chromedriver (\(chromedriver))") }
        guard missing.isEmpty else {
            throw Failure(
                description: "the browser test needs \(missing.joined(separator: " and ")): "
                    + "apt-get install --no-install-recommends chromium chromium-driver and pip install selenium "
                    + "(scripts/install-deps.sh --test), or set SYNCWIZARD_SKIP_BROWSER=1 to skip it")
        }
    }

    /// Opens `url` in headless Chromium, waits for the page at `redirectUri`, saves
    /// `artifacts/NAME.png` and `artifacts/NAME.json` (the driver's report).
    static func open(
        _ url: String, idp: FakeIdentityProvider, landingOn redirectUri: String, name: String,
        timeout: Double = 50
    ) async throws -> Run {
        try FileManager.default.createDirectory(atPath: artifacts, withIntermediateDirectories: true)
        let screenshot = artifacts + "/\(name).png"
        let reportFile = artifacts + "/\(name).json"
        let driverLog = artifacts + "/\(name).chromedriver.log"
        for file in [screenshot, reportFile, driverLog] { try? FileManager.default.removeItem(atPath: file) }
        let work = TestPaths.makeTemporaryDirectory("browser-sign-in")
        defer { try? FileManager.default.removeItem(atPath: work) }
        let stderrFile = work + "/driver.stderr"
        _ = FileManager.default.createFile(atPath: stderrFile, contents: nil)

        let script = TestPaths.repositoryRoot.appendingPathComponent("Tests/Browser/browser_sign_in.py").path
        let host = try #require(URL(string: url)?.host)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [
            "python3", script, "--url", url, "--fake-port", String(idp.httpsPort), "--ca-file", idp.caFile,
            "--host", host, "--expect-prefix", redirectUri, "--screenshot", screenshot,
            "--report", reportFile, "--chromedriver-log", driverLog,
            "--chromium", chromium, "--chromedriver", chromedriver, "--timeout", "30",
        ]
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle(forWritingAtPath: stderrFile)
        try process.run()
        // Poll rather than block: tests share Swift's small cooperative pool.
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning {
            if Date() > deadline {
                process.terminate() // the driver quits the browser on SIGTERM
                try await Task.sleep(nanoseconds: 2_000_000_000)
                throw Failure(description: "browser_sign_in.py did not finish within \(Int(timeout)) s; see \(driverLog)")
            }
            try await Task.sleep(nanoseconds: 50_000_000)
        }
        let stderr = (try? String(contentsOfFile: stderrFile, encoding: .utf8)) ?? ""
        guard let data = FileManager.default.contents(atPath: reportFile), let report = try? JSONParser.parse(Array(data)) else {
            throw Failure(description: "browser_sign_in.py wrote no report (exit \(process.terminationStatus)): \(stderr)")
        }
        guard process.terminationStatus == 0, report["ok"] == true else {
            throw Failure(
                description: "browser_sign_in.py failed (exit \(process.terminationStatus)): "
                    + "\(report["error"]?.stringValue ?? stderr); report: \(reportFile), screenshot: \(screenshot)")
        }
        return Run(report: report, screenshot: screenshot)
    }

    /// What every landing must satisfy: the browser trusted the fake by its pinned leaf keys, took
    /// exactly two hops (the authorization URL through the proxy, then the loopback page straight
    /// to 127.0.0.1), the page references and loads nothing, and the screenshot is a PNG.
    static func expectSelfContained(
        _ run: Run, authorizationURL: String, redirectUri: String, landingStatus: Int,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        let report = run.report
        #expect(report["certificateTrust"] == "ignore-certificate-errors-spki-list", sourceLocation: sourceLocation)
        #expect(report["landed"] == true, sourceLocation: sourceLocation)
        let page = report["page"]
        #expect(page?["references"] == .array([]), "the page references: \(show(page?["references"]))", sourceLocation: sourceLocation)
        #expect(page?["resources"] == .array([]), "the page fetched: \(show(page?["resources"]))", sourceLocation: sourceLocation)
        #expect(page?["scripts"]?.intValue == 0, sourceLocation: sourceLocation)

        let requests = report["requests"]?.arrayValue ?? []
        let listing = requests.map { "\(show($0["status"])) \($0["url"]?.stringValue?.prefix(120) ?? "?")" }
        #expect(requests.count == 2, "the tab must make exactly two requests, made: \(listing)", sourceLocation: sourceLocation)
        let proxyPort = report["proxyPort"]?.intValue
        let loopbackPort = URL(string: redirectUri)?.port
        if let first = requests.first {
            #expect(first["url"]?.stringValue == authorizationURL, sourceLocation: sourceLocation)
            #expect(first["status"]?.intValue == 302, sourceLocation: sourceLocation)
            #expect(
                first["remotePort"]?.intValue == proxyPort, "the authorization request must go through the proxy",
                sourceLocation: sourceLocation)
        }
        if requests.count > 1 {
            let landing = requests[1]
            #expect(landing["url"]?.stringValue?.hasPrefix(redirectUri + "/?") == true, "\(listing)", sourceLocation: sourceLocation)
            #expect(landing["status"]?.intValue == landingStatus, sourceLocation: sourceLocation)
            #expect(landing["remoteIPAddress"] == "127.0.0.1", sourceLocation: sourceLocation)
            #expect(
                landing["remotePort"]?.intValue == loopbackPort, "the loopback page must not go through the proxy",
                sourceLocation: sourceLocation)
            #expect(
                landing["contentSecurityPolicy"]?.stringValue?.contains("default-src 'none'") == true,
                sourceLocation: sourceLocation)
        }
        // The proxy tunnelled only the authorization host and never saw the loopback address.
        let proxyLog = report["proxyLog"]?.arrayValue ?? []
        let authority = (URL(string: authorizationURL)?.host ?? "") + ":443"
        #expect(proxyLog.contains { $0["target"]?.stringValue == authority && $0["tunnelled"] == true }, sourceLocation: sourceLocation)
        #expect(
            proxyLog.allSatisfy { $0["tunnelled"] != true || $0["target"]?.stringValue == authority },
            sourceLocation: sourceLocation)
        let loopbackThroughProxy = proxyLog.filter {
            let target = $0["target"]?.stringValue ?? ""
            return target.contains("127.0.0.1") || target.contains("localhost")
        }
        #expect(loopbackThroughProxy.isEmpty, "\(loopbackThroughProxy.map(show))", sourceLocation: sourceLocation)

        let png = FileManager.default.contents(atPath: run.screenshot) ?? Data()
        #expect(
            png.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) && png.count > 1000,
            "no PNG screenshot at \(run.screenshot)", sourceLocation: sourceLocation)
    }
}
