import NIOCore
import NIOHTTP1
import NIOPosix
import Threading

/// The RFC 8252 loopback redirect receiver: an HTTP server on 127.0.0.1 with an ephemeral port,
/// for one sign-in. SwiftNIO parses HTTP; this type only routes: GET on the expected path goes
/// to `handler`, whose page is sent back; anything else gets a 404 and does not end the wait.
/// Once the handler says it is done, the listener closes.
public final class LoopbackListener: Sendable {
    public struct Reply: Sendable {
        public var status: Int
        public var html: String
        /// True once the sign-in is decided (the listener then closes).
        public var done: Bool
        /// Sends the browser on (302) instead of showing a page: the next leg of a sign-in.
        public var location: String?
        public init(status: Int, html: String, done: Bool, location: String? = nil) {
            self.status = status
            self.html = html
            self.done = done
            self.location = location
        }
    }

    public typealias Handler = @Sendable (_ target: String) async -> Reply

    public let port: Int
    private let channel: any Channel

    private init(port: Int, channel: any Channel) {
        self.port = port
        self.channel = channel
    }

    /// Binds 127.0.0.1 only: nothing off this machine can reach the redirect.
    public static func start(path: String = "/", handler: @escaping Handler) async throws -> LoopbackListener {
        let closer = ServerCloser()
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(ChannelOptions.backlog, value: 16)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(CallbackHandler(path: path, handler: handler, closer: closer))
                }
            }
        let channel = try await bootstrap.bind(host: "127.0.0.1", port: 0).get()
        closer.set(channel)
        guard let port = channel.localAddress?.port else {
            try? await channel.close()
            throw ListenerError.noPort
        }
        return LoopbackListener(port: port, channel: channel)
    }

    public enum ListenerError: Error { case noPort }

    public func close() {
        channel.close(promise: nil)
    }

    public var isOpen: Bool { channel.isActive }
}

/// Lets a request handler close the server channel once the sign-in is decided.
final class ServerCloser: Sendable {
    private let box = MutexBox<(any Channel)?>(nil)
    func set(_ channel: any Channel) { box.withLock { $0 = channel } }
    func close() { box.withLock { $0 }?.close(promise: nil) }
}

final class CallbackHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let path: String
    let handler: LoopbackListener.Handler
    let closer: ServerCloser
    private var head: HTTPRequestHead?

    init(path: String, handler: @escaping LoopbackListener.Handler, closer: ServerCloser) {
        self.path = path
        self.handler = handler
        self.closer = closer
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
        case .body:
            break
        case .end:
            guard let head else { return }
            self.head = nil
            let requestPath = String(head.uri.prefix { $0 != "?" && $0 != "#" })
            guard head.method == .GET, requestPath == path else {
                respond(context: context, status: .notFound, html: "<!doctype html><title>Not found</title><p>Not found.</p>", thenClose: false)
                return
            }
            let promise = context.eventLoop.makePromise(of: LoopbackListener.Reply.self)
            let handler = self.handler
            let uri = head.uri
            promise.completeWithTask { await handler(uri) }
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            promise.futureResult.whenSuccess { reply in
                let (this, context) = bound.value
                this.respond(
                    context: context, status: HTTPResponseStatus(statusCode: reply.status), html: reply.html,
                    location: reply.location, thenClose: reply.done)
            }
        }
    }

    private func respond(context: ChannelHandlerContext, status: HTTPResponseStatus, html: String, location: String? = nil, thenClose: Bool) {
        var headers = HTTPHeaders()
        if let location { headers.add(name: "Location", value: location) }
        let body = context.channel.allocator.buffer(string: html)
        headers.add(name: "Content-Type", value: "text/html; charset=utf-8")
        headers.add(name: "Content-Length", value: String(body.readableBytes))
        headers.add(name: "Cache-Control", value: "no-store")
        headers.add(name: "Referrer-Policy", value: "no-referrer")
        headers.add(name: "Content-Security-Policy", value: "default-src 'none'; style-src 'unsafe-inline'")
        headers.add(name: "Connection", value: "close")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        let closer = self.closer
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
            channel.close(promise: nil)
            if thenClose { closer.close() }
        }
    }
}
