import SessionCrypto
import Testing

@Suite("Base64URL")
struct Base64URLTests {
    @Test("RFC 4648 test vectors, as base64url without padding", arguments: [
        ("", ""),
        ("f", "Zg"),
        ("fo", "Zm8"),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg"),
        ("fooba", "Zm9vYmE"),
        ("foobar", "Zm9vYmFy"),
    ])
    func rfcVectors(_ plain: String, _ encoded: String) throws {
        let bytes = Array(plain.utf8)
        #expect(Base64URL.encode(bytes) == encoded)
        #expect(Base64URL.encodedLength(byteCount: bytes.count) == encoded.utf8.count)
        #expect(Base64URL.decode(encoded.utf8, byteCount: bytes.count) == bytes)
    }

    @Test("the URL-safe characters: '-' and '_' where base64 has '+' and '/'", arguments: [
        ([0xFB, 0xFF] as [UInt8], "-_8"),
        ([0xFF, 0xFF, 0xFF], "____"),
        ([0xFB, 0xEF, 0xBE], "----"),
        ([0x00, 0x00, 0x00], "AAAA"),
        ([0x14, 0xFB, 0x9C, 0x03, 0xD9, 0x7E], "FPucA9l-"),
    ])
    func urlSafeCharacters(_ bytes: [UInt8], _ encoded: String) {
        #expect(Base64URL.encode(bytes) == encoded)
        #expect(Base64URL.decode(encoded.utf8, byteCount: bytes.count) == bytes)
    }

    @Test("round trip of every length 0...40, checked against Foundation's base64")
    func roundTrip() throws {
        for length in 0...40 {
            for sample in [randomBytes(length), [UInt8](repeating: 0, count: length), [UInt8](repeating: 0xFF, count: length)] {
                let encoded = Base64URL.encode(sample)
                #expect(encoded == referenceBase64URL(sample), "length \(length)")
                #expect(encoded.utf8.count == Base64URL.encodedLength(byteCount: length))
                #expect(!encoded.contains("="))
                let decoded = try #require(Base64URL.decode(encoded.utf8, byteCount: length), "length \(length): \(encoded)")
                #expect(decoded == sample)
                // Any other expected size rejects it.
                #expect(Base64URL.decode(encoded.utf8, byteCount: length + 1) == nil)
                if length > 0 { #expect(Base64URL.decode(encoded.utf8, byteCount: length - 1) == nil) }
            }
        }
    }

    @Test("non-canonical trailing bits, padding and foreign characters are rejected")
    func strictDecoding() {
        // "f" is Zg: 'g' is 32 = 100000, the low 4 bits unused. Any of them set is non-canonical.
        for bad in ["Zh", "Zi", "Zj", "Zk", "Zp", "Zv"] {
            #expect(Base64URL.decode(bad.utf8, byteCount: 1) == nil, "accepted \(bad)")
        }
        // "fo" is Zm8: '8' is 60 = 111100, the low 2 bits unused.
        for bad in ["Zm9", "Zm-", "Zm_"] {
            #expect(Base64URL.decode(bad.utf8, byteCount: 2) == nil, "accepted \(bad)")
        }
        #expect(Base64URL.decode("Zg==".utf8, byteCount: 1) == nil)
        #expect(Base64URL.decode("Zm8=".utf8, byteCount: 2) == nil)
        #expect(Base64URL.decode("Zm+v".utf8, byteCount: 3) == nil)
        #expect(Base64URL.decode("Zm/v".utf8, byteCount: 3) == nil)
        #expect(Base64URL.decode("Zm.v".utf8, byteCount: 3) == nil)
        #expect(Base64URL.decode("Zm v".utf8, byteCount: 3) == nil)
        #expect(Base64URL.decode("Zm9".utf8, byteCount: 3) == nil)
        #expect(Base64URL.decode("".utf8, byteCount: 0) == [])
        #expect(Base64URL.decode("A".utf8, byteCount: 0) == nil)
    }
}
