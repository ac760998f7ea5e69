import NIOCore
import NIOPosix

// Run Swift Concurrency's jobs on NIO's event loops: a request then stays on the thread that
// reads its socket, instead of hopping to the cooperative pool and back for every await
// (a thread switch each way). Must happen before any async code, hence top-level code.
NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
do {
    // Parsed and run by hand: from top-level code, `SessiondCommand.main()` resolves to the
    // synchronous entry point, which only prints help for an async command.
    let command = try SessiondCommand.parse()
    try await command.run()
} catch {
    SessiondCommand.exit(withError: error)
}
