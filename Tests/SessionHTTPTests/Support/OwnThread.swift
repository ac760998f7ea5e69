import Foundation

/// Runs `body` on a thread of its own and waits for it without holding a thread of the
/// concurrency pool (two on a 2-CPU machine): blocking reads, process waits and key generation
/// there would starve the suite's in-process servers and test tasks, which share that pool.
func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try body() }) }.start()
    }
}
