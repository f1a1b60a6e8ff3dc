/// The small page the browser shows after the redirect: self-contained, no external resources,
/// never a code, token or secret.
public enum SignInPage {
    public static func render(title: String, message: String, ok: Bool) -> String {
        let color = ok ? "#1a7f37" : "#b42318"
        return """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
            <title>\(html(title)) – syncwizard</title>
            <style>body{font-family:system-ui,sans-serif;max-width:36em;margin:4em auto;padding:0 1em;color:#1f2328}
            h1{color:\(color);font-size:1.5em}</style></head>
            <body><h1>\(html(title))</h1><p>\(html(message))</p></body></html>
            """
    }

    /// HTML text escaping, by Unicode scalar (a "<" with a combining mark is one Character).
    static func html(_ text: String) -> String {
        let entities: [Unicode.Scalar: String] = ["<": "&lt;", ">": "&gt;", "&": "&amp;", "\"": "&quot;", "'": "&#39;"]
        return text.unicodeScalars.map { entities[$0] ?? String($0) }.joined()
    }
}
