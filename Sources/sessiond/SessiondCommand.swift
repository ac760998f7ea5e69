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
        discussion: "Every setting is read from its environment variable, and its flag wins over it:\n\n" + Setting.helpText
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

    /// The settings' flags (`Setting.all`), parsed by `Setting.values(fromFlags:)`.
    @Argument(parsing: .allUnrecognized, help: "Settings as --flag value or --flag=value, listed above.") var settingFlags: [String] = []

    func run() async throws {
        var values = ProcessInfo.processInfo.environment.filter { $0.key.hasPrefix("SESSIOND_") }
        let configuration: ServiceConfiguration
        do {
            values.merge(try Setting.values(fromFlags: settingFlags)) { _, flag in flag }
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
