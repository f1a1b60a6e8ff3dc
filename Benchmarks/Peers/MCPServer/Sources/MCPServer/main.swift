// The MCP Swift SDK's stdio server as its README sets it up: a Server on a StdioTransport
// (NDJSON). `ping` is one of the SDK's built-in handlers and answers {}. Nothing is tuned:
// this is what a user of the SDK gets.
import MCP

let server = Server(name: "bench-mcp", version: "1.0.0")
let transport = StdioTransport()
try await server.start(transport: transport)
await server.waitUntilCompleted()
