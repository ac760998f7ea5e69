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
            let token = SessionToken.generate()
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

    @Test("a handle is BLAKE2b (crypto_generichash, 16-byte output) of the token bytes, first 12 bytes, base64url",
          arguments: [
              // Computed independently: base64url(blake2b(token_bytes, digest_size=16)[:12]).
              ("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8", "85osrVhBHNSfV35Q"),
              ("__________________________________________8", "Deoypd68Q3SS5Mo8"),
          ])
    func knownHandles(_ token: String, _ handle: String) throws {
        let parsed = try #require(SessionToken(parsing: token))
        #expect(parsed.handle.encoded == handle)
        #expect(parsed.handle.description == handle)
    }

    @Test("SessionHandle(parsing:) accepts handles and nothing else")
    func parsing() throws {
        let handle = SessionToken.generate().handle
        let parsed = try #require(SessionHandle(parsing: handle.encoded))
        #expect(parsed == handle)
        #expect(parsed.encoded == handle.encoded)
        #expect(SessionHandle(parsing: "85osrVhBHNSfV35Q")?.encoded == "85osrVhBHNSfV35Q")
        #expect(SessionHandle(parsing: "AAAAAAAAAAAAAAAA") != nil)
        #expect(SessionHandle(parsing: "________________") != nil)

        let rejected = [
            "",
            String(handle.encoded.dropLast()),
            handle.encoded + "A",
            handle.encoded + "=",
            String(handle.encoded.dropLast()) + "=",
            SessionToken.generate().encoded,
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
        let a = SessionToken.generate()
        let b = SessionToken.generate()
        #expect(a.handle != b.handle)
        #expect(Set([a.handle, a.handle, b.handle]).count == 2)
    }
}
