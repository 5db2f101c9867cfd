import Foundation
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle

/// Serves HTTP with `responder` on `host:port` for as long as `body` runs, then shuts the
/// server down gracefully and returns what `body` returned. `body` gets the port the server
/// is bound to, which is how a caller learns it after asking for port 0.
///
/// Why not simply cancel the serving task: a connection accepted in that moment is dropped
/// before anyone serves it, and NIO stops the whole process ("Deinited NIOAsyncWriter without
/// calling finish()", apple/swift-nio#2813). CI hit it once, in a test whose sandbox was still
/// calling back when the test ended. A graceful shutdown closes the listener first, answers
/// the requests it has taken, then closes idle connections.
public func serving<Responder: HTTPResponder, Value>(
    _ responder: Responder, host: String, port: Int, serverName: String, logger: Logger,
    while body: (_ boundPort: Int) async throws -> Value
) async throws -> Value where Responder.Context: InitializableFromSource<ApplicationRequestContextSource> {
    let (boundPorts, boundPort) = AsyncStream.makeStream(of: Int.self)
    let app = Application(
        responder: responder,
        configuration: .init(address: .hostname(host, port: port), serverName: serverName),
        onServerRunning: { channel in
            boundPort.yield(channel.localAddress?.port ?? port)
            boundPort.finish()
        },
        logger: logger)
    let server = ServiceGroup(configuration: .init(services: [app], logger: logger))
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask {
            defer { boundPort.finish() }
            try await server.run()
        }
        var ports = boundPorts.makeAsyncIterator()
        guard let port = await ports.next() else {
            do { try await group.waitForAll() } catch let error as CancellationError { throw error } catch {
                throw CouldNotListen(host: host, port: port, cause: error)
            }
            throw CouldNotListen(host: host, port: port, cause: nil)
        }
        let outcome: Result<Value, any Error>
        do { outcome = .success(try await body(port)) } catch { outcome = .failure(error) }
        await server.triggerGracefulShutdown()
        try await group.waitForAll()
        return try outcome.get()
    }
}

/// The server never listened: the port is taken, say, or the host is not this machine's.
public struct CouldNotListen: Error, CustomStringConvertible {
    public let host: String
    public let port: Int
    /// What the server failed with; nil if it stopped without an error.
    public let cause: (any Error)?

    public var portTaken: Bool { (cause as? IOError)?.errnoCode == EADDRINUSE }

    public var description: String {
        let reason =
            switch cause {
            case let error as IOError: String(cString: strerror(error.errnoCode))
            case let error?: "\(error)"
            case nil: "the server stopped first"
            }
        return "could not listen on \(host):\(port): \(reason); "
            + (portTaken ? "choose another port, or stop what holds it" : "check the address")
    }
}
