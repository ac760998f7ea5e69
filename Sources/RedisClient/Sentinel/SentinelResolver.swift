import NIOCore

/// Finds the current master of `masterName` by asking Sentinels in turn
/// (`SENTINEL get-master-addr-by-name`). The Redis client asks again at every connect, and its
/// role check drops connections to a demoted master, so a failover is followed without a restart.
struct SentinelResolver: Sendable {
    let sentinels: [RedisNodeAddress]
    let masterName: String
    /// Timeouts for talking to the sentinels; sentinels are asked without credentials.
    let configuration: RedisConfiguration
    let eventLoopGroup: any EventLoopGroup

    func masterAddress() async throws -> (host: String, port: Int) {
        var unreachable = [String]()
        var unknownTo = [String]()
        for sentinel in sentinels {
            var sentinelConfiguration = RedisConfiguration(host: sentinel.host, port: sentinel.port)
            sentinelConfiguration.connectTimeout = configuration.connectTimeout
            sentinelConfiguration.commandTimeout = configuration.commandTimeout
            let reply: RESPValue
            do {
                let connection = try await RedisConnection.connect(configuration: sentinelConfiguration, eventLoop: eventLoopGroup.next())
                defer { connection.close() }
                reply = try await connection.send(RedisCommand("SENTINEL", "get-master-addr-by-name", RedisArgument(masterName)))
            } catch {
                unreachable.append("\(sentinel)")
                continue
            }
            guard let parts = reply.array, parts.count == 2, let host = parts[0].string,
                  let port = parts[1].string.flatMap({ Int($0) }), (1...65535).contains(port)
            else {
                unknownTo.append("\(sentinel)")
                continue
            }
            return (host, port)
        }
        if unreachable.isEmpty {
            throw StartupRefusal("no sentinel knows a master named '\(masterName)' (asked \(unknownTo.joined(separator: ", ")))")
        }
        throw RedisClientError(
            .unavailable,
            "no sentinel gave the master '\(masterName)': unreachable \(unreachable.joined(separator: ", "))"
                + (unknownTo.isEmpty ? "" : "; unknown to \(unknownTo.joined(separator: ", "))")
        )
    }
}
