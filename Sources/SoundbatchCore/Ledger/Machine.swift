import Crypto
import Foundation

/// The machine a path was recorded on: a file saved on one machine of a team is looked for
/// on that machine only, and another machine reads the sound from the ledger's store.
///
/// `$SOUNDBATCH_MACHINE` names it: machines that see the same download folders at the same
/// paths (a shared drive) may give themselves one name, and a test stands two folders for
/// two machines. Else the host's name and a digest of its `/etc/machine-id` (never the id
/// itself, which systemd asks to keep private).
public enum Machine {
    @TaskLocal public static var name: String = fromEnvironment(ProcessInfo.processInfo.environment)

    static func fromEnvironment(_ environment: [String: String]) -> String {
        if let named = environment["SOUNDBATCH_MACHINE"]?.trimmed, !named.isEmpty { return named }
        let host = ProcessInfo.processInfo.hostName
        guard let id = try? String(contentsOfFile: "/etc/machine-id", encoding: .utf8).trimmed, !id.isEmpty else {
            return host
        }
        return "\(host)/\(SHA256.hash(data: Data(id.utf8)).hex.prefix(12))"
    }
}
