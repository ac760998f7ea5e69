import Foundation
@testable import SessionStore
import Testing

/// Each script carries only the shared functions it calls (a closure per function per call).
@Suite struct SessionScriptSourceTests {
    static func defines(_ prelude: String, _ name: String) -> Bool {
        prelude.contains("local function \(name)(")
    }

    @Test func aScriptCarriesWhatItCallsDirectlyOrThroughAnother() {
        let prelude = SessionScriptSource.prelude(for: "store_new(KEYS[1], 160, 60, 600, ARGV[1])\nreturn 1")
        for name in ["store_new", "now_ms", "encode", "varint", "expiry_of", "int"] {
            #expect(Self.defines(prelude, name), "\(name)")
        }
        for name in ["read_varint", "parse", "index_session", "extend_index", "publish_revoked"] {
            #expect(!Self.defines(prelude, name), "\(name)")
        }
        #expect(prelude.hasPrefix("-- Shared by every sessiond script"))
    }

    @Test func aNameInsideAnotherIsNoCall() {
        let prelude = SessionScriptSource.prelude(for: "return read_varint(ARGV[1], 1)")
        #expect(Self.defines(prelude, "read_varint"))
        #expect(!Self.defines(prelude, "varint") && !Self.defines(prelude, "int"))
    }

    /// Whether `text` has `name` as a whole identifier, called or not.
    static func mentions(_ text: String, _ name: String) -> Bool {
        let identifier: (Character) -> Bool = { $0.isLetter || $0.isNumber || $0 == "_" }
        var rest = text[...]
        while let found = rest.firstRange(of: name) {
            let before = found.lowerBound == text.startIndex ? nil : text[text.index(before: found.lowerBound)]
            let after = found.upperBound == text.endIndex ? nil : text[found.upperBound]
            if !(before.map(identifier) ?? false) && !(after.map(identifier) ?? false) { return true }
            rest = text[found.upperBound...]
        }
        return false
    }

    @Test func everyScriptDefinesEverySharedFunctionItNames() {
        let scripts = SessionScripts()
        let shared = SessionScriptSource.common.split(separator: "\n").filter { $0.hasPrefix("local function ") }
            .map { String($0.dropFirst("local function ".count).prefix { $0 != "(" }) }
        #expect(shared.count > 10)
        for script in [scripts.create, scripts.createCapped, scripts.touchBatch, scripts.replaceData, scripts.revoke, scripts.rotate, scripts.listPage,
                       scripts.migrateIndex, scripts.fence, scripts.revokeMembers, scripts.routingKey] {
            // Code only: comments name functions too.
            let code = script.source.split(separator: "\n").map { line in line.components(separatedBy: "--")[0] }.joined(separator: "\n")
            for name in shared where Self.mentions(code, name) {
                #expect(Self.defines(script.source, name), "\(script.name) names \(name)")
            }
        }
    }
}
