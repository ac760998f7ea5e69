import ArgumentParser
import Foundation
import Hummingbird
import Logging
import NIOCore
import NIOPosix
import RedisClient
import ServiceLifecycle
import SessionHTTP

/// `sessiond`: every setting comes from its `SESSIOND_*` environment variable, and each has a
/// flag of the same name that wins over the environment.
@main
struct SessiondCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sessiond",
        abstract: "Server-side sessions in Redis over HTTP.",
        discussion: "Every option can also be set by its environment variable, e.g. --idle-timeout by SESSIOND_IDLE_TIMEOUT."
    )

    /// Sizes the event loops and makes them Swift concurrency's executor before anything runs,
    /// then parses and runs the command as ArgumentParser would.
    static func main() async {
        EventLoopCount.matchCPUAffinity()
        // The router's handlers are async: on the event loops they run where their connection's
        // bytes arrive, instead of hopping to the global pool's threads and back for every request.
        NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }

    @Option(help: "Listen address (SESSIOND_HOST, default 127.0.0.1).") var host: String?
    @Option(help: "Listen port (SESSIOND_PORT, default 8080).") var port: String?
    @Option(help: "redis://[user:password@]host:port/db, or a comma-separated list of cluster seeds (SESSIOND_REDIS_URL).")
    var redisURL: String?
    @Option(help: "host:port,... of Redis Sentinels (SESSIOND_REDIS_SENTINELS).") var redisSentinels: String?
    @Option(help: "The master's name at the Sentinels (SESSIOND_REDIS_MASTER_NAME).") var redisMasterName: String?
    @Option(help: "PEM CA file for rediss:// (SESSIOND_REDIS_TLS_CA_FILE, default the system's roots).") var redisTlsCaFile: String?
    @Option(help: "PEM client certificate for rediss:// (SESSIOND_REDIS_TLS_CERT_FILE).") var redisTlsCertFile: String?
    @Option(help: "PEM key of the client certificate (SESSIOND_REDIS_TLS_KEY_FILE).") var redisTlsKeyFile: String?
    @Option(help: "Comma-separated role:key pairs (SESSIOND_API_KEYS). Prefer the environment: flags show in ps.")
    var apiKeys: String?
    @Option(help: "Prefix of every Redis key (SESSIOND_KEY_PREFIX, default sessiond:).") var keyPrefix: String?
    @Option(help: "Idle timeout in seconds (SESSIOND_IDLE_TIMEOUT, default 1800).") var idleTimeout: String?
    @Option(help: "Absolute timeout in seconds (SESSIOND_ABSOLUTE_TIMEOUT, default 43200).") var absoluteTimeout: String?
    @Option(help: "Sessions per user, 0 for no cap (SESSIOND_MAX_SESSIONS_PER_USER).") var maxSessionsPerUser: String?
    @Option(help: "Largest data object in bytes (SESSIOND_MAX_DATA_BYTES, default 16384).") var maxDataBytes: String?
    @Option(help: "Session cookie name (SESSIOND_COOKIE_NAME, default __Host-session).") var cookieName: String?
    @Option(help: "Strict or Lax (SESSIOND_COOKIE_SAMESITE, default Lax).") var cookieSamesite: String?
    @Option(help: "trace ... critical (SESSIOND_LOG_LEVEL, default info).") var logLevel: String?
    @Option(help: "Seconds SIGTERM waits for requests in flight (SESSIOND_SHUTDOWN_TIMEOUT, default 10).") var shutdownTimeout: String?
    @Option(help: "Seconds a connection may wait for a complete request (SESSIOND_CONNECTION_IDLE_TIMEOUT, default 60).")
    var connectionIdleTimeout: String?
    @Option(help: "Connections served at once (SESSIOND_MAX_CONNECTIONS, default 10000).") var maxConnections: String?
    @Option(help: "strict, bounded or off (SESSIOND_NEAR_CACHE, default strict).") var nearCache: String?
    @Option(help: "In bounded mode, how late a revocation may be honoured (SESSIOND_NEAR_CACHE_MAX_STALENESS_MS, default 50).")
    var nearCacheMaxStalenessMs: String?
    @Option(help: "Entries the near cache keeps (SESSIOND_NEAR_CACHE_MAX_ENTRIES, default 1000000).") var nearCacheMaxEntries: String?
    @Option(help: "Key ring file that turns on encryption at rest (SESSIOND_DATA_KEYS, default off).") var dataKeys: String?

    func run() async throws {
        var values = ProcessInfo.processInfo.environment.filter { $0.key.hasPrefix("SESSIOND_") }
        let flags: [String: String?] = [
            "SESSIOND_HOST": host, "SESSIOND_PORT": port, "SESSIOND_REDIS_URL": redisURL,
            "SESSIOND_REDIS_SENTINELS": redisSentinels, "SESSIOND_REDIS_MASTER_NAME": redisMasterName,
            "SESSIOND_REDIS_TLS_CA_FILE": redisTlsCaFile, "SESSIOND_REDIS_TLS_CERT_FILE": redisTlsCertFile,
            "SESSIOND_REDIS_TLS_KEY_FILE": redisTlsKeyFile,
            "SESSIOND_API_KEYS": apiKeys, "SESSIOND_KEY_PREFIX": keyPrefix, "SESSIOND_IDLE_TIMEOUT": idleTimeout,
            "SESSIOND_ABSOLUTE_TIMEOUT": absoluteTimeout, "SESSIOND_MAX_SESSIONS_PER_USER": maxSessionsPerUser,
            "SESSIOND_MAX_DATA_BYTES": maxDataBytes, "SESSIOND_COOKIE_NAME": cookieName,
            "SESSIOND_COOKIE_SAMESITE": cookieSamesite, "SESSIOND_LOG_LEVEL": logLevel,
            "SESSIOND_SHUTDOWN_TIMEOUT": shutdownTimeout, "SESSIOND_CONNECTION_IDLE_TIMEOUT": connectionIdleTimeout,
            "SESSIOND_MAX_CONNECTIONS": maxConnections, "SESSIOND_NEAR_CACHE": nearCache,
            "SESSIOND_NEAR_CACHE_MAX_STALENESS_MS": nearCacheMaxStalenessMs, "SESSIOND_NEAR_CACHE_MAX_ENTRIES": nearCacheMaxEntries,
            "SESSIOND_DATA_KEYS": dataKeys,
        ]
        for case let (name, value?) in flags { values[name] = value }

        let configuration: ServiceConfiguration
        do {
            configuration = try ServiceConfiguration(values: values)
        } catch {
            FileHandle.standardError.write(Data("sessiond: configuration error: \(error.description)\n".utf8))
            throw ExitCode(2)
        }
        let openFiles = FileDescriptorLimit.raiseToHardLimit()
        let level = configuration.logLevel
        LoggingSystem.bootstrap { label in JSONLogHandler(label: label, level: level) }
        let logger = Logger(label: "sessiond")
        logger.info("starting", metadata: [
            "address": .string("\(configuration.host):\(configuration.port)"),
            "redis": .string(configuration.redisSeeds.map(\.description).joined(separator: ",")),
        ])
        defer { JSONLineOutput.flushStandardOutput() }
        if openFiles < configuration.maxConnections + 256 {
            logger.warning("the open-file limit is below SESSIOND_MAX_CONNECTIONS plus room for Redis and logs; raise it (ulimit -n) or lower the setting", metadata: [
                "open_file_limit": .stringConvertible(openFiles), "max_connections": .stringConvertible(configuration.maxConnections),
            ])
        }
        let app: any ApplicationProtocol
        do {
            app = try await buildApplication(configuration: configuration, logger: logger)
        } catch {
            JSONLineOutput.flushStandardOutput()
            let reason = (error as? RedisClientError)?.message ?? "\(error)"
            FileHandle.standardError.write(Data("sessiond: cannot use the configured Redis: \(reason)\n".utf8))
            throw ExitCode(2)
        }
        // SIGTERM (or SIGINT): stop accepting, finish the requests in flight, close Redis, exit 0;
        // requests still running after the timeout are cut and the exit status is 1.
        var group = ServiceGroupConfiguration(services: [app], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        group.maximumGracefulShutdownDuration = .seconds(configuration.shutdownTimeout)
        do {
            try await ServiceGroup(configuration: group).run()
        } catch {
            logger.error("shutdown did not finish cleanly", metadata: ["error": .string("\(error)")])
            throw ExitCode(1)
        }
        logger.info("stopped")
    }
}
