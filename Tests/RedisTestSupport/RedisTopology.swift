import Foundation
import Synchronization

// Private Redis Cluster and Sentinel topologies for tests that break them (kill a master,
// restart a node, reshard), so the shared ones of scripts/test are never disturbed. Both wrap
// scripts/redis-topology, the implementation scripts/test uses for the shared topologies;
// its processes are daemons, so `stop()` (or `deinit`, as a last resort) must end them. When
// SESSIOND_TEST_TOPOLOGY_ROOT is set (scripts/test sets it), topologies live under it, and
// scripts/test stops those a crashed test left behind.

/// What both topologies can do to their processes, all through scripts/redis-topology.
public protocol RedisTopology: AnyObject, Sendable {
    /// The directory of the topology's files (see scripts/redis-topology); removed by `stop()`.
    var directory: URL { get }
    var stopOnce: StopOnce { get }
}

extension RedisTopology {
    /// Kills the process on `port` with SIGKILL and waits until it is gone. No-op when it is
    /// not running.
    public func kill(port: Int) async throws {
        _ = try await RedisTopologyScript.run(["kill", directory.path, String(port)])
    }

    /// Starts the process on `port` again with its original arguments and data directory,
    /// killing it first if it runs. A cluster node rejoins as the same node (an old master as a
    /// replica); a Sentinel set-up's old master stays a master until the sentinels turn it
    /// into a replica (they check about every 10 s). Returns once it answers PING.
    public func restart(port: Int) async throws {
        _ = try await RedisTopologyScript.run(["restart", directory.path, String(port)])
    }

    /// Runs `redis-cli` with `arguments` as they are (give the node: `["-p", "7000", ...]` or
    /// `["--cluster", "reshard", "127.0.0.1:7000", ...]`) and returns its standard output.
    /// Throws with its standard error when it exits non-zero (it cannot connect, a `--cluster`
    /// command fails); an error reply to a plain command comes back in the output ("ERR ...").
    public func redisCLI(_ arguments: [String]) async throws -> String {
        try await RedisTopologyScript.redisCLI(arguments)
    }

    /// Stops every process and removes the directory. Blocks until done (a few seconds at
    /// most). Safe to call more than once.
    public func stop() {
        if stopOnce.claim() { RedisTopologyScript.stop(directory) }
    }
}

/// True for the first caller only.
public final class StopOnce: Sendable {
    private let done = Mutex<Bool>(false)

    public init() {}

    func claim() -> Bool {
        done.withLock { done in
            defer { done = true }
            return !done
        }
    }
}

/// A Redis Cluster on loopback ports: masters with one replica each, node timeout 1 s (a
/// killed master's replica takes over within about 2-3 s), `cluster-require-full-coverage no`
/// (the slots of a master that is down and has no replica left fail, the others keep
/// working).
///
/// Use `RedisClusterTopology.withCluster { ... }`: the cluster is stopped when the body ends,
/// whether it returned or threw.
public final class RedisClusterTopology: RedisTopology {
    /// The directory of the topology's files (see scripts/redis-topology); removed by `stop()`.
    public let directory: URL
    /// `redis://127.0.0.1:PORT` of every node, comma-separated, in creation order.
    public let seeds: String
    /// The ports of the masters, as created (a failover changes the roles, not this list).
    public let masterPorts: [Int]
    /// The ports of the replicas, as created.
    public let replicaPorts: [Int]
    public let stopOnce = StopOnce()

    private init(directory: URL, seeds: String, masterPorts: [Int], replicaPorts: [Int]) {
        self.directory = directory
        self.seeds = seeds
        self.masterPorts = masterPorts
        self.replicaPorts = replicaPorts
    }

    deinit {
        stop()
    }

    /// The seed URLs, one per node.
    public var seedURLs: [String] { seeds.split(separator: ",").map(String.init) }

    /// Starts a cluster of `masters` masters (at least 3) and as many replicas, and waits
    /// until every node sees all slots served by a master and a replica (a few seconds).
    public static func start(masters: Int = 3) async throws -> RedisClusterTopology {
        let directory = RedisTopologyScript.newDirectory("cluster")
        let output = try await RedisTopologyScript.run(["cluster", directory.path, String(masters)])
        do {
            let masterPorts = try RedisTopologyScript.readPorts(directory.appendingPathComponent("masters"))
            let replicaPorts = try RedisTopologyScript.readPorts(directory.appendingPathComponent("replicas"))
            return RedisClusterTopology(
                directory: directory,
                seeds: output.trimmingCharacters(in: .whitespacesAndNewlines),
                masterPorts: masterPorts,
                replicaPorts: replicaPorts
            )
        } catch {
            RedisTopologyScript.stop(directory)
            throw error
        }
    }

    /// Runs `body` with a fresh cluster and always stops the cluster afterwards.
    public static func withCluster<T>(
        masters: Int = 3,
        _ body: (RedisClusterTopology) async throws -> T
    ) async throws -> T {
        let cluster = try await start(masters: masters)
        defer { cluster.stop() }
        return try await body(cluster)
    }

}

/// A master, one replica (in sync) and three sentinels that monitor the master as
/// `masterName` (quorum 2, down-after 1 s, failover-timeout 5 s): a killed master is replaced
/// by the replica within about 2 s.
///
/// Use `RedisSentinelTopology.withSentinels { ... }`: everything is stopped when the body
/// ends, whether it returned or threw.
public final class RedisSentinelTopology: RedisTopology {
    /// The directory of the topology's files (see scripts/redis-topology); removed by `stop()`.
    public let directory: URL
    /// The sentinels, `127.0.0.1:PORT` comma-separated.
    public let sentinels: String
    public let masterName: String
    /// The master's port, as created (a failover changes the roles, not this value).
    public let masterPort: Int
    /// The replica's port, as created.
    public let replicaPort: Int
    public let stopOnce = StopOnce()

    private init(directory: URL, sentinels: String, masterName: String, masterPort: Int, replicaPort: Int) {
        self.directory = directory
        self.sentinels = sentinels
        self.masterName = masterName
        self.masterPort = masterPort
        self.replicaPort = replicaPort
    }

    deinit {
        stop()
    }

    /// The sentinels' ports.
    public var sentinelPorts: [Int] {
        sentinels.split(separator: ",").compactMap { address -> Int? in
            address.split(separator: ":").last.flatMap { Int(String($0)) }
        }
    }

    /// Starts the master, the replica and the sentinels, and waits until every sentinel knows
    /// the replica and the other two sentinels (a few seconds).
    public static func start() async throws -> RedisSentinelTopology {
        let directory = RedisTopologyScript.newDirectory("sentinel")
        // SENTINELS=127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3 MASTER_NAME=sessiond MASTER=127.0.0.1:P
        let output = try await RedisTopologyScript.run(["sentinel", directory.path])
        do {
            var fields: [String: String] = [:]
            for field in output.split(whereSeparator: \.isWhitespace) {
                let parts = field.split(separator: "=", maxSplits: 1)
                if parts.count == 2 { fields[String(parts[0])] = String(parts[1]) }
            }
            guard let sentinels = fields["SENTINELS"], let masterName = fields["MASTER_NAME"] else {
                throw RedisServerError("unexpected output of scripts/redis-topology sentinel: \(output)")
            }
            let masterPort = try RedisTopologyScript.readPorts(directory.appendingPathComponent("master"))
            let replicaPort = try RedisTopologyScript.readPorts(directory.appendingPathComponent("replica"))
            guard masterPort.count == 1, replicaPort.count == 1 else {
                throw RedisServerError("unexpected master or replica file in \(directory.path)")
            }
            return RedisSentinelTopology(
                directory: directory,
                sentinels: sentinels,
                masterName: masterName,
                masterPort: masterPort[0],
                replicaPort: replicaPort[0]
            )
        } catch {
            RedisTopologyScript.stop(directory)
            throw error
        }
    }

    /// Runs `body` with a fresh topology and always stops it afterwards.
    public static func withSentinels<T>(_ body: (RedisSentinelTopology) async throws -> T) async throws -> T {
        let topology = try await start()
        defer { topology.stop() }
        return try await body(topology)
    }

}

/// Runs scripts/redis-topology and redis-cli.
enum RedisTopologyScript {
    /// The repository root: this file is Tests/RedisTestSupport/RedisTopology.swift.
    static let repositoryRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()
        .deletingLastPathComponent()
        .deletingLastPathComponent()

    static let script = repositoryRoot.appendingPathComponent("scripts/redis-topology")

    /// A directory path for a new topology (the script creates it).
    static func newDirectory(_ kind: String) -> URL {
        let root = ProcessInfo.processInfo.environment["SESSIOND_TEST_TOPOLOGY_ROOT"]
            .map { URL(fileURLWithPath: $0, isDirectory: true) }
            ?? FileManager.default.temporaryDirectory
        return root.appendingPathComponent("sessiond-\(kind)-\(UUID().uuidString)", isDirectory: true)
    }

    /// Runs the script with `arguments` and returns its standard output; throws with its
    /// standard error when it fails (it has then stopped whatever it started).
    static func run(_ arguments: [String]) async throws -> String {
        let result = try await runProcess(script, arguments)
        guard result.succeeded else {
            throw RedisServerError(
                "scripts/redis-topology \(arguments.joined(separator: " ")) \(result.failure)\n\(result.stderr)"
            )
        }
        return result.stdout
    }

    static func redisCLI(_ arguments: [String]) async throws -> String {
        let result = try await runProcess(try RedisServerProcess.findExecutable("redis-cli"), arguments)
        guard result.succeeded else {
            throw RedisServerError("redis-cli \(arguments.joined(separator: " ")) \(result.failure)\n\(result.stderr)")
        }
        return result.stdout
    }

    /// `scripts/redis-topology stop DIRECTORY`, waited for synchronously (for `deinit`); the
    /// script is bounded (TERM, KILL after 5 s). Problems go to this process's stderr.
    static func stop(_ directory: URL) {
        let process = Process()
        process.executableURL = script
        process.arguments = ["stop", directory.path]
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            FileHandle.standardError.write(Data("could not run scripts/redis-topology stop: \(error)\n".utf8))
            return
        }
        process.waitUntilExit()
    }

    /// One port a line.
    static func readPorts(_ file: URL) throws -> [Int] {
        let text = try String(contentsOf: file, encoding: .utf8)
        return try text.split(whereSeparator: \.isNewline).map { line -> Int in
            guard let port = Int(String(line)) else {
                throw RedisServerError("not a port in \(file.path): \(line)")
            }
            return port
        }
    }

    struct ProcessResult: Sendable {
        var status: Int32
        var signalled: Bool
        var stdout: String
        var stderr: String

        var succeeded: Bool { !signalled && status == 0 }
        var failure: String { signalled ? "was killed by signal \(status)" : "failed with status \(status)" }
    }

    /// Runs `executable` without blocking a thread: its end is reported through
    /// `terminationHandler`. Output goes to temporary files rather than pipes, so a long
    /// output (`--cluster reshard` prints a line per slot) cannot fill a pipe and stall it.
    static func runProcess(_ executable: URL, _ arguments: [String]) async throws -> ProcessResult {
        let scratch = FileManager.default.temporaryDirectory
            .appendingPathComponent("sessiond-process-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        let stdoutFile = scratch.appendingPathComponent("stdout")
        let stderrFile = scratch.appendingPathComponent("stderr")
        guard FileManager.default.createFile(atPath: stdoutFile.path, contents: nil),
              FileManager.default.createFile(atPath: stderrFile.path, contents: nil)
        else {
            throw RedisServerError("could not create output files in \(scratch.path)")
        }
        let stdoutHandle = try FileHandle(forWritingTo: stdoutFile)
        defer { try? stdoutHandle.close() }
        let stderrHandle = try FileHandle(forWritingTo: stderrFile)
        defer { try? stderrHandle.close() }

        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = stdoutHandle
        process.standardError = stderrHandle
        let (status, signalled): (Int32, Bool) = try await withCheckedThrowingContinuation { continuation in
            process.terminationHandler = { finished in
                let signalled = finished.terminationReason == .uncaughtSignal
                continuation.resume(returning: (finished.terminationStatus, signalled))
            }
            do {
                try process.run()
            } catch {
                process.terminationHandler = nil
                continuation.resume(throwing: RedisServerError("could not run \(executable.path): \(error)"))
            }
        }
        return ProcessResult(
            status: status,
            signalled: signalled,
            stdout: (try? String(contentsOf: stdoutFile, encoding: .utf8)) ?? "",
            stderr: (try? String(contentsOf: stderrFile, encoding: .utf8)) ?? ""
        )
    }

}
