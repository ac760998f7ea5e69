import NIOCore

extension EventLoop {
    /// Answers on this loop: at once when already on it, as a completed future's callback runs.
    func deliver<Value>(_ result: Result<Value, any Error>, to answer: @escaping @Sendable (Result<Value, any Error>) -> Void) {
        if inEventLoop { answer(result) } else { execute { answer(result) } }
    }
}
