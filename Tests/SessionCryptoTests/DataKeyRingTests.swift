import Foundation
import SessionCrypto
import Testing

/// The key ring of encryption at rest: its file format, and sealing with libsodium's
/// XChaCha20-Poly1305 bound to associated data.
@Suite struct DataKeyRingTests {
    static let one = randomBytes(32)
    static let two = randomBytes(32)

    static func line(_ id: Int, _ key: [UInt8], current: Bool = false) -> String {
        "\(id):\(Data(key).base64EncodedString())" + (current ? " current" : "")
    }

    @Test func sealsUnderTheCurrentKeyAndOpensUnderAnyKey() throws {
        let before = try DataKeyRing(parsing: "# data keys\n\n" + Self.line(1, Self.one, current: true) + "\n" + Self.line(2, Self.two) + "\n")
        let after = try DataKeyRing(parsing: Self.line(1, Self.one) + "\r\n  " + Self.line(2, Self.two, current: true) + "\t\r\n")
        #expect(before.currentID == 1 && after.currentID == 2)
        let text = Array(#"{"secret":"marker"}"#.utf8)
        let associated = Array("handle".utf8)
        let box = before.seal(text, associatedData: associated)
        #expect(box.count == text.count + DataKeyRing.overhead && box[0] == 1)
        #expect(box.firstRange(of: Array("marker".utf8)) == nil)
        #expect(try after.open(box[...], associatedData: associated) == text)
        #expect(try before.open(after.seal(text, associatedData: associated)[...], associatedData: associated) == text)
        #expect(before.seal(text, associatedData: associated) != box, "a fresh nonce every time")
        #expect(try before.open(before.seal([], associatedData: associated)[...], associatedData: associated) == [])
    }

    @Test func refusesOtherAssociatedDataAlteredBoxesAndUnknownKeys() throws {
        let ring = try DataKeyRing(parsing: Self.line(1, Self.one, current: true))
        let box = ring.seal(Array("data".utf8), associatedData: Array("handle-a".utf8))
        #expect(throws: DataKeyRing.OpenError.rejected(1)) { try ring.open(box[...], associatedData: Array("handle-b".utf8)) }
        for position in [1, 30, box.count - 1] {
            var altered = box
            altered[position] ^= 0x01
            #expect(throws: DataKeyRing.OpenError.rejected(1)) { try ring.open(altered[...], associatedData: Array("handle-a".utf8)) }
        }
        var otherKey = box
        otherKey[0] = 2
        #expect(throws: DataKeyRing.OpenError.unknownKey(2)) { try ring.open(otherKey[...], associatedData: Array("handle-a".utf8)) }
        #expect(throws: DataKeyRing.OpenError.truncated) { try ring.open(box.prefix(40), associatedData: Array("handle-a".utf8)) }
        let impostor = try DataKeyRing(parsing: Self.line(1, Self.two, current: true))
        #expect(throws: DataKeyRing.OpenError.rejected(1)) { try impostor.open(box[...], associatedData: Array("handle-a".utf8)) }
    }

    static let badFiles: [(String, String)] = [
        ("", "holds no key"),
        (line(1, one), "no key is marked current"),
        (line(1, one, current: true) + "\n" + line(2, two, current: true), "line 2: a second key is marked current"),
        (line(1, one, current: true) + "\n" + line(1, two), "line 2: key 1 is listed twice"),
        (line(256, one, current: true), "line 1: expected"),
        ("-1:" + Data(one).base64EncodedString() + " current", "line 1: expected"),
        (line(1, Array(one.prefix(16)), current: true), "line 1: key 1 must be 32 bytes"),
        ("1:not-base64!! current", "line 1: key 1 must be 32 bytes"),
        (line(1, one) + " newest", "line 1: expected"),
        ("1 " + Data(one).base64EncodedString(), "line 1: expected"),
    ]

    @Test(arguments: badFiles)
    func aBadFileSaysWhatIsWrongWithoutQuotingAKey(_ file: String, _ reason: String) {
        do throws(DataKeyRingError) {
            _ = try DataKeyRing(parsing: file)
            Issue.record("accepted: \(reason)")
        } catch {
            #expect(error.text.hasPrefix(reason), "\(error.text)")
            #expect(!error.text.contains(Data(Self.one).base64EncodedString()) && !error.text.contains(Data(Self.two).base64EncodedString()))
        }
    }
}
