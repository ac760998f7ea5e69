import Foundation
import SessionHTTP
import Testing

/// openapi.yaml and the router are built from different places; this keeps them in step.
@Suite struct OpenAPITests {
    /// One operation of the document: its role (`x-required-role`, nil for `security: []`) and
    /// the statuses it declares.
    struct Operation: Equatable {
        var role: String?
        var statuses: Set<Int> = []
    }

    /// `METHOD path -> operation`, read from the `paths:` block (two-space YAML indent).
    static func documentedOperations() throws -> [String: Operation] {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let text = try String(contentsOf: root.appendingPathComponent("openapi.yaml"), encoding: .utf8)
        var operations = [String: Operation]()
        var inPaths = false
        var currentPath: String?
        var current: String?
        let methods: Set<String> = ["get", "put", "post", "delete", "patch", "head", "options", "trace"]
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("paths:") { inPaths = true; continue }
            guard inPaths else { continue }
            if let first = line.first, first != " ", first != "#" { break }
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("  /"), line.hasSuffix(":"), !line.hasPrefix("   ") {
                currentPath = String(line.dropFirst(2).dropLast()).trimmingCharacters(in: CharacterSet(charactersIn: "'\""))
                current = nil
            } else if line.hasPrefix("    "), !line.hasPrefix("     "), let path = currentPath {
                let name = String(trimmed.dropLast())
                current = line.hasSuffix(":") && methods.contains(name) ? "\(name.uppercased()) \(path)" : nil
                if let current { operations[current] = Operation() }
            } else if let current, line.hasPrefix("      x-required-role:") {
                operations[current]?.role = trimmed.split(separator: ":").last.map { $0.trimmingCharacters(in: .whitespaces) }
            } else if let current, line.hasPrefix("        \""), let status = Int(trimmed.dropFirst().prefix(3)), trimmed.dropFirst(4).hasPrefix("\":") {
                operations[current]?.statuses.insert(status)
            }
        }
        return operations
    }

    @Test func everyRouteIsDocumentedAndNothingElse() throws {
        let documented = try Self.documentedOperations()
        let routes = Dictionary(uniqueKeysWithValues: APIRoute.all.map { ("\($0.method.rawValue) \($0.path)", $0) })
        let (documentedNames, routed) = (Set(documented.keys), Set(routes.keys))
        #expect(!documented.isEmpty)
        #expect(routed.subtracting(documentedNames).isEmpty, "in the router, not in openapi.yaml: \(routed.subtracting(documentedNames).sorted())")
        #expect(documentedNames.subtracting(routed).isEmpty, "in openapi.yaml, not in the router: \(documentedNames.subtracting(routed).sorted())")
        for (name, route) in routes {
            guard let operation = documented[name] else { continue }
            #expect(operation.role == route.role?.name, "\(name): openapi.yaml requires \(operation.role ?? "no key"), the router \(route.role?.name ?? "no key")")
            let success = route.method == .post && route.path == "/v1/sessions" ? 201 : 200
            #expect(operation.statuses.contains(success), "\(name): openapi.yaml does not declare its success, \(success)")
            // A key is refused with 401; one of too low a role with 403, which a reader route
            // cannot give (every key is at least a reader).
            #expect(operation.statuses.contains(401) == (route.role != nil), "\(name): 401 declared \(operation.statuses.contains(401)), key needed \(route.role != nil)")
            #expect(operation.statuses.contains(403) == ((route.role ?? .reader) > .reader), "\(name): 403 declared \(operation.statuses.contains(403)) for role \(route.role?.name ?? "none")")
        }
    }
}
