import Foundation
import SessionCrypto
import Testing

@Suite("Session tokens")
struct SessionTokenTests {
    @Test("100,000 generated tokens are unique, 43 base64url characters, and parse back")
    func generatedTokens() async throws {
        let count = 100_000
        var seen = Set<String>(minimumCapacity: count)
        var malformed = [String]()
        var notParsed = 0
        // Distinct values seen at each byte position: a generator that fills only part of the
        // 32 bytes (or repeats a pattern) shows up here even when the tokens stay unique.
        var valuesPerPosition = [Set<UInt8>](repeating: [], count: 32)

        for index in 0..<count {
            // CPU-bound loop: let the other (Redis) tests' tasks run on the shared thread pool.
            if index % 500 == 0 { await Task.yield() }
            let token = SessionToken.generate(tag: .random())
            let text = token.encoded
            seen.insert(text)
            if text.utf8.count != 43 || !text.allSatisfy(base64URLCharacters.contains) {
                malformed.append(text)
            }
            guard let parsed = SessionToken(parsing: text), parsed.encoded == text, parsed.matches(token),
                  parsed.handle == token.handle
            else {
                notParsed += 1
                continue
            }
            if index < 10_000, let bytes = decodeReference(text) {
                for (position, byte) in bytes.enumerated() { valuesPerPosition[position].insert(byte) }
            }
        }
        #expect(seen.count == count, "\(count - seen.count) duplicate tokens")
        #expect(malformed.isEmpty, "malformed tokens, first: \(malformed.prefix(3))")
        #expect(notParsed == 0)
        #expect(SessionToken.encodedLength == 43)
        for (position, values) in valuesPerPosition.enumerated() {
            #expect(values.count == 256, "byte \(position) took only \(values.count) values over 10,000 tokens")
        }
    }

    @Test("a token starts with its routing tag and carries 240 random bits after it")
    func tagThenRandom() throws {
        let tag = RoutingTag(0xC6, 0xEA)
        var tails = Set<String>()
        for _ in 0..<1_000 {
            let token = SessionToken.generate(tag: tag)
            let bytes = try #require(decodeReference(token.encoded))
            #expect(bytes.prefix(2) == [0xC6, 0xEA])
            #expect(token.tag == tag)
            #expect(token.handle.tagText == tag.text)
            tails.insert(String(token.encoded.dropFirst(3)))
        }
        #expect(tails.count == 1_000)
        #expect(SessionToken.randomByteCount * 8 == 240)
    }

    @Test("wrong lengths are rejected", arguments: [0, 1, 22, 41, 42, 44, 45, 64, 86])
    func rejectsLength(_ length: Int) {
        let text = String(repeating: "A", count: length)
        #expect(SessionToken(parsing: text) == nil)
    }

    @Test("a token one character short or long is rejected")
    func rejectsNearLengths() {
        let token = SessionToken.generate(tag: .random()).encoded
        #expect(SessionToken(parsing: token) != nil)
        #expect(SessionToken(parsing: String(token.dropLast())) == nil)
        #expect(SessionToken(parsing: token + "A") == nil)
        #expect(SessionToken(parsing: String(token.dropFirst())) == nil)
        #expect(SessionToken(parsing: " " + token) == nil)
        #expect(SessionToken(parsing: token + "\n") == nil)
    }

    @Test("characters outside the base64url alphabet are rejected",
          arguments: ["+", "/", ".", "=", " ", "~", "!", "*", "\0", "\u{7F}", "é", "😀"] as [Character])
    func rejectsAlphabet(_ bad: Character) {
        let token = SessionToken.generate(tag: .random()).encoded
        for offset in [0, 1, 21, 41, 42] {
            let text = token.replacing(at: offset, with: bad)
            #expect(SessionToken(parsing: text) == nil, "accepted \(bad.debugDescription) at \(offset)")
        }
    }

    @Test("padding is rejected")
    func rejectsPadding() {
        let token = SessionToken.generate(tag: .random()).encoded
        #expect(SessionToken(parsing: token + "=") == nil)
        #expect(SessionToken(parsing: token + "==") == nil)
        #expect(SessionToken(parsing: String(token.dropLast()) + "=") == nil)
        #expect(SessionToken(parsing: String(token.dropLast(2)) + "==") == nil)
        // The padded standard encoding of the same bytes.
        let padded = token.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/") + "="
        #expect(SessionToken(parsing: padded) == nil)
    }

    @Test("non-canonical trailing bits are rejected")
    func rejectsNonCanonicalTrailingBits() throws {
        // 32 bytes are 256 bits; 43 characters carry 258, so the last character's low 2 bits
        // must be zero. Setting any of them gives a second spelling of the same bytes.
        for _ in 0..<1_000 {
            let token = SessionToken.generate(tag: .random()).encoded
            let last = try #require(token.last)
            let value = try #require(base64URLAlphabet.firstIndex(of: last))
            #expect(value & 3 == 0, "generated token has non-zero trailing bits: \(token)")
            for lowBits in 1...3 {
                let altered = token.replacing(at: 42, with: base64URLAlphabet[value | lowBits])
                #expect(SessionToken(parsing: altered) == nil, "accepted \(altered) (from \(token))")
            }
        }
    }

    @Test("every canonical encoding of 32 bytes parses to those bytes")
    func acceptsCanonical() throws {
        for bytes in [[UInt8](repeating: 0, count: 32), [UInt8](repeating: 0xFF, count: 32), Array(0..<32)] + (0..<200).map({ _ in randomBytes(32) }) {
            let text = referenceBase64URL(bytes)
            let token = try #require(SessionToken(parsing: text), "rejected \(text)")
            #expect(token.encoded == text)
        }
        // Parsing works from a Substring too.
        let embedded = "token=" + SessionToken.generate(tag: .random()).encoded + ";"
        let slice = embedded.dropFirst(6).dropLast()
        #expect(SessionToken(parsing: slice)?.encoded == String(slice))
    }

    @Test("matches compares tokens; description never shows the token")
    func matchesAndRedaction() throws {
        let token = SessionToken.generate(tag: .random())
        let other = SessionToken.generate(tag: .random())
        let same = try #require(SessionToken(parsing: token.encoded))
        #expect(token.matches(same))
        #expect(!token.matches(other))
        #expect(!"\(token)".contains(token.encoded))
        #expect(!String(describing: token).contains(token.encoded))
    }

    /// Independent decoder (Foundation) for checking the generated bytes.
    private func decodeReference(_ text: String) -> [UInt8]? {
        var standard = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while standard.utf8.count % 4 != 0 { standard += "=" }
        return Data(base64Encoded: standard).map(Array.init)
    }
}

extension RoutingTag {
    static func random() -> RoutingTag {
        RoutingTag(UInt8.random(in: 0...255), UInt8.random(in: 0...255))
    }
}
