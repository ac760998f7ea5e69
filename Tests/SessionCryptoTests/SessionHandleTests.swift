import SessionCrypto
import Testing

@Suite("Session handles")
struct SessionHandleTests {
    @Test("a handle is deterministic, 16 base64url characters, and never equals or contains its token")
    func derivedHandles() async throws {
        let count = 100_000
        var handles = Set<String>(minimumCapacity: count)
        var problems = [String]()
        for index in 0..<count {
            // CPU-bound loop: let the other (Redis) tests' tasks run on the shared thread pool.
            if index % 500 == 0 { await Task.yield() }
            let token = SessionToken.generate(tag: .random())
            let handle = token.handle.encoded
            let again = try #require(SessionToken(parsing: token.encoded)).handle.encoded
            if handle != again { problems.append("not deterministic: \(handle) vs \(again)") }
            if handle != token.handle.encoded { problems.append("not deterministic on the same value") }
            if handle.utf8.count != 16 || !handle.allSatisfy(base64URLCharacters.contains) {
                problems.append("malformed handle \(handle)")
            }
            if handle == token.encoded || token.encoded.contains(handle) || handle.contains(token.encoded) {
                problems.append("handle \(handle) reveals token")
            }
            handles.insert(handle)
        }
        #expect(problems.isEmpty, "\(problems.count) problems, first: \(problems.prefix(3))")
        #expect(handles.count == count, "\(count - handles.count) handle collisions")
        #expect(SessionHandle.encodedLength == 16)
    }

    @Test("a handle is the token's tag, then BLAKE2b (crypto_generichash, 16-byte output) of the token bytes with the top two bits cleared, 12 bytes, base64url",
          arguments: [
              // Computed independently: d = blake2b(token, digest_size=16);
              // base64url(token[0:2] + [d[0] & 0x3F] + d[1:10]).
              ("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8", "AAEzmiytWEEc1J9X"),
              ("__________________________________________8", "__8N6jKl3rxDdJLk"),
          ])
    func knownHandles(_ token: String, _ handle: String) throws {
        let parsed = try #require(SessionToken(parsing: token))
        #expect(parsed.handle.encoded == handle)
        #expect(parsed.handle.description == handle)
        #expect(parsed.encoded == token)
    }

    @Test("SessionHandle(parsing:) accepts handles and nothing else")
    func parsing() throws {
        let handle = SessionToken.generate(tag: .random()).handle
        let parsed = try #require(SessionHandle(parsing: handle.encoded))
        #expect(parsed == handle)
        #expect(parsed.encoded == handle.encoded)
        #expect(SessionHandle(parsing: "AAEzmiytWEEc1J9X")?.encoded == "AAEzmiytWEEc1J9X")
        #expect(SessionHandle(parsing: "AAAAAAAAAAAAAAAA") != nil)
        #expect(SessionHandle(parsing: "__8_____________") != nil)
        // The two bits after the tag must be zero, so the tag ends on a character boundary.
        #expect(SessionHandle(parsing: "________________") == nil)
        #expect(SessionHandle(parsing: "AABAAAAAAAAAAAAA") == nil)
        #expect(handle.rest.count == 13 && handle.tagText.count == 3)
        #expect(SessionHandle(tag: RoutingTag(0xC6, 0xEA), rest: handle.rest)?.tagText == "xuo")

        let rejected = [
            "",
            String(handle.encoded.dropLast()),
            handle.encoded + "A",
            handle.encoded + "=",
            String(handle.encoded.dropLast()) + "=",
            SessionToken.generate(tag: .random()).encoded,
            " " + String(handle.encoded.dropFirst()),
            handle.encoded.replacing(at: 3, with: "+"),
            handle.encoded.replacing(at: 15, with: "/"),
            handle.encoded.replacing(at: 8, with: "."),
            handle.encoded.replacing(at: 0, with: "é"),
            "85osrVhBHNSfV35Q\0",
        ]
        for text in rejected {
            #expect(SessionHandle(parsing: text) == nil, "accepted \(text.debugDescription)")
        }
    }

    @Test("different tokens, different handles; equal handles hash equally")
    func distinctAndHashable() {
        let a = SessionToken.generate(tag: .random())
        let b = SessionToken.generate(tag: .random())
        #expect(a.handle != b.handle)
        #expect(Set([a.handle, a.handle, b.handle]).count == 2)
    }

    @Test("the routing key maps a user id to a keyed BLAKE2b tag; another key gives another tag")
    func routingTags() throws {
        // Computed independently: blake2b(b"alice", digest_size=16, key=bytes(range(32)))[:2].
        let key = try #require(RoutingKey(bytes: Array(0..<32)))
        let tag = key.tag(forUser: "alice")
        #expect(tag == RoutingTag(0xC6, 0xEA))
        #expect(tag.text == "xuo")
        #expect(key.tag(forUser: "alice") == tag)
        #expect(RoutingKey(bytes: Array(0..<31)) == nil)
        var differing = 0
        for user in 0..<50 {
            if RoutingKey.generate().tag(forUser: "user-\(user)") != key.tag(forUser: "user-\(user)") { differing += 1 }
        }
        #expect(differing >= 45, "a fresh key should move almost every user to another tag")
        #expect(!"\(key)".contains("0, 1, 2"))
    }
}
