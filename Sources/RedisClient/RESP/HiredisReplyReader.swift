import CHiredis
import NIOCore

/// hiredis's incremental reply parser. Bytes go in as they arrive; whole replies come out.
/// Not thread-safe: owned by one channel handler on one event loop.
///
/// hiredis parses, and builds each reply straight into `RESPValue`s through its object-function
/// hooks. Its own reply objects would cost two allocations and two frees per element on top of
/// the Swift copy: a listing's `ZRANGE` of 10,000 members spent more time in malloc than in parsing.
final class HiredisReplyReader {
    private let reader: UnsafeMutablePointer<redisReader>
    /// Arrays whose elements are still arriving, outermost first.
    private var openArrays: [(values: [RESPValue], expected: Int)] = []
    /// The reply completed by the last element hiredis handed over.
    private var completed: RESPValue?

    init() {
        guard let reader = redisReaderCreateWithFunctions(replyFunctions) else {
            fatalError("redisReaderCreateWithFunctions: out of memory")
        }
        self.reader = reader
        reader.pointee.privdata = Unmanaged.passUnretained(self).toOpaque()
    }

    deinit {
        redisReaderFree(reader)
    }

    func feed(_ buffer: ByteBuffer) throws {
        let status = buffer.withUnsafeReadableBytes { bytes in
            redisReaderFeed(reader, bytes.baseAddress?.assumingMemoryBound(to: CChar.self), bytes.count)
        }
        if status != REDIS_OK { throw readerError() }
    }

    /// The next complete reply, or nil when more bytes are needed.
    func nextReply() throws -> RESPValue? {
        var marker: UnsafeMutableRawPointer?
        guard redisReaderGetReply(reader, &marker) == REDIS_OK else { throw readerError() }
        guard marker != nil, let reply = completed else { return nil }
        completed = nil
        return reply
    }

    private func readerError() -> RedisClientError {
        let message = withUnsafeBytes(of: &reader.pointee.errstr) { bytes in
            String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
        }
        return RedisClientError(.protocolError, "hiredis reader: \(message)")
    }

    /// Places a finished value in its array, closing every array it completes.
    fileprivate func add(_ value: RESPValue) {
        var value = value
        while let last = openArrays.indices.last {
            openArrays[last].values.append(value)
            guard openArrays[last].values.count == openArrays[last].expected else { return }
            value = .array(openArrays.removeLast().values)
        }
        completed = value
    }

    fileprivate func beginArray(count: Int) {
        guard count > 0 else { return add(.array([])) }
        var values = [RESPValue]()
        values.reserveCapacity(count)
        openArrays.append((values, count))
    }
}

/// What the hooks return: hiredis only needs a non-NULL pointer (NULL means out of memory);
/// the values themselves are kept by the reader.
private var builtMarker: UnsafeMutableRawPointer? { UnsafeMutableRawPointer(bitPattern: 1) }

private func withReader(_ task: UnsafePointer<redisReadTask>?, _ body: (HiredisReplyReader) -> Void) {
    Unmanaged<HiredisReplyReader>.fromOpaque(task!.pointee.privdata)._withUnsafeGuaranteedRef(body)
}

private func bytes(_ pointer: UnsafeMutablePointer<CChar>?, _ length: Int) -> UnsafeRawBufferPointer {
    UnsafeRawBufferPointer(start: pointer, count: pointer == nil ? 0 : length)
}

/// Set once, read by every reader: hiredis keeps a pointer to it.
nonisolated(unsafe) private let replyFunctions: UnsafeMutablePointer<redisReplyObjectFunctions> = {
    let functions = UnsafeMutablePointer<redisReplyObjectFunctions>.allocate(capacity: 1)
    functions.initialize(to: redisReplyObjectFunctions(
        createString: { task, pointer, length in
            let type = task!.pointee.type
            let content = bytes(pointer, length)
            withReader(task) { reader in
                switch type {
                case REDIS_REPLY_STATUS: reader.add(.simpleString(String(decoding: content, as: UTF8.self)))
                case REDIS_REPLY_ERROR: reader.add(.error(String(decoding: content, as: UTF8.self)))
                default: reader.add(.bulkString([UInt8](content)))
                }
            }
            return builtMarker
        },
        createArray: { task, count in
            withReader(task) { $0.beginArray(count: Int(count)) }
            return builtMarker
        },
        createInteger: { task, value in
            withReader(task) { $0.add(.integer(Int64(value))) }
            return builtMarker
        },
        createNil: { task in
            withReader(task) { $0.add(.null) }
            return builtMarker
        },
        freeObject: { _ in }
    ))
    return functions
}()
