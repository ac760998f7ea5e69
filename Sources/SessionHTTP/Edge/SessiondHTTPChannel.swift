import HummingbirdCore
import Logging
import NIOCore
import NIOHTTPTypes
import NIOHTTPTypesHTTP1

/// Hummingbird's HTTP/1 channel with sessiond's two handlers: the lookup fast path first, in
/// front of NIO's parser, and the idle timeout just behind the parser, where it sees the
/// router's requests and answers.
struct SessiondHTTPChannel: HTTPChannelHandler {
    typealias Value = NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>

    let responder: HTTPChannelHandler.Responder
    let lookup: SessionLookupChannelHandler.Shared
    let idleTimeout: TimeAmount
    let drainer: ConnectionDrainer

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        HTTP1Channel(responder: responder).setup(channel: channel, logger: logger).flatMapThrowing { [lookup, idleTimeout, drainer] value in
            let pipeline = channel.pipeline.syncOperations
            let idle = IdleConnectionHandler(timeout: idleTimeout, drainer: drainer)
            try pipeline.addHandler(idle, position: .after(try pipeline.handler(type: HTTP1ToHTTPServerCodec.self)))
            try pipeline.addHandler(SessionLookupChannelHandler(shared: lookup, activity: idle), position: .first)
            return value
        }
    }

    func handle(value: Value, logger: Logger) async {
        await handleHTTP(asyncChannel: value, logger: logger)
    }
}
