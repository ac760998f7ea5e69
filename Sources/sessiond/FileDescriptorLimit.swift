#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The open-file limit: a server holds one descriptor per connection, and the usual soft limit
/// (1,024) is far below SESSIOND_MAX_CONNECTIONS' default.
enum FileDescriptorLimit {
    /// Raises the soft limit to the hard one and returns the limit now in force.
    static func raiseToHardLimit() -> Int {
        var limit = rlimit()
        guard getrlimit(openFilesResource, &limit) == 0 else { return 0 }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(openFilesResource, &raised) == 0 { limit = raised }
        }
        // RLIM_INFINITY is the largest value, so clamping maps it to Int.max too.
        return Int(clamping: limit.rlim_cur)
    }

    #if canImport(Glibc)
    private static let openFilesResource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
    #else
    private static let openFilesResource = RLIMIT_NOFILE
    #endif
}
