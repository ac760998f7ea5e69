import SessionCrypto

/// What an API key may do. Roles nest: a higher role may do everything a lower one may.
public enum Role: Int, Sendable, Comparable, CaseIterable {
    case reader, app, admin

    public static func < (lhs: Role, rhs: Role) -> Bool { lhs.rawValue < rhs.rawValue }

    public var name: String {
        switch self {
        case .reader: "reader"
        case .app: "app"
        case .admin: "admin"
        }
    }
}

/// The configured API keys, kept only as digests. A presented key is compared with every
/// configured key in constant time, without stopping at the first match. A key may also be
/// configured as its digest, `role:blake2b:<64 hex digits>` (`printf %s KEY | b2sum -l 256`), so
/// that the plain key never sits in a config file or in the environment of the running process.
public struct APIKeyRing: Sendable {
    public static let minimumKeyLength = 24
    static let digestPrefix = "blake2b:"
    private let entries: [(digest: SecretDigest, role: Role)]

    /// Parses `role:key,role:key,...`; errors name the problem without echoing any key.
    public init(parsing text: String) throws(ConfigurationError.Reason) {
        var entries = [(digest: SecretDigest, role: Role)]()
        var seen = Set<String>()
        for (position, item) in text.split(separator: ",", omittingEmptySubsequences: false).enumerated() {
            let entry = item.trimmingASCIISpaces()
            guard let colon = entry.firstIndex(of: ":") else {
                throw .init("entry \(position + 1) is not role:key")
            }
            let roleName = entry[..<colon]
            let key = entry[entry.index(after: colon)...]
            guard let role = Role.allCases.first(where: { $0.name == roleName }) else {
                throw .init("entry \(position + 1) has unknown role '\(roleName.prefix(16))' (reader, app or admin)")
            }
            let digest: SecretDigest
            if key.hasPrefix(Self.digestPrefix) {
                guard let given = SecretDigest(hex: key.dropFirst(Self.digestPrefix.count)) else {
                    throw .init("entry \(position + 1) (\(role.name)) has a malformed digest: blake2b: must be followed by 64 hex digits")
                }
                digest = given
            } else {
                guard key.count >= Self.minimumKeyLength else {
                    throw .init("entry \(position + 1) (\(role.name)) has a key shorter than \(Self.minimumKeyLength) characters")
                }
                guard key.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: ",") }) else {
                    throw .init("entry \(position + 1) (\(role.name)) has a key with spaces or non-printable characters")
                }
                digest = SecretDigest(of: key)
            }
            guard seen.insert(digest.hex).inserted else {
                throw .init("entry \(position + 1) (\(role.name)) repeats a key given earlier")
            }
            entries.append((digest, role))
        }
        guard !entries.isEmpty else { throw .init("no keys given") }
        self.entries = entries
    }

    /// Checks `Authorization: Bearer <key>` against `required`: `invalid_api_key` or `forbidden`.
    /// Returns the key's role.
    @discardableResult
    func authorize(_ authorization: String?, _ required: Role) throws(APIError) -> Role {
        guard let header = authorization else {
            throw APIError.invalidAPIKey("missing Authorization: Bearer <api key>")
        }
        // "Bearer " in any case, compared as bytes (no String lowercasing on every request).
        guard header.utf8.count > 7, zip(header.utf8.prefix(7), "bearer ".utf8).allSatisfy({ $0 == $1 || ($1 >= 0x61 && $0 == $1 - 0x20) }) else {
            throw APIError.invalidAPIKey("Authorization must use the Bearer scheme")
        }
        guard let role = role(of: header.dropFirst(7).trimmingASCIISpaces()) else {
            throw APIError.invalidAPIKey("unknown API key")
        }
        guard role >= required else {
            throw APIError.forbidden("this API key has role \(role.name); this route needs \(required.name)")
        }
        return role
    }

    /// The role of the presented key, or nil when it matches no configured key.
    public func role(of presentedKey: some StringProtocol) -> Role? {
        let presented = SecretDigest(of: presentedKey)
        var found: Role?
        for entry in entries where entry.digest.matches(presented) {
            found = max(found ?? entry.role, entry.role)
        }
        return found
    }
}
