import Foundation
import NIOCore
@testable import SessionHTTP
import Testing

@Suite struct JSONWriterTests {
    static func escaped(_ text: String) -> String {
        var bytes = [UInt8]()
        JSONWriter.writeEscaped(text, into: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    @Test(arguments: [
        ("", #""""#),
        ("plain", #""plain""#),
        ("a\"b\\c", #""a\"b\\c""#),
        ("\n\r\t\u{0}\u{1F}\u{7F}", #""\n\r\t\u0000\u001f\#u{7F}""#),
        ("é€😀/", #""é€😀/""#),
        ("\"", #""\"""#),
        ("end\\", #""end\\""#),
    ])
    func escapesExactly(_ text: String, _ expected: String) {
        #expect(Self.escaped(text) == expected)
    }

    /// Every character class, in runs and alone, reads back as the same string.
    @Test func readsBackThroughJSONSerialization() throws {
        let pieces = ["a", "\"", "\\", "\n", "\u{1}", "\u{1F}", " ", "é", "😀", "\u{2028}", "xyz"]
        for first in pieces {
            for second in pieces {
                let text = first + second + first + first
                let json = "[" + Self.escaped(text) + "]"
                let parsed = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String]
                #expect(parsed == [text], "\(json)")
            }
        }
    }
}
