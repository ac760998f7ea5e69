import SessionCrypto
import Testing

@Suite("constantTimeEquals")
struct ConstantTimeEqualsTests {
    @Test("equal bytes compare equal")
    func equal() {
        let bytes = randomBytes(32)
        #expect(constantTimeEquals(bytes, bytes))
        #expect(constantTimeEquals(bytes, Array(bytes)))
        #expect(constantTimeEquals(bytes[...], bytes))
        #expect(constantTimeEquals([UInt8](), [UInt8]()))
        #expect(constantTimeEquals(Array("api-key-0123456789abcdefghij".utf8), "api-key-0123456789abcdefghij".utf8))
    }

    @Test("a difference at any position compares unequal")
    func differentContent() {
        let bytes = randomBytes(48)
        for position in bytes.indices {
            for flip: UInt8 in [0x01, 0x80, 0xFF] {
                var other = bytes
                other[position] ^= flip
                #expect(!constantTimeEquals(bytes, other), "position \(position), flip \(flip)")
            }
        }
    }

    @Test("different lengths compare unequal, prefixes included")
    func differentLengths() {
        let bytes = randomBytes(32)
        #expect(!constantTimeEquals(bytes, bytes.dropLast()))
        #expect(!constantTimeEquals(bytes.dropLast(), bytes))
        #expect(!constantTimeEquals(bytes, bytes + [0]))
        #expect(!constantTimeEquals(bytes, [UInt8]()))
        #expect(!constantTimeEquals([UInt8](), bytes))
        #expect(!constantTimeEquals([0], [0, 0]))
    }
}
