import NIOCore
import NIOSSL

/// TLS to Redis (`rediss://`): the CA that signed the server's certificate (else the system's
/// roots) and, when Redis asks for one (`tls-auth-clients yes`), a client certificate and key.
/// The server's certificate must name the host connected to (an IP address in its SAN for an
/// IP host).
public struct RedisTLS: Sendable {
    let context: NIOSSLContext

    /// Reads the PEM files now, so a missing or malformed file stops start-up with its name.
    public init(caFile: String?, certificateFile: String?, keyFile: String?) throws {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        do {
            if let caFile {
                configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(caFile))
            }
            switch (certificateFile, keyFile) {
            case (let certificate?, let key?):
                configuration.certificateChain = try NIOSSLCertificate.fromPEMFile(certificate).map { .certificate($0) }
                configuration.privateKey = .privateKey(try NIOSSLPrivateKey(file: key, format: .pem))
            case (nil, nil):
                break
            default:
                throw RedisClientError(.invalidConfiguration, "a client certificate needs both its certificate file and its key file")
            }
            context = try NIOSSLContext(configuration: configuration)
        } catch let error as RedisClientError {
            throw error
        } catch {
            throw RedisClientError(.invalidConfiguration, "cannot load the TLS files: \(error)")
        }
    }

    /// The handler that encrypts one connection to `host`.
    func makeHandler(host: String) throws -> NIOSSLClientHandler {
        // SNI and name checks take a host name; an IP address is checked against the SAN instead.
        let isAddress = (try? SocketAddress(ipAddress: host, port: 0)) != nil
        return try NIOSSLClientHandler(context: context, serverHostname: isAddress ? nil : host)
    }
}
