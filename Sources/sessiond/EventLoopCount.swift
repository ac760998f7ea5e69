import Foundation
import NIOCore

/// How many event loops (threads) serve requests: one per CPU this process may run on. NIO
/// counts the machine's CPUs and cgroup limits, not the affinity mask that `taskset` or
/// `docker --cpuset-cpus` set; more loops than CPUs only take turns on them and switch
/// threads. `NIO_SINGLETON_GROUP_LOOP_COUNT`, when set, still decides.
enum EventLoopCount {
    /// Must run before anything uses NIO's shared event loops.
    static func matchCPUAffinity() {
        guard ProcessInfo.processInfo.environment["NIO_SINGLETON_GROUP_LOOP_COUNT"] == nil,
              let usable = usableCPUs(), usable < System.coreCount
        else { return }
        NIOSingletons.groupLoopCountSuggestion = usable
    }

    /// The CPUs in this process's affinity mask (`Cpus_allowed_list` of /proc/self/status:
    /// `0-3,6`), if it can be read. (Glibc's `sched_getaffinity` is not visible to Swift.)
    static func usableCPUs() -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Cpus_allowed_list:") })
        else { return nil }
        var count = 0
        for range in line.dropFirst("Cpus_allowed_list:".count).split(separator: ",") {
            let bounds = range.split(separator: "-").map { Int($0.trimmingCharacters(in: .whitespaces)) }
            switch bounds.count {
            case 1:
                guard bounds[0] != nil else { return nil }
                count += 1
            case 2:
                guard let low = bounds[0], let high = bounds[1], low <= high else { return nil }
                count += high - low + 1
            default:
                return nil
            }
        }
        return count > 0 ? count : nil
    }
}
