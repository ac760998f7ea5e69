import Foundation

enum JSONObject {
    static func parse(_ bytes: [UInt8]) throws -> [String: Any] {
        guard let object = try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else {
            throw JSONObjectError.notAnObject(String(decoding: bytes, as: UTF8.self))
        }
        return object
    }

    static func bytes(_ object: Any) -> [UInt8] {
        Array((try? JSONSerialization.data(withJSONObject: object)) ?? Data())
    }
}

enum JSONObjectError: Error {
    case notAnObject(String)
}
