import Foundation
import Hummingbird
import Logging
import Serving
import SoundbatchTesting
import Testing

@Suite struct ServingTests {
    /// Stopping a server while connections arrive used to stop the whole test process now and
    /// then (apple/swift-nio#2813): the server was stopped by cancelling its task. Here a
    /// thread keeps connecting while each server stops; a process that survives passes.
    @Test func aServerStopsCleanlyWhileConnectionsArrive() async throws {
        var logger = Logger(label: "serving")
        logger.logLevel = .critical
        for _ in 0..<40 {
            let router = Router()
            router.get("/") { _, _ in "ok" }
            let connecting = Locked(true)
            let connected = Locked(0)
            let stoppedConnecting = Locked(false)
            let answer = try await serving(
                router.buildResponder(), host: "127.0.0.1", port: 0, serverName: "t",
                logger: logger
            ) { port in
                Thread.detachNewThread {
                    while connecting.value {
                        if Self.connectAndClose(port: port) { connected.withLock { $0 += 1 } }
                    }
                    stoppedConnecting.withLock { $0 = true }
                }
                while connected.value < 3 { try await Task.sleep(for: .milliseconds(1)) }
                return "served"
            }
            connecting.withLock { $0 = false }
            #expect(try await eventually { stoppedConnecting.value })
            #expect(answer == "served")
        }
    }

    @Test func aTakenPortIsAnErrorNotAHang() async throws {
        var logger = Logger(label: "serving")
        logger.logLevel = .critical
        let router = Router()
        try await serving(router.buildResponder(), host: "127.0.0.1", port: 0, serverName: "a", logger: logger) {
            port in
            let error = await #expect(throws: CouldNotListen.self) {
                try await serving(
                    router.buildResponder(), host: "127.0.0.1", port: port, serverName: "b", logger: logger
                ) { _ in
                    Issue.record("a second server listened on a port already taken")
                }
            }
            #expect(error?.portTaken == true)
            #expect(
                error?.description
                    == "could not listen on 127.0.0.1:\(port): Address already in use; choose another port, or stop what holds it"
            )
        }
    }

    /// A plain TCP connection, closed at once; true if the connect succeeded.
    static func connectAndClose(port: Int) -> Bool {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { return false }
        defer { close(socket) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
    }
}
