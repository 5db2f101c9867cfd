import Foundation
import SoundbatchCore

/// The sandbox soundbatch starts for a batch run against it (`--sandbox`), with a key
/// it takes; its tasks are kept in the state file it is given.
public struct BuiltInSandbox: SandboxLauncher {
    public var configuration: SandboxConfiguration

    public init(configuration: SandboxConfiguration = SandboxConfiguration()) {
        self.configuration = configuration
    }

    public func withSandbox<T: Sendable>(
        port: Int, stateFile: String, _ body: (String, Int, APIKey) async throws -> T
    ) async throws -> T {
        var configuration = configuration
        configuration.port = port
        configuration.stateFile = stateFile
        return try await Sandbox.withRunning(configuration) { baseURL, _ in
            let boundPort = baseURL.split(separator: ":").last.flatMap { Int($0) } ?? port
            return try await body(baseURL, boundPort, .sandbox)
        }
    }
}
